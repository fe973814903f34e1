"""The navigate_to skill: drive the mobile base up to an object or to a pose.

It plans on the latest occupancy grid before moving, so an unknown object, a goal in an obstacle or
a goal with no path is refused with no motion; then it drives (`skills.driving`). What the skill
observes is its own pose; that the robot is near the object is for perception to confirm.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from modular_robot.skills.base import OBJECT_ID_PATTERN, SkillResult, refuse, skill
from modular_robot.skills.driving import Cancelled, Target, drive, object_box, rounded
from modular_robot.skills.interfaces import SkillContext


class NavigateParams(BaseModel):
    """Parameters of `navigate_to`: exactly one of `object` or `pose`."""

    model_config = ConfigDict(extra="forbid")
    object: str | None = Field(
        None, min_length=1, max_length=128, pattern=OBJECT_ID_PATTERN,
        description="Id of the object to drive up to, as in the semantic map (e.g. 'red_cube_1'): the base "
                    "stops facing it with its front bumper about 15 cm from it. Give exactly one of 'object' "
                    "or 'pose'.")
    pose: list[FiniteFloat] | None = Field(
        None, min_length=2, max_length=3,
        description="Goal of the base in the world frame: [x, y] in metres, or [x, y, yaw] with the final "
                    "heading in radians (x forward from the robot's start, y left, yaw counter-clockwise from "
                    "x). Give exactly one of 'object' or 'pose'.")

    @model_validator(mode="after")
    def _exactly_one_goal(self) -> NavigateParams:
        if (self.object is None) == (self.pose is None):
            given = "both" if self.object is not None else "neither"
            raise ValueError(f"give exactly one of 'object' (a map id) or 'pose' ([x, y] or [x, y, yaw]); got {given}")
        return self


def navigate_to(params: NavigateParams, ctx: SkillContext) -> SkillResult:
    """Drive the mobile base to an object (stopping in front of it, facing it) or to a pose in the world frame.

    Plans a collision-free path on the occupancy grid first and refuses without moving when the
    object is unknown or no path exists. While driving it stops for obstacles on the path ahead and
    replans. Succeeds when the base reached the goal; that it is near the object is unverified.
    """
    if params.object is not None:
        obj = ctx.world.lookup(params.object)
        if obj is None:
            return refuse(f"unknown object '{params.object}': it is not in the semantic map")
        target = Target(f"'{params.object}'", object_id=params.object, box=object_box(obj))
        unverified = [f"robot_near({params.object})"]
    else:
        x, y = params.pose[0], params.pose[1]
        yaw = params.pose[2] if len(params.pose) == 3 else None
        target = Target(f"({x:.2f}, {y:.2f})", position=(x, y), yaw=yaw)
        unverified = [f"robot_at({rounded(params.pose)})"]
    try:
        outcome = drive(ctx, target)
    except Cancelled:
        return SkillResult(False, "cancelled", {"moved": True})
    if not outcome.success and not outcome.moved:
        return refuse(outcome.reason)
    effects: dict[str, Any] = {"moved": outcome.moved, "observed": outcome.observed}
    if outcome.success:
        effects["unverified"] = unverified
    return SkillResult(outcome.success, outcome.reason, effects)


NAVIGATE_TO = skill("navigate_to", navigate_to, NavigateParams, ("known(object)",),
                    ("robot_near(object)", "robot_at(pose)"), requires=("base",))
