"""The skill library: typed parameters, declared conditions and execution over injected interfaces.

Every skill has a pydantic parameter model (its JSON Schema is what the planner sees and what
`validate_call` enforces), preconditions and effects as predicate strings over its parameter names
(`bind_predicates` grounds them in a call's arguments), and an `execute(params, ctx)` function.

Skills plan the whole motion before moving, so an unknown object, an unreachable pose or an object
too wide for the gripper is refused with no motion. A skill reports only what it observed itself
(joint and gripper states); world effects such as "the cube is in the tray" are listed as
unverified in `SkillResult.effects`, for the critic to confirm from fresh perception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError

from modular_robot.core.gripper import CLOSED_OPENING, holds, is_irregular
from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.robot_model import PANDA_MAX_OPENING
from modular_robot.core.transforms import quat_to_rpy
from modular_robot.motion.grasping import (
    PUSH_DIRECTIONS,
    RELEASE_SETTLE_S,
    WORLD_SURFACE_Z,
    GripperPose,
    PlacePlan,
    grasp_rejection,
    loosen_opening,
    place_pose,
    place_spots,
    push_plan,
    release_opening,
    top_down_grasp,
)
from modular_robot.motion.timing import interpolate_cartesian, time_parameterize
from modular_robot.skills.base import OBJECT_ID_PATTERN, CallError, Skill, SkillResult, bind_predicates, refuse, skill
from modular_robot.skills.interfaces import SkillContext
from modular_robot.skills.navigation import NAVIGATE_TO
from modular_robot.skills.search import SEARCH

RELATIONS = ("in", "on", "left_of", "right_of", "in_front_of", "behind", "near")
# Cuts per 10 cm straight-line move: IK every 2 cm keeps the line within millimetres.
CARTESIAN_STEPS = 5
# Gap between a target's side and the placed object's side for beside-relations (m).
BESIDE_GAP = 0.05
# Free spots in or on a target tried for a motion plan, nearest its centre first: neighbouring
# spots of a far or awkward target fail alike, and each failed plan costs IK time.
SPOT_TRIES = 24


class PickParams(BaseModel):
    """Parameters of `pick`."""

    model_config = ConfigDict(extra="forbid")
    object: str = Field(description="Id of the object to pick, as in the semantic map (e.g. 'red_cube_1').",
                        min_length=1, max_length=128, pattern=OBJECT_ID_PATTERN)


class PlaceParams(BaseModel):
    """Parameters of `place`."""

    model_config = ConfigDict(extra="forbid")
    object: str = Field(description="Id of the held object to put down.", min_length=1, max_length=128,
                        pattern=OBJECT_ID_PATTERN)
    relation: Literal[RELATIONS] = Field(  # type: ignore[valid-type]
        description="Where the object goes relative to the target: 'in' a container, 'on' a support, "
                    "beside it on the same surface (left_of, right_of, in_front_of, behind: in the "
                    "robot's view) or 'near' it.")
    target: str = Field(description="Id of the reference object (container, support or landmark).",
                        min_length=1, max_length=128, pattern=OBJECT_ID_PATTERN)


class PlaceAtParams(BaseModel):
    """Parameters of `place_at`."""

    model_config = ConfigDict(extra="forbid")
    object: str = Field(description="Id of the held object to put down.", min_length=1, max_length=128,
                        pattern=OBJECT_ID_PATTERN)
    position: list[FiniteFloat] = Field(
        min_length=2, max_length=2,
        description="Where the object's centre goes: [x, y] in the world frame (m), e.g. the position the "
                    "semantic map gave it before it was picked.")


class PushParams(BaseModel):
    """Parameters of `push`."""

    model_config = ConfigDict(extra="forbid")
    object: str = Field(description="Id of the object to slide along the table.", min_length=1, max_length=128,
                        pattern=OBJECT_ID_PATTERN)
    direction: Literal[tuple(PUSH_DIRECTIONS)] = Field(  # type: ignore[valid-type]
        description="Direction in the robot's view: 'forward' (away from the robot), 'backward', 'left' or 'right'.")
    distance: float = Field(0.1, ge=0.02, le=0.3, description="How far to move the object (m).")


class NoParams(BaseModel):
    """Parameters of a skill that takes none."""

    model_config = ConfigDict(extra="forbid")


class OpenGripperParams(BaseModel):
    """Parameters of `open_gripper`."""

    model_config = ConfigDict(extra="forbid")
    opening: float = Field(PANDA_MAX_OPENING, gt=0.0, le=PANDA_MAX_OPENING,
                           description="Distance between the fingers (m).")


class SayParams(BaseModel):
    """Parameters of `say`."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="What to tell the user.", min_length=1, max_length=500)


# --- helpers ------------------------------------------------------------------------------------


def _in_base_frame(obj: MapObject, ctx: SkillContext) -> _BaseBox:
    """Return the object's box in the arm's base frame."""
    transform = ctx.arm_base_from_world
    return _BaseBox(transform.apply(obj.position), np.array(obj.size),
                    obj.yaw + quat_to_rpy(transform.rotation)[2])


@dataclass(frozen=True)
class _BaseBox:
    """An object's box in the arm's base frame (satisfies motion.grasping.Box)."""

    position: np.ndarray
    size: np.ndarray
    yaw: float


class _Motion:
    """Plans a chain of arm moves from the current joints, then executes it step by step."""

    def __init__(self, ctx: SkillContext) -> None:
        self._ctx = ctx
        self.q = np.asarray(ctx.arm.joint_positions(), dtype=float)
        self.steps: list[tuple[str, Any]] = []

    def joint_move(self, pose: GripperPose, what: str) -> str | None:
        """Append a joint-space move to a pose; return why it is impossible, or None."""
        solution = self._ctx.kinematics.solve(pose.position, pose.quaternion, seed=self.q)
        if solution.q is None:
            return f"{what} is unreachable: {solution.reason}"
        self.steps.append(("arm", np.array([self.q, solution.q])))
        self.q = solution.q
        return None

    def line(self, pose: GripperPose, what: str) -> str | None:
        """Append a straight-line move to a pose; return why it is impossible, or None."""
        path = interpolate_cartesian(self._ctx.kinematics, self.q, (pose.position, pose.quaternion),
                                     CARTESIAN_STEPS)
        if path is None:
            return f"the straight {what} is unreachable or would swing the arm between configurations"
        self.steps.append(("arm", np.array(path)))
        self.q = path[-1]
        return None

    def gripper(self, opening: float) -> None:
        """Append a gripper command."""
        self.steps.append(("gripper", opening))

    def pause(self, seconds: float) -> None:
        """Append a wait of `seconds` of robot time."""
        self.steps.append(("pause", seconds))

    def run(self, after_step: Callable[[int], str | None] = lambda index: None) -> tuple[str | None, int]:
        """Execute the steps in order; return (why execution stopped or None, steps completed).

        Args:
            after_step: Called with a step's index once it is done; a returned reason stops execution.
        """
        kinematics = self._ctx.kinematics
        vmax = np.array([kinematics.limits[n].velocity for n in kinematics.joint_names]) * self._ctx.velocity_scale
        for index, (kind, value) in enumerate(self.steps):
            what = "pause" if kind == "pause" else f"{kind} motion"
            self._ctx.progress(f"{what} {index + 1} of {len(self.steps)}", index / len(self.steps))
            if kind == "arm":
                result = self._ctx.arm.execute(kinematics.joint_names,
                                               time_parameterize(value, vmax, kinematics.accelerations))
            elif kind == "gripper":
                result = self._ctx.arm.set_gripper(value)
            else:
                result = self._ctx.arm.pause(value)
            if not result.success:
                return f"{what} failed: {result.reason}", index
            stop = after_step(index)
            if stop is not None:
                return stop, index + 1
        return None, len(self.steps)


# --- skills -------------------------------------------------------------------------------------


def pick(params: PickParams, ctx: SkillContext) -> SkillResult:
    """Pick up an object from above: open, descend, close, lift.

    Succeeds when, after lifting, the fingers are still held apart by something of about the
    object's width. That the object itself is in the gripper is for perception to confirm.
    """
    obj = ctx.world.lookup(params.object)
    if obj is None:
        return refuse(f"unknown object '{params.object}': it is not in the semantic map")
    rejection = grasp_rejection(obj.size, ctx.max_opening)
    if rejection is not None:
        return refuse(f"cannot grasp '{params.object}': {rejection}")
    box = _in_base_frame(obj, ctx)
    plan = top_down_grasp(box.position, box.size, box.yaw, ctx.max_opening)
    irregular = is_irregular(obj.category)
    motion = _Motion(ctx)
    motion.gripper(plan.opening)
    problem = (motion.joint_move(plan.pre_grasp, f"the pose above '{params.object}'")
               or motion.line(plan.grasp, f"descent to '{params.object}'"))
    if problem is None:
        motion.gripper(0.0)
        close_index = len(motion.steps) - 1
        problem = motion.line(plan.lift, f"lift of '{params.object}'")
    if problem is not None:
        return refuse(f"cannot pick '{params.object}': {problem}")

    def check_grasp(index: int) -> str | None:
        if index == close_index and not holds(ctx.arm.gripper_opening(), plan.width, irregular, ctx.max_opening):
            return f"the gripper closed on nothing where '{params.object}' was expected"
        return None

    stopped, _ = motion.run(check_grasp)
    opening = ctx.arm.gripper_opening()
    observed = {"gripper_opening": opening, "joints": motion.q.tolist()}
    if stopped is None and not holds(opening, plan.width, irregular, ctx.max_opening):
        stopped = f"'{params.object}' slipped out of the gripper while lifting"
    if stopped is not None:
        return SkillResult(False, stopped, {"moved": True, "observed": observed})
    return SkillResult(True, f"lifted with the fingers {opening * 100:.1f} cm apart (object {plan.width * 100:.1f} "
                             f"cm wide); that it holds '{params.object}' is unverified",
                       {"moved": True, "observed": observed, "unverified": [f"holding({params.object})"]})


def place(params: PlaceParams, ctx: SkillContext) -> SkillResult:
    """Put the held object in or on a target, or beside it on the same surface, and let go.

    In a container, or on a support that takes several objects (a table, a large box), the object
    goes to the free spot nearest the target's centre that the arm reaches, clear of what already
    lies there; refused when no spot is free. On a small support (a cube) it is stacked centred.
    Succeeds when the arm reached the release pose, opened and retreated. Where the object ended up
    is for perception to confirm.
    """
    obj = ctx.world.lookup(params.object)
    target = ctx.world.lookup(params.target)
    for name, found in ((params.object, obj), (params.target, target)):
        if found is None:
            return refuse(f"unknown object '{name}': it is not in the semantic map")
    if params.object == params.target:
        return refuse(f"cannot place '{params.object}' relative to itself")
    opening = ctx.arm.gripper_opening()
    width, irregular = float(min(obj.size[0], obj.size[1])), is_irregular(obj.category)
    if not holds(opening, width, irregular, ctx.max_opening):
        return refuse(f"the gripper is {opening * 100:.1f} cm open: it does not hold '{params.object}'")
    target_box = _in_base_frame(target, ctx)
    # The map may still hold the held object where it was picked from: its own record takes no spot.
    others = [_in_base_frame(o, ctx) for o in ctx.world.objects() if o.id not in (obj.id, target.id)]
    if params.relation in ("in", "on"):
        if place_pose(target_box, params.relation, obj.size) is None:
            return refuse(f"'{params.object}' does not fit in '{params.target}'")
        spots = place_spots(target_box, params.relation, obj.size, others, rectangular=target.category == "tray")
        if not spots:
            return refuse(f"no free spot {params.relation} '{params.target}' for '{params.object}'")
        plans = [place_pose(target_box, params.relation, obj.size, spot=spot, others=others)
                 for spot in spots[:SPOT_TRIES]]
    else:
        plans = [place_pose(spot, "on", obj.size) for spot in _beside_spots(target_box, obj.size, params.relation)
                 if not _occupied(spot, others)]
        if not plans:
            return refuse(f"no free spot {params.relation.replace('_', ' ')} '{params.target}'")
    problems = []
    for plan in plans:
        motion, problem = _release_motion(plan, obj.size, irregular, ctx)
        if problem is None:
            break
        if problem not in problems:
            problems.append(problem)
    else:
        return refuse(f"cannot place '{params.object}' {params.relation} '{params.target}': {'; '.join(problems)}")
    stopped, _ = motion.run()
    observed = {"gripper_opening": ctx.arm.gripper_opening(), "joints": motion.q.tolist(),
                "release_position": plan.release.position.tolist()}
    if stopped is not None:
        return SkillResult(False, stopped, {"moved": True, "observed": observed})
    unverified = bind_predicates(("relation(object, target)", "not holding(object)"), params)
    return SkillResult(True, f"released '{params.object}' {params.relation} '{params.target}' and retreated; "
                             f"where it came to rest is unverified",
                       {"moved": True, "observed": observed, "unverified": unverified})


def place_at(params: PlaceAtParams, ctx: SkillContext) -> SkillResult:
    """Put the held object down at world position [x, y], resting on the surface below, and let go.

    The surface is the table top, or the floor for mobile robots; used to put an object back where
    it was. Refused when another object takes up the spot. Succeeds when the arm reached the release
    pose, opened and retreated. Where the object came to rest is for perception to confirm.
    """
    obj = ctx.world.lookup(params.object)
    if obj is None:
        return refuse(f"unknown object '{params.object}': it is not in the semantic map")
    opening = ctx.arm.gripper_opening()
    width, irregular = float(min(obj.size[0], obj.size[1])), is_irregular(obj.category)
    if not holds(opening, width, irregular, ctx.max_opening):
        return refuse(f"the gripper is {opening * 100:.1f} cm open: it does not hold '{params.object}'")
    x, y = params.position
    where = f"at ({x:.3f}, {y:.3f})"
    transform = ctx.arm_base_from_world
    # A support as wide as the object with its top on the surface: released "on" it, the object
    # stands centred on the point, turned as the map last saw it.
    spot = _BaseBox(transform.apply(np.array([x, y, WORLD_SURFACE_Z])), np.array([obj.size[0], obj.size[1], 0.0]),
                    obj.yaw + quat_to_rpy(transform.rotation)[2])
    blocking = [o.id for o in ctx.world.objects() if o.id != obj.id and _occupied(spot, [_in_base_frame(o, ctx)])]
    if blocking:
        return refuse(f"cannot place '{params.object}' {where}: the spot is taken by "
                      f"{', '.join(repr(b) for b in blocking)}")
    plan = place_pose(spot, "on", obj.size)
    motion, problem = _release_motion(plan, obj.size, irregular, ctx)
    if problem is not None:
        return refuse(f"cannot place '{params.object}' {where}: {problem}")
    stopped, _ = motion.run()
    observed = {"gripper_opening": ctx.arm.gripper_opening(), "joints": motion.q.tolist(),
                "release_position": plan.release.position.tolist()}
    if stopped is not None:
        return SkillResult(False, stopped, {"moved": True, "observed": observed})
    unverified = bind_predicates(("at(object, position)", "not holding(object)"), params)
    return SkillResult(True, f"released '{params.object}' {where} and retreated; where it came to rest is unverified",
                       {"moved": True, "observed": observed, "unverified": unverified})


def _release_motion(plan: PlacePlan, size: Sequence[float], irregular: bool, ctx: SkillContext
                    ) -> tuple[_Motion, str | None]:
    """Plan the carry above a release pose, the straight descent, the opening and the retreat.

    `size` is the held object's box extent. The fingers first loosen to just past its width and
    wait while it drops onto the support between them (`loosen_opening`, `RELEASE_SETTLE_S`), then
    open past its width and its footprint's diagonal.

    Returns:
        The motion, and why it is impossible (None when it is not).
    """
    motion = _Motion(ctx)
    problem = (motion.joint_move(plan.pre_place, "the pose above the release")
               or motion.line(plan.release, "descent to the release"))
    if problem is None:
        width = float(min(size[0], size[1]))
        motion.gripper(loosen_opening(width, ctx.max_opening))
        motion.pause(RELEASE_SETTLE_S)
        motion.gripper(release_opening(width, irregular, ctx.max_opening, diagonal=float(np.hypot(size[0], size[1]))))
        problem = motion.line(plan.retreat, "retreat")
    return motion, problem


def push(params: PushParams, ctx: SkillContext) -> SkillResult:
    """Slide an object along the table: the fingers come down behind it and push it straight.

    Succeeds when the whole push was executed. How far the object actually moved is for
    perception to confirm.
    """
    obj = ctx.world.lookup(params.object)
    if obj is None:
        return refuse(f"unknown object '{params.object}': it is not in the semantic map")
    plan = push_plan(_in_base_frame(obj, ctx), params.direction, params.distance, ctx.max_opening)
    if plan is None:
        return refuse(f"cannot push '{params.object}': it is too low for the fingers to reach its side")
    motion = _Motion(ctx)
    motion.gripper(plan.opening)
    problem = (motion.joint_move(plan.pre_push, "the pose above the start of the push")
               or motion.line(plan.start, f"descent behind '{params.object}'")
               or motion.line(plan.end, f"push of '{params.object}'")
               or motion.line(plan.retreat, "retreat"))
    if problem is not None:
        return refuse(f"cannot push '{params.object}' {params.direction}: {problem}")
    stopped, _ = motion.run()
    observed = {"joints": motion.q.tolist(), "push_end": plan.end.position.tolist()}
    if stopped is not None:
        return SkillResult(False, stopped, {"moved": True, "observed": observed})
    return SkillResult(True, f"pushed '{params.object}' {params.direction} by {params.distance * 100:.0f} cm; "
                             f"where it came to rest is unverified",
                       {"moved": True, "observed": observed,
                        "unverified": bind_predicates(("pushed(object, direction, distance)",), params)})


def _beside_spots(target: _BaseBox, held_size: np.ndarray, relation: str) -> list[_BaseBox]:
    """Return candidate support footprints beside a target, on the surface it stands on, best first.

    Directions are in the arm base's frame, which is the robot's view: left is +y, in front of
    (nearer the robot) is -x. "near" tries every side, nearest the base first.
    """
    directions = {"left_of": (0.0, 1.0), "right_of": (0.0, -1.0), "in_front_of": (-1.0, 0.0), "behind": (1.0, 0.0)}
    chosen = list(directions.values()) if relation == "near" else [directions[relation]]
    bottom = float(target.position[2] - target.size[2] / 2.0)
    # A box's world-axis half extent bounds it whatever its yaw: the spot clears the target.
    target_radius = float(np.hypot(target.size[0], target.size[1])) / 2.0
    held_radius = float(np.hypot(held_size[0], held_size[1])) / 2.0
    offset = target_radius + BESIDE_GAP + held_radius
    spots = [_BaseBox(np.array([target.position[0] + dx * offset, target.position[1] + dy * offset, bottom]),
                      np.array([held_size[0], held_size[1], 0.0]), 0.0) for dx, dy in chosen]
    return sorted(spots, key=lambda s: float(np.hypot(s.position[0], s.position[1])))


def _occupied(spot: _BaseBox, others: list[_BaseBox]) -> bool:
    """Return whether another object's footprint overlaps the spot (bounding circles)."""
    spot_radius = float(np.hypot(spot.size[0], spot.size[1])) / 2.0
    return any(math.dist(spot.position[:2], o.position[:2]) < spot_radius + float(np.hypot(o.size[0], o.size[1])) / 2.0
               for o in others)


def move_arm_home(params: NoParams, ctx: SkillContext) -> SkillResult:
    """Move the arm to its home posture, above the table and out of the camera's way."""
    home = np.asarray(ctx.home if ctx.home is not None else ctx.kinematics.rest, dtype=float)
    motion = _Motion(ctx)
    motion.steps.append(("arm", np.array([motion.q, home])))
    stopped, _ = motion.run()
    joints = np.asarray(ctx.arm.joint_positions(), dtype=float)
    if stopped is not None:
        return SkillResult(False, stopped, {"moved": True, "observed": {"joints": joints.tolist()}})
    return SkillResult(True, "the arm is home", {"moved": True, "observed": {"joints": joints.tolist(), "home": True}})


def open_gripper(params: OpenGripperParams, ctx: SkillContext) -> SkillResult:
    """Open the gripper, releasing anything it holds."""
    opening = min(params.opening, ctx.max_opening)
    result = ctx.arm.set_gripper(opening)
    measured = ctx.arm.gripper_opening()
    observed = {"gripper_opening": measured}
    if not result.success:
        return SkillResult(False, f"gripper failed: {result.reason}", {"moved": True, "observed": observed})
    return SkillResult(True, f"the gripper is {measured * 100:.1f} cm open", {"moved": True, "observed": observed})


def close_gripper(params: NoParams, ctx: SkillContext) -> SkillResult:
    """Close the gripper; the measured opening tells whether something is between the fingers."""
    result = ctx.arm.set_gripper(0.0)
    measured = ctx.arm.gripper_opening()
    something = measured > CLOSED_OPENING
    observed = {"gripper_opening": measured, "something_between_fingers": something}
    if not result.success:
        return SkillResult(False, f"gripper failed: {result.reason}", {"moved": True, "observed": observed})
    what = "something keeps the fingers apart" if something else "the fingers met: nothing is held"
    return SkillResult(True, f"closed the gripper; {what}", {"moved": True, "observed": observed})


def say(params: SayParams, ctx: SkillContext) -> SkillResult:
    """Tell the user something: an answer, a question or a report."""
    ctx.speech.say(params.text)
    return SkillResult(True, "said", {"moved": False, "observed": {"said": params.text}})


# The robot part the arm skills cannot run without (Skill.requires).
ARM = ("arm",)

SKILLS: dict[str, Skill] = {declared.name: declared for declared in (
    skill("pick", pick, PickParams, ("known(object)", "reachable(object)", "graspable(object)", "gripper_empty"),
          ("holding(object)", "not gripper_empty"), ARM, moves_object=True, grasps=True),
    skill("place", place, PlaceParams, ("holding(object)", "known(target)", "reachable(target)"),
          ("relation(object, target)", "gripper_empty", "not holding(object)"), ARM, moves_object=True, releases=True),
    skill("place_at", place_at, PlaceAtParams, ("holding(object)", "free(position)", "reachable(position)"),
          ("at(object, position)", "gripper_empty", "not holding(object)"), ARM, moves_object=True, releases=True),
    skill("push", push, PushParams, ("known(object)", "reachable(object)", "gripper_empty"),
          ("pushed(object, direction, distance)",), ARM, moves_object=True),
    skill("move_arm_home", move_arm_home, NoParams, (), ("arm_home",), ARM),
    skill("open_gripper", open_gripper, OpenGripperParams, (), ("gripper_empty",), ARM, releases=True),
    skill("close_gripper", close_gripper, NoParams, (), ("gripper_closed",), ARM),
    skill("say", say, SayParams, (), ("said(text)",)),
    NAVIGATE_TO,
    SEARCH,
)}


def skill_catalog() -> list[dict[str, Any]]:
    """Return every skill's name, description, parameter JSON Schema, preconditions and effects."""
    return [{"name": s.name, "description": s.description, "parameters": s.schema(),
             "preconditions": list(s.preconditions), "effects": list(s.effects)} for s in SKILLS.values()]


def validate_call(name: str, args_json: str) -> BaseModel | CallError:
    """Validate a skill call's JSON arguments against its schema.

    Args:
        name: Skill name.
        args_json: A JSON object of arguments ("" means none).

    Returns:
        The validated parameters, or a CallError naming what is wrong.
    """
    skill = SKILLS.get(name)
    if skill is None:
        return CallError(f"unknown skill '{name}'; known skills: {', '.join(SKILLS)}")
    try:
        args = json.loads(args_json) if args_json.strip() else {}
    except json.JSONDecodeError as error:
        return CallError(f"{name}: arguments are not valid JSON: {error}")
    if not isinstance(args, dict):
        return CallError(f"{name}: arguments must be a JSON object, got {type(args).__name__}")
    try:
        return skill.params.model_validate(args)
    except ValidationError as error:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']} (got {e.get('input')!r})"
                    for e in error.errors()]
        return CallError(f"{name}: {'; '.join(problems)}")
