"""Evaluate scenario predicates on ground-truth world states.

Predicates arrive in the normalised form that :mod:`modular_robot.scenarios.scenario` produces: a dict
with exactly one key, the predicate name. Evaluation is pure: it reads two
:class:`~modular_robot.scenarios.world_state.WorldState` snapshots (the first and the last of an episode)
and never raises for a world that lacks an object; such a predicate fails and says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modular_robot.core.relations import IN_TOP_SLACK_M, IN_XY_MARGIN_M, ON_Z_TOL_M, RELATION_MARGIN_M
from modular_robot.scenarios.world_state import ObjectState, WorldState

UNMOVED_TOL_M = 0.01
UPRIGHT_MAX_TILT_RAD = math.radians(15.0)

# The id that names the robot's base in `near` and `at`.
ROBOT_ID = "robot"


@dataclass(frozen=True)
class PredicateResult:
    """The outcome of one predicate.

    Attributes:
        predicate: Compact readable form, e.g. ``in(red_cube, tray)``.
        passed: Whether the predicate holds.
        detail: The measured quantities behind the verdict.
    """

    predicate: str
    passed: bool
    detail: str


class _MissingObject(Exception):
    """An object a predicate names is not in the world (removed, fell out of the scene)."""

    def __init__(self, object_id: str) -> None:
        super().__init__(f"{object_id} is not in the world")


def evaluate(predicate: dict[str, Any], final: WorldState, initial: WorldState) -> PredicateResult:
    """Evaluate one normalised predicate.

    Args:
        predicate: A one-key dict such as ``{"in": ["red_cube", "tray"]}``.
        final: The world at the end of the episode.
        initial: The world at the start of the episode (used by ``unmoved``).

    Returns:
        The verdict with a readable form of the predicate and the measurements behind it. A
        predicate that names an object missing from the world fails, also under ``not``: its truth
        cannot be judged, and passing it would hide a broken episode.

    Raises:
        ValueError: if the predicate is not a one-key dict naming a known predicate (the scenario
            loader rejects such predicates, so this is a programming error).
    """
    text = format_predicate(predicate)
    try:
        passed, detail = _evaluate(predicate, final, initial)
    except _MissingObject as missing:
        return PredicateResult(text, False, str(missing))
    return PredicateResult(text, passed, detail)


def evaluate_all(
    expect: Sequence[dict[str, Any]], final: WorldState, initial: WorldState
) -> list[PredicateResult]:
    """Evaluate every predicate of a scenario's ``expect`` list, in order."""
    return [evaluate(predicate, final, initial) for predicate in expect]


def format_predicate(predicate: dict[str, Any]) -> str:
    """Return the compact readable form of a normalised predicate, e.g. ``near(a, b, 0.100)``.

    Raises:
        ValueError: if the predicate is not a one-key dict naming a known predicate.
    """
    name, args = _split(predicate)
    if name == "not":
        return f"not({format_predicate(args)})"
    if name in ("holding", "upright"):
        return f"{name}({args})"
    if name == "unmoved":
        return f"unmoved({', '.join(args)})"
    if name == "near":
        return f"near({args[0]}, {args[1]}, {args[2]:.3f})"
    if name == "at":
        x, y = args[1]
        return f"at({args[0]}, [{x:.3f}, {y:.3f}], {args[2]:.3f})"
    if name == "count":
        parts = [f"in={args['in']}"]
        parts += [f"{key}={args[key]}" for key in ("type", "color") if args.get(key) is not None]
        parts.append(f"n={args['n']}")
        return f"count({', '.join(parts)})"
    if name == "reply":
        words = ", ".join(args["contains_any"])
        command = args.get("command")
        return f"reply(contains_any=[{words}], command={'last' if command is None else command})"
    return f"{name}({', '.join(args)})"


def _split(predicate: dict[str, Any]) -> tuple[str, Any]:
    """Return the name and arguments of a one-key predicate dict."""
    if not isinstance(predicate, dict) or len(predicate) != 1:
        raise ValueError(f"a predicate is a dict with one key, got {predicate!r}")
    ((name, args),) = predicate.items()
    if name not in PREDICATE_NAMES:
        raise ValueError(f"unknown predicate {name!r}")
    return name, args


def _evaluate(predicate: dict[str, Any], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Return the verdict and detail of a predicate, raising _MissingObject for absent objects."""
    name, args = _split(predicate)
    if name == "not":
        passed, detail = _evaluate(args, final, initial)
        return not passed, f"negated: {detail}"
    return _EVALUATORS[name](args, final, initial)


def _object(world: WorldState, object_id: str) -> ObjectState:
    """Return an object's state, raising _MissingObject when the world lacks it."""
    state = world.objects.get(object_id)
    if state is None:
        raise _MissingObject(object_id)
    return state


def _xy(world: WorldState, entity_id: str) -> tuple[float, float]:
    """Return the xy position of an object's centre, or of the robot's base for ``robot``."""
    if entity_id == ROBOT_ID:
        x, y, _ = world.robot.position
        return x, y
    x, y, _ = _object(world, entity_id).center
    return x, y


def _centre_over(obj: ObjectState, other: ObjectState, margin: float, words: tuple[str, str]) -> tuple[bool, str]:
    """Test whether ``obj``'s centre lies over ``other``'s xy box shrunk by ``margin``."""
    cx, cy, _ = obj.center
    x_lo, x_hi = other.aabb_min[0] + margin, other.aabb_max[0] - margin
    y_lo, y_hi = other.aabb_min[1] + margin, other.aabb_max[1] - margin
    ok = x_lo <= cx <= x_hi and y_lo <= cy <= y_hi
    return ok, (f"{obj.id} centre ({cx:.3f}, {cy:.3f}) {words[0] if ok else words[1]} "
                f"{other.id} x [{x_lo:.3f}, {x_hi:.3f}] y [{y_lo:.3f}, {y_hi:.3f}]")


def _all_of(*checks: tuple[bool, str]) -> tuple[bool, str]:
    """Combine checks; when one fails, report only what failed: that is what a reader needs."""
    if all(ok for ok, _ in checks):
        return True, "; ".join(text for _, text in checks)
    return False, "; ".join(text for ok, text in checks if not ok)


def _in(obj: ObjectState, container: ObjectState) -> tuple[bool, str]:
    """Test whether ``obj`` lies within ``container``'s shrunk xy box and height band."""
    bottom = obj.aabb_min[2]
    z_lo, z_hi = container.aabb_min[2], container.aabb_max[2] + IN_TOP_SLACK_M
    inside_z = z_lo <= bottom <= z_hi
    z_text = (
        f"{obj.id} bottom z={bottom:.3f} {'within' if inside_z else 'not within'} "
        f"{container.id} [{z_lo:.3f}, {z_hi:.3f}]"
    )
    return _all_of(_centre_over(obj, container, IN_XY_MARGIN_M, ("inside", "not inside")), (inside_z, z_text))


def _eval_in(args: list[str], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``in: [obj, container]``."""
    return _in(_object(final, args[0]), _object(final, args[1]))


def _eval_on(args: list[str], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``on: [obj, support]``: centre over the support, bottom at its top."""
    obj, support = _object(final, args[0]), _object(final, args[1])
    bottom, top = obj.aabb_min[2], support.aabb_max[2]
    gap = bottom - top
    touching = abs(gap) <= ON_Z_TOL_M
    z_text = (
        f"{obj.id} bottom z={bottom:.3f} is {gap:+.3f} m from {support.id} top z={top:.3f} "
        f"(tolerance {ON_Z_TOL_M:.3f})"
    )
    return _all_of(_centre_over(obj, support, 0.0, ("over", "not over")), (touching, z_text))


def _eval_near(args: list[Any], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``near: [a, b, dist_m]`` on horizontal distance."""
    a, b, limit = args
    distance = math.dist(_xy(final, a), _xy(final, b))
    relation = "<=" if distance <= limit else ">"
    return distance <= limit, f"xy distance {a}-{b} {distance:.3f} m {relation} {limit:.3f}"


def _robot_frame(world: WorldState, entity_id: str) -> tuple[float, float]:
    """Return an object's centre in the robot base frame (x forward, y left), xy only."""
    x, y = _xy(world, entity_id)
    rx, ry, _ = world.robot.position
    cos_yaw, sin_yaw = math.cos(world.robot.yaw), math.sin(world.robot.yaw)
    dx, dy = x - rx, y - ry
    return cos_yaw * dx + sin_yaw * dy, -sin_yaw * dx + cos_yaw * dy


def _relation(axis: int, sign: float, description: str) -> Callable[..., tuple[bool, str]]:
    """Build the evaluator of a spatial relation in the robot's view.

    Args:
        axis: 0 compares robot-frame x (depth), 1 compares robot-frame y (lateral).
        sign: +1 when the relation holds for a's coordinate exceeding b's, -1 for the opposite.
        description: Template of the compared quantity, e.g. ``"{a}.y - {b}.y"``.
    """

    def evaluate_relation(args: list[str], final: WorldState, initial: WorldState) -> tuple[bool, str]:
        a, b = args
        pa, pb = _robot_frame(final, a), _robot_frame(final, b)
        separation = sign * (pa[axis] - pb[axis])
        passed = separation > RELATION_MARGIN_M
        comparison = ">" if passed else "<="
        return passed, (
            f"robot frame {a}=({pa[0]:.3f}, {pa[1]:.3f}) {b}=({pb[0]:.3f}, {pb[1]:.3f}): "
            f"{description.format(a=a, b=b)} = {separation:.3f} {comparison} {RELATION_MARGIN_M:.3f}"
        )

    return evaluate_relation


def _eval_at(args: list[Any], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``at: [robot|obj, [x, y], tol_m]``."""
    entity, (x, y), tolerance = args
    px, py = _xy(final, entity)
    distance = math.dist((px, py), (x, y))
    relation = "<=" if distance <= tolerance else ">"
    return distance <= tolerance, (
        f"{entity} at ({px:.3f}, {py:.3f}), {distance:.3f} m from ({x:.3f}, {y:.3f}) "
        f"{relation} {tolerance:.3f}"
    )


def _eval_holding(args: str, final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``holding: obj``."""
    _object(final, args)
    held = final.robot.holding
    if held == args:
        return True, f"robot holds {args}"
    if held is None:
        return False, f"robot holds nothing, expected {args}"
    return False, f"robot holds {held}, not {args}"


def _eval_unmoved(args: list[str], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``unmoved: [objs...]``: each centre moved less than 1 cm."""
    moves = {
        object_id: math.dist(_object(initial, object_id).center, _object(final, object_id).center)
        for object_id in args
    }
    moved = [object_id for object_id, distance in moves.items() if distance >= UNMOVED_TOL_M]
    listed = moved or list(moves)
    detail = ", ".join(f"{object_id} moved {moves[object_id]:.3f} m" for object_id in listed)
    relation = ">=" if moved else "<"
    return not moved, f"{detail} ({relation} {UNMOVED_TOL_M:.3f})"


def _eval_upright(args: str, final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``upright: obj``: local z within 15 degrees of world z."""
    up_z = _object(final, args).up_z
    tilt = math.degrees(math.acos(max(-1.0, min(1.0, up_z))))
    passed = up_z > math.cos(UPRIGHT_MAX_TILT_RAD)
    limit = math.degrees(UPRIGHT_MAX_TILT_RAD)
    return passed, f"{args} tilt {tilt:.1f} deg (up_z={up_z:.3f}) {'<' if passed else '>='} {limit:.1f} deg"


def _eval_count(args: dict[str, Any], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``count: {in, type, color, n}``: exactly n matching objects in the container."""
    container = _object(final, args["in"])
    wanted_type, wanted_color, n = args.get("type"), args.get("color"), args["n"]
    inside = sorted(
        state.id
        for state in final.objects.values()
        if state.id != container.id
        and (wanted_type is None or state.type == wanted_type)
        and (wanted_color is None or state.color == wanted_color)
        and _in(state, container)[0]
    )
    kind = " ".join(word for word in (wanted_color, wanted_type) if word is not None) or "object"
    listed = f" ({', '.join(inside)})" if inside else ""
    return len(inside) == n, f"{len(inside)} {kind}(s) in {container.id}{listed}, expected {n}"


def _eval_reply(args: dict[str, Any], final: WorldState, initial: WorldState) -> tuple[bool, str]:
    """Evaluate ``reply: {contains_any, command}`` on whole-word, case-insensitive matches."""
    words = args["contains_any"]
    requested = args.get("command")
    command = len(final.replies) if requested is None else requested
    if not 1 <= command <= len(final.replies):
        label = "the last command" if requested is None else f"command {requested}"
        return False, f"no replies recorded for {label} ({len(final.replies)} commands answered)"
    replies = final.replies[command - 1]
    text = "\n".join(replies).lower()
    # Whole words, so that "no" does not match "know" and phrases such as "which one" still work.
    found = [word for word in words if re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", text)]
    quoted = " | ".join(repr(reply) for reply in replies) or "no reply"
    if found:
        return True, f"command {command} reply contains {', '.join(found)}: {quoted}"
    return False, f"command {command} reply contains none of {', '.join(words)}: {quoted}"


_EVALUATORS: dict[str, Callable[[Any, WorldState, WorldState], tuple[bool, str]]] = {
    "in": _eval_in,
    "on": _eval_on,
    "near": _eval_near,
    "left_of": _relation(1, 1.0, "{a}.y - {b}.y"),
    "right_of": _relation(1, -1.0, "{b}.y - {a}.y"),
    # In front of b means nearer the robot than b along the robot's forward axis.
    "in_front_of": _relation(0, -1.0, "{b}.x - {a}.x"),
    "behind": _relation(0, 1.0, "{a}.x - {b}.x"),
    "at": _eval_at,
    "holding": _eval_holding,
    "unmoved": _eval_unmoved,
    "upright": _eval_upright,
    "count": _eval_count,
    "reply": _eval_reply,
}

# Every predicate name a scenario may use; the scenario loader validates against it.
PREDICATE_NAMES: frozenset[str] = frozenset(_EVALUATORS) | {"not"}
