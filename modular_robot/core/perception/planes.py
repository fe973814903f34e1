"""Support planes (the floor, table tops) found in a point cloud, and which plane holds a cluster."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modular_robot.core.perception.geometric_params import GeometricParams

# Cells (m) of the map of where a raised support plane lies: coarse enough that its inliers, a few
# millimetres apart, leave no holes; fine enough that a leg under its edge is under it.
_COVER_CELL = 0.05
_COVER_OFFSET = 1 << 20
_COVER_RADIX = 1 << 22


@dataclass(frozen=True)
class SupportPlane:
    """A near-horizontal plane that objects stand on: points p with normal . p + offset = 0.

    Attributes:
        normal: Unit normal (3,), pointing up.
        offset: Plane offset (m).
        inliers: Number of the frame's sampled points on the plane.
    """

    normal: np.ndarray
    offset: float
    inliers: int

    def height(self, points: NDArray[np.floating]) -> NDArray[np.floating]:
        """Return the signed distance of (N, 3) points above the plane (m)."""
        return points @ self.normal.astype(points.dtype) + points.dtype.type(self.offset)

    def z_at(self, x: float, y: float) -> float:
        """Return the height of the plane at a horizontal position (m)."""
        return -(self.normal[0] * x + self.normal[1] * y + self.offset) / self.normal[2]


def find_support_planes(points: NDArray[np.floating], params: GeometricParams = GeometricParams()
                        ) -> list[SupportPlane]:
    """Find the near-horizontal planes that objects may stand on, most supported first.

    Heights of the points are voted into a histogram; each peak, largest first, proposes a plane:
    RANSAC among the points near the peak's height (hypotheses tilted more than
    ``max_plane_tilt_deg`` are discarded), refined by least squares on its inliers. A plane is
    kept when it holds enough points spread widely enough; peaks near a kept plane are skipped.

    Args:
        points: (N, 3) world-frame points, z up.
        params: Thresholds (see GeometricParams).

    Returns:
        Up to ``max_planes`` planes.
    """
    p = params
    z = points[:, 2]
    if len(z) == 0:
        return []
    low = float(z.min())
    bins = ((z - low) / p.plane_bin).astype(np.int64)
    counts = np.bincount(bins).astype(np.int64)
    # A plane that lies across a bin edge, or tilts a little, spreads over neighbouring bins.
    window = counts.copy()
    window[1:] += counts[:-1]
    window[:-1] += counts[1:]
    min_count = p.min_plane_fraction * len(z)
    rng = np.random.default_rng(p.seed)
    planes: list[SupportPlane] = []
    for _ in range(2 * p.max_planes + 2):
        peak = int(np.argmax(window))
        if window[peak] < min_count or len(planes) == p.max_planes:
            break
        peak_z = low + (peak + 0.5) * p.plane_bin
        plane = _fit_plane(points, np.flatnonzero(np.abs(z - peak_z) <= p.plane_band), p, rng)
        if plane is None:
            window[max(peak - 1, 0):peak + 2] = 0
            continue
        planes.append(plane)
        plane_z = plane.z_at(*points[:, :2].mean(axis=0))
        first = max(int((plane_z - p.min_plane_separation - low) / p.plane_bin), 0)
        last = int((plane_z + p.min_plane_separation - low) / p.plane_bin) + 1
        window[first:last + 1] = 0
    return planes


def _fit_plane(points: NDArray[np.floating], band: NDArray[np.intp], p: GeometricParams,
               rng: np.random.Generator) -> SupportPlane | None:
    """Return the plane RANSAC finds among the `band` points, or None if it is too small or steep.

    Hypotheses are scored, and the winner refined, on a random sample of the band: a thousand points
    pin a plane down as well as the tens of thousands a table holds, at a fraction of the cost.
    """
    if len(band) < 3:
        return None
    sample = points[band[rng.integers(0, len(band), min(p.ransac_samples, len(band)))]].astype(np.float64)
    triples = sample[rng.integers(0, len(sample), (p.ransac_hypotheses, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    valid = lengths > 1e-12
    normals = normals[valid] / lengths[valid, np.newaxis]
    normals *= np.sign(normals[:, 2:3] + 1e-12)
    anchors = triples[valid, 0]
    level_enough = normals[:, 2] >= math.cos(math.radians(p.max_plane_tilt_deg))
    normals, anchors = normals[level_enough], anchors[level_enough]
    # The level plane through the sample's median height is always a candidate, so that a sample
    # without a good triple still yields its plane.
    normals = np.vstack([normals, [0.0, 0.0, 1.0]])
    offsets = np.concatenate([-np.einsum("ij,ij->i", normals[:-1], anchors), [-float(np.median(sample[:, 2]))]])
    scores = (np.abs(sample @ normals.T + offsets) <= p.plane_threshold).sum(axis=0)
    best = int(np.argmax(scores))
    normal, offset = normals[best], float(offsets[best])
    fit = sample[np.abs(sample @ normal + offset) <= p.plane_threshold]
    if len(fit) >= 3:
        # Least squares z = a x + b y + c on the inliers removes RANSAC's jitter.
        design = np.column_stack([fit[:, 0], fit[:, 1], np.ones(len(fit))])
        (a, b, c), *_ = np.linalg.lstsq(design, fit[:, 2], rcond=None)
        refined = np.array([-a, -b, 1.0]) / math.sqrt(a * a + b * b + 1.0)
        if refined[2] >= math.cos(math.radians(p.max_plane_tilt_deg)):
            normal, offset = refined, -c * refined[2]
            fit = sample[np.abs(sample @ normal + offset) <= p.plane_threshold]
    if len(fit) < 3:
        return None
    inliers = int(np.count_nonzero(np.abs(points @ normal.astype(points.dtype) + offset) <= p.plane_threshold))
    spread = np.percentile(fit[:, :2], 95, axis=0) - np.percentile(fit[:, :2], 5, axis=0)
    if inliers < p.min_plane_fraction * len(points) or spread.min() < p.min_plane_extent:
        return None
    return SupportPlane(normal=normal, offset=offset, inliers=inliers)


def cover_cells(points: NDArray[np.floating]) -> NDArray[np.int64]:
    """Return the sorted keys of the horizontal grid cells that a plane's inlier points fall in."""
    cells = np.floor(points[:, :2] / _COVER_CELL).astype(np.int64) + _COVER_OFFSET
    return np.unique(cells[:, 0] * _COVER_RADIX + cells[:, 1])


def covered(cover: NDArray[np.int64], xy: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Return, for each (N, 2) horizontal position, whether a plane's cells include its cell or a neighbour."""
    if len(cover) == 0:
        return np.zeros(len(xy), dtype=bool)
    cells = np.floor(np.asarray(xy, dtype=np.float64) / _COVER_CELL).astype(np.int64) + _COVER_OFFSET
    covered = np.zeros(len(xy), dtype=bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            keys = (cells[:, 0] + dx) * _COVER_RADIX + cells[:, 1] + dy
            at = np.minimum(np.searchsorted(cover, keys), len(cover) - 1)
            covered |= cover[at] == keys
    return covered


def support_of(points: NDArray[np.floating], planes: list[SupportPlane], p: GeometricParams) -> SupportPlane | None:
    """Return the plane a cluster rests on: the nearest one below its lowest point, within reach."""
    best, best_gap = None, math.inf
    for plane in planes:
        gap = float(plane.height(points).min())
        if 0.0 <= gap <= p.max_support_gap + p.plane_threshold and gap < best_gap:
            best, best_gap = plane, gap
    return best
