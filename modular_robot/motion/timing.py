"""Time-parameterisation of joint-space paths within velocity and acceleration limits.

The output is what a trajectory_msgs/JointTrajectory carries (times, positions, velocities), and
its segments are meant to be interpolated as joint_trajectory_controller and
`core.trajectory.sample` do: cubic Hermite splines between waypoints. Each segment follows a
trapezoidal profile that those cubics reproduce exactly, so the executed motion, not only the
waypoints, respects the limits.

A path starts at rest where the arm was planned to be; the arm, measured when the path is sent,
may be a little off and still moving. `lead_time` and `braking_stop` time the cubic segment from
that measured state with the path's own limits, as the safety shield checks it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

import numpy as np

from modular_robot.core.transforms import quat_slerp

# Waypoints every this many seconds inside a segment, for controllers that interpolate linearly.
SAMPLE_PERIOD = 0.1
# Periodic samples nearer a phase change than this fraction of the period are left out.
MIN_GAP_FRACTION = 0.05
# Successive IK solutions further apart than this mean the arm would swing between configurations.
MAX_CARTESIAN_JOINT_STEP = 0.3


@dataclass(frozen=True)
class TimedPath:
    """A joint-space path with times and velocities at every waypoint.

    Attributes:
        times: Time from start (s), strictly increasing from 0, shape (N,).
        positions: Waypoints, shape (N, J).
        velocities: Waypoint velocities, zero at both ends, shape (N, J).
        velocity_limits: Speed limits the path was timed within (rad/s), shape (J,).
        acceleration_limits: Acceleration limits the path was timed within (rad/s^2), shape (J,).
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    velocity_limits: np.ndarray
    acceleration_limits: np.ndarray

    @property
    def duration(self) -> float:
        """Time of the last waypoint (s)."""
        return float(self.times[-1])


class Kinematics(Protocol):
    """Forward and inverse kinematics, as `ArmKinematics` provides them."""

    def forward(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Return the end effector's (position, quaternion) at q."""
        ...

    def inverse(self, position: Sequence[float], quaternion: Sequence[float],
                seed: Sequence[float] | None = None) -> np.ndarray | None:
        """Return joint positions reaching the pose near the seed, or None."""
        ...


def time_parameterize(path: Sequence[Sequence[float]], velocity_limits: Sequence[float],
                      acceleration_limits: Sequence[float], sample_period: float = SAMPLE_PERIOD) -> TimedPath:
    """Time a joint-space path with a synchronised trapezoidal velocity profile per segment.

    Every segment between waypoints is a straight line in joint space, travelled from rest to rest
    with the time-optimal trapezoidal (or triangular) profile of its path parameter s in [0, 1]. The
    profile's speed and acceleration limits are those of the most constrained joint
    (min over j of limit_j / |delta_j|), so all joints start and stop together and none exceeds
    its limits. Waypoints are emitted at the profile's phase changes and every `sample_period`
    between them, with exact velocities: on each piece the motion is a quadratic or linear function
    of time, which the cubic Hermite interpolation of a joint_trajectory_controller reproduces exactly.

    Args:
        path: Waypoints, shape (M, J), M >= 1; repeated waypoints are dropped.
        velocity_limits: Largest speed per joint (> 0).
        acceleration_limits: Largest acceleration per joint (> 0).
        sample_period: Largest time between emitted waypoints (s).

    Raises:
        ValueError: for an empty or non-finite path, or limits that are not positive.
    """
    q = np.asarray(path, dtype=float)
    vmax = np.asarray(velocity_limits, dtype=float)
    amax = np.asarray(acceleration_limits, dtype=float)
    if q.ndim != 2 or len(q) == 0 or not np.all(np.isfinite(q)):
        raise ValueError(f"path must be a non-empty finite (M, J) array, got shape {q.shape}")
    if vmax.shape != (q.shape[1],) or amax.shape != (q.shape[1],) or np.any(vmax <= 0) or np.any(amax <= 0):
        raise ValueError("velocity and acceleration limits must be positive, one per joint")
    if sample_period <= 0:
        raise ValueError(f"sample_period must be positive, got {sample_period}")
    times, positions, velocities = [0.0], [q[0]], [np.zeros(q.shape[1])]
    for first, last in pairwise(q):
        delta = last - first
        moving = np.abs(delta) > 1e-12
        if not np.any(moving):
            continue
        s_vmax = float(np.min(vmax[moving] / np.abs(delta[moving])))
        s_amax = float(np.min(amax[moving] / np.abs(delta[moving])))
        start = times[-1]
        for t, s, s_dot in _trapezoid_samples(s_vmax, s_amax, sample_period):
            times.append(start + t)
            positions.append(first + delta * s)
            velocities.append(delta * s_dot)
    return TimedPath(np.array(times), np.array(positions), np.array(velocities), vmax, amax)


def lead_time(gap: Sequence[float], start_velocity: Sequence[float], velocity_limits: Sequence[float],
              acceleration_limits: Sequence[float]) -> float:
    """Return the shortest time in which a cubic from the measured state reaches a path's start at rest.

    The segment is the cubic Hermite from (0, v0) to (gap, 0) over T that a joint_trajectory_controller
    executes ahead of a path's first waypoint. Its acceleration is linear in time, with ends
    (6 gap - 4 v0 T) / T^2 and (-6 gap + 2 v0 T) / T^2, so (6 |gap| + 4 |v0| T) / T^2 <= a bounds
    it; its speed is at most |v0| + 1.5 |gap| / T, bounded by the speed limit where |v0| is below
    it (an arm already faster than the limit cannot be brought within it by this segment).

    Args:
        gap: Path start minus measured positions, shape (J,).
        start_velocity: Measured velocities, shape (J,).
        velocity_limits: Speed limits (rad/s), shape (J,).
        acceleration_limits: Acceleration limits (rad/s^2), shape (J,).
    """
    gap = np.abs(np.asarray(gap, dtype=float))
    v0 = np.abs(np.asarray(start_velocity, dtype=float))
    vmax = np.asarray(velocity_limits, dtype=float)
    amax = np.asarray(acceleration_limits, dtype=float)
    # The positive root of a T^2 - 4 v0 T - 6 gap = 0.
    by_acceleration = (4 * v0 + np.sqrt(16 * v0**2 + 24 * amax * gap)) / (2 * amax)
    headroom = vmax - v0
    by_speed = np.where(headroom > 0, 1.5 * gap / np.where(headroom > 0, headroom, 1.0), 0.0)
    return float(np.max(np.maximum(by_acceleration, by_speed), initial=0.0))


def braking_stop(start_velocity: Sequence[float], acceleration_limits: Sequence[float],
                 minimum: float) -> tuple[float, np.ndarray]:
    """Return (T, offset): the arm stops at measured positions + offset after T, decelerating evenly.

    The cubic Hermite from (0, v0) to (v0 T / 2, 0) over T decelerates at exactly v0 / T throughout,
    so T = max(minimum, max over joints of |v0| / a) keeps every joint within its limit.

    Args:
        start_velocity: Measured velocities, shape (J,).
        acceleration_limits: Acceleration limits (rad/s^2), shape (J,).
        minimum: Shortest stop (s).
    """
    v0 = np.asarray(start_velocity, dtype=float)
    duration = max(minimum, float(np.max(np.abs(v0) / np.asarray(acceleration_limits, dtype=float), initial=0.0)))
    return duration, v0 * duration / 2


def _trapezoid_samples(v: float, a: float, period: float) -> list[tuple[float, float, float]]:
    """Return (t, s, ds/dt) after t = 0 of the fastest rest-to-rest motion of s from 0 to 1.

    The samples include every phase change (end of acceleration, start of deceleration, end).
    """
    if v * v / a >= 1.0:
        # Too short to reach full speed: a triangular profile.
        ramp, cruise = math.sqrt(1.0 / a), 0.0
    else:
        ramp, cruise = v / a, 1.0 - v * v / a
        if cruise / v < period * MIN_GAP_FRACTION:
            # A cruise this short would put two waypoints microseconds apart, where the nanosecond
            # stamps of a JointTrajectory make a large apparent acceleration (5.4 rad/s^2 over 22 us
            # was refused by the shield). Ramp at the gentler v^2 instead: a triangle peaking at v.
            a = v * v
            ramp, cruise = v / a, 0.0
    peak = a * ramp
    cruise_time = cruise / peak
    total = 2 * ramp + cruise_time
    breaks = [ramp, ramp + cruise_time, total]
    # A periodic sample a hair from a phase change would make a segment of microseconds, which the
    # nanosecond stamps of a JointTrajectory turn into a large apparent acceleration.
    periodic = np.arange(period, total, period)
    gaps = np.abs(periodic[:, None] - np.array(breaks)[None, :])
    periodic = periodic[np.all(gaps >= period * MIN_GAP_FRACTION, axis=1)]
    times = sorted(set(np.round(np.concatenate((periodic, breaks)), 12)))
    samples = []
    for t in times:
        if t <= ramp:
            s, s_dot = 0.5 * a * t * t, a * t
        elif t <= ramp + cruise_time:
            s, s_dot = 0.5 * peak * ramp + peak * (t - ramp), peak
        else:
            left = total - t
            s, s_dot = 1.0 - 0.5 * a * left * left, a * left
        samples.append((float(t), s, s_dot))
    samples[-1] = (float(total), 1.0, 0.0)
    return samples


def interpolate_cartesian(kinematics: Kinematics, start_q: Sequence[float],
                          target_pose: tuple[Sequence[float], Sequence[float]], steps: int) -> list[np.ndarray] | None:
    """Return joint waypoints that move the end effector along a straight line to a pose.

    Positions are interpolated linearly and orientations by slerp; each IK solution is seeded with
    the previous one, so the arm stays in one configuration.

    Args:
        kinematics: The arm's kinematics.
        start_q: Joint positions at the start of the line.
        target_pose: (position, quaternion) at the end of the line, in the kinematics' base frame.
        steps: Number of pieces the line is cut into (>= 1).

    Returns:
        steps + 1 joint positions from start_q to the target, or None when a point of the line is
        unreachable or the arm would jump between configurations.
    """
    start_p, start_o = kinematics.forward(start_q)
    target_p, target_o = np.asarray(target_pose[0], dtype=float), np.asarray(target_pose[1], dtype=float)
    path = [np.asarray(start_q, dtype=float)]
    for k in range(1, max(steps, 1) + 1):
        fraction = k / max(steps, 1)
        q = kinematics.inverse(start_p + (target_p - start_p) * fraction, quat_slerp(start_o, target_o, fraction),
                               seed=path[-1])
        if q is None or np.max(np.abs(q - path[-1])) > MAX_CARTESIAN_JOINT_STEP:
            return None
        path.append(q)
    return path
