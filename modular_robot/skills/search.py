"""The search skill: find an object that matches a description.

It asks the semantic map first; then, FILM-style, it looks around in place and at frontier places
of the occupancy grid (known-free cells next to unknown ones), asking the map after every view,
until a good enough match appears or `max_places` places have been seen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.navigation.geometry import OccupancyMap, Point, Pose, grid_problem, wrap_angle
from modular_robot.core.navigation.path_planning import build_costmap
from modular_robot.skills.base import SkillResult, refuse, skill
from modular_robot.skills.driving import (
    Cancelled,
    Target,
    context_problem,
    drive,
    localise,
    room_to_turn,
    rounded,
    turn,
    valid_pose,
)
from modular_robot.skills.interfaces import SkillContext

# `search` accepts a map match at or above this score. `query` scores are products of noun, colour
# and size factors: an exact or synonym-table noun match with a matching colour scores 0.6-1.0,
# while an object whose colour is unknown scores at most 0.5 ("possible, unconfirmed") and a
# MiniLM-only noun match needs cosine >= 0.65 to reach 0.6. So a match at 0.6 names the described
# kind of object with no contradicting attribute; weaker ones are worth another look.
MATCH_SCORE = 0.6
# Views per look-around: the camera's ~73 degree horizontal field of view overlaps 60 degree turns.
LOOK_STEPS = 6
# Robot time a look waits for the map to take in a fresh observation (s).
REFRESH_TIMEOUT_S = 2.0
# Frontier pieces smaller than this many cells are noise.
FRONTIER_MIN_CELLS = 5
# Frontiers are cut into pieces at most this long, each a candidate place (m).
FRONTIER_CHUNK_M = 1.5
# A frontier place within this distance of a place already looked from is skipped (m).
VISITED_RADIUS_M = 1.0


class SearchParams(BaseModel):
    """Parameters of `search`."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=200,
                       description="Description of the object to find, e.g. 'the red cube' or 'a mug'.")
    max_places: int = Field(
        3, ge=1, le=10,
        description="Places to look around from, the current one first; each look turns the base a full circle "
                    "where there is room (a robot without a base just looks again from where it is).")


def _best_match(ctx: SkillContext, query: str) -> tuple[tuple[MapObject, float] | None, tuple[MapObject, float] | None]:
    """Return the best match at or above MATCH_SCORE (or None), and the best match of any score (or None)."""
    matches = ctx.world.find(query, 3)
    best = matches[0] if matches else None
    good = next(((obj, score) for obj, score in matches if score >= MATCH_SCORE), None)
    return good, best


def _found(query: str, match: tuple[MapObject, float], places: int, moved: bool,
           pose: Pose | None) -> SkillResult:
    obj, score = match
    observed: dict[str, Any] = {"object": obj.id, "score": round(float(score), 3), "places": places,
                                "position": rounded(obj.position)}
    if pose is not None:
        observed["pose"] = rounded(pose)
    return SkillResult(True, f"found '{obj.id}' ({obj.label}) matching '{query}' with score {score:.2f}",
                       {"moved": moved, "observed": observed})


def _not_found(query: str, places: int, best: tuple[MapObject, float] | None, moved: bool, why: str) -> SkillResult:
    hint = "" if best is None else f"; the closest was '{best[0].id}' with score {best[1]:.2f} (< {MATCH_SCORE})"
    place_word = "place" if places == 1 else "places"
    return SkillResult(False, f"no object matching '{query}' after looking at {places} {place_word}{hint}{why}",
                       {"moved": moved, "observed": {"places": places}})


def _frontier_places(ctx: SkillContext, grid: OccupancyMap, pose: Pose, visited: list[Point]) -> list[Point]:
    """Return free places next to unexplored space, nearest first, away from places already looked from."""
    costmap = build_costmap(grid, ctx.base_radius)
    known_free = (grid.data >= 0) & ~grid.occupied() & ~costmap.lethal
    near_unknown = ndimage.binary_dilation(grid.unknown(), structure=np.ones((3, 3), bool))
    frontier = known_free & near_unknown
    labels, _ = ndimage.label(frontier, structure=np.ones((3, 3), bool))
    rows, cols = np.nonzero(labels)
    # Long frontiers (the rim of everything seen so far) are cut into pieces of about one chunk.
    chunk = max(1, round(FRONTIER_CHUNK_M / grid.resolution))
    keys = np.stack([labels[rows, cols], rows // chunk, cols // chunk], axis=1)
    _, piece = np.unique(keys, axis=0, return_inverse=True)
    places = []
    for index in range(int(piece.max()) + 1 if len(rows) else 0):
        members = np.nonzero(piece.ravel() == index)[0]
        if len(members) < FRONTIER_MIN_CELLS:
            continue
        r, c = rows[members], cols[members]
        centre = int(np.argmin(np.hypot(r - r.mean(), c - c.mean())))
        place = grid.center(int(r[centre]), int(c[centre]))
        if all(math.dist(place, seen) > VISITED_RADIUS_M for seen in visited):
            places.append(place)
    return sorted(places, key=lambda p: math.dist(p, pose[:2]))


def _look_around(ctx: SkillContext, query: str) -> tuple[tuple[MapObject, float] | None,
                                                        tuple[MapObject, float] | None, bool]:
    """Look in LOOK_STEPS directions from here (turning only with room to), asking the map after each view.

    Returns:
        The good match (or None), the best match of any score seen (or None), and whether the base turned.
    """
    best = None
    turned = False
    pose = valid_pose(ctx.base.pose())
    room = pose is not None and room_to_turn(ctx.base.occupancy(), pose)
    for view in range(LOOK_STEPS if room else 1):
        if view > 0:
            current = valid_pose(ctx.base.pose())
            if current is None:
                break
            turned = True
            if not turn(ctx, wrap_angle(current[2] + 2.0 * math.pi / LOOK_STEPS)):
                break
        ctx.world.refresh(REFRESH_TIMEOUT_S)
        good, seen = _best_match(ctx, query)
        if seen is not None and (best is None or seen[1] > best[1]):
            best = seen
        if good is not None:
            return good, best, turned
    return None, best, turned


def search(params: SearchParams, ctx: SkillContext) -> SkillResult:
    """Find an object matching a description: ask the map, then look around and explore until it is seen.

    Succeeds as soon as the semantic map holds a good match; its id is in the observed effects.
    Looks around in place, then drives to unexplored places of the occupancy grid and looks there,
    at most `max_places` places. Without a base it only looks again from where it is.
    """
    good, best = _best_match(ctx, params.query)
    if good is not None:
        return _found(params.query, good, 0, False, None)
    if ctx.base is None:
        ctx.world.refresh(REFRESH_TIMEOUT_S)
        good, seen = _best_match(ctx, params.query)
        if good is not None:
            return _found(params.query, good, 1, False, None)
        return _not_found(params.query, 1, seen or best, False, "")
    problem = context_problem(ctx)
    if problem is not None:
        return refuse(problem)
    moved = False
    places = 0
    visited: list[Point] = []
    why = ""
    try:
        for attempt in range(params.max_places):
            pose = localise(ctx)
            if pose is None:
                why = "; the base is not localised"
                break
            if attempt > 0:
                grid = ctx.base.occupancy()
                usable = grid is not None and grid_problem(grid) is None
                candidates = _frontier_places(ctx, grid, pose, visited) if usable else []
                if not candidates:
                    why = "; no unexplored place is left to look from"
                    break
                place = candidates[0]
                visited.append(place)
                outcome = drive(ctx, Target(f"the unexplored place at ({place[0]:.2f}, {place[1]:.2f})",
                                              position=place))
                moved = moved or outcome.moved
                if not outcome.success:
                    continue
            else:
                visited.append(pose[:2])
            ctx.progress(f"looking for '{params.query}' at place {places + 1}", attempt / params.max_places)
            good, seen, turned = _look_around(ctx, params.query)
            places += 1
            moved = moved or turned
            if seen is not None and (best is None or seen[1] > best[1]):
                best = seen
            if good is not None:
                return _found(params.query, good, places, moved, valid_pose(ctx.base.pose()))
    except Cancelled:
        return SkillResult(False, "cancelled", {"moved": True})
    ctx.base.stop()
    return _not_found(params.query, places, best, moved, why)


SEARCH = skill("search", search, SearchParams, (), ("found(query)",))
