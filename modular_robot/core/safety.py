"""Safety shield between skills and hardware topics: limits from per-robot YAML, verdicts with reasons.

The shield refuses; it never clamps, scales or otherwise modifies a command. A clamped command is a
different command from the one the planner reasoned about: a trajectory squeezed into the joint
limits no longer reaches its goal, and a twist cut to the speed limit no longer follows its path.
Refusing with a reason keeps the caller in charge of what the robot does and lets the critic see
why a step failed, instead of a silently different motion reaching the hardware.

Arm checks are exact where the motion is polynomial: positions, velocities and accelerations of the
linear or cubic Hermite segments that `core.trajectory.sample` executes are bounded analytically,
so nothing between waypoints escapes. End-effector checks go through an arbitrary
forward-kinematics callable, so they sample the path densely and bisect wherever consecutive
end-effector samples are further apart than `ee_margin`; the workspace is shrunk and every
keep-out zone grown by that margin so that the unsampled path between two samples stays within
limits too.

Every check is bounded in time: trajectories longer than `max_duration_s` or with more than
`max_points` waypoints are refused before anything is sampled, and the end-effector check refuses
a path that would need more than `max_ee_samples` forward-kinematics evaluations, bisection
included. A shield that could be kept busy by one command would see the emergency stop late.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modular_robot.core.safety_limits import ArmLimits, BoxZone, SafetyLimits, is_finite_number
from modular_robot.core.trajectory import Trajectory, sample

ESTOP_REASON = "emergency stop engaged"
# Bisecting a segment below this and still finding a large end-effector jump means the
# forward kinematics is discontinuous there; no sampling rate can certify such a path.
_MIN_BISECT_DT = 1e-5
_START_TOLERANCE = 1e-3
# A point at time 0 must continue the measured motion; joint_states' velocities carry some noise.
_START_VELOCITY_TOLERANCE = 0.01


@dataclass(frozen=True)
class Verdict:
    """The shield's answer to one command.

    Attributes:
        ok: True if the command may be sent to the hardware.
        reason: Why it was refused, or "ok".
    """

    ok: bool
    reason: str


class SafetyShield:
    """Check arm trajectories, gripper openings and base twists against a robot's limits.

    Every check returns a `Verdict`; none raises on bad input and none modifies the command.
    While the emergency stop is engaged every check refuses.
    """

    def __init__(self, limits: SafetyLimits, sample_rate_hz: float = 50.0) -> None:
        """Create a shield.

        Args:
            limits: The robot's limits.
            sample_rate_hz: Base rate at which end-effector positions are sampled along a
                trajectory before bisection refines it.
        """
        if not sample_rate_hz > 0.0:
            raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        self.limits = limits
        self.sample_rate_hz = sample_rate_hz
        self._engaged = False

    # --- emergency stop -------------------------------------------------------------------------

    @property
    def engaged(self) -> bool:
        """Whether the emergency stop is engaged."""
        return self._engaged

    def engage(self) -> None:
        """Engage the emergency stop: every check refuses until `release` is called."""
        self._engaged = True

    def release(self) -> None:
        """Release the emergency stop."""
        self._engaged = False

    # --- gripper and base -----------------------------------------------------------------------

    def check_gripper(self, opening: float) -> Verdict:
        """Check a gripper opening command (m between the fingers)."""
        if self._engaged:
            return Verdict(False, ESTOP_REASON)
        gripper = self.limits.gripper
        if gripper is None:
            return Verdict(False, f"{self.limits.robot} has no gripper limits configured")
        if not is_finite_number(opening):
            return Verdict(False, f"gripper opening must be a finite number, got {opening!r}")
        if not gripper.min_opening <= opening <= gripper.max_opening:
            return Verdict(False, f"gripper opening {opening:.4f} m outside "
                                  f"[{gripper.min_opening:.4f}, {gripper.max_opening:.4f}]")
        return Verdict(True, "ok")

    def check_twist(self, linear: float, angular: float, previous: tuple[float, float] | None = None,
                    dt: float | None = None) -> Verdict:
        """Check a base twist command against speed and, given the previous command, acceleration limits.

        Braking is never refused for its acceleration: a command that moves each component towards
        zero without changing its sign passes, because refusing it would leave the previous, faster
        command in force.

        Args:
            linear: Forward speed (m/s).
            angular: Yaw rate (rad/s).
            previous: The last accepted (linear, angular) command, or None.
            dt: Seconds since the previous command; required with `previous`.
        """
        if self._engaged:
            return Verdict(False, ESTOP_REASON)
        base = self.limits.base
        if base is None:
            return Verdict(False, f"{self.limits.robot} has no base limits configured")
        if not (is_finite_number(linear) and is_finite_number(angular)):
            return Verdict(False, f"twist must be finite numbers, got linear={linear!r} angular={angular!r}")
        if abs(linear) > base.linear:
            return Verdict(False, f"linear speed {linear:.3f} m/s exceeds limit {base.linear:.3f}")
        if abs(angular) > base.angular:
            return Verdict(False, f"angular speed {angular:.3f} rad/s exceeds limit {base.angular:.3f}")
        if (previous is None) != (dt is None):
            return Verdict(False, "previous twist and dt must be given together")
        if previous is None:
            return Verdict(True, "ok")
        if len(previous) != 2 or not all(is_finite_number(v) for v in previous):
            return Verdict(False, f"previous twist must be two finite numbers, got {previous!r}")
        if not (is_finite_number(dt) and dt > 0.0):
            return Verdict(False, f"dt must be a positive finite number, got {dt!r}")
        for name, new, old, limit, unit in (
            ("linear", linear, previous[0], base.linear_accel, "m/s^2"),
            ("angular", angular, previous[1], base.angular_accel, "rad/s^2"),
        ):
            braking = new * old >= 0.0 and abs(new) <= abs(old)
            accel = abs(new - old) / dt
            if not braking and accel > limit:
                return Verdict(False, f"{name} acceleration {accel:.3f} {unit} exceeds limit {limit:.3f}")
        return Verdict(True, "ok")

    # --- arm ------------------------------------------------------------------------------------

    def check_trajectory(self, joint_names: list[str] | tuple[str, ...], times: Any, positions: Any,
                         velocities: Any = None,
                         forward_kinematics: Callable[[np.ndarray], np.ndarray] | None = None,
                         start: Any = None, start_velocity: Any = None) -> Verdict:
        """Check an arm trajectory everywhere in time, not only at its waypoints.

        The motion checked is the one `core.trajectory.sample` executes: linear segments without
        velocities, cubic Hermite segments with them, and a first segment from `start` when the
        first waypoint's time is positive. That first segment leaves `start` at `start_velocity`,
        the arm's measured motion, not at rest. Without linear velocities, the velocity change at
        each waypoint is taken to happen over half of each adjacent segment, from the start
        velocity before the start and to rest after the end.

        Args:
            joint_names: Arm joints commanded, in column order; a subset of the configured joints.
            times: Strictly increasing times from start (s), shape (N,).
            positions: Waypoints (rad), shape (N, J).
            velocities: Waypoint velocities (rad/s), shape (N, J), or None (or empty) for linear.
            forward_kinematics: Maps positions of every configured arm joint, in configured order,
                to the end-effector position (m) in the limits' frame; None skips end-effector checks.
            start: Current positions of the commanded joints; defaults to the first waypoint.
            start_velocity: Current velocities of the commanded joints (rad/s); defaults to rest.

        Returns:
            A verdict whose reason names the first violation found.
        """
        if self._engaged:
            return Verdict(False, ESTOP_REASON)
        arm = self.limits.arm
        if arm is None:
            return Verdict(False, f"{self.limits.robot} has no arm limits configured")
        parsed = _parse_trajectory(joint_names, times, positions, velocities, start, start_velocity, arm)
        if isinstance(parsed, Verdict):
            return parsed
        names, t, q, qd, q_start, v_start = parsed
        columns = [arm.joint_names.index(name) for name in names]
        lower, upper = arm.lower[columns], arm.upper[columns]
        vmax, amax = arm.velocity[columns], arm.acceleration[columns]

        outside = (q < lower) | (q > upper)
        if np.any(outside):
            i, j = np.argwhere(outside)[0]
            return Verdict(False, f"point {i}: {names[j]}={q[i, j]:.4f} outside limits "
                                  f"[{lower[j]:.4f}, {upper[j]:.4f}]")
        start_outside = (q_start < lower) | (q_start > upper)
        if np.any(start_outside):
            j = int(np.argmax(start_outside))
            return Verdict(False, f"start: {names[j]}={q_start[j]:.4f} outside limits [{lower[j]:.4f}, "
                                  f"{upper[j]:.4f}]; no motion from there can be certified")
        if t[0] == 0.0 and np.any(np.abs(q[0] - q_start) > _START_TOLERANCE):
            j = int(np.argmax(np.abs(q[0] - q_start)))
            return Verdict(False, f"first point at time 0 is {abs(q[0, j] - q_start[j]):.4f} away from the "
                                  f"current {names[j]}")
        # A velocity at time 0 other than the measured one would be an instant jump.
        if qd is not None and t[0] == 0.0 and np.any(np.abs(qd[0] - v_start) > _START_VELOCITY_TOLERANCE):
            j = int(np.argmax(np.abs(qd[0] - v_start)))
            state = "at rest" if not np.any(v_start) else f"at the measured velocity {v_start[j]:.4f}"
            return Verdict(False, f"first point at time 0 must be {state}, {names[j]} has velocity {qd[0, j]:.4f}")
        if qd is not None and np.any(qd[-1] != 0.0):
            j = int(np.argmax(np.abs(qd[-1])))
            return Verdict(False, f"last point must be at rest, {names[j]} has velocity {qd[-1, j]:.4f}")

        # The segments the controller executes: from the start when the first point is later.
        if t[0] > 0.0:
            seg_t = np.concatenate(([0.0], t))
            seg_q = np.vstack((q_start, q))
            seg_qd = np.vstack((v_start, qd)) if qd is not None else None
        else:
            seg_t, seg_q, seg_qd = t, q, qd
        if len(seg_t) > 1:
            check = (_check_hermite(names, seg_t, seg_q, seg_qd, lower, upper, vmax, amax) if seg_qd is not None
                     else _check_linear(names, seg_t, seg_q, v_start, vmax, amax))
            if check is not None:
                return check

        if forward_kinematics is not None:
            if len(names) != len(arm.joint_names):
                missing = sorted(set(arm.joint_names) - set(names))
                return Verdict(False, f"end-effector checks need every arm joint commanded; missing {missing}")
            order = [names.index(name) for name in arm.joint_names]
            # Sampled as checked above: the first segment leaves the start at the start velocity.
            trajectory = Trajectory(tuple(names), seg_t, seg_q, seg_qd)
            return _check_end_effector(trajectory, q_start, order, forward_kinematics, arm, self.sample_rate_hz,
                                       lambda: self._engaged)
        return Verdict(True, "ok")


def _parse_trajectory(joint_names: Any, times: Any, positions: Any, velocities: Any, start: Any,
                      start_velocity: Any, arm: ArmLimits) -> Verdict | tuple:
    """Return (names, times, positions, velocities or None, start, start velocity) as arrays, or a refusal.

    The size and duration caps come first, so that nothing later works on an unbounded trajectory.
    """
    names = list(joint_names)
    if not names:
        return Verdict(False, "trajectory names no joints")
    unknown = [name for name in names if name not in arm.joint_names]
    if unknown:
        return Verdict(False, f"unknown joints {unknown}; the arm has {list(arm.joint_names)}")
    if len(set(names)) != len(names):
        return Verdict(False, f"joint names repeat: {names}")
    try:
        t = np.asarray(times, dtype=float).reshape(-1)
        if t.size == 0:
            return Verdict(False, "trajectory has no points")
        if t.size > arm.max_points:
            return Verdict(False, f"trajectory has {t.size} points, more than max_points {arm.max_points}")
        q = np.asarray(positions, dtype=float)
        with_velocities = velocities is not None and np.size(velocities) > 0
        qd = np.asarray(velocities, dtype=float) if with_velocities else None
        q_start = np.asarray(start, dtype=float) if start is not None else None
        v_start = np.asarray(start_velocity, dtype=float) if start_velocity is not None else None
    except (TypeError, ValueError) as error:
        return Verdict(False, f"trajectory values are not numeric: {error}")
    shape = (t.size, len(names))
    if q.shape != shape:
        return Verdict(False, f"positions have shape {q.shape}, expected {shape}")
    if qd is not None and qd.shape != shape:
        return Verdict(False, f"velocities have shape {qd.shape}, expected {shape}")
    if q_start is not None and q_start.shape != (len(names),):
        return Verdict(False, f"start has shape {q_start.shape}, expected {(len(names),)}")
    if v_start is not None and v_start.shape != (len(names),):
        return Verdict(False, f"start velocity has shape {v_start.shape}, expected {(len(names),)}")
    arrays = [t, q] + [a for a in (qd, q_start, v_start) if a is not None]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        return Verdict(False, "trajectory contains NaN or infinite values")
    if t[0] < 0.0 or np.any(np.diff(t) <= 0.0):
        return Verdict(False, f"times must be non-negative and strictly increasing, got {_brief(t)}")
    if t[-1] > arm.max_duration_s:
        return Verdict(False, f"trajectory lasts {t[-1]:.3f} s, longer than max_duration_s {arm.max_duration_s}")
    if q_start is None:
        q_start = q[0].copy()
    if v_start is None:
        v_start = np.zeros(len(names))
    return names, t, q, qd, q_start, v_start


def _brief(values: np.ndarray, shown: int = 10) -> str:
    """Return the values as a list, cut after the first few so that a refusal stays one readable line."""
    listed = ", ".join(repr(float(v)) for v in values[:shown])
    more = f", ... ({values.size} values)" if values.size > shown else ""
    return f"[{listed}{more}]"


def _check_linear(names: list[str], t: np.ndarray, q: np.ndarray, v_start: np.ndarray, vmax: np.ndarray,
                  amax: np.ndarray) -> Verdict | None:
    """Check linear segments; positions between in-limit waypoints are in limits by convexity."""
    dt = np.diff(t)
    speed = np.diff(q, axis=0) / dt[:, None]
    too_fast = np.abs(speed) > vmax
    if np.any(too_fast):
        i, j = np.argwhere(too_fast)[0]
        return Verdict(False, f"segment {i}->{i + 1}: {names[j]} needs {abs(speed[i, j]):.4f} rad/s, "
                              f"limit {vmax[j]:.4f}")
    # Velocity jumps at each waypoint, spread over half of each adjacent segment; from the start
    # velocity before the first and to rest after the last.
    rest = np.zeros((1, q.shape[1]))
    jumps = np.abs(np.diff(np.vstack((v_start[None, :], speed, rest)), axis=0))
    window = (np.concatenate(([0.0], dt)) + np.concatenate((dt, [0.0]))) / 2.0
    accel = jumps / window[:, None]
    too_sharp = accel > amax
    if np.any(too_sharp):
        i, j = np.argwhere(too_sharp)[0]
        return Verdict(False, f"at point {i}: {names[j]} needs {accel[i, j]:.4f} rad/s^2, limit {amax[j]:.4f}")
    return None


def _check_hermite(names: list[str], t: np.ndarray, q: np.ndarray, qd: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray, vmax: np.ndarray, amax: np.ndarray) -> Verdict | None:
    """Check cubic Hermite segments exactly: extrema of a cubic are at its ends or stationary points."""
    dt = np.diff(t)[:, None]
    q0, q1 = q[:-1], q[1:]
    m0, m1 = qd[:-1] * dt, qd[1:] * dt
    # q(s) = q0 + b s + c s^2 + d s^3 for s in [0, 1], the same curve as core.trajectory.sample.
    b = m0
    c = -3.0 * q0 - 2.0 * m0 + 3.0 * q1 - m1
    d = 2.0 * q0 + m0 - 2.0 * q1 + m1

    def at(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (q0 + b * s + c * s**2 + d * s**3, (b + 2 * c * s + 3 * d * s**2) / dt, (2 * c + 6 * d * s) / dt**2)

    # Stationary points of position (roots of the velocity) and of velocity (root of the acceleration).
    disc = (2 * c) ** 2 - 12 * d * b
    root = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cubic = np.abs(d) > 1e-12
        quad = np.abs(c) > 1e-12
        s_pos1 = np.where(cubic, (-2 * c + root) / (6 * d), np.where(quad, -b / (2 * c), 0.0))
        s_pos2 = np.where(cubic, (-2 * c - root) / (6 * d), 0.0)
        s_vel = np.where(cubic, -c / (3 * d), 0.0)
    s_pos1 = np.where(disc >= 0.0, s_pos1, 0.0)
    s_pos2 = np.where(disc >= 0.0, s_pos2, 0.0)
    candidates = [np.zeros_like(b), np.ones_like(b)] + [np.clip(s, 0.0, 1.0) for s in (s_pos1, s_pos2, s_vel)]
    for s in candidates:
        pos, vel, acc = at(s)
        outside = (pos < lower) | (pos > upper)
        if np.any(outside):
            i, j = np.argwhere(outside)[0]
            when = t[i] + float(s[i, j]) * float(dt[i, 0])
            return Verdict(False, f"segment {i}->{i + 1}: {names[j]} reaches {pos[i, j]:.4f} at t={when:.3f} s, "
                                  f"outside limits [{lower[j]:.4f}, {upper[j]:.4f}]")
        too_fast = np.abs(vel) > vmax
        if np.any(too_fast):
            i, j = np.argwhere(too_fast)[0]
            return Verdict(False, f"segment {i}->{i + 1}: {names[j]} reaches {abs(vel[i, j]):.4f} rad/s, "
                                  f"limit {vmax[j]:.4f}")
        too_sharp = np.abs(acc) > amax
        if np.any(too_sharp):
            i, j = np.argwhere(too_sharp)[0]
            return Verdict(False, f"segment {i}->{i + 1}: {names[j]} needs {abs(acc[i, j]):.4f} rad/s^2, "
                                  f"limit {amax[j]:.4f}")
    return None


def _check_end_effector(trajectory: Trajectory, start: np.ndarray, order: list[int],
                        forward_kinematics: Callable[[np.ndarray], np.ndarray], arm: ArmLimits,
                        rate_hz: float, engaged: Callable[[], bool]) -> Verdict:
    """Sample the end effector along the trajectory, bisecting until consecutive samples are close.

    At most `arm.max_ee_samples` forward-kinematics evaluations are made, and the check stops at
    the next sample once `engaged()` says the emergency stop was engaged meanwhile.
    """
    margin = arm.ee_margin
    inner = BoxZone(arm.workspace.name, arm.workspace.lower + margin, arm.workspace.upper - margin)
    budget = arm.max_ee_samples
    used = 0

    def check_at(time: float) -> np.ndarray | Verdict:
        nonlocal used
        if engaged():
            return Verdict(False, ESTOP_REASON)
        if used >= budget:
            return Verdict(False, f"certifying the end-effector path needs more than max_ee_samples {budget} "
                                  f"forward-kinematics samples")
        used += 1
        joints = sample(trajectory, start, time)[0][order]
        try:
            ee = np.asarray(forward_kinematics(joints), dtype=float).reshape(-1)
        except (TypeError, ValueError) as error:
            return Verdict(False, f"forward kinematics failed at t={time:.3f} s: {error}")
        if ee.shape != (3,) or not np.all(np.isfinite(ee)):
            return Verdict(False, f"forward kinematics returned {ee.tolist()} at t={time:.3f} s, "
                                  f"expected a finite xyz")
        if not inner.contains(ee):
            return Verdict(False, f"end effector at {np.round(ee, 3).tolist()} (t={time:.3f} s) leaves the "
                                  f"workspace {arm.workspace.lower.tolist()}..{arm.workspace.upper.tolist()} "
                                  f"less margin {margin}")
        for zone in arm.keep_out:
            if zone.contains(ee, margin):
                return Verdict(False, f"end effector at {np.round(ee, 3).tolist()} (t={time:.3f} s) enters "
                                      f"keep-out zone '{zone.name}' (margin {margin})")
        return ee

    duration = trajectory.duration
    count = max(2, math.ceil(duration * rate_hz) + 1)
    if count + len(trajectory.times) > budget:
        return Verdict(False, f"sampling {duration:.3f} s at {rate_hz} Hz needs more than max_ee_samples {budget} "
                              f"samples")
    grid = np.union1d(np.linspace(0.0, duration, count), trajectory.times)
    points: list[tuple[float, np.ndarray]] = []
    for time in grid:
        result = check_at(float(time))
        if isinstance(result, Verdict):
            return result
        points.append((float(time), result))
    # Bisect every gap whose end-effector chord exceeds the margin; a stack keeps it iterative.
    gaps = [(points[k], points[k + 1]) for k in range(len(points) - 1)]
    while gaps:
        (t0, p0), (t1, p1) = gaps.pop()
        if np.linalg.norm(p1 - p0) <= margin:
            continue
        if t1 - t0 < _MIN_BISECT_DT:
            return Verdict(False, f"end effector jumps {np.linalg.norm(p1 - p0):.3f} m near t={t0:.4f} s; "
                                  f"forward kinematics is discontinuous there")
        middle = (t0 + t1) / 2.0
        result = check_at(middle)
        if isinstance(result, Verdict):
            return result
        gaps.append(((t0, p0), (middle, result)))
        gaps.append(((middle, result), (t1, p1)))
    return Verdict(True, "ok")


# --- loading ------------------------------------------------------------------------------------


