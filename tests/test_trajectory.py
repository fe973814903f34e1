"""Trajectory validation and sampling, as the simulated joint_trajectory_controller applies them."""

import math

import numpy as np
import pytest

from modular_robot.core.trajectory import (
    JointLimits,
    TrajectoryError,
    check_start_velocity,
    sample,
    validate_trajectory,
)

LIMITS = {"a": JointLimits(-1.0, 1.0, 2.0), "b": JointLimits(-2.0, 2.0, 1.0)}


def test_valid_trajectory_becomes_arrays():
    trajectory = validate_trajectory(["a", "b"], [1.0, 2.0], [[0.5, 0.5], [0.0, 1.0]], [[], []], LIMITS)
    assert trajectory.joint_names == ("a", "b")
    assert trajectory.positions.shape == (2, 2)
    assert trajectory.velocities is None
    assert trajectory.duration == 2.0


@pytest.mark.parametrize("names, times, positions, velocities, message", [
    ([], [1.0], [[]], [[]], "names no joints"),
    (["a", "c"], [1.0], [[0, 0]], [[]], "unknown joints"),
    (["a", "a"], [1.0], [[0, 0]], [[]], "repeat"),
    (["a"], [], [], [], "no points"),
    (["a", "b"], [1.0], [[0.0]], [[]], "has 1 positions for 2 joints"),
    (["a"], [1.0], [[math.nan]], [[]], "NaN"),
    (["a"], [1.0, 1.0], [[0.0], [0.1]], [[], []], "strictly increasing"),
    (["a"], [-1.0], [[0.0]], [[]], "non-negative"),
    (["a"], [1.0], [[1.5]], [[]], "outside limits"),
    (["a"], [1.0], [[0.5]], [[9.0]], "exceeds limit"),
    (["a"], [1.0, 1.1], [[0.0], [0.9]], [[], []], "needs 9.000 rad/s"),
    (["a"], [1.0, 2.0], [[0.0], [0.1]], [[0.0], []], "for every joint of every point"),
])
def test_invalid_trajectories_are_refused_with_reason(names, times, positions, velocities, message):
    with pytest.raises(TrajectoryError, match=message):
        validate_trajectory(names, times, positions, velocities, LIMITS)


def test_reaching_the_first_point_must_respect_velocity_limits():
    trajectory = validate_trajectory(["a"], [0.1], [[0.8]], [[]], LIMITS)
    with pytest.raises(TrajectoryError, match="reaching the first point"):
        check_start_velocity(trajectory, np.array([0.0]), LIMITS)
    check_start_velocity(trajectory, np.array([0.7]), LIMITS)
    at_zero = validate_trajectory(["a"], [0.0, 1.0], [[0.5], [0.6]], [[], []], LIMITS)
    with pytest.raises(TrajectoryError, match="time 0"):
        check_start_velocity(at_zero, np.array([0.0]), LIMITS)


def test_linear_sampling_starts_from_current_positions():
    trajectory = validate_trajectory(["a"], [1.0, 3.0], [[0.4], [0.0]], [[], []], LIMITS)
    start = np.array([0.0])
    assert sample(trajectory, start, 0.5)[0] == pytest.approx([0.2])
    assert sample(trajectory, start, 2.0)[0] == pytest.approx([0.2])
    assert sample(trajectory, start, 2.0)[1] == pytest.approx([-0.2])
    position, velocity = sample(trajectory, start, 10.0)
    assert position == pytest.approx([0.0]) and velocity == pytest.approx([0.0])


def test_hermite_sampling_matches_waypoint_positions_and_velocities():
    trajectory = validate_trajectory(["a"], [1.0, 2.0], [[0.2], [0.6]], [[0.5], [0.0]], LIMITS)
    start = np.array([0.0])
    for t, q, qd in ((1.0, 0.2, 0.5), (2.0, 0.6, 0.0)):
        position, velocity = sample(trajectory, start, t - 1e-9)
        assert position == pytest.approx([q], abs=1e-6)
        assert velocity == pytest.approx([qd], abs=1e-5)
    # A cubic through these ends overshoots neither end on this segment.
    inside = [sample(trajectory, start, t)[0][0] for t in np.linspace(1.0, 2.0, 21)]
    assert min(inside) >= 0.2 - 1e-9 and max(inside) <= 0.6 + 1e-9


def test_hermite_sampling_leaves_a_moving_start_at_its_velocity():
    # A trajectory that replaces a running one: the first segment leaves the measured state moving,
    # the curve the safety shield checks, not a jump to rest.
    trajectory = validate_trajectory(["a"], [0.5, 1.5], [[0.3], [0.5]], [[0.2], [0.0]], LIMITS)
    start, moving = np.array([0.0]), np.array([0.4])
    assert sample(trajectory, start, 0.0, moving)[1] == pytest.approx([0.4])
    assert sample(trajectory, start, 1e-6, moving)[1] == pytest.approx([0.4], abs=1e-4)
    assert sample(trajectory, start, 1e-6)[1] == pytest.approx([0.0], abs=1e-4)
    position, velocity = sample(trajectory, start, 0.5 - 1e-9, moving)
    assert position == pytest.approx([0.3], abs=1e-6) and velocity == pytest.approx([0.2], abs=1e-5)
