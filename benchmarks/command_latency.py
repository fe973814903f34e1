"""Time from a typed command to the first motion command reaching the robot's controllers.

Runs the tabletop stack as a robot would: `modular-robot up config/stacks/sim_tabletop.yaml`, every
node its own process, the simulator in real time on the demo scene. A probe node (what the chat
node does) waits until the semantic map holds the scene, then sends commands to `execute_task` and
measures, in wall time, from sending the goal to the first message on `arm_controller/joint_trajectory`
or `gripper_controller/commands` (downstream of the safety shield). On the way: the goal's
acceptance, the map snapshot, planning, the critic's pre-check, the skill's motion planning and the
shield. Each round is "pick up the red cube", "put it in the tray", "put it back".

Usage:
    .venv/bin/python benchmarks/command_latency.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from report import Report, print_report, stdout_for_results

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("pick up the red cube", "put it in the tray", "put it back")
TARGET_MS = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="wall seconds for the map to fill")
    args = parser.parse_args(argv)
    out = stdout_for_results()

    import rclpy
    from action_msgs.msg import GoalStatus
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from modular_robot.ros import qos
    from modular_robot_interfaces.action import ExecuteTask
    from modular_robot_interfaces.msg import SemanticMap

    namespace = f"/latency_{os.getpid()}"
    up = subprocess.Popen(
        [sys.executable, "-m", "modular_robot.cli", "up", str(ROOT / "config/stacks/sim_tabletop.yaml"),
         "--namespace", namespace, "-p", f"sim.scenario={ROOT / 'sim/scenarios/demo_tabletop.yaml'}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("latency_probe", namespace=namespace, context=context)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    lock = threading.Lock()
    state = {"sent": None, "first": None, "objects": 0}

    def on_motion(_msg) -> None:
        now = time.monotonic()
        with lock:
            if state["sent"] is not None and state["first"] is None:
                state["first"] = now

    def on_map(msg: SemanticMap) -> None:
        with lock:
            state["objects"] = len(msg.objects)

    node.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", on_motion, qos.RELIABLE)
    node.create_subscription(Float64MultiArray, "gripper_controller/commands", on_motion, qos.RELIABLE)
    node.create_subscription(SemanticMap, "semantic_map", on_map, qos.LATCHED)
    client = ActionClient(node, ExecuteTask, "execute_task")
    rows: list[tuple[str, float | None, bool, str]] = []
    try:
        deadline = time.monotonic() + args.startup_timeout
        while time.monotonic() < deadline and up.poll() is None:
            with lock:
                ready = state["objects"] >= 7
            if ready and client.server_is_ready():
                break
            time.sleep(0.2)
        else:
            print(f"the stack did not come up within {args.startup_timeout} s", file=sys.stderr)
            return 1
        for _ in range(args.rounds):
            for command in COMMANDS:
                with lock:
                    state["first"] = None
                    state["sent"] = time.monotonic()
                goal = client.send_goal_async(ExecuteTask.Goal(instruction=command))
                while not goal.done():
                    time.sleep(0.01)
                result = goal.result().get_result_async()
                while not result.done():
                    time.sleep(0.05)
                response = result.result()
                with lock:
                    first = state["first"]
                    latency = None if first is None else (first - state["sent"]) * 1000.0
                    state["sent"] = None
                ok = response.status == GoalStatus.STATUS_SUCCEEDED and response.result.success
                rows.append((command, latency, ok, response.result.summary))
                print(f"  {command!r}: first motion {'-' if latency is None else f'{latency:.0f} ms'}, "
                      f"{'done' if ok else 'not done'}: {response.result.summary[:100]}", file=sys.stderr)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=15)
        except subprocess.TimeoutExpired:
            up.kill()
    latencies = [latency for _, latency, _, _ in rows if latency is not None]
    report = Report()
    report.section(f"{len(rows)} commands to the stack run as processes (modular-robot up, sim in real time)")
    if latencies:
        report.add("first_motion_ms_p50", round(statistics.median(latencies), 1), "command to first motion, median",
                   "ms", (f"≤ {TARGET_MS:.0f}", lambda v: v <= TARGET_MS))
        report.add("first_motion_ms_max", round(max(latencies), 1), "command to first motion, worst", "ms")
    report.add("commands_moved", len(latencies), "commands that moved the robot")
    report.add("commands_succeeded", sum(ok for _, _, ok, _ in rows), "commands that succeeded (critic-verified)")
    for command, latency, ok, summary in rows:
        if not ok:
            report.notes.append(f"{command!r} not done: {summary}")
    print_report(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
