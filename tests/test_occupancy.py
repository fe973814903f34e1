"""Occupancy grids from synthetic depth images of a floor with boxes on it."""

import time

import numpy as np
import pytest

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.mapping.occupancy import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    OccupancyGridBuilder,
    occupancy_grid_from_depth,
)
from modular_robot.core.perception.types import CameraFrame, Capsule
from modular_robot.core.transforms import Transform

# The mobile base's forward camera: 0.55 m up, pitched down 20 degrees, 58 degree vertical FOV.
INTRINSICS = PinholeIntrinsics(320, 240, 216.5, 216.5, 159.5, 119.5)
# camera_link (x forward, z up) to the optical frame (z forward, y down), as REP-103.
CAMERA = (Transform.from_xyz_rpy(0.42, 0.0, 0.55, 0.0, np.radians(20.0), 0.0)
          * Transform.from_xyz_rpy(0.0, 0.0, 0.0, -np.pi / 2, 0.0, -np.pi / 2))
GRID = {"resolution": 0.05, "width_m": 4.0, "height_m": 4.0, "origin": (0.0, -2.0),
        "min_obstacle_height": 0.05, "max_obstacle_height": 1.0}
BOX = ((1.8, 0.0, 0.15), (0.2, 0.4, 0.3))


def render_depth(world_from_camera: Transform, boxes=()) -> np.ndarray:
    """Render optical-axis depth of the floor (z = 0) and axis-aligned boxes given as (centre, size)."""
    v, u = np.mgrid[0:INTRINSICS.height, 0:INTRINSICS.width].astype(np.float64)
    rays = np.stack([(u - INTRINSICS.cx) / INTRINSICS.fx, (v - INTRINSICS.cy) / INTRINSICS.fy,
                     np.ones_like(u)], axis=-1) @ world_from_camera.as_matrix()[:3, :3].T
    eye = world_from_camera.translation
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(rays[..., 2] < 0.0, -eye[2] / rays[..., 2], np.inf)
        for centre, size in boxes:
            t1 = (np.asarray(centre) - np.asarray(size) / 2 - eye) / rays
            t2 = (np.asarray(centre) + np.asarray(size) / 2 - eye) / rays
            near, far = np.nanmax(np.minimum(t1, t2), axis=-1), np.nanmin(np.maximum(t1, t2), axis=-1)
            depth = np.where((near <= far) & (far > 0.0) & (near < depth), np.maximum(near, 0.0), depth)
    return np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)


def frame(depth, capsules=()) -> CameraFrame:
    rgb = np.zeros((*depth.shape, 3), np.uint8)
    return CameraFrame(rgb, depth, INTRINSICS, CAMERA, robot_capsules=capsules)


def cell(x, y):
    return int((y - GRID["origin"][1]) / GRID["resolution"]), int((x - GRID["origin"][0]) / GRID["resolution"])


def test_camera_looks_forward_and_down():
    axes = CAMERA.as_matrix()[:3, :3]
    assert axes[0, 2] > 0.9 and axes[2, 2] == pytest.approx(-np.sin(np.radians(20.0)))
    # Image x points to the robot's right (-y).
    assert axes[1, 0] == pytest.approx(-1.0)


def test_obstacle_occupied_floor_free_shadow_and_behind_unknown():
    grid = occupancy_grid_from_depth(frame(render_depth(CAMERA, [BOX])), **GRID)
    assert grid.dtype == np.int8 and grid.shape == (80, 80)
    assert set(np.unique(grid)) <= {FREE, OCCUPIED, UNKNOWN}
    # The box's front face and top.
    assert grid[cell(1.72, 0.0)] == OCCUPIED and grid[cell(1.72, 0.15)] == OCCUPIED
    # Floor between robot and box, and beside the box.
    assert grid[cell(1.2, 0.0)] == FREE and grid[cell(1.8, 0.6)] == FREE
    # Hidden behind the box, behind the camera, and beyond the field of view.
    assert grid[cell(2.3, 0.0)] == UNKNOWN
    assert grid[cell(0.1, 0.0)] == UNKNOWN
    assert grid[cell(1.0, 1.8)] == UNKNOWN
    occupied_rows, occupied_cols = np.nonzero(grid == OCCUPIED)
    xs = GRID["origin"][0] + (occupied_cols + 0.5) * GRID["resolution"]
    ys = GRID["origin"][1] + (occupied_rows + 0.5) * GRID["resolution"]
    # Nothing but the box is occupied.
    assert np.all((xs > 1.65) & (xs < 1.95) & (np.abs(ys) < 0.25))


def test_low_bumps_and_high_overhangs_are_not_obstacles():
    bump = ((1.5, 0.5, 0.015), (0.2, 0.2, 0.03))
    shelf = ((1.5, -0.5, 1.3), (0.3, 0.3, 0.1))
    grid = occupancy_grid_from_depth(frame(render_depth(CAMERA, [bump, shelf])), **GRID)
    assert not np.any(grid == OCCUPIED)


def test_evidence_accumulates_and_a_removed_obstacle_clears():
    builder = OccupancyGridBuilder(**GRID)
    with_box, without_box = frame(render_depth(CAMERA, [BOX])), frame(render_depth(CAMERA))
    for _ in range(5):
        builder.integrate(with_box)
    assert builder.grid()[cell(1.72, 0.0)] == OCCUPIED
    # One frame without it is not enough to forget a well-established obstacle.
    builder.integrate(without_box)
    assert builder.grid()[cell(1.72, 0.0)] == OCCUPIED
    for _ in range(15):
        builder.integrate(without_box)
    assert builder.grid()[cell(1.72, 0.0)] == FREE
    builder.reset()
    assert np.all(builder.grid() == UNKNOWN)


def test_rays_free_the_cells_they_cross_low_enough():
    # Without floor points (a dark floor gives no depth), only rays to the box clear space.
    depth = render_depth(CAMERA, [BOX])
    floor_only = render_depth(CAMERA)
    depth = np.where(np.isclose(depth, floor_only), np.nan, depth).astype(np.float32)
    with_rays = occupancy_grid_from_depth(frame(depth), raycast_max_height=0.6, **GRID)
    without_rays = occupancy_grid_from_depth(frame(depth), raycast=False, **GRID)
    assert without_rays[cell(1.3, 0.0)] == UNKNOWN
    assert with_rays[cell(1.3, 0.0)] == FREE
    assert with_rays[cell(1.72, 0.0)] == OCCUPIED
    # A ray frees nothing where it passes above raycast_max_height, by default the lowest
    # obstacle height: passing higher proves nothing about lower obstacles.
    assert occupancy_grid_from_depth(frame(depth), **GRID)[cell(1.3, 0.0)] == UNKNOWN


def test_costmap_style_clearing_reaches_into_the_shadow_only_when_asked():
    depth = render_depth(CAMERA, [BOX])
    assert occupancy_grid_from_depth(frame(depth), **GRID)[cell(2.3, 0.0)] == UNKNOWN
    assert occupancy_grid_from_depth(frame(depth), raycast_max_height=1.0, **GRID)[cell(2.3, 0.0)] == FREE


def test_robot_links_are_not_obstacles():
    # The arm reaching into the view, modelled as a box and covered by a capsule.
    arm = ((1.0, 0.0, 0.3), (0.1, 0.1, 0.2))
    depth = render_depth(CAMERA, [arm])
    capsule = Capsule(np.array([1.0, 0.0, 0.18]), np.array([1.0, 0.0, 0.42]), 0.1)
    assert occupancy_grid_from_depth(frame(depth), **GRID)[cell(1.0, 0.0)] == OCCUPIED
    assert occupancy_grid_from_depth(frame(depth, [capsule]), **GRID)[cell(1.0, 0.0)] != OCCUPIED


def test_empty_or_invalid_depth_leaves_everything_unknown():
    builder = OccupancyGridBuilder(**GRID)
    assert builder.integrate(frame(np.full((240, 320), np.nan, np.float32))) == 0
    assert builder.integrate(frame(np.zeros((240, 320), np.float32))) == 0
    assert np.all(builder.grid() == UNKNOWN)


def test_mismatched_depth_size_is_a_clear_error():
    with pytest.raises(ValueError, match="does not match intrinsics"):
        OccupancyGridBuilder(**GRID).integrate(frame(np.ones((120, 160), np.float32)))


def test_layout_matches_nav_msgs_occupancy_grid():
    builder = OccupancyGridBuilder(0.1, 1.0, 0.5, origin=(2.0, -1.0))
    assert builder.shape == (5, 10)
    rows, cols, inside = builder.cell_of(np.array([[2.05, -0.95], [2.95, -0.55], [1.99, -1.0], [2.5, -0.49]]))
    assert rows[:2].tolist() == [0, 4] and cols[:2].tolist() == [0, 9]
    assert inside.tolist() == [True, True, False, False]


@pytest.mark.parametrize("kwargs", [{"resolution": 0.0}, {"width_m": -1.0}, {"stride": 0},
                                    {"min_obstacle_height": 1.0, "max_obstacle_height": 0.5}])
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        OccupancyGridBuilder(**{**GRID, **kwargs})


def test_integration_is_fast_enough_for_camera_rate():
    builder = OccupancyGridBuilder(**GRID, stride=2)
    scene = frame(render_depth(CAMERA, [BOX]))
    builder.integrate(scene)
    start = time.perf_counter()
    for _ in range(5):
        builder.integrate(scene)
    # Generous for a shared 2-core machine; a per-point Python loop would take seconds.
    assert (time.perf_counter() - start) / 5 < 0.5
