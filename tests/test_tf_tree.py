"""Tests of the TF buffer: chained lookups, time interpolation and error cases."""

import math

import numpy as np
import pytest

from modular_robot.core.tf_tree import (
    ConnectivityError,
    ExtrapolationError,
    FrameNotFoundError,
    FutureExtrapolationError,
    PastExtrapolationError,
    TfError,
    TfTree,
)
from modular_robot.core.transforms import Transform, quat_from_yaw

S = 1_000_000_000  # nanoseconds per second


def _robot_tree() -> TfTree:
    """Build map -> odom -> base_link -> camera_link, plus map -> table.

    map -> odom: static, x + 1, yaw 90 degrees.
    odom -> base_link: dynamic, x = 0 at t = 1 s and x = 2 at t = 3 s, no rotation.
    base_link -> camera_link: static, z + 1.
    map -> table: static, y + 2.
    """
    tree = TfTree()
    tree.set_transform("map", "odom", 0, Transform.from_xyz_rpy(1, 0, 0, yaw=math.pi / 2), True)
    tree.set_transform("odom", "base_link", 1 * S, Transform.from_xyz_rpy(0, 0, 0))
    tree.set_transform("odom", "base_link", 3 * S, Transform.from_xyz_rpy(2, 0, 0))
    tree.set_transform("base_link", "camera_link", 0, Transform.from_xyz_rpy(0, 0, 1), True)
    tree.set_transform("map", "table", 0, Transform.from_xyz_rpy(0, 2, 0), True)
    return tree


def test_chained_lookup_across_static_and_dynamic_edges_matches_hand_computation():
    tree = _robot_tree()
    t = tree.lookup("table", "camera_link", 2 * S)
    # At t = 2 s base_link is at odom x = 1. Camera origin: base (0,0,1) -> odom (1,0,1)
    # -> map: yaw 90 turns (1,0,1) into (0,1,1), plus (1,0,0) = (1,1,1) -> table: minus (0,2,0).
    np.testing.assert_allclose(t.translation, [1.0, -1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(t.rotation, quat_from_yaw(math.pi / 2), atol=1e-12)
    # The camera's x axis tip: odom (2,0,1) -> map (1,2,1) -> table (1,0,1).
    np.testing.assert_allclose(t.apply([1.0, 0.0, 0.0]), [1.0, 0.0, 1.0], atol=1e-12)


def test_reverse_lookup_is_the_inverse():
    tree = _robot_tree()
    forward = tree.lookup("table", "camera_link", 2 * S)
    backward = tree.lookup("camera_link", "table", 2 * S)
    assert (forward * backward).allclose(Transform.identity())


def test_lookup_parent_from_child_returns_stored_sample():
    tree = TfTree()
    stored = Transform.from_xyz_rpy(0.3, -0.2, 0.1, 0.5, 0.4, 0.3)
    tree.set_transform("odom", "base_link", 5 * S, stored)
    assert tree.lookup("odom", "base_link", 5 * S).allclose(stored)
    assert tree.lookup("base_link", "odom", 5 * S).allclose(stored.inverse())


def test_midpoint_between_two_stamped_transforms_is_interpolated():
    tree = TfTree()
    tree.set_transform("odom", "base_link", 10 * S, Transform.from_xyz_rpy(0, 0, 0, yaw=0.0))
    tree.set_transform("odom", "base_link", 12 * S, Transform.from_xyz_rpy(4, -2, 0, yaw=1.0))
    mid = tree.lookup("odom", "base_link", 11 * S)
    np.testing.assert_allclose(mid.translation, [2.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(mid.rotation, quat_from_yaw(0.5), atol=1e-12)
    quarter = tree.lookup("odom", "base_link", 10 * S + S // 2)
    np.testing.assert_allclose(quarter.translation, [1.0, -0.5, 0.0], atol=1e-12)


def test_latest_common_time_is_the_oldest_newest_stamp_on_the_path():
    tree = TfTree()
    tree.set_transform("map", "odom", 1 * S, Transform.from_xyz_rpy(0, 0, 0))
    tree.set_transform("map", "odom", 5 * S, Transform.from_xyz_rpy(4, 0, 0))
    tree.set_transform("odom", "base_link", 1 * S, Transform.from_xyz_rpy(0, 0, 0))
    tree.set_transform("odom", "base_link", 3 * S, Transform.from_xyz_rpy(0, 2, 0))
    tree.set_transform("base_link", "camera", 0, Transform.from_xyz_rpy(0, 0, 1), static=True)
    assert tree.latest_common_time("map", "camera") == 3 * S
    # map -> odom is interpolated at 3 s (x = 2), odom -> base_link is at its newest (y = 2).
    np.testing.assert_allclose(tree.lookup("map", "camera").translation, [2.0, 2.0, 1.0])
    # Only the edges between the two frames count: base_link -> camera is static.
    assert tree.latest_common_time("base_link", "camera") is None
    assert tree.latest_common_time("map", "odom") == 5 * S


def test_static_edges_hold_at_every_time():
    tree = TfTree()
    tree.set_transform("base_link", "camera", 7 * S, Transform.from_xyz_rpy(0, 0, 1), static=True)
    for stamp in (0, 7 * S, 10_000 * S, None):
        np.testing.assert_allclose(tree.lookup("base_link", "camera", stamp).translation, [0, 0, 1])


def test_extrapolation_into_future_and_past_raises_lookup_errors():
    tree = _robot_tree()
    with pytest.raises(FutureExtrapolationError, match="future") as future:
        tree.lookup("map", "camera_link", 4 * S)
    assert isinstance(future.value, LookupError)
    assert (future.value.parent, future.value.child) == ("odom", "base_link")
    assert future.value.newest_ns == 3 * S
    with pytest.raises(PastExtrapolationError, match="past") as past:
        tree.lookup("map", "camera_link", 0)
    assert "'odom' -> 'base_link'" in str(past.value)
    assert past.value.oldest_ns == 1 * S


def test_extrapolation_tolerance_uses_nearest_sample():
    tree = TfTree(extrapolation_tolerance_s=0.05)
    tree.set_transform("odom", "base_link", 1 * S, Transform.from_xyz_rpy(1, 0, 0))
    tree.set_transform("odom", "base_link", 2 * S, Transform.from_xyz_rpy(2, 0, 0))
    late = tree.lookup("odom", "base_link", 2 * S + 40_000_000)
    np.testing.assert_allclose(late.translation, [2.0, 0.0, 0.0])
    early = tree.lookup("odom", "base_link", 1 * S - 40_000_000)
    np.testing.assert_allclose(early.translation, [1.0, 0.0, 0.0])
    with pytest.raises(FutureExtrapolationError):
        tree.lookup("odom", "base_link", 2 * S + 60_000_000)
    strict = TfTree(extrapolation_tolerance_s=0.0)
    strict.set_transform("odom", "base_link", 1 * S, Transform())
    assert strict.can_transform("odom", "base_link", 1 * S)
    assert not strict.can_transform("odom", "base_link", 1 * S + 1)


def test_unknown_and_disconnected_frames_raise_with_names():
    tree = _robot_tree()
    tree.set_transform("world", "other_robot", 0, Transform(), static=True)
    with pytest.raises(FrameNotFoundError, match="'gripper'"):
        tree.lookup("map", "gripper")
    with pytest.raises(FrameNotFoundError):
        tree.lookup("gripper", "gripper")
    with pytest.raises(ConnectivityError, match="'other_robot'.*'world'"):
        tree.lookup("map", "other_robot")
    for error in (FrameNotFoundError, ConnectivityError, ExtrapolationError):
        assert issubclass(error, TfError) and issubclass(error, LookupError)
    assert not tree.can_transform("map", "other_robot")


def test_lookup_of_a_frame_in_itself_is_identity():
    tree = _robot_tree()
    assert tree.lookup("base_link", "base_link", 123).allclose(Transform.identity())


def test_a_later_parent_takes_over_a_dynamic_frame_whose_edge_went_silent():
    tree = _robot_tree()
    tree.set_transform("table", "base_link", 5 * S, Transform.from_xyz_rpy(0, 0, 5))
    assert tree.parent("base_link") == "table"
    # The old odom history is gone: base_link now hangs off table at every time near 5 s.
    np.testing.assert_allclose(tree.lookup("table", "base_link", 5 * S).translation, [0, 0, 5])
    np.testing.assert_allclose(tree.lookup("map", "camera_link", 5 * S).translation, [0, 2, 6])
    with pytest.raises(PastExtrapolationError):
        tree.lookup("table", "base_link", 3 * S)


def test_one_bogus_edge_cannot_reparent_a_live_or_static_frame():
    """One /tf edge between two robot frames once cut the camera from the map until a restart."""
    tree = _robot_tree()
    before = tree.lookup("map", "camera_link", 3 * S)
    with pytest.raises(ValueError, match="live dynamic child of 'odom'"):
        tree.set_transform("table", "base_link", 3 * S + S // 2, Transform.from_xyz_rpy(0, 0, 5))
    with pytest.raises(ValueError, match="static child of 'base_link'"):
        tree.set_transform("table", "camera_link", 3 * S, Transform())
    with pytest.raises(ValueError, match="static child of 'base_link'"):
        tree.set_transform("base_link", "camera_link", 3 * S, Transform())
    with pytest.raises(ValueError, match="static child of 'base_link'"):
        tree.set_transform("table", "camera_link", 100 * S, Transform(), static=True)
    with pytest.raises(ValueError, match="live dynamic child"):
        tree.set_transform("table", "base_link", 3 * S, Transform(), static=True)
    assert tree.lookup("map", "camera_link", 3 * S).allclose(before)
    # A static publisher may still update its own transform (a recalibrated mount).
    tree.set_transform("base_link", "camera_link", 4 * S, Transform.from_xyz_rpy(0, 0, 2), True)
    np.testing.assert_allclose(tree.lookup("base_link", "camera_link", 3 * S).translation, [0, 0, 2])


def test_loops_and_self_parents_are_refused():
    tree = _robot_tree()
    with pytest.raises(ValueError, match="loop"):
        tree.set_transform("camera_link", "odom", 0, Transform())
    with pytest.raises(ValueError, match="own parent"):
        tree.set_transform("odom", "odom", 0, Transform())
    with pytest.raises(ValueError, match="non-empty"):
        tree.set_transform("", "odom", 0, Transform())
    assert tree.parent("odom") == "map"


def test_history_is_bounded_by_cache_duration_and_stale_samples_are_dropped():
    tree = TfTree(cache_duration_s=10.0)
    for second in range(0, 31):
        sample = Transform.from_xyz_rpy(second, 0, 0)
        assert tree.set_transform("odom", "base_link", second * S, sample)
    np.testing.assert_allclose(tree.lookup("odom", "base_link", 25 * S).translation, [25, 0, 0])
    with pytest.raises(PastExtrapolationError):
        tree.lookup("odom", "base_link", 15 * S)
    assert not tree.set_transform("odom", "base_link", 5 * S, Transform())


def test_out_of_order_and_repeated_stamps():
    tree = TfTree()
    tree.set_transform("odom", "base_link", 3 * S, Transform.from_xyz_rpy(3, 0, 0))
    tree.set_transform("odom", "base_link", 1 * S, Transform.from_xyz_rpy(1, 0, 0))
    tree.set_transform("odom", "base_link", 2 * S, Transform.from_xyz_rpy(99, 0, 0))
    tree.set_transform("odom", "base_link", 2 * S, Transform.from_xyz_rpy(2, 0, 0))
    between = tree.lookup("odom", "base_link", 1_500_000_000)
    np.testing.assert_allclose(between.translation, [1.5, 0, 0])
    np.testing.assert_allclose(tree.lookup("odom", "base_link", 2 * S).translation, [2, 0, 0])


def test_frames_parent_and_leading_slash():
    tree = _robot_tree()
    assert tree.frames() == ["base_link", "camera_link", "map", "odom", "table"]
    assert tree.parent("map") is None
    assert tree.parent("/camera_link") == "base_link"
    tree.set_transform("/base_link", "/arm", 0, Transform(), static=True)
    assert tree.can_transform("arm", "/base_link", 2 * S)


def test_clear_forgets_dynamic_edges_but_keeps_static_ones():
    tree = _robot_tree()
    tree.clear()
    assert tree.can_transform("map", "table", 0)
    assert not tree.can_transform("map", "camera_link", 2 * S)
    assert "odom" in tree.frames() and tree.parent("base_link") is None
    # After a simulator reset new, older-stamped data must be accepted again.
    assert tree.set_transform("odom", "base_link", 0, Transform())
    tree.clear(keep_static=False)
    assert tree.frames() == []


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError, match="cache_duration_s"):
        TfTree(cache_duration_s=0.0)
    with pytest.raises(ValueError, match="extrapolation_tolerance_s"):
        TfTree(extrapolation_tolerance_s=-1.0)
    with pytest.raises(ValueError, match="reparent_after_s"):
        TfTree(reparent_after_s=math.nan)
    with pytest.raises(TypeError, match="Transform"):
        TfTree().set_transform("a", "b", 0, np.eye(4))
