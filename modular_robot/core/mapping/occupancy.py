"""2D occupancy grids from depth images, for the mobile base (nav_msgs/OccupancyGrid layout).

Each depth frame is back-projected into the world. Points whose height above the floor lies in
the obstacle band mark their cell occupied; points on the floor mark their cell free, since seeing
the floor there means nothing stands on it. Rays to floor and obstacle points free the cells they
cross below ``raycast_max_height``: a ray passing a cell at height h proves only that nothing
taller than h stands there, so the default (the lowest obstacle height) is sound and keeps the
shadow behind an obstacle unknown; a higher value clears like ROS costmaps do, which helps where
the floor returns no depth but can erase low obstacles hidden behind taller ones. Evidence
accumulates over frames as log-odds, so one noisy frame neither creates nor erases an obstacle for
good. Everything is vectorised numpy.

Grid layout follows nav_msgs/OccupancyGrid: cell ``(row, col)`` covers world
``x in [origin_x + col * res, origin_x + (col + 1) * res)`` and likewise y with ``row``; the data
is row-major from the origin cell, so ``grid.ravel()`` is ``OccupancyGrid.data``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from modular_robot.core.camera import depth_to_points
from modular_robot.core.perception.self_filter import inside_capsules
from modular_robot.core.perception.types import CameraFrame

FREE = 0
OCCUPIED = 100
UNKNOWN = -1

# Rays are sampled in batches so that memory stays bounded (rays x samples float32 arrays).
_RAY_BATCH = 2048


class OccupancyGridBuilder:
    """Accumulate depth frames into a log-odds occupancy grid.

    Args:
        resolution: Cell edge (m).
        width_m: Extent of the grid along world x (m).
        height_m: Extent of the grid along world y (m).
        origin: World ``(x, y)`` of the corner of cell ``(0, 0)``.
        min_obstacle_height: Points at least this high above the floor are obstacles (m).
        max_obstacle_height: Points higher than this are ignored: the robot passes under them (m).
        floor_z: Height of the floor in the world frame (m).
        floor_tolerance: Points within this of the floor are floor (m).
        max_range_m: Points farther than this along the optical axis are ignored (depth noise
            grows with range).
        stride: Use every ``stride``-th depth row and column.
        raycast: Also free the cells crossed by rays to floor and obstacle points.
        raycast_max_height: A ray frees a cell only where it passes below this height (m);
            None means ``min_obstacle_height``.
        hit_log_odds: Evidence added to a cell with obstacle points in a frame.
        miss_log_odds: Evidence added (negative) to a cell seen free in a frame.
        min_log_odds: Lower clamp, so that a cell can turn occupied again quickly.
        max_log_odds: Upper clamp, so that a moved obstacle clears in a few frames.
        occupied_threshold: Cells at or above this log-odds are occupied.
        free_threshold: Cells at or below this log-odds are free.

    Raises:
        ValueError: on a non-positive size, resolution or stride, or an empty obstacle band.
    """

    def __init__(self, resolution: float, width_m: float, height_m: float,
                 origin: tuple[float, float] = (0.0, 0.0), min_obstacle_height: float = 0.05,
                 max_obstacle_height: float = 1.5, floor_z: float = 0.0, floor_tolerance: float = 0.02,
                 max_range_m: float = 4.0, stride: int = 4, raycast: bool = True,
                 raycast_max_height: float | None = None, hit_log_odds: float = 0.85,
                 miss_log_odds: float = -0.4, min_log_odds: float = -2.0, max_log_odds: float = 3.5,
                 occupied_threshold: float = 0.5, free_threshold: float = -0.3) -> None:
        if resolution <= 0.0 or width_m <= 0.0 or height_m <= 0.0:
            raise ValueError(f"resolution and size must be positive, got {resolution}, {width_m}x{height_m}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if not min_obstacle_height < max_obstacle_height:
            raise ValueError(f"empty obstacle band [{min_obstacle_height}, {max_obstacle_height}]")
        if not free_threshold < occupied_threshold:
            raise ValueError("free_threshold must be below occupied_threshold")
        self.resolution = float(resolution)
        self.origin = (float(origin[0]), float(origin[1]))
        self.cols = math.ceil(width_m / resolution - 1e-9)
        self.rows = math.ceil(height_m / resolution - 1e-9)
        self.min_obstacle_height = float(min_obstacle_height)
        self.max_obstacle_height = float(max_obstacle_height)
        self.floor_z = float(floor_z)
        self.floor_tolerance = float(floor_tolerance)
        self.max_range_m = float(max_range_m)
        self.stride = int(stride)
        self.raycast = raycast
        self.raycast_max_height = float(min_obstacle_height if raycast_max_height is None else raycast_max_height)
        self.hit_log_odds = float(hit_log_odds)
        self.miss_log_odds = float(miss_log_odds)
        self.min_log_odds = float(min_log_odds)
        self.max_log_odds = float(max_log_odds)
        self.occupied_threshold = float(occupied_threshold)
        self.free_threshold = float(free_threshold)
        self.log_odds = np.zeros((self.rows, self.cols), dtype=np.float32)
        self.observed = np.zeros((self.rows, self.cols), dtype=bool)

    @property
    def shape(self) -> tuple[int, int]:
        """Return ``(rows, cols)``: cells along world y, then along world x."""
        return self.rows, self.cols

    def reset(self) -> None:
        """Forget all evidence."""
        self.log_odds.fill(0.0)
        self.observed.fill(False)

    def cell_of(self, xy: NDArray[np.floating]) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
        """Return the ``(rows, cols, inside)`` of world points ``(N, 2)``; rows/cols are valid where inside."""
        xy = np.asarray(xy)
        cols = np.floor((xy[..., 0] - self.origin[0]) / self.resolution).astype(np.intp)
        rows = np.floor((xy[..., 1] - self.origin[1]) / self.resolution).astype(np.intp)
        inside = (cols >= 0) & (cols < self.cols) & (rows >= 0) & (rows < self.rows)
        return rows, cols, inside

    def integrate(self, frame: CameraFrame) -> int:
        """Add one depth frame's evidence; return how many valid points it contributed.

        Raises:
            ValueError: if the depth image is not 2-D or does not match the frame's intrinsics.
        """
        points = depth_to_points(frame.depth, frame.intrinsics, stride=self.stride)
        points = points[points[:, 2] <= self.max_range_m]
        world = frame.world_from_camera.apply(points)
        if frame.robot_capsules:
            # The robot's own links are not obstacles.
            world = world[~inside_capsules(world, frame.robot_capsules)]
        if len(world) == 0:
            return 0
        height = world[:, 2] - self.floor_z
        is_floor = np.abs(height) <= self.floor_tolerance
        is_obstacle = (height >= self.min_obstacle_height) & (height <= self.max_obstacle_height)

        hit = np.zeros(self.rows * self.cols, dtype=bool)
        free = np.zeros(self.rows * self.cols, dtype=bool)
        rows, cols, inside = self.cell_of(world[:, :2])
        flat = rows * self.cols + cols
        hit[flat[inside & is_obstacle]] = True
        free[flat[inside & is_floor]] = True
        if self.raycast:
            ends = world[is_floor | is_obstacle]
            # Rays into one cell are nearly identical: one per end cell is enough. Cells are
            # counted without bounds, since a ray to an end outside the grid may still cross it.
            end_cells = np.floor(ends[:, :2] / self.resolution).astype(np.int64)
            _, first = np.unique(end_cells, axis=0, return_index=True)
            self._mark_rays(np.asarray(frame.world_from_camera.translation, dtype=np.float32),
                            ends[first], free)
        # A cell with obstacle points this frame is occupied, whatever rays passed over it.
        free &= ~hit
        update = np.zeros(self.rows * self.cols, dtype=np.float32)
        update[hit] = self.hit_log_odds
        update[free] = self.miss_log_odds
        log_odds = self.log_odds.reshape(-1)
        np.clip(log_odds + update, self.min_log_odds, self.max_log_odds, out=log_odds)
        self.observed.reshape(-1)[hit | free] = True
        return len(world)

    def grid(self) -> NDArray[np.int8]:
        """Return the ``(rows, cols)`` int8 grid: 0 free, 100 occupied, -1 unknown or undecided."""
        grid = np.full((self.rows, self.cols), UNKNOWN, dtype=np.int8)
        grid[self.observed & (self.log_odds <= self.free_threshold)] = FREE
        grid[self.observed & (self.log_odds >= self.occupied_threshold)] = OCCUPIED
        return grid

    def _mark_rays(self, camera: NDArray[np.float32], ends: NDArray[np.float32], free: NDArray[np.bool_]) -> None:
        """Set ``free`` for the cells that rays from ``camera`` to ``ends`` cross low enough."""
        step = 0.5 * self.resolution
        delta = ends - camera
        length = np.hypot(delta[:, 0], delta[:, 1])
        for start in range(0, len(ends), _RAY_BATCH):
            batch = slice(start, start + _RAY_BATCH)
            batch_length = length[batch]
            if batch_length.size == 0 or float(batch_length.max()) <= self.resolution:
                continue
            samples = math.ceil(float(batch_length.max()) / step)
            distance = (np.arange(samples, dtype=np.float32) + 0.5) * step
            # Stop a cell short of the end: the end cell is decided by the point itself.
            valid = distance[np.newaxis, :] < (batch_length[:, np.newaxis] - self.resolution)
            fraction = distance[np.newaxis, :] / np.maximum(batch_length[:, np.newaxis], 1e-6)
            along = camera[np.newaxis, np.newaxis, :] + fraction[..., np.newaxis] * delta[batch][:, np.newaxis, :]
            valid &= (along[..., 2] - self.floor_z) <= self.raycast_max_height
            rows, cols, inside = self.cell_of(along[..., :2])
            valid &= inside
            free[(rows * self.cols + cols)[valid]] = True


def occupancy_grid_from_depth(frame: CameraFrame, resolution: float, width_m: float, height_m: float,
                              origin: tuple[float, float] = (0.0, 0.0), min_obstacle_height: float = 0.05,
                              max_obstacle_height: float = 1.5, **options: float | bool | None
                              ) -> NDArray[np.int8]:
    """Return the occupancy grid of a single depth frame (see ``OccupancyGridBuilder``).

    Args:
        frame: The depth frame and its pose.
        resolution: Cell edge (m).
        width_m: Extent along world x (m).
        height_m: Extent along world y (m).
        origin: World ``(x, y)`` of the corner of cell ``(0, 0)``.
        min_obstacle_height: Lowest obstacle height above the floor (m).
        max_obstacle_height: Highest obstacle height above the floor (m).
        **options: Further ``OccupancyGridBuilder`` arguments (floor_z, stride, raycast, ...).

    Returns:
        ``(rows, cols)`` int8: 0 free, 100 occupied, -1 unknown.
    """
    builder = OccupancyGridBuilder(resolution, width_m, height_m, origin, min_obstacle_height,
                                   max_obstacle_height, **options)
    builder.integrate(frame)
    return builder.grid()
