"""What skills need from the robot and the world, as Protocols the skill server implements over ROS.

Skills never import rclpy or a simulator: the skill server (or a test) passes objects that satisfy
these Protocols, plus the arm's kinematics (`motion.kinematics.ArmKinematics`), in a `SkillContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.navigation.geometry import OccupancyMap
from modular_robot.core.robot_model import PANDA_MAX_OPENING
from modular_robot.core.transforms import Transform
from modular_robot.motion.kinematics import ArmKinematics
from modular_robot.motion.timing import TimedPath


@dataclass(frozen=True)
class MotionResult:
    """The outcome of a commanded motion, judged by the robot side from measured joint states.

    Attributes:
        success: Whether the motion reached its goal.
        reason: Why it did not ("" on success).
    """

    success: bool
    reason: str = ""


class ArmInterface(Protocol):
    """An arm with a parallel gripper, as seen through joint_states and its controllers."""

    def joint_positions(self) -> np.ndarray:
        """Return the measured arm joint positions, in the kinematics' `joint_names` order."""
        ...

    def execute(self, joint_names: Sequence[str], path: TimedPath) -> MotionResult:
        """Send a timed joint trajectory and block until it is reached, fails or is cancelled."""
        ...

    def set_gripper(self, opening: float) -> MotionResult:
        """Command the distance between the fingers (m) and block until the fingers stop."""
        ...

    def gripper_opening(self) -> float:
        """Return the measured distance between the fingers (m)."""
        ...

    def pause(self, seconds: float) -> MotionResult:
        """Hold the arm and gripper as last commanded for `seconds` of robot time; fails when cancelled."""
        ...


class WorldModel(Protocol):
    """The semantic map: objects in the world frame, as perception last saw them."""

    def lookup(self, object_id: str) -> MapObject | None:
        """Return the object with this id, or None when the map does not know it."""
        ...

    def objects(self) -> list[MapObject]:
        """Return every known object."""
        ...

    def refresh(self, timeout_s: float) -> bool:
        """Block until the map reflects an observation made after this call; return whether one came."""
        ...

    def find(self, text: str, max_results: int) -> list[tuple[MapObject, float]]:
        """Return the known objects that best match a description, best first, with scores in [0, 1]."""
        ...


class BaseInterface(Protocol):
    """A differential-drive mobile base, as seen through TF, odom, cmd_vel and the occupancy grid."""

    def pose(self) -> tuple[float, float, float] | None:
        """Return the base's (x, y, yaw) in the world frame, or None when it is not localised."""
        ...

    def send_velocity(self, linear: float, angular: float) -> None:
        """Command a forward speed (m/s) and turn rate (rad/s) until the next command."""
        ...

    def stop(self) -> None:
        """Command zero velocity."""
        ...

    def occupancy(self) -> OccupancyMap | None:
        """Return the latest occupancy grid, or None before the first one."""
        ...

    def wait(self, seconds: float) -> bool:
        """Let `seconds` of robot time pass; return False when the skill was cancelled and must stop."""
        ...


class Speech(Protocol):
    """A way to talk to the user (chat/robot topic, text-to-speech)."""

    def say(self, text: str) -> None:
        """Send text to the user."""
        ...


def _ignore_progress(phase: str, fraction: float) -> None:
    """Progress sink of a context that reports nowhere."""


@dataclass
class SkillContext:
    """Everything a skill may act through.

    Attributes:
        arm: The arm and gripper; None on a robot without an arm.
        world: The semantic map.
        speech: The user-facing voice.
        kinematics: The arm's kinematics, poses in its base frame; None without an arm.
        arm_base_from_world: Maps world-frame points into the arm's base frame. The base is assumed
            upright (rotation about z only), as top-down grasps need. Identity for panda_tabletop.
        velocity_scale: Fraction of the URDF's joint velocity limits that skills move at.
        max_opening: Widest finger opening (m).
        home: Arm joint positions of `move_arm_home`; the kinematics' rest pose if None.
        base: The mobile base; None on a fixed robot.
        base_radius: Radius of a circle around the base's footprint (m): the planner keeps it off obstacles.
        base_linear_speed: Forward speed the base drives at (m/s).
        base_angular_speed: Turn rate the base turns at (rad/s).
        progress: Called with a phase description and the fraction of the skill done.
    """

    arm: ArmInterface | None
    world: WorldModel
    speech: Speech
    kinematics: ArmKinematics | None
    arm_base_from_world: Transform = field(default_factory=Transform.identity)
    velocity_scale: float = 0.5
    max_opening: float = PANDA_MAX_OPENING
    home: Sequence[float] | None = None
    base: BaseInterface | None = None
    base_radius: float = 0.55
    base_linear_speed: float = 0.5
    base_angular_speed: float = 1.0
    progress: Callable[[str, float], None] = _ignore_progress
