"""Navigation for a differential-drive base on a 2D occupancy grid: the grid the planner reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


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
