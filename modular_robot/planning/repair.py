"""Replan the rest of a task after a step failed: re-ground it in the current map, decompose the failed step.

Decomposition is as-needed (ADaPT): a step is only broken into sub-steps when it failed, and only
into what its failure says is missing. A place whose object is no longer in the gripper becomes
home + pick + place; a pick that found nothing where the map had the object becomes home + pick.
Going home takes the arm out of the camera's view, so the next attempt works from a fresh map.
A pick the critic refused because the gripper did not look empty first opens it. A pick or place the
critic refused as out of the arm's reach, on a robot with a base, first drives up to its object or
target again (a base that stopped at a table's corner). Other steps are
retried on the re-grounded map. Objects that the map re-identified under a new id are found again
by their kind and colour, nearest to where they were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from modular_robot.core.mapping.objects import MapObject
from modular_robot.planning.dialogue import follow_renames
from modular_robot.planning.plan import Call, object_arguments

# A vanished id is re-found as an object of the same kind and colour within this distance (m).
REGROUND_RADIUS_M = 0.5


@dataclass(frozen=True)
class Failure:
    """Why a step failed.

    Attributes:
        call: The failed call.
        phase: "pre" (the critic's precondition check), "execute" (the skill failed or refused),
            "post" (the critic did not see the effect) or "cancelled".
        reason: The critic's or the skill's reason.
        moved: Whether the failed call commanded motion.
    """

    call: Call
    phase: str
    reason: str
    moved: bool = True


def is_out_of_reach(reason: str) -> bool:
    """Return whether a critic's reason refuses a step because the arm cannot reach its object or spot."""
    return " is unreachable: " in reason


def reground(calls: Sequence[Call], planned_on: Sequence[MapObject], current: Sequence[MapObject],
             held: str | None = None, renamed: dict[str, str] | None = None) -> list[Call] | str:
    """Return the calls with every object id the map no longer has replaced by its new id, or why not.

    The held object keeps its id: the map loses sight of what is in the gripper, the skill server
    remembers it. Each replacement (old id -> new id) is also added to `renamed` when given.
    """
    ids = {o.id for o in current}
    new_ids: dict[str, str] = {}
    for call in calls:
        for name in object_arguments(call.skill):
            object_id = call.args.get(name)
            if object_id is None or object_id in ids or object_id in new_ids or object_id == held:
                continue
            found = _refind(object_id, planned_on, current)
            if found is None:
                return f"'{object_id}' is no longer in the map"
            new_ids[object_id] = found
    if renamed is not None:
        renamed.update(new_ids)
    return [_rename(call, new_ids) for call in calls]


def repair(remaining: Sequence[Call], failure: Failure, planned_on: Sequence[MapObject],
           current: Sequence[MapObject], held: str | None, skills: Sequence[str],
           renamed: dict[str, str] | None = None) -> list[Call] | str:
    """Return the calls that finish the task from here, or why there are none.

    Args:
        remaining: The failed call and every call after it, as planned.
        failure: Why the first of them failed.
        planned_on: The map the plan was made from (to re-find objects whose id changed).
        current: The map now.
        held: Id of the object the gripper holds now, or None.
        skills: Skills this robot can run.
        renamed: Gets every object id that the map replaced (old id -> new id), when given.
    """
    calls = reground(remaining, planned_on, current, held, renamed)
    if isinstance(calls, str):
        return calls
    failed, rest = calls[0], calls[1:]
    home = [Call("move_arm_home")] if "move_arm_home" in skills else []
    obj = failed.args.get("object")
    drive = "navigate_to" in skills and failure.phase == "pre" and is_out_of_reach(failure.reason)
    if failed.skill in ("place", "place_at"):
        if held != obj:
            if "pick" not in skills:
                return f"'{obj}' is no longer held and this robot cannot pick"
            return [*home, Call("pick", {"object": obj}), failed, *rest]
        if drive and failed.skill == "place":
            return [*home, Call("navigate_to", {"object": failed.args["target"]}), failed, *rest]
        return [*home, failed, *rest]
    if failed.skill == "pick":
        if held is not None and held != obj:
            return f"the gripper still holds '{held}'"
        if drive:
            return [*home, Call("navigate_to", {"object": obj}), failed, *rest]
        if failure.phase == "pre" and held is None and "open_gripper" in skills:
            # Nothing should be in the gripper: open it, so that the critic sees it empty.
            return [Call("open_gripper"), *home, failed, *rest]
        return [*home, failed, *rest]
    if failed.skill == "push":
        return [*home, failed, *rest]
    return [failed, *rest]


def refind_moved(touched: Iterable[str], before: Sequence[MapObject], after: Sequence[MapObject],
                 held: str | None, renamed: dict[str, str]) -> None:
    """Add to `renamed` the new id of each touched object that the map re-identified while it moved.

    Once out of the gripper, a moved object can be seen anew under a new id without any step
    failing, so no replan notices it. Its new id is one the map did not have before the task, of
    the same kind and colour, nearest to where the object was (an object the task moved may be
    anywhere); each new id stands for one old id at most.
    """
    old_objects = {o.id: o for o in before}
    after_ids = {o.id for o in after}
    taken = set(old_objects) | set(renamed.values())
    for object_id in sorted(touched):
        old = old_objects.get(object_id)
        now_id = follow_renames(renamed, object_id)
        if old is None or now_id in after_ids or now_id == held:
            continue
        found = _nearest_alike(old, [o for o in after if o.id not in taken])
        if found is not None:
            renamed[now_id] = found.id
            taken.add(found.id)


def _refind(object_id: str, planned_on: Sequence[MapObject], current: Sequence[MapObject]) -> str | None:
    """Return the id of the current object that is most likely the one called `object_id` before.

    Kind and colour must match; the label's size word may not (a moved object seen anew can be
    sized differently).
    """
    old = next((o for o in planned_on if o.id == object_id), None)
    if old is None:
        return None
    nearest = _nearest_alike(old, current)
    if nearest is None or math.dist(nearest.position, old.position) > REGROUND_RADIUS_M:
        return None
    return nearest.id


def _nearest_alike(old: MapObject, candidates: Sequence[MapObject]) -> MapObject | None:
    """Return the candidate of `old`'s kind and colour nearest to where `old` was, or None."""
    alike = [o for o in candidates if o.category == old.category and o.color == old.color]
    return min(alike, key=lambda o: math.dist(o.position, old.position), default=None)


def _rename(call: Call, renamed: dict[str, str]) -> Call:
    if not renamed:
        return call
    args = {k: renamed.get(v, v) if k in object_arguments(call.skill) else v for k, v in call.args.items()}
    return Call(call.skill, args)
