"""Post verdicts: whether a step's effects are observed, frame by frame."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from modular_robot.core.gripper import CLOSED_OPENING, HOLD_DISTANCE_M, HOLDING_WIDTH_FRACTION
from modular_robot.core.mapping.objects import MapObject, box_distance, local_xy
from modular_robot.core.navigation.geometry import HUSKY_FOOTPRINT, Footprint, ObjectBox, footprint_gap
from modular_robot.core.relations import IN_TOP_SLACK_M, IN_XY_MARGIN_M, ON_Z_TOL_M, RELATION_MARGIN_M
from modular_robot.core.robot_model import PANDA_HOME
from modular_robot.critic.evidence import (
    LIFT_MIN_M,
    CriticVerdict,
    Finder,
    FrameJudgement,
    ObservedBox,
    PerceptionFrame,
    Proprioception,
    arg,
    as_map,
    bottom_of,
    candidate_boxes,
    cm,
    describe,
    holds,
    object_width,
    place_spot,
    released,
    xyz,
)
from modular_robot.motion.grasping import WORLD_SURFACE_Z
from modular_robot.skills.library import SKILLS

# A target's observation lies within this of its map position (m), or half its footprint if larger.
TARGET_MATCH_M = 0.05
# An object stacked on a support of its colour merges with it: the support's box grows by the object's
# height, within this (m); such a frame weighs less than one that sees the object apart.
STACK_HEIGHT_TOL_M = 0.012
STACKED_WEIGHT = 0.8
# A frame that supports holding only by the fingers' width and the object's absence from the view.
OCCLUDED_HOLD_WEIGHT = 0.6
# A frame that supports an effect only through the map's word for a target it cannot see.
MAP_FALLBACK_WEIGHT = 0.7
# Beside relations: the object rests on the surface the target stands on, within this (m).
SAME_SURFACE_TOL_M = 2 * ON_Z_TOL_M
# "near" (no distance given): the footprints' bounding circles at most this far apart (m).
NEAR_GAP_M = 0.10
# place_at: the object's observed centre lies within this of the position in xy (m). A released cube
# lands within about 1 cm of the release point and perception's centre of a resting box scatters by
# under 1 cm; 3 cm allows both and is still less than a small object's width, so the object covers
# the spot asked for (a neighbouring spot is a different place).
PLACE_AT_TOL_M = 0.03
# push: the observed displacement along the direction is at least this fraction of the distance...
PUSH_MIN_FRACTION = 0.5
# ...and at most this fraction of it plus PUSH_SLACK_M ("not much further").
PUSH_MAX_FRACTION = 1.5
PUSH_SLACK_M = 0.02
# open_gripper: the measured opening is at least the requested one less this (m).
OPEN_TOLERANCE_M = 0.005
# Fingers moving slower than this (sum of both finger speeds, m/s) have stopped.
GRIPPER_STOPPED_SPEED = 0.005
# move_arm_home: every joint within this of home (rad).
HOME_TOLERANCE_RAD = 0.05
# navigate_to a pose: within this distance (m) and, when a yaw is given, heading (rad).
NAVIGATE_POSITION_TOL_M = 0.15
NAVIGATE_YAW_TOL_RAD = 0.2
# navigate_to an object: the gap between the robot's and the object's footprints at most this (m).
NAVIGATE_GAP_M = 0.3
KNOWN_SKILLS = ("pick", "place", "place_at", "push", "navigate_to", "search", "say", "move_arm_home", "open_gripper",
                "close_gripper")
DIRECTIONS = ("left", "right", "forward", "backward")


# --- post verdicts --------------------------------------------------------------------------------


def needs_perception(skill: str, params: Any = None) -> bool:
    """Return whether a skill's effects can be confirmed only from fresh camera frames.

    navigate_to an object also uses frames where they show it, but the map stands in (at lower
    confidence) where none do: its effect rests on the base pose, which TF observes. A skill that
    moves the object it names (`Skill.moves_object`) needs them.
    """
    return skill in SKILLS and SKILLS[skill].moves_object


def uses_perception(skill: str, params: Any = None) -> bool:
    """Return whether fresh camera frames help judge a skill's effects (needed or not)."""
    return needs_perception(skill, params) or (skill == "navigate_to" and bool(arg(params, "object")))


def post_verdict(skill: str, params: Any, before_map: Mapping[str, MapObject] | Iterable[MapObject],
                 frames: Sequence[PerceptionFrame], robot_state: Proprioception | None, *,
                 map_objects: Mapping[str, MapObject] | Iterable[MapObject] | None = None,
                 find: Finder | None = None, said: Sequence[str] = (),
                 home: Sequence[float] | None = None,
                 robot_footprint: Footprint = HUSKY_FOOTPRINT) -> CriticVerdict:
    """Judge whether a step's effects are observed.

    Args:
        skill: Skill name.
        params: The call's validated parameters (pydantic model or mapping).
        before_map: The map before the step (identity, size and place of the objects it names), with
            objects the map has dropped since filled in from memory.
        frames: Fresh perception frames (stamped after the step), oldest first.
        robot_state: The latest proprioception (also fresh), or None.
        map_objects: The map now (search).
        find: Text lookup in the map now (search).
        said: What the robot said on chat/robot since the step began (say).
        home: Arm home posture (move_arm_home); PANDA_HOME when None.
        robot_footprint: The base's footprint around base_link (navigate_to an object).
    """
    before = as_map(before_map)
    if skill == "pick":
        return _post_pick(params, before, frames, robot_state)
    if skill == "place":
        return _post_place(params, before, frames, robot_state)
    if skill == "place_at":
        return _post_place_at(params, before, frames, robot_state)
    if skill == "push":
        return _post_push(params, before, frames, robot_state)
    if skill == "navigate_to":
        return _post_navigate(params, before, frames, robot_state, robot_footprint)
    if skill == "search":
        return _post_search(params, map_objects, find)
    if skill == "say":
        text = str(arg(params, "text", "")).strip()
        heard = [s for s in said if s.strip() == text]
        if heard:
            return CriticVerdict(True, 1.0, f"the robot said {text!r} on chat/robot")
        recent = f"; it said {said[-1]!r}" if said else "; it said nothing since the step began"
        return CriticVerdict(False, 1.0, f"{text!r} was not observed on chat/robot{recent}")
    if skill in ("move_arm_home", "open_gripper", "close_gripper"):
        return _post_arm(skill, params, robot_state, home)
    return CriticVerdict(False, 0.0, f"the critic has no rules for skill '{skill}'")


def _aggregate(effect: str, judgements: list[FrameJudgement]) -> CriticVerdict:
    """Combine per-frame judgements: ok needs a majority of supporting frames and at least one."""
    n = len(judgements)
    if n == 0:
        return CriticVerdict(False, 0.0, f"{effect}: no fresh perception")
    supporting = [j for j in judgements if j.supports]
    ok = len(supporting) >= 1 and 2 * len(supporting) > n
    confidence = sum(j.weight for j in supporting) / n
    observed = any(j.direct for j in supporting)
    chosen = supporting if ok else [j for j in judgements if not j.supports]
    # The most frequent reason among the frames that decided, as the typical case.
    typical = Counter(j.reason for j in chosen).most_common(1)[0][0]
    verb = ("observed" if observed else "inferred, not seen,") if ok else "not observed"
    return CriticVerdict(ok, float(confidence), f"{effect} {verb} in {len(supporting)} of {n} fresh frames: {typical}",
                         observed=observed)


def _gripper_state(frame: PerceptionFrame, robot: Proprioception | None) -> Proprioception | None:
    """Return the proprioception of a frame (else the latest) when it has the finger opening and grasp point."""
    state = frame.robot or robot
    if state is None or state.gripper_opening is None or state.grasp_point is None:
        return None
    return state


def _missing(object_id: str, before: dict[str, MapObject]) -> CriticVerdict | None:
    if object_id not in before:
        return CriticVerdict(False, 1.0, f"'{object_id}' was never in the semantic map: its identity is unknown")
    return None


def _post_pick(params: Any, before: dict[str, MapObject], frames: Sequence[PerceptionFrame],
               robot: Proprioception | None) -> CriticVerdict:
    object_id = arg(params, "object")
    if (missing := _missing(object_id, before)) is not None:
        return missing
    obj = before[object_id]
    effect = f"holding({object_id})"
    if not frames:
        return CriticVerdict(False, 0.0, f"{effect}: no fresh perception")
    width, height = object_width(obj), float(obj.size[2])
    rest_top = float(obj.position[2] + obj.size[2] / 2.0)
    judgements = []
    for frame in frames:
        state = _gripper_state(frame, robot)
        if state is None:
            judgements.append(FrameJudgement(False, "no gripper state (finger joints and grasp point) for the frame"))
            continue
        if not holds(state.gripper_opening, obj):
            what = "closed on nothing" if state.gripper_opening <= max(CLOSED_OPENING, HOLDING_WIDTH_FRACTION * width) \
                else "open"
            judgements.append(FrameJudgement(False, f"the fingers are {cm(state.gripper_opening)} apart ({what}); "
                                                     f"'{object_id}' is {cm(width)} wide"))
            continue
        grasp = state.grasp_point
        boxes = candidate_boxes(obj, frame.boxes, before.values())
        other = next((b for b in frame.boxes if box_distance(grasp, b.position, b.size, b.yaw) <= HOLD_DISTANCE_M),
                     None)
        if not boxes and other is not None:
            judgements.append(FrameJudgement(False, f"no {describe(obj)} is seen; a {other.color or ''} "
                                                     f"{other.category} is at the gripper {xyz(grasp)}"))
            continue
        standing = next((b for b in frame.boxes if math.dist(b.position[:2], obj.position[:2]) <= TARGET_MATCH_M
                         and b.top < rest_top + LIFT_MIN_M), None)
        if not boxes and standing is not None:
            judgements.append(FrameJudgement(False, f"no {describe(obj)} is seen at the gripper; a "
                                                     f"{standing.color or ''} {standing.category} stands where "
                                                     f"{object_id} was"))
            continue
        if not boxes:
            # The fingers measure something of the object's width and the view shows it nowhere, not
            # where it stood either: it is in the hand, hidden by the fingers. Two observations, of
            # the hand and of the scene, but not the object itself: less weight.
            judgements.append(FrameJudgement(
                True, f"no {describe(obj)} is seen anywhere, its place at {xyz(obj.position)} is empty and the "
                      f"fingers are held {cm(state.gripper_opening)} apart (object {cm(width)}): hidden in the "
                      f"gripper at {xyz(grasp)}", OCCLUDED_HOLD_WEIGHT, direct=False))
            continue
        box = min(boxes, key=lambda b: box_distance(grasp, b.position, b.size, b.yaw))
        distance = box_distance(grasp, box.position, box.size, box.yaw)
        lifted = box.top - rest_top
        bottom = bottom_of(box, height)
        if distance > HOLD_DISTANCE_M:
            where = (f"resting (bottom z={bottom:.2f}), not held" if lifted < LIFT_MIN_M
                     else "not at the gripper")
            judgements.append(FrameJudgement(False, f"{object_id} seen {distance:.2f} m from the gripper at "
                                                     f"z={box.position[2]:.2f}: {where}"))
        elif lifted < LIFT_MIN_M:
            judgements.append(FrameJudgement(False, f"{object_id} seen at the gripper but not lifted: its top "
                                                     f"z={box.top:.3f} is {lifted:+.3f} m from its rest"))
        else:
            judgements.append(FrameJudgement(True, f"{object_id} seen {distance:.3f} m from the grasp point, its top "
                                                    f"z={box.top:.3f} {lifted:+.3f} m above its rest; fingers "
                                                    f"{cm(state.gripper_opening)} apart (object {cm(width)})"))
    return _aggregate(effect, judgements)


def _target_box(target: MapObject, frame: PerceptionFrame, before: dict[str, MapObject],
                exclude: ObservedBox | None = None) -> tuple[ObservedBox, bool]:
    """Return the target's box in a frame (True) or, where the frame does not show it, its map box (False).

    A target seen nowhere near its map box but as the one box of its kind elsewhere, claimed by no
    other map object, has been moved (someone moved the bowl while the arm carried the cube): that
    box is the target, and the stale map box must not vouch for a place at the old spot.
    """
    reach = max(TARGET_MATCH_M, 0.5 * float(max(target.size[0], target.size[1])))
    candidates = candidate_boxes(target, frame.boxes, before.values(), exclude)
    boxes = [b for b in candidates if math.dist(b.position[:2], target.position[:2]) <= reach]
    if boxes:
        return min(boxes, key=lambda b: math.dist(b.position[:2], target.position[:2])), True
    if len(candidates) == 1:
        return candidates[0], True
    return ObservedBox(target.label, target.category, target.color, target.position, target.size, target.yaw), False


def relation_holds(relation: str, box: ObservedBox, height: float | None, target: ObservedBox,
                   target_height: float | None, base_pose: tuple[float, float, float] | None,
                   names: tuple[str, str] = ("object", "target")) -> tuple[bool, str]:
    """Judge a place relation between an object's and a target's observed boxes, as scenarios.predicates does.

    Args:
        relation: in, on, left_of, right_of, in_front_of, behind or near.
        box: The object's observed box.
        height: The object's known height (its box may reach down past it), or None.
        target: The target's box.
        target_height: The target's known height, or None.
        base_pose: The robot's (x, y, yaw): beside relations are in its view; the world's axes if None.
        names: The object's and the target's ids, for the reason.
    """
    a, b = names
    bottom = bottom_of(box, height)
    t_bottom = bottom_of(target, target_height)
    t_top = target.top
    local = local_xy(box.position, target.position, target.yaw)
    half = target.size[:2] / 2.0
    if relation in ("in", "on"):
        margin = IN_XY_MARGIN_M if relation == "in" else 0.0
        over = bool(np.all(np.abs(local) <= half - margin))
        over_text = (f"{a} centre ({box.position[0]:.3f}, {box.position[1]:.3f}) "
                     f"{'over' if over else 'not over'} {b}'s footprint (offset {local[0]:+.3f}, {local[1]:+.3f} "
                     f"within ±{half[0] - margin:.3f}, ±{half[1] - margin:.3f})")
        if relation == "in":
            inside_z = t_bottom - ON_Z_TOL_M <= bottom <= t_top + IN_TOP_SLACK_M
            z_text = (f"{a} bottom z={bottom:.3f} {'within' if inside_z else 'not within'} {b} "
                      f"[{t_bottom:.3f}, {t_top:.3f}]")
            ok = over and inside_z
        else:
            gap = bottom - t_top
            inside_z = abs(gap) <= ON_Z_TOL_M
            z_text = f"{a} bottom z={bottom:.3f} is {gap:+.3f} m from {b}'s top z={t_top:.3f}"
            ok = over and inside_z
        failed = [t for t, good in ((over_text, over), (z_text, inside_z)) if not good]
        return ok, "; ".join(failed) if failed else f"{over_text}; {z_text}"
    if relation == "near":
        limit = (float(np.hypot(*box.size[:2])) + float(np.hypot(*target.size[:2]))) / 2.0 + NEAR_GAP_M
        distance = math.dist(box.position[:2], target.position[:2])
        ok = distance <= limit
        return ok, f"{a}-{b} xy distance {distance:.3f} m {'<=' if ok else '>'} {limit:.3f}"
    axes = {"left_of": (1, 1.0), "right_of": (1, -1.0), "in_front_of": (0, -1.0), "behind": (0, 1.0)}
    if relation not in axes:
        return False, f"unknown relation '{relation}'"
    axis, sign = axes[relation]
    x, y, yaw = base_pose if base_pose is not None else (0.0, 0.0, 0.0)
    c, s = math.cos(yaw), math.sin(yaw)

    def robot_frame(p: np.ndarray) -> np.ndarray:
        dx, dy = p[0] - x, p[1] - y
        return np.array([c * dx + s * dy, -s * dx + c * dy])

    pa, pb = robot_frame(box.position), robot_frame(target.position)
    separation = sign * (pa[axis] - pb[axis])
    side = separation > RELATION_MARGIN_M
    surface = abs(bottom - t_bottom) <= SAME_SURFACE_TOL_M
    text = (f"robot frame {a}=({pa[0]:.3f}, {pa[1]:.3f}) {b}=({pb[0]:.3f}, {pb[1]:.3f}): separation {separation:.3f} "
            f"{'>' if side else '<='} {RELATION_MARGIN_M:.3f}")
    surface_text = (f"{a} bottom z={bottom:.3f} {'on' if surface else 'not on'} the surface {b} stands on "
                    f"(z={t_bottom:.3f})")
    failed = [t for t, good in ((text, side), (surface_text, surface)) if not good]
    return side and surface, "; ".join(failed) if failed else f"{text}; {surface_text}"


def _post_place(params: Any, before: dict[str, MapObject], frames: Sequence[PerceptionFrame],
                robot: Proprioception | None) -> CriticVerdict:
    object_id, relation, target_id = (arg(params, k) for k in ("object", "relation", "target"))
    for name in (object_id, target_id):
        if (missing := _missing(name, before)) is not None:
            return missing
    obj, target = before[object_id], before[target_id]
    effect = f"{relation}({object_id}, {target_id})"
    if not frames:
        return CriticVerdict(False, 0.0, f"{effect}: no fresh perception")
    height = float(obj.size[2])
    judgements = []
    for frame in frames:
        state, problem = _released_state(frame, robot, obj, object_id)
        if problem is not None:
            judgements.append(problem)
            continue
        target_box, target_seen = _target_box(target, frame, before)
        boxes = [b for b in candidate_boxes(obj, frame.boxes, before.values()) if b is not target_box]
        if not boxes and relation == "on" and target_seen:
            # Stacked on a support of the same colour, the two are seen as one box: the support's box
            # then stands taller by the object's height.
            grown = target_box.top - float(target.position[2] + target.size[2] / 2.0)
            ok = abs(grown - height) <= STACK_HEIGHT_TOL_M
            judgements.append(FrameJudgement(
                ok, f"no {describe(obj)} is seen apart from {target_id}, whose box's top is {grown:+.3f} m from its "
                    f"own ({object_id} is {height:.3f} m tall; within {STACK_HEIGHT_TOL_M:.3f} m: "
                    f"{'stacked on it' if ok else 'not on it'})", STACKED_WEIGHT))
            continue
        if not boxes:
            judgements.append(FrameJudgement(False, f"no {describe(obj)} is seen"))
            continue
        box = min(boxes, key=lambda b: math.dist(b.position[:2], target_box.position[:2]))
        distance = box_distance(state.grasp_point, box.position, box.size, box.yaw)
        if distance <= HOLD_DISTANCE_M:
            judgements.append(FrameJudgement(False, f"{object_id} is seen at the gripper ({distance:.3f} m from the "
                                                     f"grasp point): not released"))
            continue
        ok, detail = relation_holds(relation, box, height, target_box,
                                    float(target.size[2]), state.base_pose, (object_id, target_id))
        source = "" if target_seen else f" ({target_id} not visible: its map box stands in)"
        judgements.append(FrameJudgement(ok, detail + source, 1.0 if target_seen else MAP_FALLBACK_WEIGHT))
    return _aggregate(effect, judgements)


def _released_state(frame: PerceptionFrame, robot: Proprioception | None, obj: MapObject,
                    object_id: str) -> tuple[Proprioception | None, FrameJudgement | None]:
    """Return the gripper's state in a frame, or the judgement that it has not let go of the object."""
    state = _gripper_state(frame, robot)
    if state is None:
        return None, FrameJudgement(False, "no gripper state (finger joints and grasp point) for the frame")
    if not released(state.gripper_opening, obj, state.max_opening):
        return None, FrameJudgement(False, f"the gripper is not open: the fingers are {cm(state.gripper_opening)} "
                                            f"apart ('{object_id}' is {cm(object_width(obj))} wide)")
    return state, None


def _post_place_at(params: Any, before: dict[str, MapObject], frames: Sequence[PerceptionFrame],
                   robot: Proprioception | None) -> CriticVerdict:
    object_id = arg(params, "object")
    if (missing := _missing(object_id, before)) is not None:
        return missing
    spot = place_spot(params)
    if spot is None:
        return CriticVerdict(False, 1.0, f"place_at needs a position [x, y] of two finite numbers, got "
                                         f"{arg(params, 'position')!r}")
    obj = before[object_id]
    effect = f"at({object_id}, ({spot[0]:.3f}, {spot[1]:.3f}))"
    if not frames:
        return CriticVerdict(False, 0.0, f"{effect}: no fresh perception")
    height = float(obj.size[2])
    judgements = []
    for frame in frames:
        state, problem = _released_state(frame, robot, obj, object_id)
        if problem is not None:
            judgements.append(problem)
            continue
        boxes = candidate_boxes(obj, frame.boxes, before.values())
        if not boxes:
            judgements.append(FrameJudgement(False, f"no {describe(obj)} is seen"))
            continue
        box = min(boxes, key=lambda b: math.dist(b.position[:2], spot))
        distance = box_distance(state.grasp_point, box.position, box.size, box.yaw)
        if distance <= HOLD_DISTANCE_M:
            judgements.append(FrameJudgement(False, f"{object_id} is seen at the gripper ({distance:.3f} m from the "
                                                     f"grasp point): not released"))
            continue
        off = math.dist(box.position[:2], spot)
        near = off <= PLACE_AT_TOL_M
        gap = bottom_of(box, height) - WORLD_SURFACE_Z
        resting = abs(gap) <= ON_Z_TOL_M
        near_text = (f"{object_id} centre ({box.position[0]:.3f}, {box.position[1]:.3f}) is {off:.3f} m from the "
                     f"position {'<=' if near else '>'} {PLACE_AT_TOL_M:.3f}")
        rest_text = (f"its bottom is {gap:+.3f} m from the surface at z={WORLD_SURFACE_Z:.3f} "
                     f"({'on' if resting else 'not on'} it within {ON_Z_TOL_M:.3f})")
        failed = [t for t, good in ((near_text, near), (rest_text, resting)) if not good]
        reason = "; ".join(failed) if failed else f"{near_text}; {rest_text}"
        judgements.append(FrameJudgement(near and resting, reason))
    return _aggregate(effect, judgements)


def direction_vector(direction: str, base_yaw: float = 0.0) -> np.ndarray:
    """Return the world xy unit vector of a push direction in the robot's view (forward = base x, left = y)."""
    angle = {"forward": 0.0, "left": math.pi / 2, "backward": math.pi, "right": -math.pi / 2}[direction]
    return np.array([math.cos(base_yaw + angle), math.sin(base_yaw + angle)])


def _post_push(params: Any, before: dict[str, MapObject], frames: Sequence[PerceptionFrame],
               robot: Proprioception | None) -> CriticVerdict:
    object_id, direction, distance = (arg(params, k) for k in ("object", "direction", "distance"))
    if (missing := _missing(object_id, before)) is not None:
        return missing
    if direction not in DIRECTIONS:
        return CriticVerdict(False, 1.0, f"unknown push direction '{direction}'; one of {', '.join(DIRECTIONS)}")
    distance = float(distance)
    obj = before[object_id]
    effect = f"pushed({object_id}, {direction}, {distance:.3f})"
    if not frames:
        return CriticVerdict(False, 0.0, f"{effect}: no fresh perception")
    start = obj.position[:2]
    low, high = PUSH_MIN_FRACTION * distance, PUSH_MAX_FRACTION * distance + PUSH_SLACK_M
    judgements = []
    for frame in frames:
        state = frame.robot or robot
        yaw = state.base_pose[2] if state is not None and state.base_pose is not None else 0.0
        unit = direction_vector(direction, yaw)
        expected = start + unit * distance
        # The object itself may now stand where the map last saw it: it claims no observation.
        others = [o for o in before.values() if o.id != object_id]
        boxes = candidate_boxes(obj, frame.boxes, others)
        if not boxes:
            judgements.append(FrameJudgement(False, f"no {describe(obj)} is seen"))
            continue
        box = min(boxes, key=lambda b: math.dist(b.position[:2], expected))
        moved = box.position[:2] - start
        along = float(moved @ unit)
        across = float(moved @ np.array([-unit[1], unit[0]]))
        ok = low <= along <= high
        text = (f"{object_id} seen at ({box.position[0]:.3f}, {box.position[1]:.3f}), moved {along:+.3f} m {direction} "
                f"({across:+.3f} m across) from ({start[0]:.3f}, {start[1]:.3f}); needed [{low:.3f}, {high:.3f}]")
        judgements.append(FrameJudgement(ok, text))
    return _aggregate(effect, judgements)


def _post_navigate(params: Any, before: dict[str, MapObject], frames: Sequence[PerceptionFrame],
                   robot: Proprioception | None, footprint: Footprint) -> CriticVerdict:
    object_id = arg(params, "object")
    if robot is None or robot.base_pose is None:
        return CriticVerdict(False, 0.0, "the robot's base pose is not observed (no transform to the base)")
    if not object_id:
        x, y, yaw = robot.base_pose
        pose = list(arg(params, "pose") or [])
        if len(pose) not in (2, 3):
            return CriticVerdict(False, 1.0, "navigate_to needs an object or a pose [x, y] or [x, y, yaw]")
        gx, gy, gyaw = pose[0], pose[1], (pose[2] if len(pose) == 3 else None)
        tolerance = NAVIGATE_POSITION_TOL_M
        error = math.dist((x, y), (float(gx), float(gy)))
        ok = error <= tolerance
        text = f"base at ({x:.3f}, {y:.3f}), {error:.3f} m from the goal ({float(gx):.3f}, {float(gy):.3f}) " \
               f"{'<=' if ok else '>'} {tolerance:.3f}"
        if gyaw is not None:
            yaw_error = abs(math.remainder(yaw - float(gyaw), 2 * math.pi))
            yaw_ok = yaw_error <= NAVIGATE_YAW_TOL_RAD
            text += f"; heading {math.degrees(yaw_error):.1f} deg off {'<=' if yaw_ok else '>'} " \
                    f"{math.degrees(NAVIGATE_YAW_TOL_RAD):.1f}"
            ok = ok and yaw_ok
        return CriticVerdict(ok, 1.0, f"at_goal {'observed' if ok else 'not observed'}: {text}")
    if (missing := _missing(object_id, before)) is not None:
        return missing
    obj = before[object_id]
    effect = f"near(robot, {object_id})"

    def judge(state: Proprioception, box: ObservedBox, seen: bool) -> FrameJudgement:
        x, y, yaw = state.base_pose
        gap = footprint_gap((x, y, yaw), footprint,
                            ObjectBox((box.position[0], box.position[1]), (box.size[0], box.size[1]), box.yaw))
        ok = gap <= NAVIGATE_GAP_M
        source = "seen" if seen else "from the map (not visible)"
        return FrameJudgement(ok, f"gap between the robot's footprint at ({x:.2f}, {y:.2f}) and {object_id} "
                                   f"({source}) {gap:.3f} m {'<=' if ok else '>'} {NAVIGATE_GAP_M:.2f}",
                               1.0 if seen else MAP_FALLBACK_WEIGHT)

    if not frames:
        box = ObservedBox(obj.label, obj.category, obj.color, obj.position, obj.size, obj.yaw)
        return _aggregate(effect, [judge(robot, box, False)])
    judgements = []
    for frame in frames:
        state = frame.robot if frame.robot is not None and frame.robot.base_pose is not None else robot
        box, seen = _target_box(obj, frame, before)
        judgements.append(judge(state, box, seen))
    return _aggregate(effect, judgements)


def _post_search(params: Any, map_objects: Mapping[str, MapObject] | Iterable[MapObject] | None,
                 find: Finder | None) -> CriticVerdict:
    query = arg(params, "query") or arg(params, "text") or arg(params, "object")
    if find is None:
        return CriticVerdict(False, 0.0, f"found({query!r}): the critic has no map lookup to check it")
    objects = as_map(map_objects)
    matches = [(o, s) for o, s in find(str(query)) if not objects or o.id in objects]
    if not matches:
        return CriticVerdict(False, 1.0, f"found({query!r}) not observed: the map holds no match among "
                                         f"{len(objects)} objects")
    best, score = matches[0]
    return CriticVerdict(True, float(max(0.0, min(1.0, score))),
                         f"found({query!r}) observed: the map holds '{best.id}' ({best.label}) at "
                         f"{xyz(best.position)}, score {score:.2f}")


def _post_arm(skill: str, params: Any, robot: Proprioception | None, home: Sequence[float] | None) -> CriticVerdict:
    if skill == "move_arm_home":
        if robot is None or robot.arm_joints is None:
            return CriticVerdict(False, 0.0, "arm_home: no fresh arm joint states")
        target = np.asarray(home if home is not None else PANDA_HOME, dtype=float)
        if robot.arm_joints.shape != target.shape:
            return CriticVerdict(False, 1.0,
                                 f"arm_home: {robot.arm_joints.size} joints measured, home has {target.size}")
        errors = np.abs(robot.arm_joints - target)
        worst = int(np.argmax(errors))
        ok = bool(errors[worst] <= HOME_TOLERANCE_RAD)
        return CriticVerdict(ok, 1.0, f"arm_home {'observed' if ok else 'not observed'}: the largest joint error is "
                                      f"{errors[worst]:.3f} rad (joint {worst + 1}) "
                                      f"{'<=' if ok else '>'} {HOME_TOLERANCE_RAD:.3f}")
    if robot is None or robot.gripper_opening is None:
        return CriticVerdict(False, 0.0, f"{skill}: no fresh finger joint states")
    opening = robot.gripper_opening
    if skill == "open_gripper":
        requested = min(float(arg(params, "opening", robot.max_opening) or robot.max_opening), robot.max_opening)
        ok = opening >= requested - OPEN_TOLERANCE_M
        return CriticVerdict(ok, 1.0, f"gripper_open {'observed' if ok else 'not observed'}: the fingers are "
                                      f"{cm(opening)} apart, {cm(requested)} requested (tolerance "
                                      f"{OPEN_TOLERANCE_M * 1000:.0f} mm)")
    if robot.gripper_speed is None:
        return CriticVerdict(False, 0.0, "gripper_closed: the fingers' speed is not measured")
    stopped = robot.gripper_speed <= GRIPPER_STOPPED_SPEED
    if not stopped:
        return CriticVerdict(False, 1.0, f"gripper_closed not observed: the fingers are still moving "
                                         f"({robot.gripper_speed * 1000:.1f} mm/s) at {cm(opening)} apart")
    if robot.gripper_command is not None and robot.gripper_command > CLOSED_OPENING:
        return CriticVerdict(False, 1.0, f"gripper_closed not observed: the last command opened the fingers to "
                                         f"{cm(robot.gripper_command)}")
    what = "nothing is between them" if opening <= CLOSED_OPENING else "something holds them apart"
    return CriticVerdict(True, 1.0, f"gripper_closed observed: the fingers stopped {cm(opening)} apart; {what}")
