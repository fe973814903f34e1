"""Navigation for a differential-drive base on a 2D occupancy grid: costmap, planner, approach, follower.

Pure numpy/scipy, no ROS. The pieces, in the order a navigation skill uses them:

- ``build_costmap``: occupied cells are inflated by the base's radius into cells its centre must
  not enter ("lethal"); beyond that, a cost that decays with distance keeps paths off obstacles,
  and unknown cells cost a little more than known-free ones, so that the planner goes through the
  unknown only when that is clearly shorter. Cells of the object being approached can be inflated
  by a smaller radius, so that a goal close to it stays free when the grid sees the object a little
  larger than the semantic map does.
- ``plan_path``: 8-connected A* over the costmap, then line-of-sight shortcuts that never go
  through costlier cells than the path they replace. A start inside the inflated zone (the robot
  next to something) escapes to the nearest free cell first.
- ``plan_to_object``: standoff poses around an object, where the base faces it with its front
  bumper ``APPROACH_GAP_M`` from the object's box, and a search that picks the one cheapest to
  reach. Where there is room the path ends with a straight leg already facing the object, so the
  base drives in head-on instead of turning next to it.
- ``PathFollower``: pure pursuit for a differential drive with turn-in-place, slow-down at the
  goal, final heading alignment and velocity ramps within the acceleration limits.
- ``path_blockage``: whether the footprint, swept along the next stretch of path, covers an
  occupied cell of the latest grid (unknown cells do not block), so that the follower stops.

Poses are ``(x, y, yaw)`` in the grid's (world) frame, in metres and radians.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

# nav_msgs/OccupancyGrid holds occupancy probabilities 0-100 and -1 for unknown: cells at or above
# this value are obstacles.
OCCUPIED_THRESHOLD = 50
# Gap between the front bumper and the object's box at a standoff pose (m).
APPROACH_GAP_M = 0.15
# Extra cost, relative to a known-free cell, of crossing an unknown cell.
UNKNOWN_COST = 0.3
# Extra cost of a cell at the edge of the inflated zone, decaying to zero PROXIMITY_RANGE_M beyond it.
PROXIMITY_COST = 2.0
PROXIMITY_RANGE_M = 0.4
# A* searches a window around start and goal this much larger than their bounding box (m), and the
# whole grid only when the window holds no path.
PLAN_WINDOW_MARGIN_M = 3.0
# Occupied cells within this distance of the target object's box belong to it (m).
TARGET_CELL_MARGIN_M = 0.15
# The target's cells are inflated by the footprint's half width plus this clearance (m).
TARGET_SIDE_CLEARANCE_M = 0.10
# Standoff poses along a long face are this far apart (m), their centres this far inside its ends (m).
STANDOFF_SPACING_M = 0.2
STANDOFF_FACE_OVERLAP_M = 0.1
# Small objects are also approached from between their faces, every this many degrees.
STANDOFF_ANGLE_STEP_DEG = 30.0
# Where there is room, the path ends with a straight leg this long, already facing the object (m).
APPROACH_LEG_M = 0.4
# Reaching a standoff without that leg counts as this much extra path (m): more than the leg, so
# the leg is preferred, but less than backing up to it, so a base already there stays.
DIRECT_APPROACH_COST_M = 0.6
# When no standoff at the approach gap is free (an object on a table), standoffs farther out are
# tried every this many metres up to the largest gap, each metre of extra gap costing this many
# metres of path.
FALLBACK_GAP_STEP_M = 0.05
FALLBACK_MAX_GAP_M = 1.0
FALLBACK_GAP_COST = 5.0

# Follower defaults.
POSITION_TOLERANCE_M = 0.05
YAW_TOLERANCE_RAD = 0.05
LOOKAHEAD_M = 0.5
# Turn in place above this heading error to the lookahead point, until it is below TURN_DONE_RAD.
TURN_IN_PLACE_RAD = 0.6
TURN_DONE_RAD = 0.15
# Speed gains near the goal (1/s): the commanded speed is at most gain x remaining distance or angle.
GOAL_SPEED_GAIN = 1.0
TURN_SPEED_GAIN = 1.5
# Slowest commands that still move the base against friction and latency.
MIN_LINEAR_MPS = 0.03
MIN_ANGULAR_RADPS = 0.1
# Within this distance of the goal, a goal behind the base is reached by backing up (m).
REVERSE_MAX_M = 0.25
# How far segments ahead of the current one are searched for the robot's projection (m).
PROJECTION_WINDOW_M = 1.0

# Obstacle stop defaults: how much path ahead is checked, and the margin around the footprint.
STOP_LOOKAHEAD_M = 0.8
STOP_MARGIN_M = 0.05

Pose = tuple[float, float, float]
Point = tuple[float, float]
_SQRT2 = math.sqrt(2.0)
_MOVES = ((-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0),
          (-1, -1, _SQRT2), (-1, 1, _SQRT2), (1, -1, _SQRT2), (1, 1, _SQRT2))


@dataclass(frozen=True)
class OccupancyMap:
    """An occupancy grid in the nav_msgs/OccupancyGrid layout.

    Attributes:
        data: int8 cells, shape (rows, cols); -1 unknown, 0 free, 100 occupied. Row r, column c
            covers world x in [origin_x + c * resolution, ...) and y in [origin_y + r * resolution, ...).
        resolution: Cell edge (m).
        origin: World (x, y) of the corner of cell (0, 0).
    """

    data: NDArray[np.int8]
    resolution: float
    origin: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        """Return ``(rows, cols)``."""
        return self.data.shape[0], self.data.shape[1]

    def cell(self, x: float, y: float) -> tuple[int, int] | None:
        """Return the ``(row, col)`` of a world point, or None outside the grid or for a non-finite point."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        col = math.floor((x - self.origin[0]) / self.resolution)
        row = math.floor((y - self.origin[1]) / self.resolution)
        rows, cols = self.shape
        if 0 <= row < rows and 0 <= col < cols:
            return row, col
        return None

    def cells(self, xy: NDArray[np.floating]) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
        """Return ``(rows, cols, inside)`` of world points ``(N, 2)``; rows and cols are valid where inside."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        with np.errstate(invalid="ignore"):
            cols = np.floor((xy[:, 0] - self.origin[0]) / self.resolution)
            rows = np.floor((xy[:, 1] - self.origin[1]) / self.resolution)
        inside = np.isfinite(cols) & np.isfinite(rows)
        cols = np.where(inside, cols, -1).astype(np.intp)
        rows = np.where(inside, rows, -1).astype(np.intp)
        n_rows, n_cols = self.shape
        inside &= (rows >= 0) & (rows < n_rows) & (cols >= 0) & (cols < n_cols)
        return rows, cols, inside

    def center(self, row: int, col: int) -> Point:
        """Return the world ``(x, y)`` of a cell's centre."""
        return (self.origin[0] + (col + 0.5) * self.resolution, self.origin[1] + (row + 0.5) * self.resolution)

    def occupied(self) -> NDArray[np.bool_]:
        """Return the mask of obstacle cells."""
        return self.data >= OCCUPIED_THRESHOLD

    def occupied_centres(self) -> NDArray[np.float64]:
        """Return the world ``(x, y)`` of every obstacle cell's centre, shape ``(N, 2)``."""
        rows, cols = np.nonzero(self.occupied())
        return np.stack([self.origin[0] + (cols + 0.5) * self.resolution,
                         self.origin[1] + (rows + 0.5) * self.resolution], axis=1)

    def unknown(self) -> NDArray[np.bool_]:
        """Return the mask of unknown cells."""
        return self.data < 0


@dataclass(frozen=True)
class Footprint:
    """The rectangle a base covers, relative to its base_link (x forward, y left).

    Attributes:
        front: Distance from base_link to the front bumper (m).
        rear: Distance from base_link to the rear bumper (m).
        half_width: Half the width across the wheels (m).
    """

    front: float
    rear: float
    half_width: float

    @property
    def radius(self) -> float:
        """Radius of the smallest circle about base_link that holds the rectangle (m)."""
        return math.hypot(max(self.front, self.rear), self.half_width)

    def corners(self, pose: Pose, margin: float = 0.0) -> NDArray[np.float64]:
        """Return the rectangle's four world corners ``(4, 2)`` at a pose, grown by ``margin`` on every side."""
        x, y, yaw = pose
        front, rear, side = self.front + margin, -self.rear - margin, self.half_width + margin
        local = np.array([[front, side], [rear, side], [rear, -side], [front, -side]])
        c, s = math.cos(yaw), math.sin(yaw)
        return local @ np.array([[c, s], [-s, c]]) + np.array([x, y])


# The Husky's collision shapes (pybullet_data husky.urdf): the chassis box 1.0074 m long centred on
# base_link, the wheels' outer faces 0.342 m to either side.
HUSKY_FOOTPRINT = Footprint(front=0.504, rear=0.504, half_width=0.342)


@dataclass(frozen=True)
class ObjectBox:
    """An object's footprint: a rectangle on the floor.

    Attributes:
        center: World ``(x, y)`` of the box's centre (m).
        size: Extent along the box's own x and y axes (m).
        yaw: Rotation of the box about world z (rad).
    """

    center: Point
    size: Point
    yaw: float = 0.0

    def corners(self, margin: float = 0.0) -> NDArray[np.float64]:
        """Return the four world corners ``(4, 2)``, grown by ``margin`` on every side."""
        hx, hy = self.size[0] / 2 + margin, self.size[1] / 2 + margin
        local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return local @ np.array([[c, s], [-s, c]]) + np.asarray(self.center, dtype=float)

    def contains(self, xy: NDArray[np.floating], margin: float = 0.0) -> NDArray[np.bool_]:
        """Return which world points ``(N, 2)`` lie inside the box grown by ``margin``."""
        local = _to_local(np.asarray(xy, dtype=float).reshape(-1, 2), (*self.center, self.yaw))
        return ((np.abs(local[:, 0]) <= self.size[0] / 2 + margin)
                & (np.abs(local[:, 1]) <= self.size[1] / 2 + margin))

    def support(self, direction: Point) -> float:
        """Return how far the box reaches from its centre along a unit direction (m)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        along_x = direction[0] * c + direction[1] * s
        along_y = -direction[0] * s + direction[1] * c
        return self.size[0] / 2 * abs(along_x) + self.size[1] / 2 * abs(along_y)


@dataclass(frozen=True)
class CostMap:
    """What the planner reads: which cells the base's centre may enter and what each costs.

    Attributes:
        grid: The occupancy grid it was built from.
        lethal: Cells the centre must not enter: within the inflation radius of an obstacle.
        cost: Cost of crossing each cell per cell length, at least 1; infinite where lethal.
        radius: Inflation radius of obstacles (m).
    """

    grid: OccupancyMap
    lethal: NDArray[np.bool_]
    cost: NDArray[np.float64]
    radius: float

    def is_free(self, x: float, y: float) -> bool:
        """Return whether the base's centre may stand at a world point (inside the grid, not lethal)."""
        cell = self.grid.cell(x, y)
        return cell is not None and not bool(self.lethal[cell])


@dataclass(frozen=True)
class Plan:
    """A planned path, or why there is none.

    Attributes:
        path: World ``(x, y)`` waypoints from the start to the goal; empty when there is no path.
        reason: Why there is no path ("" when there is one).
    """

    path: tuple[Point, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Return whether there is a path."""
        return bool(self.path)

    @property
    def length(self) -> float:
        """Return the path's length (m)."""
        return path_length(self.path)


@dataclass(frozen=True)
class Approach:
    """A standoff pose in front of an object and the path to it, or why there is none.

    Attributes:
        pose: Where the base ends, facing the object; None when no standoff pose is reachable.
        plan: The path to the pose (its reason says why there is none).
        gap: Distance between the front bumper and the object at the pose (m).
    """

    pose: Pose | None
    plan: Plan
    gap: float = APPROACH_GAP_M


@dataclass(frozen=True)
class DriveLimits:
    """Speed and acceleration limits a follower keeps to.

    Attributes:
        linear: Largest forward speed (m/s).
        angular: Largest turn rate (rad/s).
        linear_accel: Largest change of forward speed (m/s^2).
        angular_accel: Largest change of turn rate (rad/s^2).
    """

    linear: float
    angular: float
    linear_accel: float
    angular_accel: float


@dataclass(frozen=True)
class DriveCommand:
    """One velocity command of a follower.

    Attributes:
        linear: Forward speed (m/s).
        angular: Turn rate (rad/s).
        done: Whether the goal is reached (the command is then zero).
        phase: What the follower does: "turn", "track", "reverse", "align" or "done".
    """

    linear: float
    angular: float
    done: bool = False
    phase: str = "track"


@dataclass(frozen=True)
class Blockage:
    """An obstacle on the path ahead.

    Attributes:
        distance: Distance along the path to the first pose whose footprint covers an occupied cell (m).
        points: World ``(x, y)`` of the occupied cells that the footprint would cover.
    """

    distance: float
    points: NDArray[np.float64] = field(repr=False)


# --- geometry -------------------------------------------------------------------------------------


def wrap_angle(angle: float) -> float:
    """Return an angle wrapped into [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def path_length(path: Sequence[Point]) -> float:
    """Return the length of a polyline (m)."""
    if len(path) < 2:
        return 0.0
    points = np.asarray(path, dtype=float)
    return float(np.sum(np.hypot(*np.diff(points, axis=0).T)))


def _to_local(xy: NDArray[np.float64], pose: Pose) -> NDArray[np.float64]:
    """Return world points ``(N, 2)`` in the frame of a pose."""
    c, s = math.cos(pose[2]), math.sin(pose[2])
    d = xy - np.array(pose[:2])
    return np.stack([d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c], axis=1)


def _segment_distances(points: NDArray[np.float64], a: NDArray[np.float64],
                       b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the distance of each point ``(N, 2)`` to each segment ``a[i]-b[i]`` ``(M, 2)``: ``(N, M)``."""
    ab = b - a
    length2 = np.maximum(np.sum(ab * ab, axis=1), 1e-18)
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip(np.sum(ap * ab[None], axis=2) / length2[None], 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return np.hypot(*(points[:, None, :] - closest).transpose(2, 0, 1))


def _separated(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Return whether two convex polygons (corners in order) are disjoint (separating axis test)."""
    for polygon in (a, b):
        edges = np.roll(polygon, -1, axis=0) - polygon
        normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
        for normal in normals:
            pa, pb = a @ normal, b @ normal
            if pa.max() < pb.min() or pb.max() < pa.min():
                return True
    return False


def polygon_gap(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    """Return the distance between two convex polygons given by their corners in order; 0 when they touch.

    Args:
        a: ``(N, 2)`` corners of the first polygon.
        b: ``(M, 2)`` corners of the second polygon.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if not _separated(a, b):
        return 0.0
    to_b = _segment_distances(a, b, np.roll(b, -1, axis=0)).min()
    to_a = _segment_distances(b, a, np.roll(a, -1, axis=0)).min()
    return float(min(to_a, to_b))


def footprint_gap(pose: Pose, footprint: Footprint, box: ObjectBox) -> float:
    """Return the distance between the base's footprint at a pose and an object's box (m); 0 when they overlap."""
    return polygon_gap(footprint.corners(pose), box.corners())


# --- costmap and planning -----------------------------------------------------------------------------


def grid_problem(grid: object) -> str | None:
    """Return why something is not a usable OccupancyMap (shape, resolution, origin), or None."""
    if not isinstance(grid, OccupancyMap):
        return f"expected an OccupancyMap, got {type(grid).__name__}"
    data = np.asarray(grid.data)
    if data.ndim != 2 or data.size == 0:
        return f"the occupancy grid must be a non-empty 2-D array, got shape {data.shape}"
    if not np.issubdtype(data.dtype, np.integer):
        return f"the occupancy grid must hold integers, got {data.dtype}"
    try:
        numbers = (float(grid.resolution), float(grid.origin[0]), float(grid.origin[1]))
    except (TypeError, ValueError, IndexError):
        return f"the grid's resolution and origin must be numbers, got {grid.resolution!r} and {grid.origin!r}"
    if not all(math.isfinite(v) for v in numbers) or numbers[0] <= 0.0:
        return f"the grid resolution must be positive and its origin finite, got {grid.resolution} and {grid.origin}"
    return None


def build_costmap(grid: OccupancyMap, radius: float, target: ObjectBox | None = None,
                  target_radius: float | None = None) -> CostMap:
    """Inflate a grid's obstacles for a round base and price every cell.

    Occupied cells are inflated by ``radius``; unknown cells are not obstacles but cost
    ``UNKNOWN_COST`` more than known-free ones. Distances are between cell centres, so a cell is
    lethal when its centre is within ``radius`` plus half a cell of an occupied cell's centre.

    Args:
        grid: The occupancy grid.
        radius: Radius of the base's footprint circle (m).
        target: The object being approached: occupied cells within ``TARGET_CELL_MARGIN_M`` of its
            box are inflated by ``target_radius`` instead.
        target_radius: Inflation of the target's cells (m); None means ``radius``.

    Raises:
        ValueError: on an unusable grid (see ``grid_problem``) or a negative radius.
    """
    problem = grid_problem(grid)
    if problem is not None:
        raise ValueError(problem)
    data = np.asarray(grid.data)
    if not (math.isfinite(radius) and radius >= 0.0):
        raise ValueError(f"the inflation radius must be a non-negative number, got {radius}")
    occupied = data >= OCCUPIED_THRESHOLD
    half_cell = grid.resolution / 2.0
    clearance = np.full(data.shape, np.inf)
    groups = [(occupied, radius)]
    if target is not None:
        rows, cols = np.nonzero(occupied)
        centres = np.stack([grid.origin[0] + (cols + 0.5) * grid.resolution,
                            grid.origin[1] + (rows + 0.5) * grid.resolution], axis=1)
        mine = np.zeros_like(occupied)
        mine[rows, cols] = target.contains(centres, TARGET_CELL_MARGIN_M)
        groups = [(occupied & ~mine, radius), (mine, radius if target_radius is None else target_radius)]
    for cells, inflation in groups:
        if cells.any():
            distance = ndimage.distance_transform_edt(~cells) * grid.resolution
            clearance = np.minimum(clearance, distance - inflation - half_cell)
    lethal = clearance <= 0.0
    proximity = np.clip(1.0 - clearance / PROXIMITY_RANGE_M, 0.0, 1.0)
    cost = 1.0 + PROXIMITY_COST * proximity + UNKNOWN_COST * (data < 0)
    cost[lethal] = np.inf
    return CostMap(grid, lethal, cost, float(radius))


def plan_path(costmap: CostMap, start: Point, goal: Point) -> Plan:
    """Plan a path for the base's centre from a start to a goal with 8-connected A*.

    The cell path is shortened by line-of-sight shortcuts that cross no cell costlier than the
    stretch they replace, and begins and ends at the exact start and goal. A start inside the
    inflated zone first goes straight to the nearest free cell (the base may stand close to an
    obstacle, but must not pass closer).

    Returns:
        The path, or a Plan whose reason says why there is none: start or goal outside the grid,
        goal inside an obstacle's inflated zone, start enclosed, or no path.
    """
    grid = costmap.grid
    start_cell = grid.cell(*start)
    goal_cell = grid.cell(*goal)
    if start_cell is None:
        return Plan(reason=f"the start ({_fmt(start)}) is outside the occupancy grid")
    if goal_cell is None:
        return Plan(reason=f"the goal ({_fmt(goal)}) is outside the occupancy grid")
    if costmap.lethal[goal_cell]:
        return Plan(reason=f"the goal ({_fmt(goal)}) is inside an obstacle or closer than "
                           f"{costmap.radius:.2f} m to one")
    return _plan_cells(costmap, start, start_cell, {goal_cell: ([(float(goal[0]), float(goal[1]))], 0.0)})[0]


def plan_to_object(costmap: CostMap, start: Point, box: ObjectBox, footprint: Footprint,
                   gap: float = APPROACH_GAP_M, max_gap: float = FALLBACK_MAX_GAP_M) -> Approach:
    """Choose the standoff pose in front of an object that is cheapest to reach, and plan the path to it.

    A Dijkstra search from the start picks the standoff with the least path cost, so the choice
    accounts for detours. A standoff whose straight approach leg (``APPROACH_LEG_M``, facing the
    object) is free is preferably reached through the leg's entry point. When no standoff at
    ``gap`` is free and reachable (an object on a table or against a wall), standoffs farther out,
    up to ``max_gap``, are tried, each centimetre of extra gap costing ``FALLBACK_GAP_COST`` of path.

    Args:
        costmap: Costmap, best built with ``target=box`` so that the object's own cells are inflated
            less than the base's radius.
        start: The base's current ``(x, y)``.
        box: The object's footprint.
        footprint: The base's footprint.
        gap: Distance between the front bumper and the box at the standoff pose (m).
        max_gap: Largest gap of the fallback standoffs (m).

    Returns:
        The chosen pose, its path and gap, or a pose of None and a Plan whose reason says why.
    """
    start_cell = costmap.grid.cell(*start)
    if start_cell is None:
        return Approach(None, Plan(reason=f"the start ({_fmt(start)}) is outside the occupancy grid"))
    approach, free = _approach(costmap, start, start_cell, box, footprint, [gap])
    if approach.pose is not None or max_gap <= gap:
        return approach
    farther = np.arange(gap + FALLBACK_GAP_STEP_M, max_gap + 1e-9, FALLBACK_GAP_STEP_M).tolist()
    fallback, _ = _approach(costmap, start, start_cell, box, footprint, farther)
    if fallback.pose is not None:
        return fallback
    if free:
        return Approach(None, Plan(reason=f"none of the {free} free standoff poses around the object at "
                                          f"({_fmt(box.center)}) is reachable, nor any up to {max_gap:.1f} m "
                                          f"out: {approach.plan.reason}"))
    return Approach(None, Plan(reason=f"no standoff pose around the object at ({_fmt(box.center)}) is free, "
                                      f"up to {max_gap:.1f} m out: all are inside or next to obstacles or "
                                      f"outside the occupancy grid"))


def _approach(costmap: CostMap, start: Point, start_cell: tuple[int, int], box: ObjectBox, footprint: Footprint,
              gaps: list[float]) -> tuple[Approach, int]:
    """Plan to the cheapest free standoff at any of some gaps; return it and how many standoffs were free."""
    poses: dict[tuple[int, int], tuple[Pose, float]] = {}
    goals: dict[tuple[int, int], tuple[list[Point], float]] = {}

    def add(cell: tuple[int, int], pose: Pose, gap: float, tail: list[Point], extra: float) -> None:
        if cell not in goals or extra < goals[cell][1]:
            poses[cell], goals[cell] = (pose, gap), (tail, extra)

    # The footprint at a standoff keeps the obstacle stop's margin from everything but the object.
    grid = costmap.grid
    centres = grid.occupied_centres()
    reach = max(gaps) + max(box.size) + 2.0 * footprint.radius + STOP_MARGIN_M
    centres = centres[(np.hypot(centres[:, 0] - box.center[0], centres[:, 1] - box.center[1]) <= reach)
                      & ~box.contains(centres, TARGET_CELL_MARGIN_M)]
    free = 0
    for gap in gaps:
        penalty = (gap - gaps[0]) * FALLBACK_GAP_COST
        for pose in standoff_poses(box, footprint, gap):
            cell = grid.cell(pose[0], pose[1])
            if cell is None or costmap.lethal[cell]:
                continue
            if _inside_footprint(centres, pose, footprint, STOP_MARGIN_M).any():
                continue
            free += 1
            end = (pose[0], pose[1])
            add(cell, pose, gap, [end], DIRECT_APPROACH_COST_M + penalty)
            entry = (pose[0] - APPROACH_LEG_M * math.cos(pose[2]), pose[1] - APPROACH_LEG_M * math.sin(pose[2]))
            entry_cell = grid.cell(*entry)
            if entry_cell is not None and path_is_free(costmap, [entry, end]):
                add(entry_cell, pose, gap, [entry, end], APPROACH_LEG_M + penalty)
    if not goals:
        return Approach(None, Plan(reason="no free standoff pose")), 0
    plan, cell = _plan_cells(costmap, start, start_cell, goals)
    if not plan.ok:
        return Approach(None, plan), free
    pose, gap = poses[cell]
    return Approach(pose, plan, gap), free


def standoff_poses(box: ObjectBox, footprint: Footprint, gap: float = APPROACH_GAP_M) -> list[Pose]:
    """Return poses where the base faces an object with its front bumper ``gap`` from the box.

    Every face gets poses facing it squarely, spread along faces longer than ``2 * STANDOFF_FACE_OVERLAP_M``
    so that the bumper's centre stays in front of the face.
    An object narrower than the bumper is also approached from between its faces: its nearest
    point along the approach direction then lies within the bumper's width, so the gap holds.
    """
    poses: list[Pose] = []
    hx, hy = box.size[0] / 2.0, box.size[1] / 2.0
    for axis_angle, half_depth, half_face in ((0.0, hx, hy), (math.pi / 2, hy, hx), (math.pi, hx, hy),
                                              (-math.pi / 2, hy, hx)):
        normal = box.yaw + axis_angle
        nx, ny = math.cos(normal), math.sin(normal)
        count = int(max(0.0, half_face - STANDOFF_FACE_OVERLAP_M) // STANDOFF_SPACING_M)
        offsets = [0.0] + [sign * k * STANDOFF_SPACING_M for k in range(1, count + 1) for sign in (1.0, -1.0)]
        distance = half_depth + gap + footprint.front
        for offset in offsets:
            poses.append((box.center[0] + nx * distance - ny * offset, box.center[1] + ny * distance + nx * offset,
                          wrap_angle(normal + math.pi)))
    if math.hypot(hx, hy) <= footprint.half_width:
        steps = round(360.0 / STANDOFF_ANGLE_STEP_DEG)
        for k in range(steps):
            angle = box.yaw + math.radians(k * STANDOFF_ANGLE_STEP_DEG)
            if abs(wrap_angle(4.0 * (angle - box.yaw))) < 1e-6:
                continue  # a face normal, already there
            direction = (math.cos(angle), math.sin(angle))
            distance = box.support(direction) + gap + footprint.front
            poses.append((box.center[0] + direction[0] * distance, box.center[1] + direction[1] * distance,
                          wrap_angle(angle + math.pi)))
    return poses


def path_is_free(costmap: CostMap, path: Sequence[Point], skip: float = 0.0) -> bool:
    """Return whether a path, after its first ``skip`` metres, stays out of lethal cells and inside the grid."""
    samples = _sample_path(path, costmap.grid.resolution / 2.0)
    if len(samples) == 0:
        return True
    samples = samples[samples[:, 2] >= skip]
    rows, cols, inside = costmap.grid.cells(samples[:, :2])
    if not inside.all():
        return False
    return not bool(costmap.lethal[rows, cols].any())


def _fmt(point: Sequence[float]) -> str:
    return ", ".join(f"{float(v):.2f}" for v in point[:2])


def _plan_cells(costmap: CostMap, start: Point, start_cell: tuple[int, int],
                goals: dict[tuple[int, int], tuple[list[Point], float]]) -> tuple[Plan, tuple[int, int] | None]:
    """Plan from a start to the cheapest of some goal cells; return the plan and the goal cell reached.

    Args:
        costmap: The costmap.
        start: Exact start point.
        start_cell: Its cell.
        goals: For each goal cell, the exact points the path ends with (the first replaces the
            cell's centre) and an extra cost of ending there (m of known-free path).
    """
    grid = costmap.grid
    prefix: list[Point] = [(float(start[0]), float(start[1]))]
    if costmap.lethal[start_cell]:
        escape = _escape(costmap, start_cell)
        if escape is None:
            return Plan(reason=f"the start ({_fmt(start)}) is enclosed by obstacles: no free cell within "
                               f"{costmap.radius + grid.resolution:.2f} m"), None
        start_cell = escape
        prefix.append(grid.center(*escape))
    extras = {cell: extra / grid.resolution for cell, (_, extra) in goals.items()}
    cells = None
    for window in (_window(grid, [start_cell, *goals], PLAN_WINDOW_MARGIN_M), None):
        cells = _astar(costmap.cost, start_cell, extras, window)
        if cells is not None:
            break
    if cells is None:
        target = f"the goal ({_fmt(goals[next(iter(goals))][0][-1])})" if len(goals) == 1 else "any goal"
        return Plan(reason=f"no path from ({_fmt(start)}) to {target}: obstacles or unmapped space block "
                           f"every way for a base of radius {costmap.radius:.2f} m"), None
    tail = goals[cells[-1]][0]
    path = prefix + [grid.center(r, c) for r, c in _shortcut(costmap, cells)[1:-1]] + list(tail)
    deduplicated = [path[0]]
    for point in path[1:]:
        if math.dist(point, deduplicated[-1]) > 1e-9:
            deduplicated.append(point)
    if len(deduplicated) == 1:
        deduplicated.append(deduplicated[0])
    return Plan(tuple(deduplicated)), cells[-1]


def _escape(costmap: CostMap, cell: tuple[int, int]) -> tuple[int, int] | None:
    """Return the nearest non-lethal cell to a lethal one, within radius plus a cell; None when there is none."""
    grid = costmap.grid
    reach = math.ceil((costmap.radius + grid.resolution) / grid.resolution)
    r0, c0 = max(0, cell[0] - reach), max(0, cell[1] - reach)
    window = costmap.lethal[r0:cell[0] + reach + 1, c0:cell[1] + reach + 1]
    rows, cols = np.nonzero(~window)
    if len(rows) == 0:
        return None
    distance = np.hypot(rows + r0 - cell[0], cols + c0 - cell[1])
    best = int(np.argmin(distance))
    if distance[best] > reach:
        return None
    return int(rows[best] + r0), int(cols[best] + c0)


def _window(grid: OccupancyMap, cells: list[tuple[int, int]], margin_m: float) -> tuple[int, int, int, int]:
    """Return ``(row0, row1, col0, col1)`` of the cells' bounding box grown by a margin, clipped to the grid."""
    margin = math.ceil(margin_m / grid.resolution)
    rows = [c[0] for c in cells]
    cols = [c[1] for c in cells]
    n_rows, n_cols = grid.shape
    return (max(0, min(rows) - margin), min(n_rows, max(rows) + margin + 1),
            max(0, min(cols) - margin), min(n_cols, max(cols) + margin + 1))


def _astar(cost: NDArray[np.float64], start: tuple[int, int], goals: dict[tuple[int, int], float],
           window: tuple[int, int, int, int] | None) -> list[tuple[int, int]] | None:
    """Return the cheapest 8-connected cell path from start to any goal cell within a window, or None.

    A step costs its length (1 or sqrt 2 cells) times the mean cost of the two cells. Diagonal steps
    may not cut the corner of a lethal cell. Ending at a goal cell adds its extra cost (in cells).
    With one goal the heuristic is the octile distance; with several it is zero (Dijkstra), so the
    path found ends at the goal whose path plus extra cost is least.
    """
    r0, r1, c0, c1 = window if window is not None else (0, cost.shape[0], 0, cost.shape[1])
    if not (r0 <= start[0] < r1 and c0 <= start[1] < c1):
        return None
    sub = cost[r0:r1, c0:c1]
    n_rows, width = sub.shape
    goal_extra = {(r - r0) * width + (c - c0): extra for (r, c), extra in goals.items()
                  if r0 <= r < r1 and c0 <= c < c1}
    if not goal_extra:
        return None
    flat = sub.ravel().tolist()
    n = len(flat)
    inf = math.inf
    best = [inf] * n
    parent = [-1] * n
    closed = bytearray(n)
    single = divmod(next(iter(goal_extra)), width) if len(goal_extra) == 1 else None
    start_index = (start[0] - r0) * width + (start[1] - c0)
    best[start_index] = 0.0
    heap = [(0.0, start_index)]
    diagonal_extra = _SQRT2 - 2.0
    while heap:
        _, index = heapq.heappop(heap)
        if index < 0:
            # A goal's finish entry: its path plus extra cost is the least of all.
            index = -1 - index
            path = []
            while index >= 0:
                path.append((index // width + r0, index % width + c0))
                index = parent[index]
            return path[::-1]
        if closed[index]:
            continue
        closed[index] = 1
        g = best[index]
        extra = goal_extra.get(index)
        if extra is not None:
            heapq.heappush(heap, (g + extra, -1 - index))
        row, col = divmod(index, width)
        here = flat[index]
        for dr, dc, step in _MOVES:
            nr, nc = row + dr, col + dc
            if nr < 0 or nr >= n_rows or nc < 0 or nc >= width:
                continue
            neighbour = nr * width + nc
            there = flat[neighbour]
            if there == inf or closed[neighbour]:
                continue
            if dr and dc and (flat[row * width + nc] == inf or flat[nr * width + col] == inf):
                continue
            candidate = g + step * 0.5 * (here + there)
            if candidate < best[neighbour]:
                best[neighbour] = candidate
                parent[neighbour] = index
                if single is None:
                    estimate = 0.0
                else:
                    dy, dx = abs(nr - single[0]), abs(nc - single[1])
                    estimate = dx + dy + diagonal_extra * min(dx, dy)
                heapq.heappush(heap, (candidate + estimate, neighbour))
    return None


def _shortcut(costmap: CostMap, cells: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Replace stretches of a cell path by straight lines that cross no costlier cell than the stretch."""
    if len(cells) <= 2:
        return cells
    path_cost = np.array([costmap.cost[c] for c in cells])
    result = [cells[0]]
    anchor = 0
    while anchor < len(cells) - 1:
        reach = anchor + 1
        for candidate in range(anchor + 2, len(cells)):
            if not _line_within(costmap, cells[anchor], cells[candidate], float(path_cost[anchor:candidate + 1].max())):
                break
            reach = candidate
        result.append(cells[reach])
        anchor = reach
    return result


def _line_within(costmap: CostMap, a: tuple[int, int], b: tuple[int, int], limit: float) -> bool:
    """Return whether every cell on the straight line between two cells costs at most ``limit``."""
    steps = int(2 * max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    t = np.linspace(0.0, 1.0, steps + 1)
    rows = np.rint(a[0] + t * (b[0] - a[0])).astype(np.intp)
    cols = np.rint(a[1] + t * (b[1] - a[1])).astype(np.intp)
    return bool(np.all(costmap.cost[rows, cols] <= limit + 1e-9))


def _sample_path(path: Sequence[Point], step: float) -> NDArray[np.float64]:
    """Return ``(N, 4)`` samples ``(x, y, distance along, heading)`` every ``step`` metres along a path."""
    points = np.asarray(path, dtype=float).reshape(-1, 2)
    if len(points) == 0:
        return np.zeros((0, 4))
    samples = []
    travelled = 0.0
    heading = 0.0
    for a, b in itertools.pairwise(points):
        length = float(np.hypot(*(b - a)))
        if length < 1e-9:
            continue
        heading = math.atan2(b[1] - a[1], b[0] - a[0])
        count = max(1, math.ceil(length / step))
        for k in range(count):
            t = k / count
            samples.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), travelled + t * length, heading))
        travelled += length
    samples.append((points[-1, 0], points[-1, 1], travelled, heading))
    return np.array(samples)


# --- obstacle stop ------------------------------------------------------------------------------------


def path_blockage(grid: OccupancyMap, pose: Pose, path_ahead: Sequence[Point], footprint: Footprint,
                  lookahead: float = STOP_LOOKAHEAD_M, margin: float = STOP_MARGIN_M) -> Blockage | None:
    """Check the next stretch of path against the occupied cells of the latest grid.

    The footprint, grown by ``margin``, is swept along the path (heading along each segment) for
    ``lookahead`` metres. Unknown cells never block. Cells the footprint covers already at the
    current pose are left out: they are not ahead, and stopping for them would trap the base. Less
    than a cell of path left is no stretch to check: what remains is turning in place.

    Args:
        grid: The latest occupancy grid (not inflated).
        pose: The base's current pose.
        path_ahead: The rest of the path, starting at the base's position.
        footprint: The base's footprint.
        lookahead: How much of the path is checked (m).
        margin: Clearance added around the footprint (m).

    Returns:
        The first blockage along the path, or None when the stretch is clear.
    """
    points = [tuple(p) for p in path_ahead]
    # A waypoint the base has all but reached says nothing about where it heads next.
    while len(points) > 2 and math.dist(points[0], points[1]) < grid.resolution:
        del points[1]
    if path_length(points) < grid.resolution:
        return None
    samples = _sample_path(points, grid.resolution)
    samples = samples[samples[:, 2] <= lookahead]
    occupied_rows, occupied_cols = np.nonzero(grid.occupied())
    if len(occupied_rows) == 0 or len(samples) == 0:
        return None
    centres = np.stack([grid.origin[0] + (occupied_cols + 0.5) * grid.resolution,
                        grid.origin[1] + (occupied_rows + 0.5) * grid.resolution], axis=1)
    reach = lookahead + footprint.radius + margin + grid.resolution
    centres = centres[np.hypot(centres[:, 0] - pose[0], centres[:, 1] - pose[1]) <= reach]
    if len(centres) == 0:
        return None
    centres = centres[~_inside_footprint(centres, pose, footprint, margin)]
    for x, y, distance, heading in samples:
        hit = _inside_footprint(centres, (x, y, heading), footprint, margin)
        if hit.any():
            return Blockage(float(distance), centres[hit])
    return None


def _inside_footprint(points: NDArray[np.float64], pose: Pose, footprint: Footprint,
                      margin: float) -> NDArray[np.bool_]:
    """Return which world points lie inside the footprint at a pose, grown by a margin."""
    local = _to_local(points, pose)
    return ((local[:, 0] <= footprint.front + margin) & (local[:, 0] >= -footprint.rear - margin)
            & (np.abs(local[:, 1]) <= footprint.half_width + margin))


# --- path following -----------------------------------------------------------------------------------


class PathFollower:
    """Pure pursuit for a differential-drive base, one command per control period.

    It turns in place while the heading error to the lookahead point is large, tracks the path
    with speed limited by the distance left (so it can stop in time at the configured
    deceleration), backs up to a goal just behind it, then turns to the goal heading. Each command
    differs from the previous one by at most acceleration x period, so a safety layer that checks
    acceleration between consecutive commands accepts them.

    Args:
        path: World ``(x, y)`` waypoints, the last one the goal.
        limits: Speed and acceleration limits.
        period_s: Seconds between commands.
        goal_yaw: Heading to end with; None ends as soon as the position is reached.
        position_tolerance: Distance to the goal that counts as reached (m).
        yaw_tolerance: Heading error that counts as aligned (rad).
        lookahead: Pure-pursuit lookahead distance (m).
        initial: The command in force before the first step, ``(linear, angular)``.

    Raises:
        ValueError: on an empty path, non-finite waypoints or non-positive limits, period or tolerances.
    """

    def __init__(self, path: Sequence[Point], limits: DriveLimits, period_s: float, goal_yaw: float | None = None,
                 position_tolerance: float = POSITION_TOLERANCE_M, yaw_tolerance: float = YAW_TOLERANCE_RAD,
                 lookahead: float = LOOKAHEAD_M, initial: tuple[float, float] = (0.0, 0.0)) -> None:
        points = np.asarray(path, dtype=float).reshape(-1, 2)
        if len(points) == 0 or not np.all(np.isfinite(points)):
            raise ValueError("the path must hold at least one finite (x, y) point")
        numbers = (limits.linear, limits.angular, limits.linear_accel, limits.angular_accel, period_s,
                   position_tolerance, yaw_tolerance, lookahead)
        if not all(math.isfinite(v) and v > 0.0 for v in numbers):
            raise ValueError(f"limits, period, tolerances and lookahead must be positive, got {numbers}")
        if goal_yaw is not None and not math.isfinite(goal_yaw):
            raise ValueError(f"goal_yaw must be finite, got {goal_yaw}")
        keep = np.concatenate([[True], np.hypot(*np.diff(points, axis=0).T) > 1e-9])
        self._points = points[keep]
        self._cumulative = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(self._points, axis=0).T))])
        self.limits = limits
        self.period_s = float(period_s)
        self.goal_yaw = goal_yaw
        self.position_tolerance = float(position_tolerance)
        self.yaw_tolerance = float(yaw_tolerance)
        self.lookahead = float(lookahead)
        self._command = (float(initial[0]), float(initial[1]))
        self._progress = 0.0
        self._segment = 0
        self._turning = False
        self._phase = "track"

    @property
    def goal(self) -> Point:
        """Return the path's last point."""
        return float(self._points[-1, 0]), float(self._points[-1, 1])

    @property
    def length(self) -> float:
        """Return the path's length (m)."""
        return float(self._cumulative[-1])

    @property
    def remaining(self) -> float:
        """Return the length of path left after the robot's last projection onto it (m)."""
        return max(0.0, self.length - self._progress)

    @property
    def done(self) -> bool:
        """Return whether the goal has been reached."""
        return self._phase == "done"

    @property
    def command(self) -> tuple[float, float]:
        """Return the last command ``(linear, angular)``, from which the next one ramps."""
        return self._command

    def halted(self) -> None:
        """Note that the base was told to stop outside the follower: the next command ramps up from zero."""
        self._command = (0.0, 0.0)
        self._turning = False

    def remaining_path(self, pose: Pose) -> list[Point]:
        """Return the path from the robot's position: its position, then the waypoints still ahead."""
        ahead = [tuple(map(float, p)) for p in self._points[self._segment + 1:]]
        return [(float(pose[0]), float(pose[1])), *ahead] if ahead else [(float(pose[0]), float(pose[1])), self.goal]

    def step(self, pose: Pose, stop_within: float | None = None) -> DriveCommand:
        """Return the command for the next control period, given the base's current pose.

        Args:
            pose: The base's pose.
            stop_within: Distance along the path the base must be able to stop in (m), when
                something is nearer than the goal; None when only the goal counts.
        """
        x, y, yaw = (float(v) for v in pose)
        if self._phase == "done":
            return DriveCommand(0.0, 0.0, True, "done")
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(yaw)):
            return self._ramped(0.0, 0.0, "track")
        self._project(x, y)
        gx, gy = self.goal
        distance = math.hypot(gx - x, gy - y)
        if self._phase == "align" or distance <= self.position_tolerance:
            return self._align(yaw)
        near = distance < self.lookahead
        tx, ty = (gx, gy) if near else self._point_at(self._progress + self.lookahead)
        alpha = wrap_angle(math.atan2(ty - y, tx - x) - yaw)
        # Distance left to stop in: along the path, or straight to the goal once it is near.
        left = distance if near else max(self.remaining, distance)
        if stop_within is not None:
            left = max(0.0, min(left, stop_within))
        if near and distance <= REVERSE_MAX_M and abs(alpha) > math.pi / 2:
            self._turning = False
            back = wrap_angle(alpha - math.pi)
            speed = self._approach_speed(left)
            return self._ramped(-speed, 2.0 * speed * math.sin(back) / max(distance, 1e-6), "reverse")
        if self._turning or abs(alpha) > TURN_IN_PLACE_RAD:
            self._turning = abs(alpha) > TURN_DONE_RAD
            if self._turning:
                return self._ramped(0.0, self._turn_rate(alpha), "turn")
        speed = self._approach_speed(left)
        curvature = 2.0 * math.sin(alpha) / max(math.hypot(tx - x, ty - y), 1e-6)
        angular = curvature * speed
        if abs(angular) > self.limits.angular:
            speed *= self.limits.angular / abs(angular)
            angular = math.copysign(self.limits.angular, angular)
        return self._ramped(speed, angular, "track")

    def _align(self, yaw: float) -> DriveCommand:
        self._phase = "align"
        if self.goal_yaw is None:
            return self._finish()
        error = wrap_angle(self.goal_yaw - yaw)
        if abs(error) <= self.yaw_tolerance:
            return self._finish()
        return self._ramped(0.0, self._turn_rate(error), "align")

    def _finish(self) -> DriveCommand:
        settled = (abs(self._command[0]) <= self.limits.linear_accel * self.period_s + 1e-9
                   and abs(self._command[1]) <= self.limits.angular_accel * self.period_s + 1e-9)
        if settled:
            self._phase = "done"
            self._command = (0.0, 0.0)
            return DriveCommand(0.0, 0.0, True, "done")
        return self._ramped(0.0, 0.0, "align")

    def _approach_speed(self, left: float) -> float:
        """Return the forward speed from which the base can still stop within ``left`` metres."""
        braking = math.sqrt(2.0 * self.limits.linear_accel * max(left - self.position_tolerance / 2, 0.0))
        return max(MIN_LINEAR_MPS, min(self.limits.linear, braking, GOAL_SPEED_GAIN * left))

    def _turn_rate(self, error: float) -> float:
        """Return the turn rate towards a heading error from which the base can still stop in time."""
        braking = math.sqrt(2.0 * self.limits.angular_accel * abs(error))
        rate = max(MIN_ANGULAR_RADPS, min(self.limits.angular, braking, TURN_SPEED_GAIN * abs(error)))
        return math.copysign(rate, error)

    def _ramped(self, linear: float, angular: float, phase: str) -> DriveCommand:
        dv = self.limits.linear_accel * self.period_s
        dw = self.limits.angular_accel * self.period_s
        v0, w0 = self._command
        v = v0 + min(max(linear - v0, -dv), dv)
        w = w0 + min(max(angular - w0, -dw), dw)
        v = min(max(v, -self.limits.linear), self.limits.linear)
        w = min(max(w, -self.limits.angular), self.limits.angular)
        self._command = (v, w)
        return DriveCommand(v, w, False, phase)

    def _project(self, x: float, y: float) -> None:
        """Advance the progress along the path to the robot's nearest point within the window ahead."""
        points, cumulative = self._points, self._cumulative
        if len(points) < 2:
            return
        best = (math.inf, self._segment, self._progress)
        limit = self._progress + max(PROJECTION_WINDOW_M, 2.0 * self.lookahead)
        for i in range(self._segment, len(points) - 1):
            if cumulative[i] > limit:
                break
            a, b = points[i], points[i + 1]
            ab = b - a
            length = cumulative[i + 1] - cumulative[i]
            t = min(max(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / (length * length), 0.0), 1.0)
            distance = math.hypot(a[0] + t * ab[0] - x, a[1] + t * ab[1] - y)
            if distance < best[0] - 1e-9:
                best = (distance, i, cumulative[i] + t * length)
        _, segment, progress = best
        if progress >= self._progress:
            self._segment, self._progress = segment, progress

    def _point_at(self, distance: float) -> Point:
        """Return the path point ``distance`` metres from the start (clamped to the ends)."""
        cumulative = self._cumulative
        if distance >= cumulative[-1]:
            return self.goal
        i = int(np.searchsorted(cumulative, distance, side="right")) - 1
        i = min(max(i, 0), len(cumulative) - 2)
        t = (distance - cumulative[i]) / max(cumulative[i + 1] - cumulative[i], 1e-12)
        a, b = self._points[i], self._points[i + 1]
        return float(a[0] + t * (b[0] - a[0])), float(a[1] + t * (b[1] - a[1]))
