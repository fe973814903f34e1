"""What the rules planner knows about the scene: object sets, names, places and feasibility.

Referring expressions are resolved with `modular_robot.core.mapping.query`; this module decides
what its scores mean for a command. A phrase names the objects that fit it nearly as well as the
best one (`SET_RATIO`, the resolver's own best-fit ratio), so "the red cube" with two red cubes
names both (ambiguous for a singular command), while "the biggest ball" names one. It also names
objects for replies ("the red cube on the left"), says where an object is ("in the gray tray"),
and checks what the gripper and the place skill can do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.query import query
from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.core.robot_model import PANDA_MAX_OPENING
from modular_robot.motion.grasping import grasp_rejection

# Objects scoring at least this fraction of the best score fit a phrase as well (query's best-fit ratio).
SET_RATIO = 0.8
# Set members must fit at least this well: below it an object is only loosely like the words
# (an unknown colour scores 0.5, a MiniLM-only noun match scores low).
SET_FLOOR = 0.5
# The gripper's widest opening (m): what `pick` refuses is refused before planning.
# Categories that hold things; other objects hold things when wide and low (a large "box").
CONTAINER_CATEGORIES = frozenset({"tray", "bowl", "flat", "box", "bin", "basket", "container", "plate", "dish",
                                  "crate", "pan", "pot", "platter", "basin"})
_ROUND_CATEGORIES = frozenset({"sphere", "ball", "orb", "globe", "marble"})
_CONTAINER_MIN_EXTENT_M = 0.10
# Where a held object is put down: below it, else the nearest free spot on rings this far apart
# around it (m), tried at FREE_SPOT_ANGLES directions each, up to FREE_SPOT_MAX_M away.
FREE_SPOT_STEP_M = 0.05
FREE_SPOT_MAX_M = 0.25
FREE_SPOT_ANGLES = 12
# Clearance kept between a put-down object's footprint and its neighbours' (m).
FREE_SPOT_GAP_M = 0.01


def ranked(objects: Sequence[MapObject], text: str, similarity: TextSimilarity,
           robot_pose: tuple[float, float, float] | None) -> list[tuple[MapObject, float]]:
    """Return every object the phrase may mean, best first: by score, then nearer the robot, then id."""
    results = query(objects, text, 0, similarity=similarity, robot_pose=robot_pose)
    return sorted(results, key=lambda r: (-round(r[1], 6), robot_distance(r[0], robot_pose), r[0].id))


def best_group(results: list[tuple[MapObject, float]], floor: float = 0.0) -> list[tuple[MapObject, float]]:
    """Return the results that fit nearly as well as the best one (at least `floor`)."""
    if not results:
        return []
    best = max(score for _, score in results)
    return [(o, s) for o, s in results if s >= max(floor, SET_RATIO * best)]


def robot_xy(obj: MapObject, robot_pose: tuple[float, float, float] | None) -> np.ndarray:
    """Return the object's centre (x forward, y left) in the robot's frame."""
    x, y, yaw = robot_pose if robot_pose is not None else (0.0, 0.0, 0.0)
    dx, dy = float(obj.position[0]) - x, float(obj.position[1]) - y
    return np.array([math.cos(yaw) * dx + math.sin(yaw) * dy, -math.sin(yaw) * dx + math.cos(yaw) * dy])


def robot_distance(obj: MapObject, robot_pose: tuple[float, float, float] | None) -> float:
    """Return the object's horizontal distance from the robot (m)."""
    return float(np.hypot(*robot_xy(obj, robot_pose)))


def noun(obj: MapObject) -> str:
    """Return what the object is, without colour or size ("cube", "rubber duck")."""
    return obj.category.replace("_", " ")


def short_name(obj: MapObject) -> str:
    """Return "red cube": colour and noun."""
    return f"{obj.color} {noun(obj)}" if obj.color else noun(obj)


def full_name(obj: MapObject) -> str:
    """Return the object's label ("small red cube"), the way replies name it."""
    return obj.label or short_name(obj)


def a_or_an(phrase: str) -> str:
    """Return the phrase with its indefinite article ("an orange ball")."""
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def join_words(items: Sequence[str], last: str = "and") -> str:
    """Return "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def distinct_names(objects: Sequence[MapObject], robot_pose: tuple[float, float, float] | None) -> list[str]:
    """Return a name per object that tells it apart from the others ("the red cube on the left")."""
    for namer in (short_name, full_name):
        names = [namer(o) for o in objects]
        if len(set(names)) == len(names):
            return [f"the {name}" for name in names]
    names = [full_name(o) for o in objects]
    result = []
    for obj, name in zip(objects, names):
        peers = sorted((o for o, n in zip(objects, names) if n == name),
                       key=lambda o: (-robot_xy(o, robot_pose)[1], o.id))
        index = peers.index(obj)
        if len(peers) == 1:
            where = ""
        elif index == 0:
            where = " on the left"
        elif index == len(peers) - 1:
            where = " on the right"
        elif len(peers) == 3:
            where = " in the middle"
        else:
            where = f" {_ordinal(index + 1)} from the left"
        result.append(f"the {name}{where}")
    return result


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(n, f"{n}th")


def is_container(obj: MapObject) -> bool:
    """Return whether things can go in the object: a tray, bowl or similar, or anything wide and low."""
    if obj.category.lower() in CONTAINER_CATEGORIES:
        return True
    return float(max(obj.size[0], obj.size[1])) >= _CONTAINER_MIN_EXTENT_M and float(obj.size[2]) <= 0.1


def is_round(obj: MapObject) -> bool:
    """Return whether nothing stays on top of the object (a ball)."""
    return obj.category.lower() in _ROUND_CATEGORIES


def grasp_problem(obj: MapObject) -> str | None:
    """Return why the gripper cannot pick the object up, or None when it can."""
    return grasp_rejection(obj.size, PANDA_MAX_OPENING)


def footprint_radius(obj: MapObject) -> float:
    """Return the radius of the circle around the object's footprint (m)."""
    return float(np.hypot(obj.size[0], obj.size[1])) / 2.0


def free_spot(obj: MapObject, objects: Sequence[MapObject]) -> tuple[float, float] | None:
    """Return where the object can be put down on the surface: below it, else the nearest free spot around.

    A spot is free when the object's footprint circle there clears every other object's by
    FREE_SPOT_GAP_M (the place_at skill refuses a spot another object takes up). Returns None when
    no spot within FREE_SPOT_MAX_M is free.
    """
    others = [o for o in objects if o.id != obj.id]
    radius = footprint_radius(obj)
    x0, y0 = float(obj.position[0]), float(obj.position[1])
    rings = int(round(FREE_SPOT_MAX_M / FREE_SPOT_STEP_M))
    for ring in range(rings + 1):
        distance = ring * FREE_SPOT_STEP_M
        for k in range(FREE_SPOT_ANGLES if ring else 1):
            angle = 2.0 * math.pi * k / FREE_SPOT_ANGLES
            spot = (x0 + distance * math.cos(angle), y0 + distance * math.sin(angle))
            if all(math.dist(spot, (float(o.position[0]), float(o.position[1])))
                   >= radius + footprint_radius(o) + FREE_SPOT_GAP_M for o in others):
                return spot
    return None


def rests_in_or_on(obj: MapObject, support: MapObject) -> bool:
    """Return whether the object sits in or on the support: centre over it, bottom at its floor or top."""
    if obj is support or obj.id == support.id:
        return False
    c, s = math.cos(support.yaw), math.sin(support.yaw)
    dx, dy = obj.position[:2] - support.position[:2]
    local = (c * dx + s * dy, -s * dx + c * dy)
    if abs(local[0]) > support.size[0] / 2 or abs(local[1]) > support.size[1] / 2:
        return False
    bottom = float(obj.position[2] - obj.size[2] / 2)
    support_bottom = float(support.position[2] - support.size[2] / 2)
    support_top = float(support.position[2] + support.size[2] / 2)
    return support_bottom - 0.01 <= bottom <= support_top + 0.03


def support_of(obj: MapObject, objects: Sequence[MapObject]) -> MapObject | None:
    """Return the object this one rests in or on, if any (the largest such)."""
    supports = [o for o in objects if o.id != obj.id and rests_in_or_on(obj, o)
                and float(np.prod(o.size[:2])) > float(np.prod(obj.size[:2]))]
    return max(supports, key=lambda o: float(np.prod(o.size[:2])), default=None)


def where_phrase(obj: MapObject, objects: Sequence[MapObject], robot_pose: tuple[float, float, float] | None) -> str:
    """Return where an object is: "in the gray tray" or "left of the white bowl", and its coordinates."""
    coordinates = f"at x {obj.position[0]:.2f} m, y {obj.position[1]:.2f} m"
    support = support_of(obj, objects)
    if support is not None:
        word = "in" if is_container(support) else "on"
        return f"{word} the {full_name(support)}, {coordinates}"
    others = [o for o in objects if o.id != obj.id and support_of(o, objects) is None]
    if not others:
        return coordinates
    here = robot_xy(obj, robot_pose)
    anchor = min(others, key=lambda o: (float(np.linalg.norm(robot_xy(o, robot_pose) - here)), o.id))
    dx, dy = here - robot_xy(anchor, robot_pose)
    if abs(dy) >= abs(dx):
        relation = "left of" if dy > 0 else "right of"
    else:
        relation = "behind" if dx > 0 else "in front of"
    return f"{relation} the {full_name(anchor)}, {coordinates}"
