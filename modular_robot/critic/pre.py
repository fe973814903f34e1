"""Pre verdicts: whether a step's preconditions hold in the map and the fresh frames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from modular_robot.core.gripper import CLOSED_OPENING, HOLD_DISTANCE_M, OPEN_MARGIN
from modular_robot.core.mapping.objects import MapObject, box_distance
from modular_robot.core.robot_model import PANDA_MAX_OPENING
from modular_robot.critic.evidence import (
    LIFT_MIN_M,
    CriticVerdict,
    ObservedBox,
    PerceptionFrame,
    Proprioception,
    Reachable,
    arg,
    as_map,
    candidate_boxes,
    cm,
    holds,
    object_width,
    place_spot,
    xyz,
)
from modular_robot.motion.grasping import WORLD_SURFACE_Z, grasp_rejection

# Fingers this much wider apart than commanded were stopped by something between them (m).
GRIPPER_BLOCKED_M = 0.002


# --- pre verdicts ---------------------------------------------------------------------------------


def pre_verdict(skill: str, params: Any, map_objects: Mapping[str, MapObject] | Iterable[MapObject],
                robot_state: Proprioception | None, reachable: Reachable | None = None, *,
                remembered: Mapping[str, MapObject] | Iterable[MapObject] | None = None,
                frames: Sequence[PerceptionFrame] = ()) -> CriticVerdict:
    """Judge whether a step's preconditions hold in the current map and robot state.

    Args:
        skill: Skill name.
        params: The call's validated parameters (pydantic model or mapping).
        map_objects: The semantic map now.
        robot_state: The latest proprioception, or None when none was received.
        reachable: Says why the arm cannot reach an object; reachability is not checked when None.
            For place_at it is asked about the held object as it would stand at the position.
        remembered: Objects the map knew at some time (last known version of each), for the object
            a place or place_at holds, which the map may have dropped since its place was seen empty.
        frames: Recent perception frames, optional evidence (an object seen at the gripper).
    """
    objects = as_map(map_objects)
    memory = {**as_map(remembered), **objects}
    if skill == "pick":
        return _pre_pick(params, objects, robot_state, reachable, frames)
    if skill == "place":
        return _pre_place(params, objects, memory, robot_state, reachable, frames)
    if skill == "place_at":
        return _pre_place_at(params, objects, memory, robot_state, reachable, frames)
    if skill == "push":
        obj = objects.get(arg(params, "object"))
        if obj is None:
            return CriticVerdict(False, 1.0, f"unknown object '{arg(params, 'object')}': not in the semantic map")
        full = _gripper_not_empty(robot_state, frames)
        if full is not None:
            return full
        return _reach(obj, reachable, f"'{obj.id}' is known at {xyz(obj.position)}, the gripper empty")
    if skill == "navigate_to":
        if robot_state is None or robot_state.base_pose is None:
            return CriticVerdict(False, 1.0, "the robot is not localised: no base pose in the world frame")
        target = arg(params, "object")
        if target:
            obj = objects.get(target)
            if obj is None:
                return CriticVerdict(False, 1.0, f"unknown object '{target}': not in the semantic map")
            return CriticVerdict(True, 1.0, f"'{target}' is known at {xyz(obj.position)}; the robot is localised")
        if len(list(arg(params, "pose") or [])) not in (2, 3):
            return CriticVerdict(False, 1.0, "navigate_to needs an object or a pose [x, y] or [x, y, yaw]")
        return CriticVerdict(True, 1.0, "a pose goal; the robot is localised")
    if skill in ("search", "say", "move_arm_home", "open_gripper", "close_gripper"):
        return CriticVerdict(True, 1.0, f"{skill} has no preconditions")
    return CriticVerdict(False, 1.0, f"the critic has no rules for skill '{skill}'")


def _reach(obj: MapObject, reachable: Reachable | None, ok_reason: str) -> CriticVerdict:
    if reachable is not None:
        problem = reachable(obj)
        if problem:
            return CriticVerdict(False, 1.0, f"'{obj.id}' is unreachable: {problem}")
        return CriticVerdict(True, 1.0, f"{ok_reason}; reachable")
    return CriticVerdict(True, 0.8, f"{ok_reason}; reachability not checked")


def _seen_at_gripper(obj: MapObject | None, frames: Sequence[PerceptionFrame], robot: Proprioception | None,
                     others: Iterable[MapObject]) -> tuple[int, int, ObservedBox | None]:
    """Return (frames showing the object, or anything when obj is None, at the gripper; frames with a
    grasp point; the nearest such box)."""
    seen = judged = 0
    nearest: ObservedBox | None = None
    others = list(others)
    for frame in frames:
        state = frame.robot or robot
        if state is None or state.grasp_point is None:
            continue
        judged += 1
        boxes = frame.boxes if obj is None else candidate_boxes(obj, frame.boxes, others)
        near = [b for b in boxes if box_distance(state.grasp_point, b.position, b.size, b.yaw) <= HOLD_DISTANCE_M]
        if near:
            seen += 1
            nearest = near[0]
    return seen, judged, nearest


def _pre_pick(params: Any, objects: dict[str, MapObject], robot: Proprioception | None,
              reachable: Reachable | None, frames: Sequence[PerceptionFrame]) -> CriticVerdict:
    object_id = arg(params, "object")
    obj = objects.get(object_id)
    if obj is None:
        return CriticVerdict(False, 1.0, f"unknown object '{object_id}': not in the semantic map")
    rejection = grasp_rejection(obj.size, robot.max_opening if robot is not None else PANDA_MAX_OPENING)
    if rejection is not None:
        return CriticVerdict(False, 1.0, f"'{object_id}' is not graspable: {rejection}")
    full = _gripper_not_empty(robot, frames)
    if full is not None:
        return full
    return _reach(obj, reachable, f"'{object_id}' is known at {xyz(obj.position)}, graspable, the gripper "
                                  f"empty ({cm(robot.gripper_opening)} open)")


def _gripper_not_empty(robot: Proprioception | None, frames: Sequence[PerceptionFrame]) -> CriticVerdict | None:
    """Return why the gripper is not (known to be) empty, or None when it is.

    Something is held when the fingers stopped wider apart than last commanded, or when most recent
    frames show an object at the grasp point of fingers that are not wide open: wide-open fingers
    hold nothing, whatever the camera sees near them (an arm right above an object).
    """
    if robot is None or robot.gripper_opening is None:
        return CriticVerdict(False, 1.0, "the gripper's state is unknown: no finger joint states")
    opening = robot.gripper_opening
    if (robot.gripper_command is not None and opening > CLOSED_OPENING
            and opening > robot.gripper_command + GRIPPER_BLOCKED_M):
        return CriticVerdict(False, 1.0, f"the gripper is not empty: the fingers stopped {cm(opening)} apart, "
                                         f"commanded to {cm(robot.gripper_command)}: something is between them")
    if opening > robot.max_opening - OPEN_MARGIN:
        return None
    seen, _, box = _seen_at_gripper(None, frames, robot, ())
    if seen and seen * 2 > len(frames):
        return CriticVerdict(False, 1.0, f"the gripper is not empty: a {box.label} is seen at the grasp point")
    return None


def _pre_place(params: Any, objects: dict[str, MapObject], memory: dict[str, MapObject],
               robot: Proprioception | None, reachable: Reachable | None,
               frames: Sequence[PerceptionFrame]) -> CriticVerdict:
    object_id, target_id = arg(params, "object"), arg(params, "target")
    obj = memory.get(object_id)
    if obj is None:
        return CriticVerdict(False, 1.0, f"unknown object '{object_id}': the semantic map never held it")
    target = objects.get(target_id)
    if target is None:
        return CriticVerdict(False, 1.0, f"unknown target '{target_id}': not in the semantic map")
    if object_id == target_id:
        return CriticVerdict(False, 1.0, f"cannot place '{object_id}' relative to itself")
    held = _held(obj, robot, frames, memory)
    if not held.ok:
        return held
    verdict = _reach(target, reachable, f"{held.reason}; '{target_id}' is known")
    return CriticVerdict(verdict.ok, min(verdict.confidence, held.confidence) if verdict.ok else verdict.confidence,
                         verdict.reason)


def _held(obj: MapObject, robot: Proprioception | None, frames: Sequence[PerceptionFrame],
          memory: dict[str, MapObject]) -> CriticVerdict:
    """Judge whether the gripper holds an object, before putting it down.

    The fingers must measure its width. Frames that show it at the grasp point raise the confidence;
    a majority that show it resting where it stood means the fingers hold something else.
    """
    if robot is None or robot.gripper_opening is None:
        return CriticVerdict(False, 1.0, "the gripper's state is unknown: no finger joint states")
    width = object_width(obj)
    if not holds(robot.gripper_opening, obj):
        return CriticVerdict(False, 1.0, f"'{obj.id}' is not held: the fingers are {cm(robot.gripper_opening)} "
                                         f"apart, the object {cm(width)} wide")
    confidence, seen_text = 0.6, "not seen by perception (held objects may be hidden)"
    if frames:
        seen, judged, _ = _seen_at_gripper(obj, frames, robot, memory.values())
        resting = [b for f in frames for b in candidate_boxes(obj, f.boxes, memory.values())
                   if b.top < obj.position[2] + obj.size[2] / 2.0 + LIFT_MIN_M
                   and math.dist(b.position[:2], obj.position[:2]) < 0.5 * max(width, 0.04)]
        if seen:
            confidence, seen_text = 1.0, f"seen at the gripper in {seen} of {judged} frames"
        elif resting and len(resting) * 2 > len(frames):
            b = resting[-1]
            return CriticVerdict(False, 1.0, f"'{obj.id}' is not held: it is seen resting where it was, at "
                                             f"{xyz(b.position)}")
    return CriticVerdict(True, confidence, f"'{obj.id}' is held (fingers {cm(robot.gripper_opening)} apart, object "
                                           f"{cm(width)}; {seen_text})")


def _pre_place_at(params: Any, objects: dict[str, MapObject], memory: dict[str, MapObject],
                  robot: Proprioception | None, reachable: Reachable | None,
                  frames: Sequence[PerceptionFrame]) -> CriticVerdict:
    object_id = arg(params, "object")
    obj = memory.get(object_id)
    if obj is None:
        return CriticVerdict(False, 1.0, f"unknown object '{object_id}': the semantic map never held it")
    spot = place_spot(params)
    if spot is None:
        return CriticVerdict(False, 1.0, f"place_at needs a position [x, y] of two finite numbers, got "
                                         f"{arg(params, 'position')!r}")
    held = _held(obj, robot, frames, memory)
    if not held.ok:
        return held
    where = f"({spot[0]:.3f}, {spot[1]:.3f})"
    # The skill's own test (bounding circles of the footprints), so the critic refuses what it refuses.
    radius = float(np.hypot(obj.size[0], obj.size[1])) / 2.0
    blocking = [(math.dist(o.position[:2], spot), radius + float(np.hypot(o.size[0], o.size[1])) / 2.0, o)
                for o in objects.values() if o.id != object_id]
    blocking = [b for b in blocking if b[0] < b[1]]
    if blocking:
        distance, reach, other = min(blocking, key=lambda b: b[0])
        return CriticVerdict(False, 1.0, f"the spot {where} is not free: '{other.id}' stands {distance:.3f} m from it "
                                         f"at {xyz(other.position)}, closer than the footprints' reach {reach:.3f} m")
    ok_reason = f"{held.reason}; the spot {where} is free"
    if reachable is None:
        return CriticVerdict(True, min(0.8, held.confidence), f"{ok_reason}; reachability not checked")
    standing = replace(obj, position=np.array([spot[0], spot[1], WORLD_SURFACE_Z + float(obj.size[2]) / 2.0]))
    problem = reachable(standing)
    if problem:
        return CriticVerdict(False, 1.0, f"the spot {where} is unreachable: {problem}")
    return CriticVerdict(True, held.confidence, f"{ok_reason}; reachable")


