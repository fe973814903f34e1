"""`modular-robot up` runs each node as its own process; topics flow; Ctrl-C stops all within 5 s."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from modular_robot.core.stack import load_stack
from modular_robot.ros import qos
from ros_helpers import pids_with, stop_up, wait_for

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "config/stacks/sim_tabletop.yaml"


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_up_runs_sim_as_process_with_configured_rates_and_stops_cleanly(tmp_path):
    namespace = f"/up_test_{os.getpid()}"
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "modular_robot.cli", "up", str(STACK),
         "--namespace", namespace, "-p", f"sim.scenario={ROOT / 'sim/scenarios/spine_tabletop.yaml'}",
         "-p", "sim.camera_width=320", "-p", "sim.camera_height=240"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("up_probe", namespace=namespace, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    joints: list[tuple[float, float]] = []
    images: list[tuple[float, float]] = []
    # A deep queue: the rates measured are the sim's, not how fast this probe drains its queue while
    # the stack's other processes share the cores.
    node.create_subscription(JointState, "joint_states", lambda m: joints.append((time.monotonic(), _stamp(m))),
                             QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(Image, "camera/color/image_raw", lambda m: images.append((time.monotonic(), _stamp(m))),
                             qos.SENSOR_DATA)
    try:
        deadline = time.monotonic() + 60
        while (not joints or not images) and time.monotonic() < deadline and up.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert joints and images, "no messages from the sim process"
        assert pids_with(namespace), "the sim runs as its own process"
        joints.clear()
        images.clear()
        window_end = time.monotonic() + 4.0
        while time.monotonic() < window_end:
            executor.spin_once(timeout_sec=0.05)
        # Rates in sim time equal the configured ones. In wall time the sim runs in real time, neither
        # as fast as it can (lockstep) nor stalled; the whole stack needs both cores of a 2-core machine
        # (measured: the seven processes add up to 200 % of a core), so the sim applies back-pressure
        # and slows down (sim/bridge_node.py MAX_LAG_S) rather than keep exactly to the wall clock.
        rates = next(n for n in load_stack(STACK).nodes if n.executable == "sim_bridge").parameters
        sim_span = joints[-1][1] - joints[0][1]
        assert abs((len(joints) - 1) / sim_span - rates["joint_states_rate_hz"]) < 0.1 * rates["joint_states_rate_hz"]
        image_span = images[-1][1] - images[0][1]
        assert abs((len(images) - 1) / image_span - rates["camera_rate_hz"]) < 2.0
        wall_span = joints[-1][0] - joints[0][0]
        assert 0.4 < sim_span / wall_span < 1.2, f"sim ran at {sim_span / wall_span:.2f}x real time"
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        started = time.monotonic()
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=10)
        except subprocess.TimeoutExpired:
            up.kill()
        stopped = time.monotonic() - started
    log.seek(0)
    output = log.read()
    assert up.returncode == 0, output
    assert stopped < 5.0, f"stopping took {stopped:.1f} s"
    assert not pids_with(namespace), "a node process outlived `up`"
    assert f"{namespace}/sim" in output


def test_up_rejects_a_bad_stack_with_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nnodes:\n  - {name: sim, executable: warp_drive}\n")
    result = subprocess.run([sys.executable, "-m", "modular_robot.cli", "up", str(bad)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown executable 'warp_drive'" in result.stderr


def test_node_with_a_missing_scenario_exits_with_one_clear_line():
    result = subprocess.run([sys.executable, "-m", "modular_robot.sim.bridge_node", "--ros-args",
                             "-p", "scenario:=no/such/scenario.yaml"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "cannot start: no/such/scenario.yaml not found" in result.stderr
    assert "Traceback" not in result.stderr


def _sim_and_shield(tmp_path: Path, name: str, renderer: str, more_nodes: str = "") -> Path:
    """Write a stack file of the tabletop sim (small camera) and the shield, plus `more_nodes`."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(f"""
name: {name}
use_sim_time: true
nodes:
  - {{name: sim, executable: sim_bridge, parameters: {{scenario: {ROOT / 'sim/scenarios/spine_tabletop.yaml'},
     renderer: {renderer}, camera_width: 160, camera_height: 120}}}}
  - {{name: safety_shield, executable: safety_shield, parameters: {{robot: panda_tabletop}}}}
""" + more_nodes)
    return stack


def test_up_restarts_a_killed_node_keeps_the_others_and_stops_when_the_driver_dies(tmp_path):
    namespace = f"/respawn_test_{os.getpid()}"
    stack = _sim_and_shield(tmp_path, "respawn", "tiny",
                            "  - {name: perception, executable: perception, respawn_delay: 0.2}\n")
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
        up = subprocess.Popen([sys.executable, "-m", "modular_robot.cli", "up", str(stack), "--namespace", namespace],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        def pid_of(node):
            pids = [p for p in pids_with(f"__ns:={namespace}") if f"__node:={node}\0" in
                    Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
            return pids[0] if len(pids) == 1 else None

        wait_for(lambda: "world 'spine_tabletop'" in log_path.read_text(), 40, "the sim to start")
        sim, shield, perception = pid_of("sim"), pid_of("safety_shield"), pid_of("perception")
        assert sim and shield and perception
        os.kill(perception, signal.SIGKILL)
        restarted = wait_for(lambda: (pid := pid_of("perception")) and pid != perception and pid, 20,
                              "perception to be restarted")
        assert up.poll() is None, log_path.read_text()
        assert (pid_of("sim"), pid_of("safety_shield")) == (sim, shield), "the driver and shield kept running"
        output = log_path.read_text()
        assert f"node {namespace}/perception exited with code -9; restarting it in 0.2 s" in output
        assert f"node {namespace}/perception restarted (pid {restarted})" in output
        # The driver is not respawned: without it nothing can move, so the stack stops.
        os.kill(sim, signal.SIGKILL)
        assert up.wait(timeout=15) == 1
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    output = log_path.read_text()
    assert f"node {namespace}/sim exited with code -9; it is not respawned and the stack needs it" in output
    assert not pids_with(f"__ns:={namespace}"), "a node process outlived `up`"


def test_parameters_for_a_misspelt_node_are_an_error_naming_the_nodes():
    result = subprocess.run([sys.executable, "-m", "modular_robot.cli", "up", str(STACK), "-p", "simm.mode=lockstep"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown node(s) 'simm'; the stack's nodes are sim, perception" in result.stderr


@pytest.mark.parametrize("module, parameter, message", [
    ("modular_robot.sim.bridge_node", "mode:=warp", "parameter mode must be one of ('realtime', 'lockstep')"),
    ("modular_robot.nodes.skill_server_node", "robot:=warp", "unknown robot kind 'warp'"),
])
def test_a_parameter_value_out_of_its_choices_is_one_clear_line(module, parameter, message):
    extra = ["-p", f"scenario:={ROOT / 'sim/scenarios/spine_tabletop.yaml'}", "-p", "renderer:=tiny"] \
        if module.endswith("bridge_node") else []
    result = subprocess.run([sys.executable, "-m", module, "--ros-args", "-p", parameter, *extra], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"cannot start: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_parameter_of_the_wrong_type_is_one_clear_line_naming_it():
    result = subprocess.run([sys.executable, "-m", "modular_robot.nodes.safety_shield_node", "--ros-args",
                             "-p", "robot:=5"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot start: Trying to set parameter 'robot' to '5'" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_in_process_renders_from_the_thread_that_built_the_sim(tmp_path):
    # With EGL (auto picks it where it loads) the sim's camera rendered from an executor worker
    # thread crashed the process (exit 139) at the first frame.
    namespace = f"/in_process_test_{os.getpid()}"
    stack = _sim_and_shield(tmp_path, "in_process", "auto")
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "modular_robot.cli", "up", str(stack), "--in-process", "--namespace", namespace],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("in_process_probe", namespace=namespace, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    images = []
    node.create_subscription(Image, "camera/color/image_raw", images.append, qos.SENSOR_DATA)
    try:
        deadline = time.monotonic() + 60
        while len(images) < 3 and time.monotonic() < deadline and up.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert len(images) >= 3, f"exit {up.poll()}: {log_path.read_text()[-2000:]}"
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_up(up)
    assert up.returncode == 0, log_path.read_text()[-2000:]
