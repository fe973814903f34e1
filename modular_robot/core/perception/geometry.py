"""3D boxes from point sets: the common lifting step of every detector."""

from __future__ import annotations

import math

import cv2
import numpy as np


def box_from_points(points: np.ndarray, support_z: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Return the gravity-aligned box (centre, size, yaw) that encloses an object's points.

    The box is upright (objects rest on a support): its footprint is the minimum-area rectangle
    around the points' horizontal projection (principal axes fail on square footprints, where
    every direction is principal), and its vertical extent runs from the lowest to the highest
    point. A camera sees only the near side of an object; when `support_z` (the height of the
    surface it rests on) is given, the box reaches down to it, which recovers the hidden bottom.

    Args:
        points: (N, 3) world-frame points of one object, N >= 1.
        support_z: Height of the supporting surface, or None.

    Returns:
        centre (3,), size (3,) with size[0] >= size[1], and yaw in (-pi/2, pi/2].
    """
    points = np.asarray(points, dtype=np.float64)
    (cx, cy), (width, height), angle = cv2.minAreaRect(points[:, :2].astype(np.float32))
    yaw = math.radians(angle)
    if height > width:
        width, height = height, width
        yaw += math.pi / 2
    # A box is symmetric under half turns: keep yaw in (-pi/2, pi/2].
    yaw = math.remainder(yaw, math.pi)
    if yaw <= -math.pi / 2:
        yaw += math.pi
    z_lo = points[:, 2].min() if support_z is None else min(support_z, points[:, 2].min())
    z_hi = points[:, 2].max()
    centre = np.array([cx, cy, (z_lo + z_hi) / 2])
    return centre, np.array([width, height, z_hi - z_lo]), yaw


def size_class(size: np.ndarray) -> str:
    """Name the size of an object from its largest extent: small (< 5 cm), medium (< 12 cm), large."""
    largest = float(np.max(size))
    if largest < 0.05:
        return "small"
    if largest < 0.12:
        return "medium"
    return "large"
