"""Clusters of the points above the support planes: voxel neighbourhoods joined across image neighbours."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from modular_robot.core.camera import PinholeIntrinsics

# Half of the 26-neighbourhood: each pair of touching voxels is found once.
_HALF_NEIGHBOURHOOD = np.array(
    [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1) if (dx, dy, dz) > (0, 0, 0)],
    dtype=np.int64)


def voxel_clusters(points: NDArray[np.floating], voxel: float) -> tuple[NDArray[np.intp], int]:
    """Group points whose voxels touch (26-neighbourhood) into clusters.

    Args:
        points: (N, 3) points, N >= 1.
        voxel: Voxel edge (m).

    Returns:
        (N,) cluster label of each point in 0..count-1, and count.
    """
    cells = np.floor(points / voxel).astype(np.int64)
    # Shifting the cells to start at 1 and sizing the grid with a spare layer on each side makes the
    # mixed-radix key of every neighbour unique, so a key lookup finds exactly the touching voxels.
    cells -= cells.min(axis=0) - 1
    dims = cells.max(axis=0) + 2
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    occupied, voxel_of_point = np.unique(keys, return_inverse=True)
    rows, cols = [], []
    for dx, dy, dz in _HALF_NEIGHBOURHOOD:
        wanted = occupied + (dx * dims[1] + dy) * dims[2] + dz
        at = np.minimum(np.searchsorted(occupied, wanted), len(occupied) - 1)
        hit = np.flatnonzero(occupied[at] == wanted)
        rows.append(hit)
        cols.append(at[hit])
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows_all), dtype=np.int8), (rows_all, cols_all)),
                       shape=(len(occupied), len(occupied)))
    count, voxel_labels = connected_components(graph, directed=False)
    return voxel_labels[voxel_of_point.reshape(-1)], int(count)


def join_image_neighbours(labels: NDArray[np.intp], count: int, points: NDArray[np.floating],
                           ranges: NDArray[np.floating], pixel: NDArray[np.intp], intrinsics: PinholeIntrinsics,
                           stride: int, min_link: float, grazing_factor: float) -> tuple[NDArray[np.intp], int]:
    """Join clusters that hold neighbouring pixels of one surface seen at a grazing angle.

    Samples of a surface seen nearly edge-on lie far apart (their spacing grows as one over the sine
    of the viewing angle), so touching voxels can miss the link between a cube's front face and its
    top. Pixels next to each other on the sampled grid are linked when their 3D distance is within
    `grazing_factor` times the sample spacing of a surface facing the camera (range * stride / f),
    or within `min_link`: a surface seen at down to asin(1 / grazing_factor) from edge-on stays
    whole, and a gap wider than that between two objects keeps them apart.
    """
    width = intrinsics.width
    grid_h, grid_w = -(-intrinsics.height // stride), -(-width // stride)
    grid = np.full((grid_h + 1, grid_w + 1), -1, dtype=np.int64)  # a spare row and column: no bounds checks
    row, col = pixel // width // stride, (pixel % width) // stride
    grid[row, col] = np.arange(len(pixel))
    spacing = ranges * (stride / intrinsics.fx)
    reach_sq = np.maximum(grazing_factor * spacing, min_link) ** 2
    pairs = []
    for dr, dc in ((0, 1), (1, 0)):
        other = grid[row + dr, col + dc]
        mine = np.flatnonzero(other >= 0)
        other = other[mine]
        apart = labels[mine] != labels[other]
        mine, other = mine[apart], other[apart]
        gap = points[mine] - points[other]
        close = np.einsum("ij,ij->i", gap, gap) <= reach_sq[mine]
        pairs.append((labels[mine[close]], labels[other[close]]))
    first = np.concatenate([a for a, _ in pairs])
    if len(first) == 0:
        return labels, count
    second = np.concatenate([b for _, b in pairs])
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(count, count))
    joined, cluster_of = connected_components(graph, directed=False)
    return cluster_of[labels], int(joined)


def _sample_grid(pixel: NDArray[np.intp], width: int, height: int, stride: int, fill: int
                 ) -> tuple[NDArray[np.int64], NDArray[np.intp], NDArray[np.intp]]:
    """Return a grid of the sampled pixels filled with `fill`, and each pixel's (row, column) in it.

    A spare ring of cells lets the border samples look at neighbours without bounds checks.
    """
    grid = np.full((-(-height // stride) + 2, -(-width // stride) + 2), fill, dtype=np.int64)
    return grid, pixel // width // stride + 1, (pixel % width) // stride + 1


def interior_pixels(pixel: NDArray[np.intp], labels: NDArray[np.intp], width: int, height: int,
                     stride: int) -> NDArray[np.bool_]:
    """Return which points' pixels have all four sampled neighbours in the same cluster.

    Silhouette pixels blend the object's colour with the background's; colour naming skips them.
    """
    grid, row, col = _sample_grid(pixel, width, height, stride, 0)
    own = labels + 1
    grid[row, col] = own
    return ((grid[row - 1, col] == own) & (grid[row + 1, col] == own)
            & (grid[row, col - 1] == own) & (grid[row, col + 1] == own))


def steep_members(points: NDArray[np.floating], pixel: NDArray[np.intp], members: NDArray[np.intp], width: int,
           height: int, stride: int, reach: float) -> NDArray[np.bool_]:
    """Return which of the `members` points lie on a steep surface, such as an object's upright face.

    A point is on one when it has a sampled neighbour in its image column (the sample above or
    below) within `reach` in 3D, and every such neighbour is further above or below it than beside
    it. Along a horizontal surface the samples of a column step away from the camera, even at a
    grazing angle; down an upright face they step down.
    """
    grid, rows, cols = _sample_grid(pixel, width, height, stride, -1)
    grid[rows, cols] = np.arange(len(pixel))
    row, col = rows[members], cols[members]
    steep = np.ones(len(members), dtype=bool)
    seen = np.zeros(len(members), dtype=bool)
    for step in (-1, 1):
        other = grid[row + step, col]
        has = np.flatnonzero(other >= 0)
        delta = points[other[has]] - points[members[has]]
        beside = np.hypot(delta[:, 0], delta[:, 1])
        rise = np.abs(delta[:, 2])
        near = beside ** 2 + rise ** 2 <= reach ** 2
        seen[has[near]] = True
        steep[has[near & (rise <= beside)]] = False
    return steep & seen
