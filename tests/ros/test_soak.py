"""Soak: the real-time stack, one process per node, does pick-and-place task after task under a CPU hog.

`modular-robot up config/stacks/sim_tabletop.yaml` runs as documented (640x480 camera, real time) in
its own namespace; once its map holds the scene, one busy-looping process per core starts, and the
test sends `execute_task` goals one after another, as the chat does. A probe in the test process,
like a user's tool, follows /clock and the colour camera with the sensor-data QoS. Every task must
succeed with every step verified by the critic; sim time must keep moving and never run ahead of the
wall clock by more than the sim's lag bound, during the load and after it (back-pressure, not a
drift paid back in bursts); the probe must receive nearly every camera frame.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.task import Future
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from modular_robot.core.stack import load_stack
from modular_robot.ros import qos
from modular_robot.ros.arm_client import STALE_WALL_S
from modular_robot.sim.bridge_node import MAX_LAG_S
from modular_robot_interfaces.action import ExecuteTask
from modular_robot_interfaces.srv import QueryObjects

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "config/stacks/sim_tabletop.yaml"
SCENARIO = ROOT / "sim/scenarios/spine_tabletop.yaml"
# Into the tray, out of it into the bowl, then a second object: every task picks and places, and
# the second starts from where the first left the cube.
TASKS = ("put the red cube in the tray", "put the red cube in the bowl", "put the blue cylinder in the tray")
# The spine_tabletop scene: six objects the map must hold before the first task.
SCENE_OBJECTS = 6
# Wall-time caps (s): the stack's start, without the hog; all the tasks, under it (they took 65-180 s).
START_TIMEOUT_S = 120.0
TASKS_TIMEOUT_S = 360.0
# Sim time must advance at least this fast under the hog (sim s per wall s). Measured 0.20-0.61 on
# the shared 2-core machine with other stacks running (load average 10-20), where the sim alone,
# without the hog, stepped at 0.27x: this is a floor against a stall, not a speed target.
MIN_SIM_RATE = 0.1
# The probe stamps /clock on arrival; its thread shares the loaded cores, so an arrival may be late
# by this much (s) on top of the sim's own lag bound.
ARRIVAL_SLACK_S = 0.5
# Wall time watched after the hog stops: where a sim that drifted behind would pay its debt back.
AFTER_HOG_S = 4.0
# Camera frames the probe may miss, as a fraction of those published while the tasks ran: the
# sensor-data QoS keeps 5 frames (0.5 s of sim time, 1-2.5 s of wall time under the hog), so only a
# probe starved that long loses one. Measured: 0-2 lost (e.g. 392 of 394, 363 of 363). With Fast
# DDS's default 0.5 MB shared-memory segment, which a 0.9 MB frame does not fit, 34 of 104 came.
MAX_FRAME_LOSS = 0.05


def _stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _wait(future: Future, timeout_s: float) -> bool:
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    return done.wait(timeout_s)


class _Up:
    """`modular-robot up` of the stack in a namespace, its output in a log file."""

    def __init__(self, namespace: str, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modular_robot.cli", "up", str(STACK), "--namespace", namespace,
                 "-p", f"sim.scenario={SCENARIO}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def wait_until(self, condition: Callable[[], object], timeout_s: float, what: str) -> None:
        """Poll `condition` until it holds; fail at once if `up` exits, and after `timeout_s` of wall time."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"`up` exited with {self.process.returncode} while waiting for {what}:\n"
                                     f"{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class _TaskRun:
    """One task as the probe saw it."""

    instruction: str
    success: bool = False
    summary: str = ""
    statuses: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    sim_s: float = 0.0


class _Probe:
    """A separate node in the stack's namespace, spun on its own thread: a user's tool."""

    def __init__(self, namespace: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("soak_probe", namespace=namespace, context=self.context)
        # (wall s, sim s) of every /clock message and camera frame received.
        self.clock: list[tuple[float, float]] = []
        self.frames: list[tuple[float, float]] = []
        self.node.create_subscription(Clock, "/clock", lambda m: self.clock.append(
            (time.monotonic(), _stamp_s(m.clock))), qos.CLOCK)
        self.node.create_subscription(Image, "camera/color/image_raw", lambda m: self.frames.append(
            (time.monotonic(), _stamp_s(m.header.stamp))), qos.SENSOR_DATA)
        self.tasks = ActionClient(self.node, ExecuteTask, "execute_task")
        self.query = self.node.create_client(QueryObjects, "query_objects")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = Future()
        self._thread = threading.Thread(target=self.executor.spin_until_future_complete, args=(self._stop,),
                                        daemon=True)
        self._thread.start()

    def sim_now(self) -> float:
        return self.clock[-1][1] if self.clock else 0.0

    def map_size(self) -> int:
        """Return how many objects the semantic map holds (-1 when it does not answer within 5 s)."""
        if not self.query.service_is_ready():
            return -1
        future = self.query.call_async(QueryObjects.Request(text="", max_results=0))
        if not _wait(future, 5.0) or future.result() is None:
            return -1
        return len(future.result().objects)

    def run_task(self, up: _Up, instruction: str, timeout_s: float) -> _TaskRun:
        """Send one task and wait for its result; fail if it does not end within `timeout_s` or `up` exits."""
        run = _TaskRun(instruction)
        started_wall, started_sim = time.monotonic(), self.sim_now()
        goal_future = self.tasks.send_goal_async(ExecuteTask.Goal(instruction=instruction),
                                                 feedback_callback=lambda m: run.statuses.append(m.feedback.status))
        up.wait_until(goal_future.done, 10.0, f"the planner to accept {instruction!r}")
        handle = goal_future.result()
        assert handle.accepted, f"{instruction!r}: the planner refused the goal"
        result_future = handle.get_result_async()
        try:
            up.wait_until(result_future.done, timeout_s, f"the end of {instruction!r} "
                          f"(last status: {run.statuses[-1] if run.statuses else 'none'})")
        except AssertionError:
            handle.cancel_goal_async()
            raise
        response = result_future.result()
        run.success = response.status == GoalStatus.STATUS_SUCCEEDED and response.result.success
        run.summary = response.result.summary
        run.wall_s, run.sim_s = time.monotonic() - started_wall, self.sim_now() - started_sim
        return run

    def close(self) -> None:
        self._stop.set_result(None)
        self._thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _start_hog() -> list[subprocess.Popen]:
    """Start one busy-looping process per core."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]


def _stop_hog(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait(timeout=10)


def _largest_gap(samples: list[tuple[float, float]]) -> float:
    """Return the longest wall time between two consecutive samples."""
    return max(b[0] - a[0] for a, b in zip(samples, samples[1:]))


def _largest_lead(clock: list[tuple[float, float]], window_s: float) -> float:
    """Return the most sim time ran ahead of wall time over any span of at least `window_s` wall seconds."""
    lead, j = -float("inf"), 0
    for i, (wall_i, sim_i) in enumerate(clock):
        j = max(j, i)
        while j < len(clock) and clock[j][0] - wall_i < window_s:
            j += 1
        if j == len(clock):
            break
        lead = max(lead, (clock[j][1] - sim_i) - (clock[j][0] - wall_i))
    return lead


@pytest.mark.timeout(600)
def test_stack_under_a_cpu_hog_places_object_after_object_in_sim_time_losing_few_frames(tmp_path):
    namespace = f"/soak_{os.getpid()}"
    up = _Up(namespace, tmp_path / "up.log")
    probe = _Probe(namespace)
    hog: list[subprocess.Popen] = []
    runs: list[_TaskRun] = []
    try:
        up.wait_until(lambda: probe.tasks.server_is_ready() and probe.map_size() >= SCENE_OBJECTS, START_TIMEOUT_S,
                      "the planner and a map of the scene")
        hog = _start_hog()
        soak_start = time.monotonic()
        for instruction in TASKS:
            run = probe.run_task(up, instruction, soak_start + TASKS_TIMEOUT_S - time.monotonic())
            runs.append(run)
            print(f"{instruction!r}: {run.wall_s:.1f} s wall, {run.sim_s:.1f} s sim: {run.summary}")
            assert run.success, f"{instruction!r} failed: {run.summary}\n" + "\n".join(run.statuses)
            # Every step's post verdict was seen in camera frames, not inferred, and the reply says so.
            assert run.summary.endswith("Every step was verified by the critic."), run.summary
            assert sum("post-check ok" in s for s in run.statuses) >= 2, run.statuses
        soak_end = time.monotonic()
        _stop_hog(hog)
        up.wait_until(lambda: probe.clock and probe.clock[-1][0] >= soak_end + AFTER_HOG_S, AFTER_HOG_S + 30,
                      "/clock after the hog stopped")
    finally:
        _stop_hog(hog)
        probe.close()
        up.stop()
    assert "exited with code" not in up.log_path.read_text(), up.tail()

    clock = [(wall, sim) for wall, sim in probe.clock if soak_start <= wall <= soak_end]
    assert len(clock) > 1, "no /clock under the hog"
    wall_span, sim_span = clock[-1][0] - clock[0][0], clock[-1][1] - clock[0][1]
    rate, gap = sim_span / wall_span, _largest_gap(clock)
    print(f"under the hog: sim {sim_span:.1f} s in {wall_span:.1f} s of wall time ({rate:.2f}x real time); "
          f"longest wall time between /clock messages {gap:.2f} s")
    # Back-pressure, not a stall: sim time keeps moving, however slowly the loaded machine steps it,
    # and never stands still as long as the skills' arm client takes for a robot that is gone.
    assert rate >= MIN_SIM_RATE, f"sim time ran at {rate:.2f}x real time under the hog"
    assert gap < STALE_WALL_S, f"no /clock for {gap:.1f} s of wall time"
    # No drift paid back in bursts: over any second, under the hog or once it stopped, sim time runs
    # at most the sim's lag bound ahead of the wall clock.
    lead = _largest_lead([(wall, sim) for wall, sim in probe.clock if wall >= soak_start], 1.0)
    print(f"largest lead of sim time over wall time in 1 s: {lead:+.3f} s")
    assert lead <= MAX_LAG_S + ARRIVAL_SLACK_S, f"sim time ran {lead:.2f} s ahead of the wall clock within 1 s"

    frames = sorted({sim for wall, sim in probe.frames if soak_start <= wall <= soak_end})
    assert frames, "no camera frame under the hog"
    camera_rate = next(n for n in load_stack(STACK).nodes if n.executable == "sim_bridge").parameters["camera_rate_hz"]
    # The sim publishes a frame every 1/camera_rate_hz of sim time, stamped with it.
    published = round((frames[-1] - frames[0]) * camera_rate) + 1
    print(f"camera frames received {len(frames)} of {published} published")
    assert len(frames) >= (1 - MAX_FRAME_LOSS) * published, f"received {len(frames)} of {published} camera frames"
