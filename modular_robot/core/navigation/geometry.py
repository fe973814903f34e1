"""Geometry of a base on a 2D occupancy grid: the grid, footprints, object boxes, gaps between them.

Poses are ``(x, y, yaw)`` in the grid's (world) frame, in metres and radians.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# nav_msgs/OccupancyGrid holds occupancy probabilities 0-100 and -1 for unknown: cells at or above
# this value are obstacles.
OCCUPIED_THRESHOLD = 50
# The margin around the footprint that the obstacle stop and the approach keep free (m).
STOP_MARGIN_M = 0.05

Pose = tuple[float, float, float]
Point = tuple[float, float]


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


def inside_footprint(points: NDArray[np.float64], pose: Pose, footprint: Footprint,
                      margin: float) -> NDArray[np.bool_]:
    """Return which world points lie inside the footprint at a pose, grown by a margin."""
    local = _to_local(points, pose)
    return ((local[:, 0] <= footprint.front + margin) & (local[:, 0] >= -footprint.rear - margin)
            & (np.abs(local[:, 1]) <= footprint.half_width + margin))


def sample_path(path: Sequence[Point], step: float) -> NDArray[np.float64]:
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
