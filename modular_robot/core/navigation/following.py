"""Driving a planned path: pure pursuit for a differential drive, and the obstacle stop.

- ``PathFollower``: pure pursuit with turn-in-place, slow-down at the goal, final heading
  alignment and velocity ramps within the acceleration limits.
- ``path_blockage``: whether the footprint, swept along the next stretch of path, covers an
  occupied cell of the latest grid (unknown cells do not block), so that the follower stops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from modular_robot.core.navigation.geometry import (
    STOP_MARGIN_M,
    Footprint,
    OccupancyMap,
    Point,
    Pose,
    inside_footprint,
    path_length,
    sample_path,
    wrap_angle,
)

# Follower defaults.
POSITION_TOLERANCE_M = 0.05
YAW_TOLERANCE_RAD = 0.05
LOOKAHEAD_M = 0.5
# Turn in place above this heading error to the lookahead point, until it is below TURN_DONE_RAD.
TURN_IN_PLACE_RAD = 0.6
TURN_DONE_RAD = 0.15
# Speed gains near the goal (1/s): the commanded speed is at most gain x remaining distance or angle.
GOAL_SPEED_GAIN = 1.0
TURN_SPEED_GAIN = 1.5
# Slowest commands that still move the base against friction and latency.
MIN_LINEAR_MPS = 0.03
MIN_ANGULAR_RADPS = 0.1
# Within this distance of the goal, a goal behind the base is reached by backing up (m).
REVERSE_MAX_M = 0.25
# How far segments ahead of the current one are searched for the robot's projection (m).
PROJECTION_WINDOW_M = 1.0
# How much path ahead the obstacle stop checks (m).
STOP_LOOKAHEAD_M = 0.8


@dataclass(frozen=True)
class DriveLimits:
    """Speed and acceleration limits a follower keeps to.

    Attributes:
        linear: Largest forward speed (m/s).
        angular: Largest turn rate (rad/s).
        linear_accel: Largest change of forward speed (m/s^2).
        angular_accel: Largest change of turn rate (rad/s^2).
    """

    linear: float
    angular: float
    linear_accel: float
    angular_accel: float


@dataclass(frozen=True)
class DriveCommand:
    """One velocity command of a follower.

    Attributes:
        linear: Forward speed (m/s).
        angular: Turn rate (rad/s).
        done: Whether the goal is reached (the command is then zero).
        phase: What the follower does: "turn", "track", "reverse", "align" or "done".
    """

    linear: float
    angular: float
    done: bool = False
    phase: str = "track"


@dataclass(frozen=True)
class Blockage:
    """An obstacle on the path ahead.

    Attributes:
        distance: Distance along the path to the first pose whose footprint covers an occupied cell (m).
        points: World ``(x, y)`` of the occupied cells that the footprint would cover.
    """

    distance: float
    points: NDArray[np.float64] = field(repr=False)


def path_blockage(grid: OccupancyMap, pose: Pose, path_ahead: Sequence[Point], footprint: Footprint,
                  lookahead: float = STOP_LOOKAHEAD_M, margin: float = STOP_MARGIN_M) -> Blockage | None:
    """Check the next stretch of path against the occupied cells of the latest grid.

    The footprint, grown by ``margin``, is swept along the path (heading along each segment) for
    ``lookahead`` metres. Unknown cells never block. Cells the footprint covers already at the
    current pose are left out: they are not ahead, and stopping for them would trap the base. Less
    than a cell of path left is no stretch to check: what remains is turning in place.

    Args:
        grid: The latest occupancy grid (not inflated).
        pose: The base's current pose.
        path_ahead: The rest of the path, starting at the base's position.
        footprint: The base's footprint.
        lookahead: How much of the path is checked (m).
        margin: Clearance added around the footprint (m).

    Returns:
        The first blockage along the path, or None when the stretch is clear.
    """
    points = [tuple(p) for p in path_ahead]
    # A waypoint the base has all but reached says nothing about where it heads next.
    while len(points) > 2 and math.dist(points[0], points[1]) < grid.resolution:
        del points[1]
    if path_length(points) < grid.resolution:
        return None
    samples = sample_path(points, grid.resolution)
    samples = samples[samples[:, 2] <= lookahead]
    occupied_rows, occupied_cols = np.nonzero(grid.occupied())
    if len(occupied_rows) == 0 or len(samples) == 0:
        return None
    centres = np.stack([grid.origin[0] + (occupied_cols + 0.5) * grid.resolution,
                        grid.origin[1] + (occupied_rows + 0.5) * grid.resolution], axis=1)
    reach = lookahead + footprint.radius + margin + grid.resolution
    centres = centres[np.hypot(centres[:, 0] - pose[0], centres[:, 1] - pose[1]) <= reach]
    if len(centres) == 0:
        return None
    centres = centres[~inside_footprint(centres, pose, footprint, margin)]
    for x, y, distance, heading in samples:
        hit = inside_footprint(centres, (x, y, heading), footprint, margin)
        if hit.any():
            return Blockage(float(distance), centres[hit])
    return None


class PathFollower:
    """Pure pursuit for a differential-drive base, one command per control period.

    It turns in place while the heading error to the lookahead point is large, tracks the path
    with speed limited by the distance left (so it can stop in time at the configured
    deceleration), backs up to a goal just behind it, then turns to the goal heading. Each command
    differs from the previous one by at most acceleration x period, so a safety layer that checks
    acceleration between consecutive commands accepts them.

    Args:
        path: World ``(x, y)`` waypoints, the last one the goal.
        limits: Speed and acceleration limits.
        period_s: Seconds between commands.
        goal_yaw: Heading to end with; None ends as soon as the position is reached.
        position_tolerance: Distance to the goal that counts as reached (m).
        yaw_tolerance: Heading error that counts as aligned (rad).
        lookahead: Pure-pursuit lookahead distance (m).
        initial: The command in force before the first step, ``(linear, angular)``.

    Raises:
        ValueError: on an empty path, non-finite waypoints or non-positive limits, period or tolerances.
    """

    def __init__(self, path: Sequence[Point], limits: DriveLimits, period_s: float, goal_yaw: float | None = None,
                 position_tolerance: float = POSITION_TOLERANCE_M, yaw_tolerance: float = YAW_TOLERANCE_RAD,
                 lookahead: float = LOOKAHEAD_M, initial: tuple[float, float] = (0.0, 0.0)) -> None:
        points = np.asarray(path, dtype=float).reshape(-1, 2)
        if len(points) == 0 or not np.all(np.isfinite(points)):
            raise ValueError("the path must hold at least one finite (x, y) point")
        numbers = (limits.linear, limits.angular, limits.linear_accel, limits.angular_accel, period_s,
                   position_tolerance, yaw_tolerance, lookahead)
        if not all(math.isfinite(v) and v > 0.0 for v in numbers):
            raise ValueError(f"limits, period, tolerances and lookahead must be positive, got {numbers}")
        if goal_yaw is not None and not math.isfinite(goal_yaw):
            raise ValueError(f"goal_yaw must be finite, got {goal_yaw}")
        keep = np.concatenate([[True], np.hypot(*np.diff(points, axis=0).T) > 1e-9])
        self._points = points[keep]
        self._cumulative = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(self._points, axis=0).T))])
        self.limits = limits
        self.period_s = float(period_s)
        self.goal_yaw = goal_yaw
        self.position_tolerance = float(position_tolerance)
        self.yaw_tolerance = float(yaw_tolerance)
        self.lookahead = float(lookahead)
        self._command = (float(initial[0]), float(initial[1]))
        self._progress = 0.0
        self._segment = 0
        self._turning = False
        self._phase = "track"

    @property
    def goal(self) -> Point:
        """Return the path's last point."""
        return float(self._points[-1, 0]), float(self._points[-1, 1])

    @property
    def length(self) -> float:
        """Return the path's length (m)."""
        return float(self._cumulative[-1])

    @property
    def remaining(self) -> float:
        """Return the length of path left after the robot's last projection onto it (m)."""
        return max(0.0, self.length - self._progress)

    @property
    def done(self) -> bool:
        """Return whether the goal has been reached."""
        return self._phase == "done"

    @property
    def command(self) -> tuple[float, float]:
        """Return the last command ``(linear, angular)``, from which the next one ramps."""
        return self._command

    def halted(self) -> None:
        """Note that the base was told to stop outside the follower: the next command ramps up from zero."""
        self._command = (0.0, 0.0)
        self._turning = False

    def remaining_path(self, pose: Pose) -> list[Point]:
        """Return the path from the robot's position: its position, then the waypoints still ahead."""
        ahead = [tuple(map(float, p)) for p in self._points[self._segment + 1:]]
        return [(float(pose[0]), float(pose[1])), *ahead] if ahead else [(float(pose[0]), float(pose[1])), self.goal]

    def step(self, pose: Pose, stop_within: float | None = None) -> DriveCommand:
        """Return the command for the next control period, given the base's current pose.

        Args:
            pose: The base's pose.
            stop_within: Distance along the path the base must be able to stop in (m), when
                something is nearer than the goal; None when only the goal counts.
        """
        x, y, yaw = (float(v) for v in pose)
        if self._phase == "done":
            return DriveCommand(0.0, 0.0, True, "done")
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(yaw)):
            return self._ramped(0.0, 0.0, "track")
        self._project(x, y)
        gx, gy = self.goal
        distance = math.hypot(gx - x, gy - y)
        if self._phase == "align" or distance <= self.position_tolerance:
            return self._align(yaw)
        near = distance < self.lookahead
        tx, ty = (gx, gy) if near else self._point_at(self._progress + self.lookahead)
        alpha = wrap_angle(math.atan2(ty - y, tx - x) - yaw)
        # Distance left to stop in: along the path, or straight to the goal once it is near.
        left = distance if near else max(self.remaining, distance)
        if stop_within is not None:
            left = max(0.0, min(left, stop_within))
        if near and distance <= REVERSE_MAX_M and abs(alpha) > math.pi / 2:
            self._turning = False
            back = wrap_angle(alpha - math.pi)
            speed = self._approach_speed(left)
            return self._ramped(-speed, 2.0 * speed * math.sin(back) / max(distance, 1e-6), "reverse")
        if self._turning or abs(alpha) > TURN_IN_PLACE_RAD:
            self._turning = abs(alpha) > TURN_DONE_RAD
            if self._turning:
                return self._ramped(0.0, self._turn_rate(alpha), "turn")
        speed = self._approach_speed(left)
        curvature = 2.0 * math.sin(alpha) / max(math.hypot(tx - x, ty - y), 1e-6)
        angular = curvature * speed
        if abs(angular) > self.limits.angular:
            speed *= self.limits.angular / abs(angular)
            angular = math.copysign(self.limits.angular, angular)
        return self._ramped(speed, angular, "track")

    def _align(self, yaw: float) -> DriveCommand:
        self._phase = "align"
        if self.goal_yaw is None:
            return self._finish()
        error = wrap_angle(self.goal_yaw - yaw)
        if abs(error) <= self.yaw_tolerance:
            return self._finish()
        return self._ramped(0.0, self._turn_rate(error), "align")

    def _finish(self) -> DriveCommand:
        settled = (abs(self._command[0]) <= self.limits.linear_accel * self.period_s + 1e-9
                   and abs(self._command[1]) <= self.limits.angular_accel * self.period_s + 1e-9)
        if settled:
            self._phase = "done"
            self._command = (0.0, 0.0)
            return DriveCommand(0.0, 0.0, True, "done")
        return self._ramped(0.0, 0.0, "align")

    def _approach_speed(self, left: float) -> float:
        """Return the forward speed from which the base can still stop within ``left`` metres."""
        braking = math.sqrt(2.0 * self.limits.linear_accel * max(left - self.position_tolerance / 2, 0.0))
        return max(MIN_LINEAR_MPS, min(self.limits.linear, braking, GOAL_SPEED_GAIN * left))

    def _turn_rate(self, error: float) -> float:
        """Return the turn rate towards a heading error from which the base can still stop in time."""
        braking = math.sqrt(2.0 * self.limits.angular_accel * abs(error))
        rate = max(MIN_ANGULAR_RADPS, min(self.limits.angular, braking, TURN_SPEED_GAIN * abs(error)))
        return math.copysign(rate, error)

    def _ramped(self, linear: float, angular: float, phase: str) -> DriveCommand:
        dv = self.limits.linear_accel * self.period_s
        dw = self.limits.angular_accel * self.period_s
        v0, w0 = self._command
        v = v0 + min(max(linear - v0, -dv), dv)
        w = w0 + min(max(angular - w0, -dw), dw)
        v = min(max(v, -self.limits.linear), self.limits.linear)
        w = min(max(w, -self.limits.angular), self.limits.angular)
        self._command = (v, w)
        return DriveCommand(v, w, False, phase)

    def _project(self, x: float, y: float) -> None:
        """Advance the progress along the path to the robot's nearest point within the window ahead."""
        points, cumulative = self._points, self._cumulative
        if len(points) < 2:
            return
        best = (math.inf, self._segment, self._progress)
        limit = self._progress + max(PROJECTION_WINDOW_M, 2.0 * self.lookahead)
        for i in range(self._segment, len(points) - 1):
            if cumulative[i] > limit:
                break
            a, b = points[i], points[i + 1]
            ab = b - a
            length = cumulative[i + 1] - cumulative[i]
            t = min(max(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / (length * length), 0.0), 1.0)
            distance = math.hypot(a[0] + t * ab[0] - x, a[1] + t * ab[1] - y)
            if distance < best[0] - 1e-9:
                best = (distance, i, cumulative[i] + t * length)
        _, segment, progress = best
        if progress >= self._progress:
            self._segment, self._progress = segment, progress

    def _point_at(self, distance: float) -> Point:
        """Return the path point ``distance`` metres from the start (clamped to the ends)."""
        cumulative = self._cumulative
        if distance >= cumulative[-1]:
            return self.goal
        i = int(np.searchsorted(cumulative, distance, side="right")) - 1
        i = min(max(i, 0), len(cumulative) - 2)
        t = (distance - cumulative[i]) / max(cumulative[i + 1] - cumulative[i], 1e-12)
        a, b = self._points[i], self._points[i + 1]
        return float(a[0] + t * (b[0] - a[0])), float(a[1] + t * (b[1] - a[1]))
