"""Tests of the safety shield: each check, the limit files, and property tests of its invariant."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pybullet
import pybullet_data
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_HOME, PANDA_MAX_OPENING
from modular_robot.core.safety import ESTOP_REASON, SafetyShield, Verdict
from modular_robot.core.safety_limits import (
    ArmLimits,
    BaseTwistLimits,
    BoxZone,
    CylinderZone,
    GripperLimits,
    SafetyConfigError,
    SafetyLimits,
    load_safety_limits,
    parse_safety_limits,
)
from modular_robot.core.trajectory import Trajectory, sample
from modular_robot.sim.robots import BaseLimits

CONFIG = Path(__file__).resolve().parents[1] / "config" / "safety"
TOY_JOINTS = ("yaw", "shoulder", "elbow")
SAFE_POSE = np.array([0.0, 0.3, -1.0])


def toy_fk(q: np.ndarray) -> np.ndarray:
    """Return the tip of a yaw-shoulder-elbow arm (links 0.5 m and 0.4 m, shoulder 0.3 m up)."""
    reach = 0.5 * math.cos(q[1]) + 0.4 * math.cos(q[1] + q[2])
    height = 0.3 + 0.5 * math.sin(q[1]) + 0.4 * math.sin(q[1] + q[2])
    return np.array([reach * math.cos(q[0]), reach * math.sin(q[0]), height])


def toy_limits() -> SafetyLimits:
    """Return limits of the toy arm with a keep-out box and cylinder inside its workspace."""
    arm = ArmLimits(
        TOY_JOINTS, np.array([-1.5, -0.5, -2.5]), np.array([1.5, 1.5, 0.5]), np.array([1.0, 1.0, 1.5]),
        np.array([3.0, 3.0, 4.0]), BoxZone("workspace", np.array([0.2, -0.5, 0.0]), np.array([0.85, 0.5, 0.8])),
        (BoxZone("block", np.array([0.55, 0.2, 0.0]), np.array([0.7, 0.4, 0.3])),
         CylinderZone("post", np.array([0.4, -0.3]), 0.08, 0.0, 0.5)),
        0.01)
    return SafetyLimits("toy", "base", arm, GripperLimits(0.0, 0.08), BaseTwistLimits(1.0, 2.0, 1.5, 3.0))


@pytest.fixture
def shield() -> SafetyShield:
    return SafetyShield(toy_limits())


def slow_move(goal: np.ndarray, duration: float = 4.0) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Return a rest-to-rest Hermite trajectory from SAFE_POSE through a midpoint to goal."""
    middle = (SAFE_POSE + goal) / 2
    velocity = (goal - SAFE_POSE) / duration * 1.5
    return [0.0, duration / 2, duration], np.array([SAFE_POSE, middle, goal]), np.array(
        [np.zeros(3), velocity, np.zeros(3)])


# --- limit files ----------------------------------------------------------------------------------


def panda_grasp_target(q: np.ndarray, client: int, body: int) -> np.ndarray:
    for index, value in enumerate(q):
        pybullet.resetJointState(body, index, value, physicsClientId=client)
    return np.array(pybullet.getLinkState(body, 11, computeForwardKinematics=True, physicsClientId=client)[4])


@pytest.fixture(scope="module")
def panda_fk():
    """Yield the Panda's grasp-target forward kinematics from a private PyBullet client."""
    client = pybullet.connect(pybullet.DIRECT)
    body = pybullet.loadURDF(os.path.join(pybullet_data.getDataPath(), "franka_panda", "panda.urdf"),
                             useFixedBase=True, physicsClientId=client)
    assert pybullet.getJointInfo(body, 11, physicsClientId=client)[12] == b"panda_grasptarget"
    yield lambda q: panda_grasp_target(q, client, body), client, body
    pybullet.disconnect(client)


@pytest.mark.parametrize("name", ["panda_tabletop", "mobile_manipulator"])
def test_panda_files_match_urdf_and_accept_home(name: str, panda_fk) -> None:
    fk, client, body = panda_fk
    limits = load_safety_limits(CONFIG / f"{name}.yaml")
    assert limits.arm.joint_names == PANDA_ARM_JOINTS
    for j in range(7):
        info = pybullet.getJointInfo(body, j, physicsClientId=client)
        assert (limits.arm.lower[j], limits.arm.upper[j], limits.arm.velocity[j]) == pytest.approx(
            (info[8], info[9], info[11]))
    assert np.all((limits.arm.acceleration >= 3.0) & (limits.arm.acceleration <= 7.0))
    assert limits.gripper == GripperLimits(0.0, PANDA_MAX_OPENING)
    shield = SafetyShield(limits)
    home = np.array(PANDA_HOME)
    assert shield.check_trajectory(PANDA_ARM_JOINTS, [0.0], [home], forward_kinematics=fk).ok
    # Turning the arm round puts the hand behind the base, out of the workspace.
    behind = home + np.array([2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    verdict = shield.check_trajectory(PANDA_ARM_JOINTS, [3.0], [behind], start=home, forward_kinematics=fk)
    assert not verdict.ok and "leaves the workspace" in verdict.reason


def test_base_files_match_sim_base_limits() -> None:
    sim = BaseLimits()
    for name in ("husky_base", "mobile_manipulator"):
        base = load_safety_limits(CONFIG / f"{name}.yaml").base
        assert base == BaseTwistLimits(sim.linear, sim.angular, sim.linear_accel, sim.angular_accel)
    husky = load_safety_limits(CONFIG / "husky_base.yaml")
    assert husky.arm is None and husky.gripper is None


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("frame"), "<top>: missing keys ['frame']"),
    (lambda d: d.update(speed=1), "<top>: unknown keys ['speed']"),
    (lambda d: d["arm"]["joints"]["panda_joint2"].update(lower="low"),
     "arm.joints.panda_joint2.lower: must be a finite"),
    (lambda d: d["arm"]["joints"]["panda_joint4"].update(lower=0.5),
     "arm.joints.panda_joint4: lower 0.5 must be below"),
    (lambda d: d["arm"]["joints"]["panda_joint1"].update(acceleration=0),
     "panda_joint1.acceleration: must be positive"),
    (lambda d: d["arm"]["workspace"].update(min=[0, 0]), "arm.workspace.min: must be a list of 3"),
    (lambda d: d["arm"]["keep_out"][0].update(type="sphere"), "arm.keep_out[0].type: must be 'box' or 'cylinder'"),
    (lambda d: d["arm"]["keep_out"][1].update(max=[1.0, 0.1, 0.9]), "arm.keep_out[1]: min"),
    (lambda d: d["gripper"].update(max_opening=-1), "gripper: need 0 <= min_opening"),
    (lambda d: d.update(base={"linear": 1.0}), "base: missing keys"),
    (lambda d: d["arm"].update(max_duration_s=-1.0), "arm.max_duration_s: must be positive"),
    (lambda d: d["arm"].update(max_points=2.5), "arm.max_points: must be a positive integer"),
    (lambda d: d["arm"].update(max_ee_samples=0), "arm.max_ee_samples: must be a positive integer"),
])
def test_yaml_errors_name_file_and_key(tmp_path: Path, mutate, message: str) -> None:
    document = yaml.safe_load((CONFIG / "panda_tabletop.yaml").read_text())
    mutate(document)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SafetyConfigError) as error:
        load_safety_limits(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SafetyConfigError, match="missing.yaml: cannot read"):
        load_safety_limits(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("robot: [unclosed")
    with pytest.raises(SafetyConfigError, match="broken.yaml: cannot read"):
        load_safety_limits(tmp_path / "broken.yaml")
    with pytest.raises(SafetyConfigError, match="at least one of"):
        parse_safety_limits({"robot": "r", "frame": "f"})


# --- trajectory checks ----------------------------------------------------------------------------


def test_slow_move_inside_is_accepted(shield: SafetyShield) -> None:
    times, q, qd = slow_move(SAFE_POSE + [0.2, 0.1, 0.1])
    assert shield.check_trajectory(TOY_JOINTS, times, q, qd, toy_fk) == Verdict(True, "ok")
    assert shield.check_trajectory(TOY_JOINTS, times, q, None, toy_fk).ok


@pytest.mark.parametrize("times, positions, velocities, reason", [
    ([], np.zeros((0, 3)), None, "trajectory has no points"),
    ([0.0, float("nan")], [SAFE_POSE, SAFE_POSE], None, "NaN or infinite"),
    ([0.0, 1.0], [SAFE_POSE, [0.0, math.inf, 0.0]], None, "NaN or infinite"),
    ([0.0, 1.0, 1.0], [SAFE_POSE] * 3, None, "strictly increasing"),
    ([0.0, 2.0, 1.0], [SAFE_POSE] * 3, None, "strictly increasing"),
    ([0.0, 1.0], [SAFE_POSE], None, "positions have shape (1, 3), expected (2, 3)"),
    ([0.0, 1.0], [SAFE_POSE, SAFE_POSE], [[0.0] * 3], "velocities have shape"),
    ([0.0, 5.0], [SAFE_POSE, [0.0, 0.3, 0.6]], None, "point 1: elbow=0.6000 outside limits [-2.5000, 0.5000]"),
    ([0.0, 0.2], [SAFE_POSE, SAFE_POSE + [0.5, 0, 0]], None, "segment 0->1: yaw needs 2.5000 rad/s, limit 1.0000"),
    ([0.5, 1.0], [SAFE_POSE, SAFE_POSE], [[1.2, 0, 0], [0.0, 0, 0]],
     "segment 1->2: yaw reaches 1.2000 rad/s, limit 1.0000"),
    ([0.0, 1.0], [SAFE_POSE, SAFE_POSE], [[0.5, 0, 0], [0.0, 0, 0]], "first point at time 0 must be at rest, yaw"),
    ([0.0, 1.0], [SAFE_POSE, SAFE_POSE], [[0.0] * 3, [0.1, 0, 0]], "last point must be at rest, yaw"),
])
def test_bad_trajectories_are_refused_with_reason(shield, times, positions, velocities, reason) -> None:
    verdict = shield.check_trajectory(TOY_JOINTS, times, positions, velocities)
    assert not verdict.ok
    assert reason in verdict.reason


def test_linear_acceleration_is_the_velocity_jump_over_half_segments(shield: SafetyShield) -> None:
    # 0.9 rad in 1 s from rest: 0.9 rad/s reached over 0.5 s needs 1.8 rad/s^2 - within 3.0.
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0, 1.0], [SAFE_POSE, SAFE_POSE + [0.9, 0, 0]])
    assert verdict.ok, verdict.reason
    # 0.5 rad in 0.55 s: 0.909 rad/s is within the speed limit, reaching it in 0.275 s is not.
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0, 0.55], [SAFE_POSE, SAFE_POSE + [0.5, 0, 0]])
    assert not verdict.ok and "at point 0: yaw needs 3.3058 rad/s^2, limit 3.0000" in verdict.reason


def test_hermite_overshoot_between_waypoints_is_refused(shield: SafetyShield) -> None:
    # Both waypoints are inside the elbow's upper limit; the spline bulges past it in between.
    q = [[0.0, 0.3, 0.4], [0.0, 0.3, 0.45], [0.0, 0.3, 0.4]]
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0, 1.0, 2.0], q, [[0.0] * 3, [0.0, 0.0, 0.6], [0.0] * 3])
    assert not verdict.ok
    assert "segment 1->2: elbow reaches 0.5276 at t=1.286 s, outside limits [-2.5000, 0.5000]" in verdict.reason


def test_hermite_acceleration_and_speed_between_waypoints(shield: SafetyShield) -> None:
    # Rest to rest over 1 rad in 1 s: peak speed 1.5 rad/s at the middle, 6 rad/s^2 at the ends.
    q = [[0.0, 0.3, -1.0], [0.0, 0.3, 0.0]]
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0, 1.0], q, np.zeros((2, 3)))
    assert not verdict.ok and "elbow needs 6.0000 rad/s^2, limit 4.0000" in verdict.reason
    limits = toy_limits()
    relaxed = SafetyShield(SafetyLimits("toy", "base", ArmLimits(
        limits.arm.joint_names, limits.arm.lower, limits.arm.upper, limits.arm.velocity, np.full(3, 10.0),
        limits.arm.workspace, (), 0.01), None, None))
    # 1.2 rad in 1 s: 7.2 rad/s^2 passes the relaxed limit, the mid-segment 1.8 rad/s does not.
    q = [[0.0, 0.3, -1.0], [0.0, 0.3, 0.2]]
    verdict = relaxed.check_trajectory(TOY_JOINTS, [0.0, 1.0], q, np.zeros((2, 3)))
    assert not verdict.ok and "elbow reaches 1.8000 rad/s, limit 1.5000" in verdict.reason


def test_joint_names_and_start(shield: SafetyShield) -> None:
    assert "unknown joints ['wrist']" in shield.check_trajectory(["wrist"], [1.0], [[0.0]]).reason
    assert "joint names repeat" in shield.check_trajectory(["yaw", "yaw"], [1.0], [[0.0, 0.0]]).reason
    assert "names no joints" in shield.check_trajectory([], [1.0], [[]]).reason
    # A subset of joints may move, but end-effector checks need all of them.
    assert shield.check_trajectory(["elbow"], [2.0], [[-0.8]], start=[-1.0]).ok
    assert "missing ['shoulder', 'yaw']" in shield.check_trajectory(["elbow"], [2.0], [[-0.8]], None, toy_fk).reason
    # The segment from the current positions counts: 1 rad in 0.5 s is too fast for the yaw.
    verdict = shield.check_trajectory(TOY_JOINTS, [0.5], [SAFE_POSE + [1.0, 0, 0]], start=SAFE_POSE)
    assert not verdict.ok and "yaw needs 2.0000 rad/s" in verdict.reason
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0, 2.0], [SAFE_POSE, SAFE_POSE], start=SAFE_POSE + [0.1, 0, 0])
    assert not verdict.ok and "first point at time 0 is 0.1000 away from the current yaw" in verdict.reason
    verdict = shield.check_trajectory(TOY_JOINTS, [2.0], [SAFE_POSE], start=[0.0, 0.3, 1.0])
    assert not verdict.ok and "start: elbow=1.0000 outside limits" in verdict.reason


def test_workspace_exit_between_waypoints_is_refused(shield: SafetyShield) -> None:
    # Every waypoint is well above the table; the spline between them dips below it.
    up = np.array([0.0, 0.3, -1.0])
    assert toy_fk(up)[2] > 0.0
    times = [0.0, 4.0, 8.0]
    q = np.array([up, up + [0.0, 0.0, -0.2], up])
    velocities = np.array([np.zeros(3), [0.0, -0.6, -0.4], np.zeros(3)])
    trajectory = Trajectory(TOY_JOINTS, np.array(times), q, velocities)
    dips = min(toy_fk(sample(trajectory, up, t)[0])[2] for t in np.linspace(0, 8, 801))
    assert all(toy_fk(p)[2] > 0.05 for p in q) and dips < 0.0
    verdict = shield.check_trajectory(TOY_JOINTS, times, q, velocities, toy_fk)
    assert not verdict.ok and "leaves the workspace" in verdict.reason


@pytest.mark.parametrize("goal, zone", [(np.array([0.45, 0.05, -0.3]), "block"),
                                        (np.array([-0.65, 0.4, -0.95]), "post")])
def test_keep_out_zones_are_refused(shield: SafetyShield, goal: np.ndarray, zone: str) -> None:
    end = SAFE_POSE + goal
    tip = toy_fk(end)
    assert toy_limits().arm.keep_out[0 if zone == "block" else 1].contains(tip)
    times, q, qd = slow_move(end, 8.0)
    verdict = shield.check_trajectory(TOY_JOINTS, times, q, qd, toy_fk)
    assert not verdict.ok and f"enters keep-out zone '{zone}'" in verdict.reason


def test_bad_forward_kinematics_is_refused(shield: SafetyShield) -> None:
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0], [SAFE_POSE], None, lambda q: np.array([0.5, math.nan, 0.1]))
    assert not verdict.ok and "expected a finite xyz" in verdict.reason
    jumpy = SafetyShield(toy_limits()).check_trajectory(
        TOY_JOINTS, [0.0, 2.0], [SAFE_POSE, SAFE_POSE + [0.2, 0, 0]], None,
        lambda q: np.array([0.5, 0.0, 0.3 if q[0] < 0.1 else 0.5]))
    assert not jumpy.ok and "discontinuous" in jumpy.reason


# --- bounded checks ---------------------------------------------------------------------------------


class CountingFk:
    """The toy arm's forward kinematics, counting calls and failing once a test's bound is passed."""

    def __init__(self, bound: int, wiggle: float = 0.0) -> None:
        self.calls = 0
        self.bound = bound
        self.wiggle = wiggle

    def __call__(self, q: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls > self.bound:
            raise ValueError(f"more than {self.bound} forward-kinematics calls")
        # A fast ripple makes every end-effector chord longer than the margin down to tiny steps.
        return toy_fk(q) + self.wiggle * np.array([math.sin(1e5 * q[0]), 0.0, 0.0])


@pytest.mark.parametrize("times, reason", [
    ([2147483647.0], "trajectory lasts 2147483647.000 s, longer than max_duration_s 60.0"),
    ([3000.0], "trajectory lasts 3000.000 s, longer than max_duration_s 60.0"),
    (np.linspace(0.001, 59.0, 100_000), "trajectory has 100000 points, more than max_points 2000"),
], ids=["int32_seconds", "fifty_minutes", "many_points"])
def test_long_or_large_trajectories_are_refused_before_any_sampling(shield, times, reason) -> None:
    fk = CountingFk(bound=0)
    q = np.tile(SAFE_POSE, (len(times), 1))
    verdict = shield.check_trajectory(TOY_JOINTS, times, q, None, fk, start=SAFE_POSE)
    assert verdict == Verdict(False, reason)
    assert fk.calls == 0


def test_end_effector_check_makes_a_bounded_number_of_samples(shield: SafetyShield) -> None:
    # The ripple makes bisection take some 3,200 samples of this 4 s move; the bound stops it at 1,000.
    limits = toy_limits()
    bounded = SafetyShield(dataclasses.replace(limits, arm=dataclasses.replace(limits.arm, max_ee_samples=1000)))
    times, q, qd = slow_move(SAFE_POSE + [0.2, 0.1, 0.1])
    fk = CountingFk(bound=10_000, wiggle=0.02)
    assert shield.check_trajectory(TOY_JOINTS, times, q, qd, fk).ok and fk.calls > 3000
    fk = CountingFk(bound=10_000, wiggle=0.02)
    verdict = bounded.check_trajectory(TOY_JOINTS, times, q, qd, fk)
    assert verdict == Verdict(False, "certifying the end-effector path needs more than max_ee_samples 1000 "
                                     "forward-kinematics samples")
    assert fk.calls == 1000
    # The sampling grid alone may not pass the bound either.
    fk = CountingFk(bound=0)
    verdict = SafetyShield(limits, sample_rate_hz=1e6).check_trajectory(TOY_JOINTS, times, q, qd, fk)
    assert verdict == Verdict(False, "sampling 4.000 s at 1000000.0 Hz needs more than max_ee_samples 10000 samples")
    assert fk.calls == 0
    # A smooth move takes a small part of the default bound.
    fk = CountingFk(bound=10_000)
    assert shield.check_trajectory(TOY_JOINTS, times, q, qd, fk).ok and fk.calls < 1000


def test_emergency_stop_during_a_check_ends_it_at_the_next_sample(shield: SafetyShield) -> None:
    times, q, qd = slow_move(SAFE_POSE + [0.2, 0.0, 0.0])
    fk = CountingFk(bound=10_000)

    def stop_at_the_tenth(joints: np.ndarray) -> np.ndarray:
        if fk.calls == 9:
            shield.engage()
        return fk(joints)

    assert shield.check_trajectory(TOY_JOINTS, times, q, qd, stop_at_the_tenth) == Verdict(False, ESTOP_REASON)
    assert fk.calls == 10


def test_default_bounds_pass_files_without_them_and_are_read_from_files() -> None:
    document = yaml.safe_load((CONFIG / "panda_tabletop.yaml").read_text())
    for key in ("max_duration_s", "max_points", "max_ee_samples"):
        document["arm"].pop(key)
    assert parse_safety_limits(document).arm.max_points == 2000
    document["arm"].update(max_duration_s=5.0, max_points=3, max_ee_samples=7)
    arm = parse_safety_limits(document).arm
    assert (arm.max_duration_s, arm.max_points, arm.max_ee_samples) == (5.0, 3, 7)


# --- start from the measured state ----------------------------------------------------------------


def test_first_segment_starts_at_the_measured_velocity(shield: SafetyShield) -> None:
    # The path starts where the joints were measured, 0.1 s ahead, at rest: fine from rest, but
    # the yaw moving at 0.2 rad/s must stop within 0.1 s: 4 * 0.2 / 0.1 = 8 rad/s^2 at the start.
    times, q, qd = [0.1, 2.1], np.array([SAFE_POSE, SAFE_POSE + [0.3, 0, 0]]), np.zeros((2, 3))
    qd[0] = 0.0
    assert shield.check_trajectory(TOY_JOINTS, times, q, qd, start=SAFE_POSE).ok
    moving = [0.2, 0.0, 0.0]
    verdict = shield.check_trajectory(TOY_JOINTS, times, q, qd, start=SAFE_POSE, start_velocity=moving)
    assert verdict == Verdict(False, "segment 0->1: yaw needs 8.0000 rad/s^2, limit 3.0000")
    # Linear segments: the jump from the measured velocity to the first segment's speed.
    line = [1.0], [SAFE_POSE + [0.5, 0, 0]]
    assert shield.check_trajectory(TOY_JOINTS, *line, start=SAFE_POSE).ok
    verdict = shield.check_trajectory(TOY_JOINTS, *line, start=SAFE_POSE, start_velocity=[-1.2, 0, 0])
    assert verdict == Verdict(False, "at point 0: yaw needs 3.4000 rad/s^2, limit 3.0000")
    # A point at time 0 must continue the measured motion.
    verdict = shield.check_trajectory(TOY_JOINTS, [0.0, 2.0], q, qd, start=SAFE_POSE, start_velocity=moving)
    assert verdict == Verdict(False, "first point at time 0 must be at the measured velocity 0.2000, yaw has "
                                     "velocity 0.0000")
    assert "start velocity has shape (2,)" in shield.check_trajectory(
        TOY_JOINTS, times, q, qd, start=SAFE_POSE, start_velocity=[0.0, 0.0]).reason
    assert "NaN or infinite" in shield.check_trajectory(
        TOY_JOINTS, times, q, qd, start=SAFE_POSE, start_velocity=[math.nan, 0.0, 0.0]).reason


# --- gripper, twist, emergency stop ---------------------------------------------------------------


def test_gripper(shield: SafetyShield) -> None:
    assert shield.check_gripper(0.04).ok and shield.check_gripper(0.0).ok and shield.check_gripper(0.08).ok
    assert shield.check_gripper(0.09).reason == "gripper opening 0.0900 m outside [0.0000, 0.0800]"
    assert "finite number" in shield.check_gripper(math.nan).reason
    husky = SafetyShield(load_safety_limits(CONFIG / "husky_base.yaml"))
    assert husky.check_gripper(0.01).reason == "husky_base has no gripper limits configured"
    assert "no arm limits" in husky.check_trajectory(["panda_joint1"], [1.0], [[0.0]]).reason


def test_twist(shield: SafetyShield) -> None:
    assert shield.check_twist(0.5, -1.0).ok
    assert shield.check_twist(1.2, 0.0).reason == "linear speed 1.200 m/s exceeds limit 1.000"
    assert shield.check_twist(0.0, -2.5).reason == "angular speed -2.500 rad/s exceeds limit 2.000"
    assert shield.check_twist(0.5, 0.0, (0.4, 0.0), 0.1).ok
    assert shield.check_twist(0.5, 0.0, (0.0, 0.0), 0.1).reason == "linear acceleration 5.000 m/s^2 exceeds limit 1.500"
    assert "angular acceleration" in shield.check_twist(0.0, 1.0, (0.0, 0.0), 0.1).reason
    # Braking towards zero always passes; reversing through zero does not.
    assert shield.check_twist(0.0, 0.0, (1.0, 2.0), 0.01).ok
    assert shield.check_twist(0.2, -0.5, (1.0, -2.0), 0.01).ok
    assert not shield.check_twist(-0.2, 0.0, (1.0, 0.0), 0.01).ok
    assert shield.check_twist(0.5, 0.0, (0.4, 0.0)).reason == "previous twist and dt must be given together"
    assert "dt must be a positive" in shield.check_twist(0.5, 0.0, (0.4, 0.0), 0.0).reason
    assert "finite" in shield.check_twist(math.inf, 0.0).reason


def test_emergency_stop_refuses_everything(shield: SafetyShield) -> None:
    times, q, qd = slow_move(SAFE_POSE + [0.1, 0.0, 0.0])
    shield.engage()
    assert shield.engaged
    for verdict in (shield.check_trajectory(TOY_JOINTS, times, q, qd, toy_fk), shield.check_gripper(0.04),
                    shield.check_twist(0.0, 0.0)):
        assert verdict == Verdict(False, ESTOP_REASON)
    shield.release()
    assert not shield.engaged
    assert shield.check_trajectory(TOY_JOINTS, times, q, qd, toy_fk).ok and shield.check_twist(0.0, 0.0).ok


# --- properties -----------------------------------------------------------------------------------

LIMITS = toy_limits()
SHIELD = SafetyShield(LIMITS)
TEST_RATE_HZ = 400.0


def violations(times: np.ndarray, q: np.ndarray, qd: np.ndarray | None, start: np.ndarray,
               start_velocity: np.ndarray) -> list[str]:
    """Return every limit the executed motion breaks, found by sampling it densely and independently.

    The motion leaves `start` at `start_velocity`: the first segment is written out from time 0.
    """
    arm = LIMITS.arm
    if times[0] > 0.0:
        trajectory = Trajectory(TOY_JOINTS, np.concatenate(([0.0], times)), np.vstack((start, q)),
                                np.vstack((start_velocity, qd)) if qd is not None else None)
    else:
        trajectory = Trajectory(TOY_JOINTS, times, q, qd)
    grid = np.union1d(np.arange(0.0, times[-1], 1.0 / TEST_RATE_HZ), times)
    samples = [sample(trajectory, start, t) for t in grid]
    positions = np.array([p for p, _ in samples])
    speeds = np.array([v for _, v in samples])
    found = []
    eps = 1e-9
    if np.any(positions < arm.lower - eps) or np.any(positions > arm.upper + eps):
        found.append("position")
    if np.any(np.abs(speeds) > arm.velocity + eps):
        found.append("velocity")
    if qd is not None:
        # Mean value theorem: each finite difference of the smooth velocity is an attained acceleration.
        accel = np.abs(np.diff(speeds, axis=0)) / np.diff(grid)[:, None]
        if np.any(accel > arm.acceleration + 1e-6):
            found.append("acceleration")
        if np.any(qd[-1] != 0.0) or (times[0] == 0.0 and np.any(np.abs(qd[0] - start_velocity) > 0.01)):
            found.append("velocity jump from the start or to rest")
    else:
        # Velocity jumps at waypoints, spread over half of each adjacent segment, from and to rest.
        knots = np.concatenate(([0.0], times)) if times[0] > 0 else times
        path = np.vstack((start, q)) if times[0] > 0 else q
        if len(knots) > 1:
            dt = np.diff(knots)
            seg = np.diff(path, axis=0) / dt[:, None]
            for k in range(len(knots)):
                before = seg[k - 1] if k > 0 else start_velocity
                after = seg[k] if k < len(seg) else np.zeros(3)
                window = ((dt[k - 1] if k > 0 else 0.0) + (dt[k] if k < len(dt) else 0.0)) / 2
                if np.any(np.abs(after - before) / window > arm.acceleration + eps):
                    found.append("acceleration")
    for joints in positions:
        tip = toy_fk(joints)
        if not arm.workspace.contains(tip) or any(zone.contains(tip) for zone in arm.keep_out):
            found.append("end effector")
            break
    return found


@st.composite
def trajectories(draw, near: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Draw (times, positions, velocities or None, start, start velocity), near SAFE_POSE or anywhere.

    Near SAFE_POSE the arm starts at rest; anywhere, it is often still moving.
    """
    n = draw(st.integers(1, 4))
    if near:
        offsets = st.tuples(*(st.floats(-0.15, 0.15) for _ in range(3)))
        q = np.array([SAFE_POSE + np.array(draw(offsets)) for _ in range(n)])
        gaps = draw(st.lists(st.floats(1.5, 3.0), min_size=n, max_size=n))
        start = SAFE_POSE.copy()
    else:
        # A random walk from near the safe pose reaches every limit often without breaking all of them.
        start = SAFE_POSE + np.array(draw(st.tuples(*(st.floats(-0.3, 0.3) for _ in range(3)))))
        steps = np.array([draw(st.tuples(*(st.floats(-0.8, 0.8) for _ in range(3)))) for _ in range(n)])
        q = start + np.cumsum(steps, axis=0)
        gaps = draw(st.lists(st.floats(0.2, 2.5), min_size=n, max_size=n))
    times = np.cumsum(gaps)
    if draw(st.booleans()):
        times = times - times[0]
        start = q[0].copy()
    qd = None
    if draw(st.booleans()):
        scale = 0.05 if near else 1.2
        qd = np.array([draw(st.tuples(*(st.floats(-scale, scale) for _ in range(3)))) for _ in range(n)])
        # Mostly rest-to-rest, as planners send; sometimes not, which the shield must refuse.
        if near or draw(st.integers(0, 3)) > 0:
            qd[-1] = 0.0
            if times[0] == 0.0:
                qd[0] = 0.0
    start_velocity = np.zeros(3)
    if not near and draw(st.booleans()):
        start_velocity = np.array(draw(st.tuples(*(st.floats(-0.6, 0.6) for _ in range(3)))))
    return times, q, qd, start, start_velocity


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trajectories(near=False))
def test_nothing_outside_the_limits_is_accepted(trajectory) -> None:
    times, q, qd, start, start_velocity = trajectory
    verdict = SHIELD.check_trajectory(TOY_JOINTS, times, q, qd, toy_fk, start, start_velocity)
    if verdict.ok:
        assert violations(times, q, qd, start, start_velocity) == []
    else:
        assert verdict.reason


@settings(max_examples=100, deadline=None)
@given(trajectories(near=True))
def test_clearly_inside_trajectories_are_accepted(trajectory) -> None:
    times, q, qd, start, start_velocity = trajectory
    verdict = SHIELD.check_trajectory(TOY_JOINTS, times, q, qd, toy_fk, start, start_velocity)
    assert verdict.ok, verdict.reason


@settings(max_examples=200, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(-5.0, 5.0),
       st.one_of(st.none(), st.tuples(st.floats(-1.0, 1.0), st.floats(-2.0, 2.0))), st.floats(0.01, 0.5))
def test_twists_outside_the_limits_are_refused(linear, angular, previous, dt) -> None:
    base = LIMITS.base
    verdict = SHIELD.check_twist(linear, angular, previous, dt if previous is not None else None)
    within = abs(linear) <= base.linear and abs(angular) <= base.angular
    if previous is not None:
        for new, old, limit in ((linear, previous[0], base.linear_accel), (angular, previous[1], base.angular_accel)):
            braking = new * old >= 0.0 and abs(new) <= abs(old)
            within = within and (braking or abs(new - old) / dt <= limit)
    assert verdict.ok == within, verdict.reason


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(-0.1, 0.2), st.just(math.nan)))
def test_gripper_openings_outside_the_range_are_refused(opening) -> None:
    assert SHIELD.check_gripper(opening).ok == (0.0 <= opening <= 0.08)
