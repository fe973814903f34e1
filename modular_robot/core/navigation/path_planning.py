"""Paths for a differential-drive base: costmap, A*, approach poses around an object.

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

Poses are ``(x, y, yaw)`` in the grid's (world) frame, in metres and radians.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from modular_robot.core.navigation.geometry import (
    OCCUPIED_THRESHOLD,
    STOP_MARGIN_M,
    Footprint,
    ObjectBox,
    OccupancyMap,
    Point,
    Pose,
    grid_problem,
    inside_footprint,
    path_length,
    sample_path,
    wrap_angle,
)

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
_SQRT2 = math.sqrt(2.0)
_MOVES = ((-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0),
          (-1, -1, _SQRT2), (-1, 1, _SQRT2), (1, -1, _SQRT2), (1, 1, _SQRT2))


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
            if inside_footprint(centres, pose, footprint, STOP_MARGIN_M).any():
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
    samples = sample_path(path, costmap.grid.resolution / 2.0)
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
