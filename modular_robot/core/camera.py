"""Pinhole camera model: back-projection of depth images and projection of points.

Points are in the camera's optical frame (REP-103): x right, y down, z forward, in metres. Pixel
``(u, v)`` is column ``u``, row ``v``, with integer coordinates at pixel centres, as in
sensor_msgs/CameraInfo's K matrix.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Intrinsics of an undistorted pinhole camera.

    Frozen and hashable, so it can key caches of per-camera precomputation.

    Attributes:
        width: Image width in pixels.
        height: Image height in pixels.
        fx: Focal length along x, in pixels.
        fy: Focal length along y, in pixels.
        cx: Principal point column, in pixels.
        cy: Principal point row, in pixels.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if not (0.0 < self.fx < np.inf and 0.0 < self.fy < np.inf):
            raise ValueError(f"focal lengths must be positive and finite, got fx={self.fx}, fy={self.fy}")
        if not (np.isfinite(self.cx) and np.isfinite(self.cy)):
            raise ValueError(f"principal point must be finite, got ({self.cx}, {self.cy})")

    @classmethod
    def from_k(cls, width: int, height: int, k: ArrayLike) -> PinholeIntrinsics:
        """Build intrinsics from a row-major 3x3 camera matrix given as 9 numbers or 3x3.

        Raises:
            ValueError: if ``k`` does not hold 9 numbers, or has skew or a bad last row.
        """
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.shape != (9,):
            raise ValueError(f"K must hold 9 numbers, got {k.size}")
        if k[1] != 0.0 or k[3] != 0.0 or not np.allclose(k[6:], [0.0, 0.0, 1.0]):
            raise ValueError(f"K must be [fx 0 cx; 0 fy cy; 0 0 1], got {k.tolist()}")
        return cls(int(width), int(height), float(k[0]), float(k[4]), float(k[2]), float(k[5]))

    @property
    def k(self) -> list[float]:
        """Row-major 3x3 camera matrix as 9 numbers (CameraInfo.k)."""
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    @property
    def p(self) -> list[float]:
        """Row-major 3x4 projection matrix of a monocular camera as 12 numbers (CameraInfo.p)."""
        return [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]


@functools.lru_cache(maxsize=16)
def _ray_grid(
    intrinsics: PinholeIntrinsics, stride: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.intp]]:
    """Return x/z and y/z of every sampled pixel's ray, and its flat index in the full image.

    All three are flat, in row-major order of the sampled pixels. Cached because they depend only
    on the camera and recomputing them would cost about as much as the back-projection itself.
    """
    us = np.arange(0, intrinsics.width, stride)
    vs = np.arange(0, intrinsics.height, stride)
    x_over_z = ((us - intrinsics.cx) / intrinsics.fx).astype(np.float32)
    y_over_z = ((vs - intrinsics.cy) / intrinsics.fy).astype(np.float32)
    x_grid = np.broadcast_to(x_over_z[np.newaxis, :], (vs.size, us.size)).ravel()
    y_grid = np.broadcast_to(y_over_z[:, np.newaxis], (vs.size, us.size)).ravel()
    flat_index = (vs[:, np.newaxis] * intrinsics.width + us[np.newaxis, :]).astype(np.intp).ravel()
    for grid in (x_grid, y_grid, flat_index):
        grid.flags.writeable = False
    return x_grid, y_grid, flat_index


def depth_to_points(
    depth: NDArray[np.floating],
    intrinsics: PinholeIntrinsics,
    stride: int = 1,
    return_index: bool = False,
) -> NDArray[np.float32] | tuple[NDArray[np.float32], NDArray[np.intp]]:
    """Back-project a depth image to 3D points in the optical frame.

    Args:
        depth: ``(height, width)`` depth along the optical axis in metres. NaN, zero, negative and
            infinite values are invalid and produce no point.
        intrinsics: Camera the depth image comes from; its size must match ``depth``.
        stride: Use every ``stride``-th row and column, for a cheaper, sparser cloud.
        return_index: Also return each point's flat pixel index ``v * width + u`` in the full
            image, e.g. to fetch colours with ``rgb.reshape(-1, 3)[index]``.

    Returns:
        ``(N, 3)`` float32 points in row-major pixel order, plus the ``(N,)`` index when asked.

    Raises:
        ValueError: if ``depth`` is not 2-D, its size disagrees with ``intrinsics``, or
            ``stride < 1``.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D (height, width) array, got shape {depth.shape}")
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f"depth shape {depth.shape} does not match intrinsics "
            f"{intrinsics.height}x{intrinsics.width} (height x width)"
        )
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    x_grid, y_grid, flat_index = _ray_grid(intrinsics, int(stride))
    z = depth[::stride, ::stride].reshape(-1)
    # NaN compares false both ways, so these two comparisons reject NaN, <= 0 and +inf at once.
    selected = np.flatnonzero((z > 0.0) & (z < np.inf))
    # Gathering by index with take() is about twice as fast as boolean-mask indexing here.
    z_valid = z.take(selected).astype(np.float32, copy=False)
    points = np.empty((selected.size, 3), dtype=np.float32)
    np.multiply(x_grid.take(selected), z_valid, out=points[:, 0])
    np.multiply(y_grid.take(selected), z_valid, out=points[:, 1])
    points[:, 2] = z_valid
    if return_index:
        return points, flat_index.take(selected)
    return points


def project(
    points: ArrayLike, intrinsics: PinholeIntrinsics
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project optical-frame points to pixel coordinates.

    Args:
        points: ``(N, 3)`` or ``(3,)`` points in the optical frame, in metres.
        intrinsics: Camera to project into.

    Returns:
        ``(u, v)`` arrays of column and row coordinates. Points at or behind the camera
        (``z <= 0``) get NaN. Coordinates outside the image are returned as computed.

    Raises:
        ValueError: if ``points`` does not have shape ``(3,)`` or ``(N, 3)``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1:] != (3,) or pts.ndim > 2:
        raise ValueError(f"points must have shape (3,) or (N, 3), got {pts.shape}")
    z = pts[..., 2]
    in_front = z > 0.0
    # Dividing only where z > 0 avoids divide-by-zero warnings and marks the rest NaN.
    inv_z = np.divide(1.0, z, out=np.full_like(z, np.nan), where=in_front)
    u = intrinsics.fx * pts[..., 0] * inv_z + intrinsics.cx
    v = intrinsics.fy * pts[..., 1] * inv_z + intrinsics.cy
    return u, v
