"""Tests of the pinhole model: back-projection of depth and projection of points."""

import time

import numpy as np
import pytest

from modular_robot.core.camera import PinholeIntrinsics, depth_to_points, project

INTR = PinholeIntrinsics(width=64, height=48, fx=50.0, fy=55.0, cx=31.5, cy=23.5)


def _pixel_grid(intr: PinholeIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(intr.width), np.arange(intr.height))


def test_fronto_parallel_plane_back_projects_to_known_points():
    depth = np.full((INTR.height, INTR.width), 2.0, dtype=np.float32)
    points = depth_to_points(depth, INTR)
    assert points.shape == (INTR.width * INTR.height, 3)
    assert points.dtype == np.float32
    np.testing.assert_allclose(points[:, 2], 2.0)
    # Row-major order: pixel (u=0, v=0) first, (u=63, v=47) last.
    first = [(0 - 31.5) / 50.0 * 2, (0 - 23.5) / 55.0 * 2, 2.0]
    last = [(63 - 31.5) / 50.0 * 2, (47 - 23.5) / 55.0 * 2, 2.0]
    np.testing.assert_allclose(points[0], first, rtol=1e-6)
    np.testing.assert_allclose(points[-1], last, rtol=1e-6)


def test_tilted_plane_points_lie_on_the_plane_and_project_back_to_their_pixels():
    normal = np.array([0.2, -0.3, 1.0])
    offset = 1.5  # plane: normal . p = offset
    us, vs = _pixel_grid(INTR)
    rays = np.stack(
        [(us - INTR.cx) / INTR.fx, (vs - INTR.cy) / INTR.fy, np.ones(us.shape)], axis=-1
    )
    depth = (offset / (rays @ normal)).astype(np.float32)
    points = depth_to_points(depth, INTR)
    np.testing.assert_allclose(points @ normal, offset, rtol=1e-5)
    u, v = project(points, INTR)
    np.testing.assert_allclose(u, us.ravel(), atol=1e-3)
    np.testing.assert_allclose(v, vs.ravel(), atol=1e-3)


def test_invalid_depths_are_dropped_and_index_names_the_source_pixel():
    depth = np.full((INTR.height, INTR.width), 1.0, dtype=np.float32)
    bad = [(0, 0, np.nan), (5, 7, 0.0), (10, 3, np.inf), (20, 20, -1.0), (47, 63, np.nan)]
    for v, u, value in bad:
        depth[v, u] = value
    depth[30, 40] = 3.0
    points, index = depth_to_points(depth, INTR, return_index=True)
    assert points.shape[0] == INTR.width * INTR.height - len(bad)
    assert np.isfinite(points).all()
    flat_bad = {v * INTR.width + u for v, u, _ in bad}
    assert flat_bad.isdisjoint(index.tolist())
    (row,) = np.flatnonzero(index == 30 * INTR.width + 40)
    expected = [(40 - 31.5) / 50 * 3, (30 - 23.5) / 55 * 3, 3.0]
    np.testing.assert_allclose(points[row], expected, rtol=1e-6)


def test_stride_samples_every_nth_pixel_and_index_is_full_resolution():
    us, vs = _pixel_grid(INTR)
    depth = (1.0 + us + 100.0 * vs).astype(np.float32)  # encodes the pixel in the depth
    points, index = depth_to_points(depth, INTR, stride=4, return_index=True)
    assert points.shape == (12 * 16, 3)
    np.testing.assert_array_equal(index % INTR.width % 4, 0)
    np.testing.assert_array_equal(index // INTR.width % 4, 0)
    np.testing.assert_allclose(points[:, 2], depth.ravel()[index])


def test_float64_depth_is_accepted_and_output_is_float32():
    depth = np.full((INTR.height, INTR.width), 0.5)
    assert depth_to_points(depth, INTR).dtype == np.float32


def test_depth_shape_and_stride_are_validated():
    with pytest.raises(ValueError, match="does not match"):
        depth_to_points(np.ones((INTR.width, INTR.height), np.float32), INTR)
    with pytest.raises(ValueError, match="2-D"):
        depth_to_points(np.ones((INTR.height, INTR.width, 1), np.float32), INTR)
    with pytest.raises(ValueError, match="stride"):
        depth_to_points(np.ones((INTR.height, INTR.width), np.float32), INTR, stride=0)


def test_project_known_point_and_points_behind_camera():
    u, v = project(np.array([[0.5, -0.2, 2.0], [0.0, 0.0, 0.0], [1.0, 1.0, -1.0]]), INTR)
    np.testing.assert_allclose([u[0], v[0]], [31.5 + 50 * 0.25, 23.5 - 55 * 0.1])
    assert np.isnan(u[1:]).all() and np.isnan(v[1:]).all()
    u1, v1 = project([0.0, 0.0, 1.0], INTR)
    assert (float(u1), float(v1)) == (31.5, 23.5)


def test_intrinsics_k_and_p_round_trip_and_validation():
    assert PinholeIntrinsics.from_k(INTR.width, INTR.height, INTR.k) == INTR
    assert PinholeIntrinsics.from_k(64, 48, np.array(INTR.k).reshape(3, 3)) == INTR
    p = np.array(INTR.p).reshape(3, 4)
    np.testing.assert_array_equal(p[:, :3], np.array(INTR.k).reshape(3, 3))
    np.testing.assert_array_equal(p[:, 3], 0.0)
    with pytest.raises(ValueError, match="9 numbers"):
        PinholeIntrinsics.from_k(64, 48, [1.0] * 8)
    with pytest.raises(ValueError, match="focal"):
        PinholeIntrinsics.from_k(64, 48, [0.0] * 8 + [1.0])
    with pytest.raises(ValueError, match="size"):
        PinholeIntrinsics(0, 48, 1.0, 1.0, 0.0, 0.0)


def test_back_projection_is_vectorised():
    # A per-pixel Python loop takes over a second on a 1280x960 image; numpy takes milliseconds.
    intr = PinholeIntrinsics(1280, 960, 900.0, 900.0, 639.5, 479.5)
    depth = np.random.default_rng(0).uniform(0.3, 5.0, size=(960, 1280)).astype(np.float32)
    durations = []
    for _ in range(3):
        start = time.perf_counter()
        depth_to_points(depth, intr)
        durations.append(time.perf_counter() - start)
    assert min(durations) < 0.25
