"""Validation and sampling of joint trajectories, as a joint_trajectory_controller does it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointLimits:
    """Position and velocity limits of one joint."""

    lower: float
    upper: float
    velocity: float


class TrajectoryError(ValueError):
    """A trajectory that must not be executed; the message says why."""


@dataclass(frozen=True)
class Trajectory:
    """A validated trajectory over a subset of joints.

    Attributes:
        joint_names: Joints the trajectory commands, in column order.
        times: Strictly increasing times from start (s), shape (N,).
        positions: Waypoints (rad or m), shape (N, J).
        velocities: Waypoint velocities, shape (N, J), or None (linear interpolation).
    """

    joint_names: tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None

    @property
    def duration(self) -> float:
        """Time from start of the last waypoint (s)."""
        return float(self.times[-1])


def validate_trajectory(
    joint_names: list[str],
    times: list[float],
    positions: list[list[float]],
    velocities: list[list[float]],
    limits: dict[str, JointLimits],
    position_tolerance: float = 1e-3,
    velocity_margin: float = 1.05,
) -> Trajectory:
    """Check a trajectory against the robot's joints and limits and return it in array form.

    Velocities may be empty for every point (linear interpolation) or given for every point.

    Raises:
        TrajectoryError: naming the first problem found: unknown or repeated joints, no points,
            wrong lengths, non-finite values, times not strictly increasing, positions outside
            limits, or velocities (given or implied between points) beyond the joint's limit.
    """
    if not joint_names:
        raise TrajectoryError("trajectory names no joints")
    unknown = [name for name in joint_names if name not in limits]
    if unknown:
        raise TrajectoryError(f"unknown joints {unknown}; this controller has {sorted(limits)}")
    if len(set(joint_names)) != len(joint_names):
        raise TrajectoryError(f"joint names repeat: {joint_names}")
    if not times:
        raise TrajectoryError("trajectory has no points")
    n_joints = len(joint_names)
    for i, point in enumerate(positions):
        if len(point) != n_joints:
            raise TrajectoryError(f"point {i} has {len(point)} positions for {n_joints} joints")
    with_velocities = any(len(v) for v in velocities)
    if with_velocities and any(len(v) != n_joints for v in velocities):
        raise TrajectoryError("velocities must be given for every joint of every point, or for none")
    t = np.asarray(times, dtype=float)
    q = np.asarray(positions, dtype=float).reshape(len(times), n_joints)
    qd = np.asarray(velocities, dtype=float).reshape(len(times), n_joints) if with_velocities else None
    if not np.all(np.isfinite(t)) or not np.all(np.isfinite(q)) or (qd is not None and not np.all(np.isfinite(qd))):
        raise TrajectoryError("trajectory contains NaN or infinite values")
    if t[0] < 0.0 or np.any(np.diff(t) <= 0.0):
        raise TrajectoryError(f"time_from_start must be non-negative and strictly increasing, got {t.tolist()}")
    lower = np.array([limits[n].lower for n in joint_names])
    upper = np.array([limits[n].upper for n in joint_names])
    vmax = np.array([limits[n].velocity for n in joint_names])
    outside = (q < lower - position_tolerance) | (q > upper + position_tolerance)
    if np.any(outside):
        i, j = np.argwhere(outside)[0]
        raise TrajectoryError(
            f"point {i}: {joint_names[j]}={q[i, j]:.4f} outside limits [{lower[j]:.4f}, {upper[j]:.4f}]"
        )
    if qd is not None and np.any(np.abs(qd) > vmax * velocity_margin):
        i, j = np.argwhere(np.abs(qd) > vmax * velocity_margin)[0]
        raise TrajectoryError(
            f"point {i}: {joint_names[j]} velocity {qd[i, j]:.3f} exceeds limit {vmax[j]:.3f} rad/s"
        )
    if len(t) > 1:
        implied = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
        too_fast = implied > vmax * velocity_margin
        if np.any(too_fast):
            i, j = np.argwhere(too_fast)[0]
            raise TrajectoryError(
                f"segment {i}->{i + 1}: {joint_names[j]} needs {implied[i, j]:.3f} rad/s, limit {vmax[j]:.3f}"
            )
    return Trajectory(tuple(joint_names), t, q, qd)


def check_start_velocity(trajectory: Trajectory, start: np.ndarray, limits: dict[str, JointLimits],
                         velocity_margin: float = 1.05) -> None:
    """Check that reaching the first waypoint from the current positions respects velocity limits.

    Raises:
        TrajectoryError: if the first waypoint cannot be reached in its time_from_start.
    """
    vmax = np.array([limits[n].velocity for n in trajectory.joint_names])
    gap = np.abs(trajectory.positions[0] - start)
    t0 = trajectory.times[0]
    if t0 <= 0.0:
        if np.any(gap > 0.01):
            j = int(np.argmax(gap))
            raise TrajectoryError(
                f"first point at time 0 is {gap[j]:.3f} away from the current {trajectory.joint_names[j]}"
            )
        return
    needed = gap / t0
    if np.any(needed > vmax * velocity_margin):
        j = int(np.argmax(needed / vmax))
        raise TrajectoryError(
            f"reaching the first point needs {needed[j]:.3f} rad/s on {trajectory.joint_names[j]}, "
            f"limit {vmax[j]:.3f}"
        )


def sample(trajectory: Trajectory, start: np.ndarray, t: float,
           start_velocity: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (positions, velocities) of the trajectory at time t after its start.

    Before the first waypoint the motion goes from `start` (the positions when execution began),
    leaving it at `start_velocity` (rest when None), as a joint_trajectory_controller that replaces a
    running trajectory does; with waypoint velocities the segments are cubic Hermite splines,
    otherwise linear.
    """
    times = np.concatenate(([0.0], trajectory.times)) if trajectory.times[0] > 0.0 else trajectory.times
    points = np.vstack((start, trajectory.positions)) if trajectory.times[0] > 0.0 else trajectory.positions
    if trajectory.velocities is not None:
        leave = np.zeros_like(start) if start_velocity is None else start_velocity
        vels = (np.vstack((leave, trajectory.velocities))
                if trajectory.times[0] > 0.0 else trajectory.velocities)
    else:
        vels = None
    if t >= times[-1]:
        end_vel = vels[-1] if vels is not None else np.zeros(points.shape[1])
        return points[-1].copy(), end_vel.copy()
    if t <= times[0]:
        return points[0].copy(), vels[0].copy() if vels is not None else np.zeros(points.shape[1])
    k = int(np.searchsorted(times, t, side="right")) - 1
    dt = times[k + 1] - times[k]
    s = (t - times[k]) / dt
    q0, q1 = points[k], points[k + 1]
    if vels is None:
        return q0 + (q1 - q0) * s, (q1 - q0) / dt
    v0, v1 = vels[k] * dt, vels[k + 1] * dt
    s2, s3 = s * s, s * s * s
    h00, h10, h01, h11 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2
    q = h00 * q0 + h10 * v0 + h01 * q1 + h11 * v1
    d00, d10, d01, d11 = 6 * s2 - 6 * s, 3 * s2 - 4 * s + 1, -6 * s2 + 6 * s, 3 * s2 - 2 * s
    qd = (d00 * q0 + d10 * v0 + d01 * q1 + d11 * v1) / dt
    return q, qd

