"""Stamp synchronisation of RGB-D streams, and throttling by stamps."""

import pytest

from modular_robot.core.sync import StampSync, StampThrottle


def test_equal_stamps_match_once_all_streams_arrived():
    sync = StampSync(("rgb", "depth", "info"), slop_ns=0)
    assert sync.add("rgb", 100, "c1") is None
    assert sync.add("depth", 100, "d1") is None
    assert sync.add("info", 100, "i1") == {"rgb": "c1", "depth": "d1", "info": "i1"}
    # Consumed: the same messages never match twice.
    assert sync.add("info", 100, "i1b") is None


def test_nearest_within_slop_is_taken_and_older_ones_dropped():
    sync = StampSync(("rgb", "depth"), slop_ns=10)
    sync.add("depth", 95, "d95")
    sync.add("depth", 104, "d104")
    assert sync.add("rgb", 100, "c100") == {"rgb": "c100", "depth": "d104"}
    assert sync.add("rgb", 200, "c200") is None
    assert sync.add("depth", 230, "d230") is None


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        StampSync(("rgb",), slop_ns=0)
    with pytest.raises(ValueError):
        StampSync(("a", "b"), slop_ns=-1)


def test_stamp_throttle_takes_one_stamp_a_period_and_a_reset_at_once():
    throttle = StampThrottle(period_ns=500)
    taken = []
    for stamp in (100, 300, 599, 600, 900, 1100, 200):
        if throttle.due(stamp):
            throttle.take(stamp)
            taken.append(stamp)
    assert taken == [100, 600, 1100, 200]
