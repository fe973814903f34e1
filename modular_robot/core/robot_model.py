"""The robots this stack knows: their parts, joint names, home poses, gripper and base dimensions.

One home for these facts, read by the simulator, motion planning, skills, critic and nodes alike, so a
real robot's bring-up never imports the simulator to learn its own joint names. What a robot may do
(joint limits, speeds, workspace) is not here but in its safety file (config/safety/<kind>.yaml),
which the shield and the trajectory timing both read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pybullet_data

PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
PANDA_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
# The Panda's rest posture: where move_arm_home goes, and the pull of its IK null space.
PANDA_HOME = (0.0, -0.5, 0.0, -2.2, 0.0, 1.7, 0.785)
# Widest distance between the Panda's fingers (m): both finger joints at their 0.04 m limit.
PANDA_MAX_OPENING = 0.08

HUSKY_WHEEL_JOINTS = ("front_left_wheel", "front_right_wheel", "rear_left_wheel", "rear_right_wheel")
HUSKY_WHEEL_RADIUS = 0.17775
HUSKY_TRACK = 0.5708
# Where the arm sits on the Husky: on the chassis top, ahead of centre, relative to base_link.
ARM_MOUNT_ON_HUSKY = (0.15, 0.0, 0.26)


@dataclass(frozen=True)
class RobotKind:
    """One kind of robot the stack drives.

    Attributes:
        name: The kind's name, as scenarios, stack files and the nodes' `robot` parameter spell it.
        parts: What it has: "arm" (a Panda with its gripper), "base" (a Husky), or both.
        stack: The stack file that drives it when none is named, relative to the package's data.
    """

    name: str
    parts: tuple[str, ...]
    stack: str

    @property
    def has_arm(self) -> bool:
        return "arm" in self.parts

    @property
    def has_base(self) -> bool:
        return "base" in self.parts


ROBOT_KINDS: dict[str, RobotKind] = {kind.name: kind for kind in (
    RobotKind("panda_tabletop", ("arm",), "config/stacks/sim_tabletop.yaml"),
    RobotKind("husky_base", ("base",), "config/stacks/sim_husky.yaml"),
    RobotKind("mobile_manipulator", ("arm", "base"), "config/stacks/sim_mobile_manipulator.yaml"),
)}


def robot_kind(name: str) -> RobotKind:
    """Return the kind called `name`; ValueError naming the known kinds otherwise."""
    if not isinstance(name, str) or name not in ROBOT_KINDS:
        raise ValueError(f"unknown robot kind {name!r} (known: {', '.join(ROBOT_KINDS)})")
    return ROBOT_KINDS[name]


def panda_urdf_path() -> str:
    """Return the Panda's URDF (pybullet_data's), which kinematics and the simulator both load."""
    return os.path.join(pybullet_data.getDataPath(), "franka_panda", "panda.urdf")
