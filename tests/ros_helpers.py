"""Helpers for in-process ROS tests: a stepped simulator and a probe node on one executor."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from modular_robot.ros import qos
from modular_robot.ros.tf_listener import TfListener
from modular_robot.scenarios.scenario import parse_scenario
from modular_robot.sim.bridge_node import SimBridgeNode
from modular_robot.sim.world import SimWorld


class SimHarness:
    """A SimWorld behind its bridge node, stepped from the test thread, plus a probe node.

    Everything runs in the calling thread: `advance` steps the sim, then lets the executor deliver
    what was published, so tests are deterministic and never sleep.
    """

    def __init__(self, scenario_yaml: str, renderer: str = "tiny", width: int = 320, height: int = 240,
                 **params) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.world = SimWorld(parse_scenario(scenario_yaml), renderer=renderer, width=width, height=height)
        overrides = [Parameter("mode", value="lockstep"), Parameter("autostart", value=False)]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        self.sim = SimBridgeNode(self.world, context=self.context, parameter_overrides=overrides)
        self.probe = rclpy.create_node("probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.sim)
        self.executor.add_node(self.probe)
        self.last: dict[str, object] = {}

    def track(self, msg_type, topic: str, qos_profile=qos.RELIABLE, keep: list | None = None) -> None:
        """Remember the latest message of a topic in `self.last[topic]` (and append to `keep`)."""
        def callback(msg):
            self.last[topic] = msg
            if keep is not None:
                keep.append(msg)
        self.probe.create_subscription(msg_type, topic, callback, qos_profile)

    def track_tf(self, prefix: str = "") -> TfListener:
        """Listen to the robot's tf and tf_static, as a stack node would."""
        return TfListener(self.probe, topic=prefix + "tf", static_topic=prefix + "tf_static")

    def spin(self, rounds: int = 20) -> None:
        """Deliver pending messages without advancing the sim."""
        for _ in range(rounds):
            self.executor.spin_once(timeout_sec=0.0)

    def advance(self, seconds: float, chunk: float = 0.01) -> None:
        """Advance sim time, delivering messages between chunks."""
        steps = int(round(seconds / chunk))
        for _ in range(steps):
            self.sim.advance(chunk)
            self.spin(5)

    def advance_until(self, condition, max_seconds: float, chunk: float = 0.01) -> bool:
        """Advance until condition() holds or max_seconds of sim time pass; return whether it held."""
        for _ in range(int(round(max_seconds / chunk))):
            if condition():
                return True
            self.advance(chunk, chunk)
        return condition()

    def close(self) -> None:
        self.executor.shutdown()
        self.probe.destroy_node()
        self.sim.destroy_node()
        rclpy.shutdown(context=self.context)


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def pids_with(marker: str) -> list[int]:
    """Return the process ids whose command line contains `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def stop_up(up: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Stop a `modular-robot up` process with Ctrl-C, killing it if it has not exited after `timeout_s`."""
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
    try:
        up.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait()
