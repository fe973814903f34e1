"""What the critic judges from: observed boxes, proprioception, frames; verdicts; who is who."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modular_robot.core.gripper import holding_bounds, is_irregular
from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.perception.types import SHAPES, Detection
from modular_robot.core.robot_model import PANDA_MAX_OPENING

# --- constants ------------------------------------------------------------------------------------

# A lifted object's observed top is at least this far above its top when it rested (m).
LIFT_MIN_M = 0.02
# A box this much taller than the object it stands for reaches down past it (m).
BOX_EXTENSION_SLACK_M = 0.01
# An observation this close (xy) to where another object of the same kind and a similar size (within
# this factor) was last known is that one.
CLAIM_SIZE_RATIO = 2.0
CLAIM_DISTANCE_M = 0.02

Reachable = Callable[[MapObject], "str | None"]
"""Returns why the arm cannot reach an object (for the skill at hand), or None when it can."""
Finder = Callable[[str], "Sequence[tuple[MapObject, float]]"]
"""Returns the map objects that match a description, best first, with scores in [0, 1]."""


# --- evidence -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedBox:
    """One object observation of one camera frame, in the world frame.

    Attributes:
        label: Readable label ("small red cube").
        category: Coarse shape or open-vocabulary class.
        color: Colour name, or None.
        position: Box centre (m).
        size: Extent along the box's x, y, z (m).
        yaw: Box rotation about z (rad).
        stamp_ns: Camera stamp of the frame it was seen in.
    """

    label: str
    category: str
    color: str | None
    position: np.ndarray
    size: np.ndarray
    yaw: float = 0.0
    stamp_ns: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", np.asarray(self.position, dtype=float).reshape(3))
        object.__setattr__(self, "size", np.asarray(self.size, dtype=float).reshape(3))

    @classmethod
    def from_detection(cls, detection: Detection, stamp_ns: int = 0) -> ObservedBox:
        """Return the box a perception Detection (e.g. from msg_to_detection) carries."""
        return cls(detection.label, detection.category, detection.color, detection.position, detection.size,
                   float(detection.yaw), stamp_ns)

    @property
    def top(self) -> float:
        return float(self.position[2] + self.size[2] / 2.0)

    @property
    def bottom(self) -> float:
        return float(self.position[2] - self.size[2] / 2.0)


@dataclass(frozen=True)
class Proprioception:
    """What the robot measures of itself, at one time. Unknown quantities are None.

    Attributes:
        stamp_ns: When it was measured.
        gripper_opening: Distance between the fingers (m): the sum of the two finger joints.
        gripper_speed: Sum of the two finger joints' speeds (m/s).
        gripper_command: The latest commanded finger opening (m), if one was seen.
        grasp_point: World position of the grasp centre (TF panda_grasptarget).
        arm_joints: Arm joint positions, in the kinematics' order.
        base_pose: (x, y, yaw) of base_link in the world frame; None when not localised.
        max_opening: Widest finger opening (m).
    """

    stamp_ns: int = 0
    gripper_opening: float | None = None
    gripper_speed: float | None = None
    gripper_command: float | None = None
    grasp_point: np.ndarray | None = None
    arm_joints: np.ndarray | None = None
    base_pose: tuple[float, float, float] | None = None
    max_opening: float = PANDA_MAX_OPENING

    def __post_init__(self) -> None:
        if self.grasp_point is not None:
            object.__setattr__(self, "grasp_point", np.asarray(self.grasp_point, dtype=float).reshape(3))
        if self.arm_joints is not None:
            object.__setattr__(self, "arm_joints", np.asarray(self.arm_joints, dtype=float).reshape(-1))


@dataclass(frozen=True)
class PerceptionFrame:
    """One camera frame's observations, with the robot's state at the frame's stamp where known.

    Attributes:
        stamp_ns: Camera stamp.
        boxes: Every object observed in the frame.
        robot: Proprioception at the stamp; the verdict's latest state stands in when None.
    """

    stamp_ns: int
    boxes: tuple[ObservedBox, ...] = ()
    robot: Proprioception | None = None


@dataclass(frozen=True)
class CriticVerdict:
    """A critic's judgement of one step.

    Attributes:
        ok: Whether the preconditions hold (pre) or the effects were observed (post).
        confidence: In [0, 1]: for post verdicts the weighted fraction of frames that support the effect.
        reason: What was measured, naming objects, distances and heights.
        observed: Whether the effect itself was seen. False for an ok post verdict that rests only on
            indirect evidence (an object hidden in the gripper, a target known only from the map):
            such a step is inferred, and a task built on it must not be reported as seen.
    """

    ok: bool
    confidence: float
    reason: str
    observed: bool = True


@dataclass
class FrameJudgement:
    supports: bool
    reason: str
    weight: float = 1.0
    # False where the frame does not show the object itself (hidden in the gripper).
    direct: bool = True


# --- small geometry -------------------------------------------------------------------------------


def arg(params: Any, name: str, default: Any = None) -> Any:
    """Return a call argument from a pydantic model, a mapping or an object with attributes."""
    if isinstance(params, Mapping):
        return params.get(name, default)
    return getattr(params, name, default)


# --- identity -------------------------------------------------------------------------------------


def same_kind(obj: MapObject, box: ObservedBox) -> bool:
    """Return whether an observation may be the map object: same colour and a compatible category.

    Colours must agree where both are named; without the observation's colour the category must
    agree exactly. The geometric detector's coarse shapes may stand for each other.
    """
    if obj.color and box.color:
        if obj.color != box.color:
            return False
    elif obj.color:
        return obj.category == box.category
    return obj.category == box.category or (obj.category in SHAPES and box.category in SHAPES)


def describe(obj: MapObject) -> str:
    return " ".join(w for w in (obj.color, obj.category) if w) or obj.label


def _claimed_by_other(box: ObservedBox, obj: MapObject, others: Iterable[MapObject]) -> MapObject | None:
    """Return another object of the same kind last known where the box is, which the box then shows."""
    for other in others:
        if other.id == obj.id or not same_kind(other, box) or not _similar_size(box, other):
            continue
        reach = max(CLAIM_DISTANCE_M, 0.25 * float(min(other.size[0], other.size[1])))
        if (math.dist(box.position[:2], other.position[:2]) <= reach
                and abs(box.top - (other.position[2] + other.size[2] / 2.0)) <= max(0.02, 0.5 * other.size[2])):
            return other
    return None


def _similar_size(box: ObservedBox, obj: MapObject) -> bool:
    """Return whether a box's footprint is within a factor CLAIM_SIZE_RATIO of an object's (a cube is not a tray)."""
    seen, known = float(max(box.size[0], box.size[1])), float(max(obj.size[0], obj.size[1]))
    return known / CLAIM_SIZE_RATIO <= seen <= known * CLAIM_SIZE_RATIO


def candidate_boxes(obj: MapObject, boxes: Iterable[ObservedBox], others: Iterable[MapObject],
                exclude: ObservedBox | None = None) -> list[ObservedBox]:
    others = list(others)
    return [b for b in boxes if b is not exclude and same_kind(obj, b) and _claimed_by_other(b, obj, others) is None]


def bottom_of(box: ObservedBox, height: float | None) -> float:
    """Return an object's bottom from its observed box; a box taller than the object reaches past it."""
    if height is not None and height > 0.0 and box.size[2] > height + BOX_EXTENSION_SLACK_M:
        return box.top - height
    return box.bottom


def object_width(obj: MapObject) -> float:
    return float(min(obj.size[0], obj.size[1]))


def holds(opening: float, obj: MapObject, max_opening: float = PANDA_MAX_OPENING) -> bool:
    """Return whether a finger opening shows the fingers closed on the object (core.gripper.holds)."""
    low, high = holding_bounds(object_width(obj), is_irregular(obj.category), max_opening)
    return low < opening <= high


def released(opening: float, obj: MapObject, max_opening: float) -> bool:
    """Return whether a finger opening shows the fingers opened off the object."""
    return opening > holding_bounds(object_width(obj), is_irregular(obj.category), max_opening)[1]


def cm(value: float) -> str:
    return f"{value * 100:.1f} cm"


def as_map(objects: Mapping[str, MapObject] | Iterable[MapObject] | None) -> dict[str, MapObject]:
    if objects is None:
        return {}
    if isinstance(objects, Mapping):
        return dict(objects)
    return {o.id: o for o in objects}


def xyz(p: Sequence[float]) -> str:
    return f"({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})"


def place_spot(params: Any) -> tuple[float, float] | None:
    """Return place_at's position as (x, y), or None unless it is two finite numbers."""
    position = arg(params, "position")
    try:
        x, y = (float(v) for v in position)
    except (TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None
