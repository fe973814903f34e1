"""A sender of arm trajectories that leaves the graph mid-motion: its motion must not play on.

The skill server sends through the shield, the shield to the driver; either may be killed while the
arm moves. In-process, on the lockstep harness: a publisher destroyed leaves the graph at once.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS, PANDA_HOME
from modular_robot.nodes.safety_shield_node import SafetyShieldNode
from modular_robot.ros import qos
from modular_robot.ros.arm_client import RosArm
from tests.ros_helpers import SimHarness
from tests.test_safety_shield_node import GOAL, TABLETOP, _trajectory

# Wall time for a node's steady-clock check to see the sender gone (its period is 0.1 s).
NOTICE_WALL_S = 5.0


def _arm(harness: SimHarness) -> tuple[np.ndarray, float]:
    """Return the arm's positions and its fastest joint's speed."""
    msg = harness.last["joint_states"]
    index = [msg.name.index(n) for n in PANDA_ARM_JOINTS]
    return np.array(msg.position)[index], float(np.max(np.abs(np.array(msg.velocity)[index])))


def _spin_until(harness: SimHarness, condition, what: str) -> None:
    """Deliver messages and fire timers, sim time standing still, until condition() holds."""
    deadline = time.monotonic() + NOTICE_WALL_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        harness.executor.spin_once(timeout_sec=0.02)


@pytest.fixture
def harness():
    harness = SimHarness(TABLETOP)
    harness.track(JointState, "joint_states")
    yield harness
    harness.close()


def _start_motion(harness: SimHarness, sender, topic: str) -> None:
    """Send the long move towards GOAL on `topic` from the `sender` node; advance until the arm is fast."""
    publisher = sender.create_publisher(JointTrajectory, topic, qos.RELIABLE)
    harness.advance(0.3)
    midpoint = tuple((a + b) / 2 for a, b in zip(PANDA_HOME, GOAL))
    publisher.publish(_trajectory([(1.5, midpoint), (3.0, GOAL)]))
    assert harness.advance_until(lambda: _arm(harness)[1] > 0.1, 2.0), "the arm never moved"


def test_the_shield_brakes_the_arm_when_the_skill_servers_publisher_leaves(harness):
    shield = SafetyShieldNode(context=harness.context, parameter_overrides=[
        Parameter("robot", value="panda_tabletop"), Parameter("use_sim_time", value=True)])
    harness.executor.add_node(shield)
    forwarded: list[JointTrajectory] = []
    harness.probe.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", forwarded.append,
                                      qos.RELIABLE)
    skill_server = rclpy.create_node("skill_server", context=harness.context)
    harness.executor.add_node(skill_server)
    try:
        _start_motion(harness, skill_server, "safe/arm_controller/joint_trajectory")
        assert len(forwarded) == 1
        harness.executor.remove_node(skill_server)
        skill_server.destroy_node()
        _spin_until(harness, lambda: len(forwarded) == 2, "the shield's braking trajectory")
        brake = forwarded[1]
        # Braking evenly at most at the limits from about 1 rad/s takes well under a second.
        assert brake.points[-1].time_from_start.sec == 0 and list(brake.points[-1].velocities) == [0.0] * 7
        assert harness.advance_until(lambda: _arm(harness)[1] < 0.01, 1.0), "the arm did not stop"
        assert np.max(np.abs(_arm(harness)[0] - GOAL)) > 0.1, "the motion played on to its goal"
    finally:
        harness.executor.remove_node(shield)
        shield.destroy_node()


def test_the_driver_stops_the_arm_when_the_shields_publisher_leaves(harness):
    shield = rclpy.create_node("safety_shield", context=harness.context)
    harness.executor.add_node(shield)
    _start_motion(harness, shield, "arm_controller/joint_trajectory")
    harness.executor.remove_node(shield)
    shield.destroy_node()
    # The driver's check runs on the steady clock, so sim time passes until it fires: the arm must
    # come to rest well before the motion's end (3 s), away from its goal.
    assert harness.advance_until(lambda: _arm(harness)[1] < 0.01, 2.5), "the arm did not stop"
    here = _arm(harness)[0]
    assert np.max(np.abs(here - GOAL)) > 0.1, "the motion played on to its goal"
    harness.advance(1.0)
    assert np.max(np.abs(_arm(harness)[0] - here)) < 0.01, "the arm moved on after the hold"


def test_a_command_no_shield_listens_to_fails_at_once_naming_the_shield():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("arm_client", context=context)
    try:
        arm = RosArm(node, PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS, threading.Event())
        state = JointState(name=[*PANDA_ARM_JOINTS, *PANDA_FINGER_JOINTS], position=[*PANDA_HOME, 0.02, 0.02],
                           velocity=[0.0] * 9)
        state.header.stamp = node.get_clock().now().to_msg()
        arm._on_joint_states(state)
        started = time.monotonic()
        result = arm.set_gripper(0.08)
        assert not result.success
        assert result.reason == ("no safety shield is listening on /safe/gripper_controller/commands: "
                                 "the command was not sent")
        assert time.monotonic() - started < 1.0
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
