"""The skills' arm client: robot time from joint_states, robust to stamps from the future and resets; refusals only
from the shield."""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS, PANDA_HOME
from modular_robot.ros import qos
from modular_robot.ros.arm_client import RosArm
from modular_robot.skills.interfaces import MotionResult

_NS = 1_000_000_000
_POISON_NS = (2**31 - 1) * _NS


class _Client:
    """A RosArm on a bare node whose clock is the system clock; joint_states are fed by hand."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("arm_client_test", context=self.context)
        self.cancel = threading.Event()
        self.arm = RosArm(self.node, PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS, self.cancel)
        self.now_ns = self.node.get_clock().now().nanoseconds

    def feed(self, stamp_ns: int) -> None:
        """Deliver one joint_states at home, stamped stamp_ns."""
        msg = JointState(name=[*PANDA_ARM_JOINTS, *PANDA_FINGER_JOINTS], position=[*PANDA_HOME, 0.02, 0.02],
                         velocity=[0.0] * 9)
        msg.header.stamp = Time(sec=stamp_ns // _NS, nanosec=stamp_ns % _NS)
        self.arm._on_joint_states(msg)

    def pause_in_background(self, seconds: float) -> tuple[threading.Thread, list[MotionResult]]:
        results: list[MotionResult] = []
        thread = threading.Thread(target=lambda: results.append(self.arm.pause(seconds)), daemon=True)
        thread.start()
        return thread, results

    def close(self) -> None:
        self.cancel.set()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def client():
    made = _Client()
    yield made
    made.close()


def _finish(thread: threading.Thread, client: _Client, steps_ns: list[int]) -> None:
    """Feed stamps until the waiting thread ends, or the stamps run out (then wait 5 s at most)."""
    for stamp_ns in steps_ns:
        if not thread.is_alive():
            return
        client.feed(stamp_ns)
        thread.join(timeout=0.05)
    thread.join(timeout=5.0)


def test_a_stamp_from_the_future_is_ignored_and_later_waits_end(client):
    start = client.now_ns - 10 * _NS
    client.feed(start)
    client.feed(_POISON_NS)
    thread, results = client.pause_in_background(0.3)
    _finish(thread, client, [start + k * _NS // 10 for k in range(1, 8)])
    assert not thread.is_alive(), "the pause measured from the poisoned stamp never ends"
    assert results == [MotionResult(True)]


def test_robot_time_going_back_fails_the_motion_in_progress_and_is_then_followed(client):
    start = client.now_ns - 100 * _NS
    client.feed(start)
    thread, results = client.pause_in_background(1.0)
    reset = start - 90 * _NS
    _finish(thread, client, [start + _NS // 10, reset, reset + _NS // 10, reset + 2 * _NS // 10])
    assert not thread.is_alive(), "the pause waits for robot time that went away"
    assert results == [MotionResult(False, "robot time went back (a simulation reset?) during the motion")]
    # After the reset, robot time is the new one: the next pause ends 0.3 s of it later.
    thread, results = client.pause_in_background(0.3)
    _finish(thread, client, [reset + k * _NS // 10 for k in range(3, 9)])
    assert results == [MotionResult(True)]


def test_small_steps_back_are_jitter_not_a_reset(client):
    start = client.now_ns - 10 * _NS
    client.feed(start)
    thread, results = client.pause_in_background(0.3)
    _finish(thread, client, [start + _NS // 10, start + _NS // 20, start + 2 * _NS // 10, start + 4 * _NS // 10])
    assert results == [MotionResult(True)]


def test_only_the_shields_own_refusal_ends_a_motion(client):
    """A refusal any node could publish once failed the skill, though the shield never refused it."""
    shield = rclpy.create_node("safety_shield", context=client.context)
    impostor = rclpy.create_node("impostor", context=client.context)
    executor = SingleThreadedExecutor(context=client.context)
    for node in (client.node, shield, impostor):
        executor.add_node(node)
    shield_pub = shield.create_publisher(String, "safety/refusals", qos.RELIABLE)
    forged_pub = impostor.create_publisher(String, "safety/refusals", qos.RELIABLE)

    def spin_until(condition, wall_s: float = 5.0) -> bool:
        deadline = time.monotonic() + wall_s
        while not condition() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.01)
        return condition()

    try:
        assert spin_until(lambda: shield_pub.get_subscription_count() and forged_pub.get_subscription_count())
        client.feed(client.now_ns - 10 * _NS)
        thread, results = client.pause_in_background(5.0)
        forged_pub.publish(String(data="refused: forged"))
        shield_pub.publish(String(data="refused: segment 0->1 too fast"))
        assert spin_until(lambda: not thread.is_alive())
        assert results == [MotionResult(False, "the safety shield refused: segment 0->1 too fast")]
        assert spin_until(lambda: client.arm.refusal_subscription.rejected == 1)
    finally:
        executor.shutdown()
        shield.destroy_node()
        impostor.destroy_node()
