"""TfListener.wait_for_transform: a frame waits for the transforms at its stamp instead of dropping."""

import math
import threading
import time

import pytest
import rclpy
from geometry_msgs.msg import TransformStamped

from modular_robot.ros.conversions import ns_to_stamp
from modular_robot.ros.tf_listener import TfListener


@pytest.fixture
def listener():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("tf_listener_test", context=context)
    try:
        yield TfListener(node)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def _odom_to_base(stamp_s: float, x: float) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
    msg.header.stamp = ns_to_stamp(round(stamp_s * 1e9))
    msg.transform.translation.x = x
    msg.transform.rotation.w = 1.0
    return msg


def test_a_wait_ends_when_the_transform_at_its_stamp_arrives(listener):
    listener.add_transforms([_odom_to_base(0.0, 0.0)], static=False)
    assert not listener.can_transform("odom", "base_link", int(0.1e9))
    later = threading.Timer(0.05, listener.add_transforms, ([_odom_to_base(0.1, 0.4)],), {"static": False})
    started = time.monotonic()
    later.start()
    try:
        assert listener.wait_for_transform("odom", "base_link", int(0.1e9), timeout_s=5.0)
    finally:
        later.join()
    assert time.monotonic() - started < 2.0
    assert listener.lookup("odom", "base_link", int(0.1e9)).translation[0] == pytest.approx(0.4)


def test_a_wait_times_out_when_only_older_transforms_arrive(listener):
    listener.add_transforms([_odom_to_base(0.0, 0.0)], static=False)
    older = threading.Timer(0.02, listener.add_transforms, ([_odom_to_base(0.05, 0.2)],), {"static": False})
    started = time.monotonic()
    older.start()
    try:
        assert not listener.wait_for_transform("odom", "base_link", int(0.1e9), timeout_s=0.2)
    finally:
        older.join()
    assert time.monotonic() - started >= 0.2
    assert listener.wait_for_transform("odom", "base_link", int(0.05e9), timeout_s=0.0)


def _edge(parent: str, child: str, stamp_ns: int, qw: float = 1.0, x: float = 0.0) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.transform.translation.x = x
    msg.transform.rotation.w = qw
    return msg


def test_bogus_edges_are_refused_at_the_door_and_the_camera_stays_in_the_map(listener):
    """One /tf edge between two robot frames once blinded perception until a restart."""
    now_ns = listener._node.get_clock().now().nanoseconds
    assert listener.add_transforms([_edge("map", "panda_link0", 0),
                                    _edge("panda_hand", "camera_link", 0, x=0.1)], static=True) == 2
    listener.add_transforms([_edge("panda_link0", "panda_hand", now_ns, x=0.5)], static=False)
    before = listener.lookup("map", "camera_link", now_ns)
    bogus = [
        _edge("panda_link0", "camera_link", now_ns),        # re-parents a static frame
        _edge("map", "panda_hand", now_ns),                 # re-parents a live dynamic frame
        _edge("camera_link", "panda_link0", now_ns),        # closes a loop
        _edge("panda_link0", "panda_hand", now_ns + 10**9 * 3600),  # an hour ahead of the clock
        _edge("panda_link0", "panda_hand", now_ns, qw=0.5),  # not a unit quaternion
        _edge("panda_link0", "panda_hand", now_ns, qw=math.nan),
        _edge("panda_link0", "panda_hand", now_ns, x=math.inf),
        _edge("", "panda_hand", now_ns),
        _edge("panda_hand", "panda_hand", now_ns),
    ]
    assert listener.add_transforms(bogus, static=False) == 0
    assert listener.rejected == len(bogus)
    assert listener.add_transforms([_edge("panda_link0", "camera_link", now_ns)], static=True) == 0
    assert listener.lookup("map", "camera_link", now_ns).allclose(before)
    assert listener.tree.parent("panda_hand") == "panda_link0"
