"""The gripper's holding rule and the finger openings a camera frame saw."""

import math

import pytest

from modular_robot.core.gripper import OpeningHistory, holding_bounds, holds

FINGERS = ("finger_1", "finger_2")
MS = 1_000_000


def test_fingers_closed_on_an_object_hold_it_open_or_met_ones_do_not():
    assert holds(0.041, 0.04) and not holds(0.06, 0.04) and not holds(0.001, 0.04)
    # An irregular object may be wider across the fingers than its box: only an open gripper lets go.
    assert holds(0.06, 0.04, irregular=True) and not holds(0.079, 0.04, irregular=True)
    assert holding_bounds(0.04) == pytest.approx((0.02, 0.05))


def test_the_opening_at_a_stamp_is_the_newest_sampled_at_or_before_it():
    history = OpeningHistory(FINGERS)
    for stamp_ms, each in ((0, 0.04), (10, 0.03), (20, 0.0205)):
        history.add(stamp_ms * MS, ["arm_1", *FINGERS], [0.3, each, each])
    assert history.at(15 * MS) == pytest.approx(0.06)
    assert history.at(25 * MS) == pytest.approx(0.041)
    assert history.at(-1) is None
    assert history.closed_by(20 * MS, 1000 * MS) == pytest.approx(0.08 - 0.041)
    assert history.closed_by(20 * MS, 5 * MS) == pytest.approx(0.0)


@pytest.mark.parametrize("names, positions", [
    (["finger_1"], [0.04]),                       # a finger missing
    (["finger_1", "finger_2"], [0.04]),           # lengths differ
    (["finger_1", "finger_2"], [math.nan, 0.04]),  # not finite
])
def test_a_sample_without_a_usable_opening_is_ignored(names, positions):
    history = OpeningHistory(FINGERS)
    history.add(0, names, positions)
    assert history.at(0) is None and history.closed_by(0, 1000 * MS) == 0.0


def test_a_clock_that_goes_back_starts_a_new_history_and_old_samples_expire():
    history = OpeningHistory(FINGERS, span_ns=100 * MS)
    history.add(500 * MS, FINGERS, [0.04, 0.04])
    history.add(10 * MS, FINGERS, [0.01, 0.01])
    assert history.at(600 * MS) == pytest.approx(0.02)
    history.add(300 * MS, FINGERS, [0.02, 0.02])
    assert history.at(250 * MS) is None, "the sample at 10 ms is older than the span"
