"""Ground-truth state of a simulated world, as the evaluator sees it.

The simulator fills these records; scenario predicates read them. The stack never sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class ObjectState:
    """Pose and extent of one scenario object in the world frame.

    Attributes:
        id: Scenario id of the object.
        type: Scenario type (cube, cylinder, sphere, duck, tray, bowl, table, or a URDF path).
        color: Named colour, or None.
        position: Base position of the body (m), world frame.
        orientation: Unit quaternion (x, y, z, w), world frame.
        aabb_min: Lower corner of the world-axis-aligned bounding box (m).
        aabb_max: Upper corner of the world-axis-aligned bounding box (m).
    """

    id: str
    type: str
    color: str | None
    position: Vec3
    orientation: tuple[float, float, float, float]
    aabb_min: Vec3
    aabb_max: Vec3

    @property
    def center(self) -> Vec3:
        """Centre of the bounding box."""
        return tuple((lo + hi) / 2.0 for lo, hi in zip(self.aabb_min, self.aabb_max))  # type: ignore[return-value]

    @property
    def up_z(self) -> float:
        """World z component of the object's local z axis (1.0 when upright)."""
        x, y, _, _ = self.orientation
        return 1.0 - 2.0 * (x * x + y * y)


@dataclass(frozen=True)
class RobotState:
    """Ground-truth base pose of the robot and what its gripper holds.

    Attributes:
        position: Base position (m), world frame.
        yaw: Base heading (rad), world frame.
        holding: Id of the object held between the fingers, or None.
    """

    position: Vec3
    yaw: float
    holding: str | None = None


@dataclass
class WorldState:
    """A snapshot of the world for predicate evaluation.

    Attributes:
        objects: Object states by scenario id.
        robot: The robot's state.
        replies: The robot's chat replies, one list of strings per command sent (in order).
    """

    objects: dict[str, ObjectState]
    robot: RobotState
    replies: list[list[str]] = field(default_factory=list)
