"""The geometric detector on ray-cast synthetic frames and on simulator renders, and the self-filter."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from modular_robot.core.camera import PinholeIntrinsics, depth_to_points
from modular_robot.core.perception.clusters import steep_members, voxel_clusters
from modular_robot.core.perception.geometric import GeometricDetector
from modular_robot.core.perception.geometric_params import GeometricParams
from modular_robot.core.perception.planes import find_support_planes
from modular_robot.core.perception.self_filter import (
    PANDA_LINK_CAPSULES,
    capsules_from_links,
    inside_capsules,
    panda_capsules,
    segment_distance,
)
from modular_robot.core.perception.types import SHAPES, CameraFrame, Capsule
from modular_robot.core.transforms import Transform
from modular_robot.scenarios.perception_eval import SHAPE_OF_TYPE, TruthObject, match_detections

REPO = Path(__file__).resolve().parents[1]
INTRINSICS = PinholeIntrinsics(640, 480, 579.4, 579.4, 319.5, 239.5)
LIGHT = np.array([0.2, 0.1, 1.0]) / np.linalg.norm([0.2, 0.1, 1.0])
TABLE_RGB = (0.76, 0.6, 0.42)


# --- a small ray caster -----------------------------------------------------------------------------

@dataclass
class Box:
    """An upright box: centre of its bottom face, full size, yaw."""

    bottom: tuple
    size: tuple
    rgb: tuple
    yaw: float = 0.0

    def hit(self, o, d):
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        to_local = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
        centre = np.array(self.bottom) + [0, 0, self.size[2] / 2]
        lo_ = to_local @ (o - centre)
        ld = d @ to_local.T
        half = np.array(self.size) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - lo_) / ld, (half - lo_) / ld
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near, t_far = near.max(axis=1), far.min(axis=1)
        t = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
        axis = near.argmax(axis=1)
        normal_local = np.zeros_like(d)
        normal_local[np.arange(len(d)), axis] = -np.sign(ld[np.arange(len(d)), axis])
        return t, normal_local @ to_local


@dataclass
class Sphere:
    """A sphere resting with its bottom at `bottom`."""

    bottom: tuple
    diameter: float
    rgb: tuple

    def hit(self, o, d):
        r = self.diameter / 2
        centre = np.array(self.bottom) + [0, 0, r]
        oc = o - centre
        b = d @ oc
        a = np.einsum("ij,ij->i", d, d)
        disc = b * b - a * (oc @ oc - r * r)
        t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        t = np.where(t > 0, t, np.inf)
        points = o + d * np.where(np.isfinite(t), t, 0)[:, None]
        return t, (points - centre) / r


@dataclass
class Cylinder:
    """An upright cylinder: centre of its bottom face, diameter, height."""

    bottom: tuple
    diameter: float
    height: float
    rgb: tuple

    def hit(self, o, d):
        r = self.diameter / 2
        c = np.array(self.bottom, dtype=float)
        oc = o - c
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        b = d[:, :2] @ oc[:2]
        disc = b * b - a * (oc[:2] @ oc[:2] - r * r)
        t_side = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        z = oc[2] + t_side * d[:, 2]
        t_side = np.where((t_side > 0) & (z >= 0) & (z <= self.height), t_side, np.inf)
        t_top = (self.height - oc[2]) / d[:, 2]
        xy = oc[:2] + t_top[:, None] * d[:, :2]
        t_top = np.where((t_top > 0) & (np.einsum("ij,ij->i", xy, xy) <= r * r), t_top, np.inf)
        t = np.minimum(t_side, t_top)
        points = o + d * np.where(np.isfinite(t), t, 0)[:, None]
        normal = np.zeros_like(d)
        normal[:, :2] = (points[:, :2] - c[:2]) / r
        normal[t_top <= t_side] = (0, 0, 1)
        return t, normal


@dataclass
class Plane:
    """A plane through `point` with normal `normal`, bounded to a rectangle of x and y."""

    point: tuple
    normal: tuple
    bounds: tuple  # x_min, x_max, y_min, y_max
    rgb: tuple = TABLE_RGB

    def hit(self, o, d):
        n = np.array(self.normal, dtype=float) / np.linalg.norm(self.normal)
        with np.errstate(divide="ignore"):
            t = (np.asarray(self.point) - o) @ n / (d @ n)
        points = o + d * np.where(np.isfinite(t), t, 0)[:, None]
        x0, x1, y0, y1 = self.bounds
        inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
        return np.where((t > 0) & inside, t, np.inf), np.broadcast_to(n, d.shape)


def look_at(eye, target) -> Transform:
    """Return world_from_camera for an optical frame at `eye` looking at `target` (x right, y down)."""
    forward = np.asarray(target, float) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([right, down, forward])
    m[:3, 3] = eye
    return Transform.from_matrix(m)


def render(shapes, pose: Transform, intrinsics: PinholeIntrinsics = INTRINSICS):
    """Ray-cast colour (shaded) and optical-axis depth of `shapes` from a camera pose."""
    u, v = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
    rays = np.stack([(u.ravel() - intrinsics.cx) / intrinsics.fx, (v.ravel() - intrinsics.cy) / intrinsics.fy,
                     np.ones(u.size)], axis=1)
    m = pose.as_matrix()
    d = rays @ m[:3, :3].T
    o = m[:3, 3]
    best = np.full(len(d), np.inf)
    rgb = np.zeros((len(d), 3))
    for shape in shapes:
        t, normal = shape.hit(o, d)
        closer = t < best
        best[closer] = t[closer]
        shade = 0.55 + 0.45 * np.clip(normal[closer] @ LIGHT, 0, 1)
        rgb[closer] = np.asarray(shape.rgb) * shade[:, None]
    depth = np.where(np.isfinite(best), best, np.nan).astype(np.float32)  # t along (x, y, 1) rays is z
    image = np.round(rgb * 255).astype(np.uint8)
    return image.reshape(intrinsics.height, intrinsics.width, 3), depth.reshape(intrinsics.height, intrinsics.width)


def frame_of(shapes, pose, capsules=()) -> CameraFrame:
    rgb, depth = render(shapes, pose)
    return CameraFrame(rgb=rgb, depth=depth, intrinsics=INTRINSICS, world_from_camera=pose, robot_capsules=capsules)


TABLETOP_CAMERA = look_at(np.array([1.15, 0.0, 0.75]), [0.45, 0.0, 0.0])
TABLE = Plane((0, 0, 0), (0, 0, 1), (-0.4, 1.2, -0.9, 0.9))
RED_CUBE = Box((0.55, 0.12, 0.0), (0.04, 0.04, 0.04), (0.85, 0.10, 0.10), yaw=0.4)
GREEN_SPHERE = Sphere((0.45, -0.15, 0.0), 0.05, (0.10, 0.70, 0.15))
BLUE_CYLINDER = Cylinder((0.63, -0.02, 0.0), 0.04, 0.06, (0.10, 0.25, 0.90))
GRAY_TRAY = Box((0.40, 0.22, 0.0), (0.20, 0.15, 0.03), (0.5, 0.5, 0.5), yaw=-0.2)
OBJECTS = {"red cube": RED_CUBE, "green sphere": GREEN_SPHERE, "blue cylinder": BLUE_CYLINDER,
           "gray tray": GRAY_TRAY}


def _centre(shape) -> np.ndarray:
    if isinstance(shape, Box):
        return np.array(shape.bottom) + [0, 0, shape.size[2] / 2]
    if isinstance(shape, Sphere):
        return np.array(shape.bottom) + [0, 0, shape.diameter / 2]
    return np.array(shape.bottom) + [0, 0, shape.height / 2]


def _find(detections, position, tolerance=0.03):
    near = [d for d in detections if np.linalg.norm(d.position - position) < tolerance]
    assert len(near) == 1, (position, [(d.label, d.position) for d in detections])
    return near[0]


@pytest.fixture(scope="module")
def tabletop_frame():
    return frame_of([TABLE, *OBJECTS.values()], TABLETOP_CAMERA)


# --- synthetic frames -------------------------------------------------------------------------------

def test_finds_each_object_with_its_colour_shape_and_place(tabletop_frame):
    detections = GeometricDetector().detect(tabletop_frame)
    assert len(detections) == len(OBJECTS)
    for words, shape in OBJECTS.items():
        detection = _find(detections, _centre(shape))
        assert detection.label.endswith(words), detection.label
        assert np.linalg.norm(detection.position - _centre(shape)) < 0.01, (words, detection.position)
        assert detection.category in SHAPES
        assert detection.attributes == (detection.color, detection.label.split()[0])
        assert 0.0 < detection.score <= 1.0
        x, y, w, h = detection.bbox
        assert w > 0 and h > 0 and detection.mask.shape == (480, 640)
        assert detection.mask[y:y + h, x:x + w].sum() == detection.mask.sum() > 0
    cube = _find(detections, _centre(RED_CUBE))
    assert cube.label == "small red cube"
    assert np.allclose(cube.size, (0.04, 0.04, 0.04), atol=0.004)
    assert abs(math.remainder(cube.yaw - 0.4, math.pi / 2)) < 0.05  # a square's yaw is known up to quarter turns
    tray = _find(detections, _centre(GRAY_TRAY))
    assert tray.label == "large gray tray" and tray.category == "tray"
    assert np.allclose(tray.size, (0.20, 0.15, 0.03), atol=0.006)


def test_low_wide_objects_are_named_by_their_footprint():
    bowl = Cylinder((0.45, -0.15, 0.0), 0.16, 0.05, (0.95, 0.95, 0.95))
    tray = Box((0.45, 0.2, 0.0), (0.24, 0.24, 0.04), (0.5, 0.5, 0.5), yaw=0.3)  # a square's corners lie on a circle
    detections = GeometricDetector().detect(frame_of([TABLE, bowl, tray], TABLETOP_CAMERA))
    assert len(detections) == 2, [(d.label, d.position) for d in detections]
    assert _find(detections, _centre(bowl), tolerance=0.01).label == "large white bowl"
    assert _find(detections, _centre(tray), tolerance=0.01).label == "large gray tray"


def test_a_low_wide_object_neither_round_nor_rectangular_stays_flat():
    # An L of two slabs: its footprint's hull has a long diagonal edge, on no circle and no rectangle.
    arms = [Box((0.50, 0.0, 0.0), (0.20, 0.06, 0.03), (0.10, 0.25, 0.90)),
            Box((0.43, 0.07, 0.0), (0.06, 0.20, 0.03), (0.10, 0.25, 0.90))]
    detections = GeometricDetector().detect(frame_of([TABLE, *arms], TABLETOP_CAMERA))
    assert [(d.category, d.label) for d in detections] == [("flat", "large blue flat object")]


@pytest.mark.parametrize("top_size, offset", [(0.04, 0.0), (0.035, 0.01), (0.045, 0.0)])
def test_a_block_stacked_on_another_is_an_object_of_its_own(top_size, offset):
    support = Box((0.5, 0.1, 0.0), (0.055, 0.055, 0.055), (0.10, 0.25, 0.90))
    top = Box((0.5, 0.1 + offset, 0.055), (top_size,) * 3, (0.95, 0.85, 0.10), yaw=0.3)
    detections = GeometricDetector().detect(frame_of([TABLE, support, top], TABLETOP_CAMERA))
    assert len(detections) == 2, [(d.label, d.position) for d in detections]
    upper = _find(detections, _centre(top), tolerance=0.01)
    assert upper.color == "yellow" and np.allclose(upper.size, (top_size,) * 3, atol=0.006)
    lower = _find(detections, _centre(support), tolerance=0.01)
    assert lower.color == "blue" and lower.size[2] == pytest.approx(0.055, abs=0.006)


def test_an_object_in_a_container_is_an_object_of_its_own():
    inside = Box((0.40, 0.22, 0.03), (0.04, 0.04, 0.04), (0.85, 0.10, 0.10), yaw=0.2)
    detections = GeometricDetector().detect(frame_of([TABLE, GRAY_TRAY, inside], TABLETOP_CAMERA))
    assert len(detections) == 2, [(d.label, d.position) for d in detections]
    cube = _find(detections, _centre(inside), tolerance=0.01)
    assert cube.label == "small red cube" and np.allclose(cube.size, (0.04, 0.04, 0.04), atol=0.006)
    tray = _find(detections, _centre(GRAY_TRAY), tolerance=0.01)
    assert tray.color == "gray" and tray.size[2] == pytest.approx(0.03, abs=0.006)


def test_a_tall_object_of_one_colour_is_not_cut():
    column = Box((0.5, 0.1, 0.0), (0.05, 0.05, 0.1), (0.10, 0.25, 0.90))
    detections = GeometricDetector().detect(frame_of([TABLE, column], TABLETOP_CAMERA))
    assert len(detections) == 1 and detections[0].size[2] == pytest.approx(0.1, abs=0.006)


def test_points_inside_robot_capsules_are_not_objects(tabletop_frame):
    top = _centre(RED_CUBE) + [0, 0, 0.02]
    arm = Capsule(start=top, end=top + [0, 0, 0.3], radius=0.035)
    frame = CameraFrame(tabletop_frame.rgb, tabletop_frame.depth, INTRINSICS, TABLETOP_CAMERA, robot_capsules=[arm])
    detections = GeometricDetector().detect(frame)
    assert len(detections) == len(OBJECTS) - 1
    assert all(np.linalg.norm(d.position - _centre(RED_CUBE)) > 0.05 for d in detections)


def test_objects_cut_by_the_image_border_are_left_out():
    pose = look_at(np.array([1.15, 0.0, 0.75]), [0.45, 0.0, 0.0])
    # The table point seen at the middle of the bottom row.
    m = pose.as_matrix()
    ray = m[:3, :3] @ np.array([0.0, (479 - INTRINSICS.cy) / INTRINSICS.fy, 1.0])
    edge = m[:3, 3] + ray * (-m[2, 3] / ray[2])
    cut = Box((edge[0], 0.0, 0.0), (0.05, 0.05, 0.05), (0.95, 0.85, 0.10))
    detections = GeometricDetector().detect(frame_of([TABLE, RED_CUBE, cut], pose))
    assert [d.label for d in detections] == ["small red cube"]


def test_objects_on_a_raised_table_and_on_the_floor_each_rest_on_their_own_support():
    floor = Plane((0, 0, 0), (0, 0, 1), (-5, 5, -5, 5), rgb=(0.55, 0.55, 0.5))
    top = Box((1.8, 0.0, 0.37), (0.6, 0.7, 0.03), (0.95, 0.95, 0.95))
    legs = [Box((1.8 + dx * 0.26, dy * 0.31, 0.0), (0.04, 0.04, 0.37), (0.95, 0.95, 0.95))
            for dx in (-1, 1) for dy in (-1, 1)]
    on_table = Box((1.75, 0.1, 0.4), (0.045, 0.045, 0.045), (0.85, 0.10, 0.10))
    on_floor = Sphere((1.25, -0.2, 0.0), 0.06, (0.10, 0.25, 0.90))
    # A mast camera a metre up sees the table top; from lower, the top faces of objects on the table
    # are edge-on and their depth along the view unknown.
    camera = look_at(np.array([0.42, 0.0, 1.0]), [1.8, 0.0, 0.1])
    detections = GeometricDetector().detect(frame_of([floor, top, *legs, on_table, on_floor], camera))
    assert sorted(d.label for d in detections) == ["medium blue sphere", "small red cube"], detections
    assert _find(detections, _centre(on_table)).position[2] == pytest.approx(0.4225, abs=0.005)
    assert _find(detections, _centre(on_floor)).position[2] == pytest.approx(0.03, abs=0.005)


def test_a_box_seen_beyond_a_low_crate_is_not_cut_by_the_crates_top():
    """The crate's top is a raised support plane whose height band crosses the box's front face: the
    face's points stay the box's, so the box rests on the floor whole, not as a flat object on the crate."""
    floor = Plane((0, 0, 0), (0, 0, 1), (-5, 5, -5, 5), rgb=(0.55, 0.55, 0.5))
    crate = Box((1.5, 0.0, 0.0), (0.3, 0.9, 0.15), (0.55, 0.35, 0.17))
    box = Box((3.0, 0.0, 0.0), (0.2, 0.2, 0.2), (0.10, 0.70, 0.15))
    # The Husky's forward camera, 0.69 m up and pitched 20 degrees down.
    camera = look_at(np.array([0.42, 0.0, 0.69]), [0.42 + math.cos(math.radians(20)), 0.0,
                                                   0.69 - math.sin(math.radians(20))])
    frame = frame_of([floor, crate, box], camera)
    camera_points = depth_to_points(frame.depth, frame.intrinsics, 2)
    planes = find_support_planes(frame.world_from_camera.apply(camera_points), GeometricParams(max_range=6.0))
    assert sorted(plane.z_at(1.5, 0.0) for plane in planes) == pytest.approx([0.0, 0.15], abs=0.006)
    detections = GeometricDetector(GeometricParams(max_range=6.0, grazing_factor=8.0)).detect(frame)
    assert [d.label for d in detections] == ["large green cube"], detections
    assert detections[0].position[:2] == pytest.approx([2.95, 0.0], abs=0.06)
    assert detections[0].size[2] == pytest.approx(0.2, abs=0.01)


def test_steep_points_are_those_of_upright_faces_not_of_level_surfaces():
    # Two image columns (stride 1, 2 pixels wide): down an upright face, then along a level floor
    # stepping 5 cm away per row, as seen nearly edge-on.
    face = [(3.0, 0.01 * c, 0.2 - 0.01 * r) for r in range(4) for c in range(2)]
    floor = [(2.0 + 0.05 * r, 0.01 * c, 0.0) for r in range(4) for c in range(2)]
    points = np.array(face + floor, dtype=np.float32)
    pixel = np.arange(len(points))
    steep = steep_members(points, pixel, pixel, width=2, height=8, stride=1, reach=0.08)
    assert steep[:8].all() and not steep[8:].any()
    # A sample whose column neighbours lie beyond reach (a depth jump) is no evidence either way.
    assert not steep_members(points, pixel, pixel, width=2, height=8, stride=1, reach=0.005).any()


def test_a_slightly_tilted_table_still_supports_its_objects():
    tilt = math.radians(2.0)
    table = Plane((0, 0, 0), (math.sin(tilt), 0, math.cos(tilt)), (-0.4, 1.2, -0.9, 0.9))
    z = -math.tan(tilt) * 0.5
    cube = Box((0.5, 0.0, z), (0.05, 0.05, 0.05), (0.10, 0.70, 0.15))
    detections = GeometricDetector().detect(frame_of([table, cube], TABLETOP_CAMERA))
    assert [d.label for d in detections] == ["medium green cube"]
    assert np.linalg.norm(detections[0].position[:2] - (0.5, 0.0)) < 0.01


def test_a_frame_without_a_support_plane_has_no_objects():
    floating = Sphere((0.5, 0.0, 0.3), 0.1, (0.5, 0.15, 0.7))
    assert GeometricDetector().detect(frame_of([floating], TABLETOP_CAMERA)) == []


def test_bad_input_gives_no_objects_or_a_clear_error(tabletop_frame):
    detector = GeometricDetector()
    nan = np.full((480, 640), np.nan, np.float32)
    assert detector.detect(CameraFrame(tabletop_frame.rgb, nan, INTRINSICS, TABLETOP_CAMERA)) == []
    empty = CameraFrame(np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.float32), INTRINSICS, TABLETOP_CAMERA)
    assert detector.detect(empty) == []
    with pytest.raises(ValueError, match="does not match depth"):
        detector.detect(CameraFrame(tabletop_frame.rgb[:240], tabletop_frame.depth, INTRINSICS, TABLETOP_CAMERA))
    with pytest.raises(ValueError, match="camera"):
        small = PinholeIntrinsics(320, 240, 290.0, 290.0, 159.5, 119.5)
        detector.detect(CameraFrame(tabletop_frame.rgb, tabletop_frame.depth, small, TABLETOP_CAMERA))
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(CameraFrame(tabletop_frame.rgb / 255.0, tabletop_frame.depth, INTRINSICS, TABLETOP_CAMERA))


def test_results_do_not_depend_on_masks_and_params_are_checked(tabletop_frame):
    with_masks = GeometricDetector().detect(tabletop_frame)
    without = GeometricDetector(GeometricParams(masks=False)).detect(tabletop_frame)
    assert [d.label for d in with_masks] == [d.label for d in without]
    assert all(d.mask is None for d in without)
    with pytest.raises(ValueError):
        GeometricParams(stride=0)


# --- building blocks --------------------------------------------------------------------------------

def test_voxel_clusters_join_touching_voxels_only():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.03, (200, 3))
    b = rng.uniform(0.0, 0.03, (200, 3)) + [0.06, 0, 0]
    labels, count = voxel_clusters(np.vstack([a, b]), 0.01)
    assert count == 2 and len(set(labels[:200])) == 1 and labels[0] != labels[-1]
    bridge = np.array([[0.035, 0.01, 0.01], [0.045, 0.01, 0.01], [0.055, 0.01, 0.01]])
    _, count = voxel_clusters(np.vstack([a, b, bridge]), 0.01)
    assert count == 1


def test_support_planes_are_found_level_and_raised():
    rng = np.random.default_rng(1)
    floor = np.column_stack([rng.uniform(0, 3, 20000), rng.uniform(-1, 1, 20000), np.zeros(20000)])
    table = np.column_stack([rng.uniform(1, 1.6, 6000), rng.uniform(-0.3, 0.3, 6000), np.full(6000, 0.4)])
    clutter = rng.uniform((0.5, -0.5, 0.0), (1.0, 0.5, 0.3), (2000, 3))
    planes = find_support_planes(np.vstack([floor, table, clutter]).astype(np.float32))
    heights = sorted(plane.z_at(1.2, 0.0) for plane in planes)
    assert heights == pytest.approx([0.0, 0.4], abs=0.003)
    assert all(plane.normal[2] > 0.999 for plane in planes)


def test_segment_distance_and_capsule_membership():
    points = np.array([[0.0, 0.0, 0.5], [0.1, 0.0, 0.5], [0.0, 0.0, 1.2], [0.0, 0.0, -0.1]])
    distance = segment_distance(points, (0, 0, 0), (0, 0, 1))
    assert distance == pytest.approx([0.0, 0.1, 0.2, 0.1])
    capsule = Capsule(np.zeros(3), np.array([0.0, 0.0, 1.0]), 0.1)
    assert inside_capsules(points, [capsule]).tolist() == [True, True, False, True]
    assert inside_capsules(points, [capsule], margin=0.1).tolist() == [True, True, True, True]
    assert segment_distance(points[:1], (0, 0, 0.5), (0, 0, 0.5)) == pytest.approx([0.0])


def test_panda_capsules_follow_the_link_poses():
    moved = Transform.from_xyz_rpy(1.0, 2.0, 3.0, yaw=math.pi / 2)
    poses = {name: moved for name in PANDA_LINK_CAPSULES}
    capsules = panda_capsules(poses)
    assert len(capsules) == len(PANDA_LINK_CAPSULES)
    start, _, radius = PANDA_LINK_CAPSULES["panda_hand"]
    hand = capsules[list(PANDA_LINK_CAPSULES).index("panda_hand")]
    assert np.allclose(hand.start, moved.apply(np.array(start))) and hand.radius == radius
    assert len(panda_capsules({"panda_link1": moved})) == 1  # a partial TF tree filters what it can
    assert len(capsules_from_links({"arm/panda_hand": moved}, PANDA_LINK_CAPSULES, prefix="arm/")) == 1


# --- simulator renders ------------------------------------------------------------------------------

def _render_scene(scenario, renderer):
    """Render a scenario's first camera as the perception node frames it; also return the truth."""
    from modular_robot.sim.world import SimWorld

    try:
        world = SimWorld(scenario, renderer=renderer)
    except RuntimeError:
        pytest.skip("no EGL here")
    try:
        rgb, depth = world.render(0)
        robot = world.robots[0]
        position, orientation = robot.camera_optical_pose()
        links = {name: Transform(np.array(p), np.array(q)) for name, (p, q) in robot.link_poses().items()}
        pose = Transform(np.array(position), np.array(orientation))
        frame = CameraFrame(rgb, depth, world.cameras[0].intrinsics, pose, robot_capsules=panda_capsules(links))
        truths = [TruthObject.from_state(state) for state in world.ground_truth().objects.values()]
    finally:
        world.close()
    return frame, truths


@pytest.mark.parametrize("renderer", ["tiny", "egl"])
def test_spine_scene_render_every_object_found_named_and_placed(renderer):
    from modular_robot.scenarios.scenario import load_scenario

    frame, truths = _render_scene(load_scenario(REPO / "sim" / "scenarios" / "spine_tabletop.yaml"), renderer)
    detections = GeometricDetector().detect(frame)
    matches = match_detections(truths, detections)
    assert len(detections) == len(truths) == len(matches) == 6
    for match in matches:
        truth, detection = truths[match.truth], detections[match.detection]
        assert match.distance <= 0.02, (truth.id, match.distance)
        assert detection.color == truth.color, truth.id
        assert detection.category == SHAPE_OF_TYPE[truth.type], truth.id


@pytest.mark.parametrize("renderer", ["tiny", "egl"])
def test_a_cube_showing_one_face_square_on_is_a_cube_not_a_wide_cylinder(renderer):
    from modular_robot.scenarios.scenario import parse_scenario

    # From the tabletop camera this cube shows its front face almost square-on: a straight outline,
    # which a circle 2.4 times the cube's width also fits within the cylinder test's residual.
    scenario = parse_scenario(
        "name: one_face\ncategory: perception\nrobot: panda_tabletop\nseed: 1\nobjects:\n"
        "  - {id: blue_cube, type: cube, color: blue, size: 0.04, pose: [0.42, 0.08, 0.0, 0.0]}\n"
        "commands: []\nexpect:\n  - {unmoved: [blue_cube]}\n", "one_face.yaml")
    frame, _ = _render_scene(scenario, renderer)
    detections = GeometricDetector().detect(frame)
    assert [(d.color, d.category) for d in detections] == [("blue", "cube")]
