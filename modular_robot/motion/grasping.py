"""Top-down grasps and place poses from observed 3D boxes (numpy only).

Boxes follow perception's `Detection`: a centre `position`, an extent `size` along the box's own
axes (x, y horizontal, z up) and a `yaw` about the world z axis. Gripper poses are those of the
grasp centre between the fingertips, pointing down, in the same frame as the box. The fingers close
along the gripper's y axis; a gripper yaw of 0 puts that axis along the frame's y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from modular_robot.core.robot_model import PANDA_MAX_OPENING
from modular_robot.core.transforms import quat_from_yaw, quat_multiply

# The grasp centre sits this far below the object's top, or half the object's height if less.
MAX_GRASP_DEPTH = 0.02
# The grasp centre stays this far above the object's bottom (the table), so fingertips (7 mm
# below the centre on a Panda) do not scrape it.
TABLE_CLEARANCE = 0.015
# Lower objects leave under 4 mm of finger pad on them at that clearance.
MIN_HEIGHT = 0.012
# Opening beyond the object's width, so the fingers clear it while descending.
OPENING_MARGIN = 0.02
# Opening beyond a released object's footprint diagonal.
DIAGONAL_MARGIN = 0.005
# A release first loosens the fingers to this much beyond the object's width and waits
# `RELEASE_SETTLE_S` of robot time: the object drops onto its support between fingers that still
# guide it, before they part wide. Opened wide at once, a pad that friction holds a moment longer
# than the other pivots a falling cube on it (seen tilting 20 degrees in 1.5 cm of drop, and
# leaving with the hand, on the mobile manipulator after a carry).
LOOSEN_MARGIN = 0.005
RELEASE_SETTLE_S = 0.15
# The least clearance a grasp needs; below it the fingers would hit the object on the way down.
MIN_CLEARANCE = 0.005
# Footprints whose sides differ by less than this fraction have no preferred closing direction.
SQUARE_TOLERANCE = 0.1
APPROACH_HEIGHT = 0.10
# Height above a support, a container's floor or its rim at which the held object's bottom is released.
RELEASE_CLEARANCE = 0.01
PLACE_RELATIONS = ("in", "on")
# The Panda hand's underside, where the fingers are mounted (0.058 m down the hand), is this far
# above the grasp centre (0.105 m down the hand); lowered into a container it stays above the rim.
HAND_ABOVE_GRASP = 0.045
# The map's box of a container is its outside: walls up to this thick are assumed inside it (m).
CONTAINER_WALL = 0.01
# Least gap between a placed object's bounding circle and a container's walls or a support's
# edge, so that a release a few millimetres off still lands inside (m).
PLACE_MARGIN = 0.005
# Least gap between the bounding circles of a placed object and one already there: wide enough
# for a release half a centimetre off to land clear, and for perception to see the two apart. The
# geometric detector (1 cm voxels) joined two 4 cm cubes in a tray whose facing corners were 1.3 cm
# apart and kept them apart from 1.8 cm, in renders of the tabletop camera (m).
NEIGHBOUR_GAP = 0.025
# Spacing of the candidate release points over a container's or support's inner area (m); coarser
# on large supports, so that no more than about this many cells span the longer side.
SPOT_STEP = 0.01
SPOT_CELLS = 24
# A support at least this many times as wide as the held object's bounding circle takes several
# objects side by side (a table, a large box); a smaller one (a cube to stack on) takes one, centred.
LARGE_SUPPORT_RATIO = 2.0
# Points on a container's inscribed ellipse at which a candidate's clearance from it is measured.
ELLIPSE_SAMPLES = 180
# Height of the surface loose objects rest on, in the world frame: z = 0 is the table top of
# panda_tabletop and the floor of mobile robots (sim.world builds both there).
WORLD_SURFACE_Z = 0.0
# Push directions in the arm base's frame, which is the robot's view: forward is away from the base.
PUSH_DIRECTIONS = {"forward": (1.0, 0.0), "backward": (-1.0, 0.0), "left": (0.0, 1.0), "right": (0.0, -1.0)}
# A Panda fingertip pad reaches this far ahead of the grasp centre along the gripper's x.
FINGER_HALF_THICKNESS = 0.01
# Before pushing, the fingers come down this far behind the object's face.
PUSH_RUN_UP = 0.03
# The fingers span the pushed face this much narrower than it, so the object cannot pass between them.
PUSH_SPAN_MARGIN = 0.015


class Box(Protocol):
    """An observed 3D box, as perception's Detection carries it."""

    position: np.ndarray
    size: np.ndarray
    yaw: float


@dataclass(frozen=True)
class GripperPose:
    """A pose of the grasp centre pointing down.

    Attributes:
        position: Grasp centre (m).
        quaternion: Orientation (x, y, z, w): z down, fingers closing along y.
    """

    position: np.ndarray
    quaternion: np.ndarray


@dataclass(frozen=True)
class GraspPlan:
    """A top-down grasp: where to approach, close and lift, and how wide to open first.

    Attributes:
        pre_grasp: Above the grasp, where the straight descent starts.
        grasp: Where the fingers close.
        lift: Above the grasp, where the straight lift ends.
        yaw: Gripper yaw (rad).
        opening: Finger opening to command before descending (m).
        width: The object's width across the fingers (m).
    """

    pre_grasp: GripperPose
    grasp: GripperPose
    lift: GripperPose
    yaw: float
    opening: float
    width: float


@dataclass(frozen=True)
class PlacePlan:
    """Where to carry a held object and open the gripper.

    Attributes:
        pre_place: Above the release, where the straight descent starts.
        release: Where the gripper opens.
        retreat: Above the release, where the arm goes after opening.
        yaw: Gripper yaw (rad).
    """

    pre_place: GripperPose
    release: GripperPose
    retreat: GripperPose
    yaw: float


@dataclass(frozen=True)
class PushPlan:
    """A straight push along the table with the two fingers side by side across the pushed face.

    Attributes:
        pre_push: Above the start, where the straight descent begins.
        start: Behind the object at pushing height.
        end: Where the push stops.
        retreat: Above the end.
        yaw: Gripper yaw (rad).
        opening: Finger opening during the push (m).
    """

    pre_push: GripperPose
    start: GripperPose
    end: GripperPose
    retreat: GripperPose
    yaw: float
    opening: float


def loosen_opening(width: float, max_opening: float = PANDA_MAX_OPENING) -> float:
    """Return the opening that stops squeezing a held object `width` wide but still guides its drop."""
    return min(max_opening, width + LOOSEN_MARGIN)


def release_opening(width: float, irregular: bool = False, max_opening: float = PANDA_MAX_OPENING,
                    diagonal: float = 0.0) -> float:
    """Return the opening that lets go of a held object: past what holding it could read, and past
    the diagonal of its footprint by `DIAGONAL_MARGIN`, so that an object that turns between the
    opening fingers (a cube caught by one pad's friction) cannot wedge across them and leave with
    the hand."""
    return max_opening if irregular else min(max_opening, max(width + OPENING_MARGIN, diagonal + DIAGONAL_MARGIN))


def top_down_orientation(yaw: float) -> np.ndarray:
    """Return the quaternion of a gripper pointing straight down, turned by `yaw` about z."""
    return quat_multiply(quat_from_yaw(yaw), np.array([1.0, 0.0, 0.0, 0.0]))


def grasp_depth(height: float) -> float:
    """Return how far below an object's top its grasp centre goes (negative: above a low object's top)."""
    return min(height / 2.0, MAX_GRASP_DEPTH, height - TABLE_CLEARANCE)


def grasp_rejection(size: Sequence[float], max_opening: float = PANDA_MAX_OPENING) -> str | None:
    """Return why a box of this size cannot be grasped from above, or None if it can."""
    size = np.asarray(size, dtype=float)
    if size.shape != (3,) or not np.all(np.isfinite(size)) or np.any(size <= 0.0):
        return f"object size must be three positive extents, got {size.tolist()}"
    if size[2] < MIN_HEIGHT:
        return f"object is {size[2] * 1000:.0f} mm high; the fingers need {MIN_HEIGHT * 1000:.0f} mm"
    width = float(min(size[0], size[1]))
    if width + MIN_CLEARANCE > max_opening:
        return (f"object is {width * 100:.1f} cm across its narrow side; the gripper opens "
                f"{max_opening * 100:.1f} cm")
    return None


def top_down_grasp(position: Sequence[float], size: Sequence[float], yaw: float, max_opening: float = PANDA_MAX_OPENING,
                   arm_base: Sequence[float] = (0.0, 0.0, 0.0)) -> GraspPlan | None:
    """Plan a top-down grasp of a box, closing the fingers across its narrower horizontal side.

    The gripper is symmetric under a half turn, so of the two yaws that close across the narrow side
    the one nearest the direction from the arm's base to the object is taken: that keeps the Panda's
    wrist (joint 7) near the middle of its range. A near-square footprint (sides within 10%) or a
    round one closes across whichever axis is nearer that direction, for the same reason.

    Args:
        position: Centre of the object's box (m).
        size: Extent along the box's x, y, z (m).
        yaw: Box rotation about z (rad).
        max_opening: Widest finger opening (m).
        arm_base: The arm base's x, y (m) and yaw (rad) in the box's frame.

    Returns:
        The plan, or None when the object is too wide or its box is malformed (`grasp_rejection` says why).
    """
    if grasp_rejection(size, max_opening) is not None:
        return None
    centre = np.asarray(position, dtype=float)
    sx, sy, sz = (float(v) for v in size)
    toward = math.atan2(centre[1] - arm_base[1], centre[0] - arm_base[0])
    # Fingers close along the gripper's y: gripper yaw = box yaw puts them across the box's y side.
    candidates = [yaw, yaw + math.pi / 2]
    if abs(sx - sy) > SQUARE_TOLERANCE * max(sx, sy):
        candidates = [yaw] if sy < sx else [yaw + math.pi / 2]
    gripper_yaw = min((_nearest_half_turn(c, toward) for c in candidates),
                      key=lambda c: abs(math.remainder(c - toward, 2 * math.pi)))
    width = min(sx, sy)
    opening = min(width + OPENING_MARGIN, max_opening)
    grasp_z = centre[2] + sz / 2.0 - grasp_depth(sz)
    quaternion = top_down_orientation(gripper_yaw)
    grasp = np.array([centre[0], centre[1], grasp_z])
    up = np.array([0.0, 0.0, APPROACH_HEIGHT])
    return GraspPlan(GripperPose(grasp + up, quaternion), GripperPose(grasp, quaternion),
                     GripperPose(grasp + up, quaternion), gripper_yaw, opening, width)


def place_pose(target_box: Box, relation: str, held_object_size: Sequence[float],
               held_grasp_depth: float | None = None,
               arm_base: Sequence[float] = (0.0, 0.0, 0.0),
               spot: Sequence[float] | None = None,
               others: Sequence[Box] = ()) -> PlacePlan | None:
    """Plan where to release a held object in or on a target box.

    The object is released above a spot on the target (its centre unless given; `place_spots`
    finds free ones). Placed `on`, its bottom is `RELEASE_CLEARANCE` above the support's surface.
    Placed `in`, it goes down into the container, its bottom `RELEASE_CLEARANCE` above the floor
    (the box's bottom plus `CONTAINER_WALL`), as far as the hand stays `RELEASE_CLEARANCE` above
    the rim, provided the opened fingers keep `PLACE_MARGIN` inside the walls and clear of every
    object in `others`; otherwise it is released with its bottom `RELEASE_CLEARANCE` over the rim
    and drops inside. Dropped from over the rim, a ball rolls to a wall, where the rim can hide it,
    and a cube tumbles as the fingers part.
    A top-down grasp holds an object with its long side along the gripper's x, so the gripper yaw
    follows the target's long side, lining the two up.

    Args:
        target_box: The container's or support's observed box.
        relation: "in" or "on".
        held_object_size: The held object's box extent (m).
        held_grasp_depth: How far below its top the object is held; `grasp_depth` of its height if None.
        arm_base: The arm base's x, y (m) and yaw (rad) in the boxes' frame.
        spot: The release point's x, y (m) in the boxes' frame; the target's centre if None.
        others: Boxes of the other objects in the scene (the fingers' room in a container), not the
            held one nor the target.

    Returns:
        The plan, or None for an unknown relation or an object wider than the container.
    """
    if relation not in PLACE_RELATIONS:
        return None
    held = np.asarray(held_object_size, dtype=float)
    target_size = np.asarray(target_box.size, dtype=float)
    if relation == "in" and max(held[0], held[1]) >= min(target_size[0], target_size[1]):
        return None
    depth = grasp_depth(float(held[2])) if held_grasp_depth is None else held_grasp_depth
    centre = np.asarray(target_box.position, dtype=float)
    top = centre[2] + target_size[2] / 2.0
    release_z = top + RELEASE_CLEARANCE + float(held[2]) - depth
    x, y = (float(centre[0]), float(centre[1])) if spot is None else (float(spot[0]), float(spot[1]))
    long_side = target_box.yaw + (math.pi / 2 if target_size[1] > target_size[0] else 0.0)
    toward = math.atan2(y - arm_base[1], x - arm_base[0])
    gripper_yaw = _nearest_half_turn(long_side, toward)
    if relation == "in" and _fingers_have_room(target_box, held, (x, y), gripper_yaw, others):
        floor = centre[2] - target_size[2] / 2.0 + CONTAINER_WALL
        release_z = max(floor + RELEASE_CLEARANCE + float(held[2]) - depth,
                        top + RELEASE_CLEARANCE - HAND_ABOVE_GRASP)
    quaternion = top_down_orientation(gripper_yaw)
    release = np.array([x, y, release_z])
    up = np.array([0.0, 0.0, APPROACH_HEIGHT])
    return PlacePlan(GripperPose(release + up, quaternion), GripperPose(release, quaternion),
                     GripperPose(release + up, quaternion), gripper_yaw)


def _fingers_have_room(container: Box, held: np.ndarray, spot: Sequence[float], gripper_yaw: float,
                       others: Sequence[Box]) -> bool:
    """Return whether fingers opened to release `held` at `spot` stay inside a container's walls and clear of `others`.

    Each finger pad is taken as a circle of `FINGER_HALF_THICKNESS` about its centre, on the
    gripper's y axis (along which the fingers close) beside the object, with the release opening
    (`release_opening` of its footprint).
    """
    offset = release_opening(float(max(held[0], held[1])), diagonal=float(np.hypot(held[0], held[1]))) / 2.0 \
        + FINGER_HALF_THICKNESS
    axis = np.array([-math.sin(gripper_yaw), math.cos(gripper_yaw)])
    centre = np.asarray(container.position, dtype=float)[:2]
    half = np.asarray(container.size, dtype=float)[:2] / 2.0
    rotation = _yaw_rotation(container.yaw)
    for side in (-1.0, 1.0):
        pad = np.asarray(spot, dtype=float) + side * offset * axis
        if not _clears_edges(rotation.T @ (pad - centre), "in", half, FINGER_HALF_THICKNESS + PLACE_MARGIN):
            return False
    reach = offset + FINGER_HALF_THICKNESS + NEIGHBOUR_GAP
    return all(math.dist(spot, np.asarray(o.position, dtype=float)[:2]) >= reach + footprint_radius(o.size)
               for o in others)


def _yaw_rotation(yaw: float) -> np.ndarray:
    """Return the 2x2 matrix that turns a box's frame into the world's in the horizontal plane."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


def footprint_radius(size: Sequence[float]) -> float:
    """Return the radius of a box's bounding circle in the horizontal plane, whatever its yaw."""
    return float(np.hypot(size[0], size[1])) / 2.0


def place_spots(target_box: Box, relation: str, held_object_size: Sequence[float],
                others: Sequence[Box], rectangular: bool = False) -> list[np.ndarray]:
    """Return the free release points in or on a target for a held object, best first.

    The target's centre comes first, then points of a grid over its inner area, nearest the centre
    first (ties by angle about the target's x axis, so the order is deterministic). A point is free
    when the held object's bounding circle keeps `NEIGHBOUR_GAP` from the bounding circle of every
    object whose centre lies over the target's footprint (what already rests in or on it). Off the
    centre, the circle must also keep `PLACE_MARGIN` inside the container's walls (assumed
    `CONTAINER_WALL` thick): within them for a `rectangular` one (a tray), else within the ellipse
    inscribed in them (a bowl, or a container of unknown shape); on a support, inside its top's
    edges. A small support (its shorter side under `LARGE_SUPPORT_RATIO` times the object's bounding
    circle) offers only its centre, free or not: that is stacking.

    Args:
        target_box: The container's or support's observed box.
        relation: "in" or "on".
        held_object_size: The held object's box extent (m).
        others: Boxes of the other objects in the scene, not the held object nor the target.
        rectangular: The container's walls stand on its box's edges (its corners hold objects too).

    Returns:
        Release points (x, y) in the boxes' frame; empty when none is free or the relation is unknown.
    """
    if relation not in PLACE_RELATIONS:
        return []
    centre = np.asarray(target_box.position, dtype=float)[:2]
    half = np.asarray(target_box.size, dtype=float)[:2] / 2.0
    radius = footprint_radius(held_object_size)
    if relation == "on" and 2.0 * min(half) < LARGE_SUPPORT_RATIO * 2.0 * radius:
        return [centre]
    rotation = _yaw_rotation(target_box.yaw)
    occupants = [(np.asarray(o.position, dtype=float)[:2], footprint_radius(o.size)) for o in others
                 if np.all(np.abs(rotation.T @ (np.asarray(o.position, dtype=float)[:2] - centre)) <= half)]
    reach = radius + PLACE_MARGIN
    step = max(SPOT_STEP, 2.0 * float(max(half)) / SPOT_CELLS)
    counts = np.floor(half / step).astype(int)
    grid = [np.array([i * step, j * step]) for i in range(-counts[0], counts[0] + 1)
            for j in range(-counts[1], counts[1] + 1) if i or j]
    clear = (p for p in grid if _clears_edges(p, relation, half, reach, rectangular))
    local = [np.zeros(2)] + sorted(clear, key=lambda p: (round(float(np.hypot(*p)), 9),
                                                         math.atan2(p[1], p[0]) % (2 * math.pi)))
    spots = [centre + rotation @ p for p in local]
    return [p for p in spots if all(math.dist(p, q) >= radius + r + NEIGHBOUR_GAP for q, r in occupants)]


def _clears_edges(point: np.ndarray, relation: str, half: np.ndarray, reach: float,
                  rectangular: bool = False) -> bool:
    """Return whether a circle of radius `reach` about a point in a target's frame stays inside its inner area.

    That area is a support's whole top, a rectangular container's inside of its walls, or another
    container's ellipse inscribed in its walls.
    """
    if relation == "on":
        return bool(np.all(np.abs(point) <= half - reach))
    inner = half - CONTAINER_WALL
    if rectangular:
        return bool(np.all(np.abs(point) <= inner - reach))
    if np.any(inner <= 0.0) or (point[0] / inner[0]) ** 2 + (point[1] / inner[1]) ** 2 >= 1.0:
        return False
    angles = np.linspace(0.0, 2.0 * math.pi, ELLIPSE_SAMPLES, endpoint=False)
    rim = np.stack([inner[0] * np.cos(angles), inner[1] * np.sin(angles)], axis=1)
    return float(np.min(np.linalg.norm(rim - point, axis=1))) >= reach


def push_plan(box: Box, direction: str, distance: float, max_opening: float = PANDA_MAX_OPENING,
              arm_base: Sequence[float] = (0.0, 0.0, 0.0)) -> PushPlan | None:
    """Plan a push that slides a box `distance` along a direction on its support.

    The fingers point down with their pads side by side across the push (gripper x along the push),
    opened a little narrower than the pushed face so that two contacts keep the object from
    turning, at half the object's height but no lower than `TABLE_CLEARANCE`. They come down
    `PUSH_RUN_UP` behind the face and stop once the face has moved `distance`.

    Args:
        box: The object's observed box.
        direction: A key of PUSH_DIRECTIONS.
        distance: How far to move the object (m).
        max_opening: Widest finger opening (m).
        arm_base: The arm base's x, y (m) and yaw (rad) in the box's frame.

    Returns:
        The plan, or None for an unknown direction or an object too low to push.
    """
    if direction not in PUSH_DIRECTIONS or float(box.size[2]) < MIN_HEIGHT:
        return None
    d = np.array([*PUSH_DIRECTIONS[direction], 0.0])
    push_yaw = math.atan2(d[1], d[0])
    relative = push_yaw - box.yaw
    sx, sy, sz = (float(v) for v in box.size)
    depth = abs(math.cos(relative)) * sx + abs(math.sin(relative)) * sy
    span = abs(math.sin(relative)) * sx + abs(math.cos(relative)) * sy
    opening = float(np.clip(span - PUSH_SPAN_MARGIN, 0.0, max_opening))
    centre = np.asarray(box.position, dtype=float)
    bottom = centre[2] - sz / 2.0
    height = bottom + max(TABLE_CLEARANCE, min(sz / 2.0, sz - TABLE_CLEARANCE))
    start = np.array([centre[0], centre[1], height]) - d * (depth / 2.0 + PUSH_RUN_UP)
    end = start + d * (PUSH_RUN_UP - FINGER_HALF_THICKNESS + distance)
    toward = math.atan2(centre[1] - arm_base[1], centre[0] - arm_base[0])
    gripper_yaw = _nearest_half_turn(push_yaw, toward)
    quaternion = top_down_orientation(gripper_yaw)
    up = np.array([0.0, 0.0, APPROACH_HEIGHT])
    return PushPlan(GripperPose(start + up, quaternion), GripperPose(start, quaternion), GripperPose(end, quaternion),
                    GripperPose(end + up, quaternion), gripper_yaw, opening)


def _nearest_half_turn(angle: float, reference: float) -> float:
    """Return angle plus a multiple of pi that lies within pi/2 of reference."""
    return reference + math.remainder(angle - reference, math.pi)
