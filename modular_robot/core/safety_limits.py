"""What a robot may do: the limits in its safety file (config/safety/<kind>.yaml), read and checked.

Joint limits (position, velocity, acceleration), the end effector's workspace and keep-out zones,
the gripper's range and the base's velocity and acceleration limits, with the bounds of one
trajectory check. A file with a missing, unknown or ill-typed key is refused with its path and the
key, never half-read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# Bounds of one trajectory check, for limit files that do not set them. The skills' longest motion
# (a joint move across the whole range at the slowest velocity scale) takes well under 20 s and
# carries a waypoint every 0.1 s plus three per segment.
DEFAULT_MAX_DURATION_S = 60.0
DEFAULT_MAX_POINTS = 2000
DEFAULT_MAX_EE_SAMPLES = 10000


def is_finite_number(value: Any) -> bool:
    """Return whether a value read from a file or a message is a finite number (a bool is not)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


class SafetyConfigError(ValueError):
    """A safety limits file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, eq=False)
class BoxZone:
    """An axis-aligned box in the robot base frame."""

    name: str
    lower: np.ndarray
    upper: np.ndarray

    def contains(self, point: np.ndarray, grow: float = 0.0) -> bool:
        """Return whether the point lies inside the box grown by `grow` on every side."""
        return bool(np.all(point >= self.lower - grow) and np.all(point <= self.upper + grow))


@dataclass(frozen=True, eq=False)
class CylinderZone:
    """A vertical cylinder in the robot base frame."""

    name: str
    center: np.ndarray
    radius: float
    z_min: float
    z_max: float

    def contains(self, point: np.ndarray, grow: float = 0.0) -> bool:
        """Return whether the point lies inside the cylinder grown by `grow` radially and vertically."""
        radial = math.hypot(point[0] - self.center[0], point[1] - self.center[1])
        return radial <= self.radius + grow and self.z_min - grow <= point[2] <= self.z_max + grow


@dataclass(frozen=True, eq=False)
class ArmLimits:
    """Joint limits, the end-effector workspace and keep-out zones of an arm.

    Attributes:
        joint_names: Arm joints in the order forward kinematics takes them.
        lower: Lower position limits (rad), shape (J,).
        upper: Upper position limits (rad), shape (J,).
        velocity: Speed limits (rad/s), shape (J,).
        acceleration: Acceleration limits (rad/s^2), shape (J,).
        workspace: Box the end effector must stay inside.
        keep_out: Zones the end effector must stay out of.
        ee_margin: Distance (m) kept from the workspace faces and keep-out zones; also the largest
            end-effector step between checked samples.
        max_duration_s: Longest trajectory accepted (s).
        max_points: Most waypoints a trajectory may have.
        max_ee_samples: Most forward-kinematics evaluations one end-effector check may make.
    """

    joint_names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    workspace: BoxZone
    keep_out: tuple[BoxZone | CylinderZone, ...]
    ee_margin: float
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    max_points: int = DEFAULT_MAX_POINTS
    max_ee_samples: int = DEFAULT_MAX_EE_SAMPLES


@dataclass(frozen=True)
class GripperLimits:
    """Allowed gripper opening (m between the fingers)."""

    min_opening: float
    max_opening: float


@dataclass(frozen=True)
class BaseTwistLimits:
    """Velocity and acceleration limits of a mobile base's twist commands."""

    linear: float
    angular: float
    linear_accel: float
    angular_accel: float


@dataclass(frozen=True)
class SafetyLimits:
    """Every limit the shield enforces for one robot; absent parts mean the robot has no such part.

    Attributes:
        robot: Robot kind the limits are for.
        frame: Frame the workspace and keep-out zones are expressed in (the arm's base link).
        arm: Arm limits, or None for a robot without an arm.
        gripper: Gripper limits, or None for a robot without a gripper.
        base: Base twist limits, or None for a robot without a mobile base.
    """

    robot: str
    frame: str
    arm: ArmLimits | None
    gripper: GripperLimits | None
    base: BaseTwistLimits | None

_TOP_KEYS = {"robot", "frame", "arm", "gripper", "base"}
_ARM_KEYS = {"joints", "workspace", "keep_out", "ee_margin", "max_duration_s", "max_points", "max_ee_samples"}
_JOINT_KEYS = {"lower", "upper", "velocity", "acceleration"}
_GRIPPER_KEYS = {"min_opening", "max_opening"}
_BASE_KEYS = {"linear", "angular", "linear_accel", "angular_accel"}
_BOX_KEYS = {"name", "type", "min", "max"}
_CYLINDER_KEYS = {"name", "type", "center", "radius", "z_min", "z_max"}


class _Reader:
    """Read typed values from a parsed YAML document, with errors naming the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> SafetyConfigError:
        return SafetyConfigError(f"{self.source}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(map(str, set(value) - allowed))
        if unknown:
            raise self.fail(key, f"unknown keys {unknown}; allowed: {sorted(allowed)}")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(key, f"missing keys {missing}")
        return value

    def number(self, value: Any, key: str, positive: bool = False) -> float:
        if not is_finite_number(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if positive and value <= 0.0:
            raise self.fail(key, f"must be positive, got {value}")
        return float(value)

    def count(self, value: Any, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key, f"must be a positive integer, got {value!r}")
        return value

    def vector(self, value: Any, key: str, length: int) -> np.ndarray:
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(key, f"must be a list of {length} numbers, got {value!r}")
        return np.array([self.number(v, f"{key}[{i}]") for i, v in enumerate(value)])

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value


def parse_safety_limits(document: Any, source: str = "<string>") -> SafetyLimits:
    """Build safety limits from a parsed YAML document.

    Raises:
        SafetyConfigError: naming the source and the key of the first problem found.
    """
    read = _Reader(source)
    top = read.mapping(document, "<top>", _TOP_KEYS, {"robot", "frame"})
    if not {"arm", "gripper", "base"} & set(top):
        raise read.fail("<top>", "at least one of 'arm', 'gripper', 'base' must be given")
    arm = _parse_arm(read, top["arm"]) if "arm" in top else None
    gripper = None
    if "gripper" in top:
        g = read.mapping(top["gripper"], "gripper", _GRIPPER_KEYS, _GRIPPER_KEYS)
        low = read.number(g["min_opening"], "gripper.min_opening")
        high = read.number(g["max_opening"], "gripper.max_opening")
        if not 0.0 <= low <= high:
            raise read.fail("gripper", f"need 0 <= min_opening <= max_opening, got {low} and {high}")
        gripper = GripperLimits(low, high)
    base = None
    if "base" in top:
        b = read.mapping(top["base"], "base", _BASE_KEYS, _BASE_KEYS)
        base = BaseTwistLimits(*(read.number(b[k], f"base.{k}", positive=True)
                                 for k in ("linear", "angular", "linear_accel", "angular_accel")))
    return SafetyLimits(read.string(top["robot"], "robot"), read.string(top["frame"], "frame"), arm, gripper, base)


def _parse_arm(read: _Reader, value: Any) -> ArmLimits:
    arm = read.mapping(value, "arm", _ARM_KEYS, {"joints", "workspace", "ee_margin"})
    joints = arm["joints"]
    if not isinstance(joints, dict) or not joints:
        raise read.fail("arm.joints", "must be a non-empty mapping of joint name to limits")
    rows = []
    for name, spec in joints.items():
        key = f"arm.joints.{name}"
        spec = read.mapping(spec, key, _JOINT_KEYS, _JOINT_KEYS)
        lower = read.number(spec["lower"], f"{key}.lower")
        upper = read.number(spec["upper"], f"{key}.upper")
        if lower >= upper:
            raise read.fail(key, f"lower {lower} must be below upper {upper}")
        rows.append((lower, upper, read.number(spec["velocity"], f"{key}.velocity", positive=True),
                     read.number(spec["acceleration"], f"{key}.acceleration", positive=True)))
    table = np.array(rows)
    margin = read.number(arm["ee_margin"], "arm.ee_margin", positive=True)
    workspace = _parse_box(read, arm["workspace"], "arm.workspace", named=False)
    if np.any(workspace.upper - workspace.lower <= 2 * margin):
        raise read.fail("arm.workspace", f"must be wider than twice ee_margin ({margin}) along every axis")
    keep_out_list = arm.get("keep_out", [])
    if not isinstance(keep_out_list, list):
        raise read.fail("arm.keep_out", "must be a list of zones")
    keep_out = []
    for i, zone in enumerate(keep_out_list):
        key = f"arm.keep_out[{i}]"
        kind = zone.get("type") if isinstance(zone, dict) else None
        if kind == "box":
            keep_out.append(_parse_box(read, zone, key, named=True))
        elif kind == "cylinder":
            zone = read.mapping(zone, key, _CYLINDER_KEYS, _CYLINDER_KEYS)
            z_min = read.number(zone["z_min"], f"{key}.z_min")
            z_max = read.number(zone["z_max"], f"{key}.z_max")
            if z_min >= z_max:
                raise read.fail(key, f"z_min {z_min} must be below z_max {z_max}")
            keep_out.append(CylinderZone(read.string(zone["name"], f"{key}.name"),
                                         read.vector(zone["center"], f"{key}.center", 2),
                                         read.number(zone["radius"], f"{key}.radius", positive=True), z_min, z_max))
        else:
            raise read.fail(f"{key}.type", f"must be 'box' or 'cylinder', got {kind!r}")
    max_duration = read.number(arm.get("max_duration_s", DEFAULT_MAX_DURATION_S), "arm.max_duration_s",
                               positive=True)
    max_points = read.count(arm.get("max_points", DEFAULT_MAX_POINTS), "arm.max_points")
    max_ee_samples = read.count(arm.get("max_ee_samples", DEFAULT_MAX_EE_SAMPLES), "arm.max_ee_samples")
    return ArmLimits(tuple(str(name) for name in joints), table[:, 0], table[:, 1], table[:, 2], table[:, 3],
                     workspace, tuple(keep_out), margin, max_duration, max_points, max_ee_samples)


def _parse_box(read: _Reader, value: Any, key: str, named: bool) -> BoxZone:
    keys = _BOX_KEYS if named else {"min", "max"}
    box = read.mapping(value, key, keys, keys)
    lower = read.vector(box["min"], f"{key}.min", 3)
    upper = read.vector(box["max"], f"{key}.max", 3)
    if np.any(lower >= upper):
        raise read.fail(key, f"min {lower.tolist()} must be below max {upper.tolist()} on every axis")
    return BoxZone(read.string(box["name"], f"{key}.name") if named else "workspace", lower, upper)


def load_safety_limits(path: str | Path) -> SafetyLimits:
    """Load a robot's safety limits from a YAML file.

    Raises:
        SafetyConfigError: if the file cannot be read or parsed, naming the file and the key.
    """
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SafetyConfigError(f"{path}: cannot read safety limits: {error}") from error
    return parse_safety_limits(document, str(path))
