"""3D boxes from point sets: the common lifting step of every detector."""

from __future__ import annotations

import math

import numpy as np


def box_from_points(points: np.ndarray, support_z: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Return the gravity-aligned box (centre, size, yaw) that encloses an object's points.

    The box is upright (objects rest on a support): its yaw is the principal axis of the points'
    horizontal spread, its horizontal extents come from the points along that axis and the one
    across it, and its vertical extent from the lowest to the highest point. A camera sees only
    the near side of an object; when `support_z` (the height of the surface it rests on) is given,
    the box reaches down to it, which recovers the hidden bottom.

    Args:
        points: (N, 3) world-frame points of one object, N >= 1.
        support_z: Height of the supporting surface, or None.

    Returns:
        centre (3,), size (3,) with size[0] >= size[1], and yaw in (-pi/2, pi/2].
    """
    points = np.asarray(points, dtype=np.float64)
    xy = points[:, :2]
    mean = xy.mean(axis=0)
    yaw = 0.0
    if len(points) >= 3:
        cov = np.cov((xy - mean).T)
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        major = eigenvectors[:, int(np.argmax(eigenvalues))]
        yaw = math.atan2(major[1], major[0])
        # A box is symmetric under half turns: keep yaw in (-pi/2, pi/2].
        if yaw <= -math.pi / 2:
            yaw += math.pi
        elif yaw > math.pi / 2:
            yaw -= math.pi
    c, s = math.cos(yaw), math.sin(yaw)
    local = (xy - mean) @ np.array([[c, -s], [s, c]])
    lo, hi = local.min(axis=0), local.max(axis=0)
    mid = (lo + hi) / 2
    centre_xy = mean + np.array([[c, -s], [s, c]]) @ mid
    z_lo = points[:, 2].min() if support_z is None else min(support_z, points[:, 2].min())
    z_hi = points[:, 2].max()
    size = np.array([hi[0] - lo[0], hi[1] - lo[1], z_hi - z_lo])
    if size[1] > size[0]:
        size[:2] = size[1::-1]
        yaw = yaw + math.pi / 2 if yaw <= 0 else yaw - math.pi / 2
    centre = np.array([centre_xy[0], centre_xy[1], (z_lo + z_hi) / 2])
    return centre, size, yaw


def size_class(size: np.ndarray) -> str:
    """Name the size of an object from its largest extent: small (< 5 cm), medium (< 12 cm), large."""
    largest = float(np.max(size))
    if largest < 0.05:
        return "small"
    if largest < 0.12:
        return "medium"
    return "large"
