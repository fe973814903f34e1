"""Semantic map fusion on synthetic detections and synthetic (numpy-rendered) depth frames."""

import functools
import json
import math

import numpy as np
import pytest

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.gripper import Gripper
from modular_robot.core.mapping.map_config import SemanticMapConfig
from modular_robot.core.mapping.map_file import SCHEMA_VERSION, MapLoadWarning
from modular_robot.core.mapping.objects import MapObject, box_iou, expected_visible
from modular_robot.core.mapping.semantic_map import SemanticMap
from modular_robot.core.perception.types import CameraFrame, Detection
from modular_robot.core.transforms import Transform

RATE_HZ = 15.0
PERIOD_NS = int(1e9 / RATE_HZ)
# 640x480 with a 45 degree vertical field of view, as the sim's tabletop camera.
INTRINSICS = PinholeIntrinsics(640, 480, 579.4, 579.4, 319.5, 239.5)
CUBE = np.array([0.04, 0.04, 0.04])


def look_at(eye, target) -> Transform:
    """Return world_from_camera of an optical frame (z forward, x right, y down) at eye facing target."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    matrix = np.eye(4)
    matrix[:3, :3] = np.column_stack([right, down, forward])
    matrix[:3, 3] = eye
    return Transform.from_matrix(matrix)


# Across the table from the robot, looking down at the workspace (like panda_tabletop's camera).
TABLE_VIEW = look_at((1.15, 0.0, 0.75), (0.5, 0.0, 0.0))
# Turned towards the robot's right, far from the objects at y >= 0.
AWAY_VIEW = look_at((1.15, 0.0, 0.75), (0.9, -1.5, 0.0))


def render_depth(world_from_camera: Transform, boxes=(), floor_z: float = 0.0) -> np.ndarray:
    """Render optical-axis depth of a floor plane and axis-aligned boxes given as (centre, size)."""
    key = tuple((tuple(map(float, c)), tuple(map(float, s))) for c, s in boxes)
    return _render(world_from_camera, key, floor_z)


# Tests replay the same scenes for hundreds of frames: render each scene once.
@functools.lru_cache(maxsize=32)
def _render(world_from_camera: Transform, boxes: tuple, floor_z: float) -> np.ndarray:
    v, u = np.mgrid[0:INTRINSICS.height, 0:INTRINSICS.width].astype(np.float64)
    rays_camera = np.stack([(u - INTRINSICS.cx) / INTRINSICS.fx, (v - INTRINSICS.cy) / INTRINSICS.fy,
                            np.ones_like(u)], axis=-1)
    rotation = world_from_camera.as_matrix()[:3, :3]
    rays = rays_camera @ rotation.T
    eye = world_from_camera.translation
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(rays[..., 2] < 0.0, (floor_z - eye[2]) / rays[..., 2], np.inf)
        for centre, size in boxes:
            lo = np.asarray(centre) - np.asarray(size) / 2 - eye
            hi = np.asarray(centre) + np.asarray(size) / 2 - eye
            t1, t2 = lo / rays, hi / rays
            near = np.nanmax(np.minimum(t1, t2), axis=-1)
            far = np.nanmin(np.maximum(t1, t2), axis=-1)
            hit = (near <= far) & (far > 0.0)
            depth = np.where(hit & (near < depth), np.maximum(near, 0.0), depth)
    # Ray parameter t along (x/z, y/z, 1) is the depth along the optical axis.
    depth = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
    depth.flags.writeable = False
    return depth


def frame(index: int, boxes=(), view: Transform = TABLE_VIEW, depth: np.ndarray | None = None) -> CameraFrame:
    if depth is None:
        depth = render_depth(view, boxes)
    rgb = np.zeros((INTRINSICS.height, INTRINSICS.width, 3), np.uint8)
    return CameraFrame(rgb, depth, INTRINSICS, view, stamp_ns=index * PERIOD_NS)


def detection(category="cube", color="red", position=(0.5, 0.1, 0.02), size=CUBE, score=0.9, yaw=0.0,
              label=None) -> Detection:
    label = label or " ".join(word for word in ("small", color, category) if word)
    return Detection(label, category, tuple(w for w in (color, "small") if w), score, (0, 0, 10, 10),
                     np.asarray(position, float), np.asarray(size, float), yaw, color)


def run(semantic_map, frames_and_detections):
    """Feed (frame, detections) pairs; return the list of changes."""
    return [semantic_map.update(dets, fr) for fr, dets in frames_and_detections]


def confirmed_map(positions=((0.5, 0.1, 0.02),), colors=("red",), frames=5, config=None, start=0):
    semantic_map = SemanticMap(config)
    boxes = [(p, CUBE) for p in positions]
    for i in range(start, start + frames):
        dets = [detection(color=c, position=p) for c, p in zip(colors, positions)]
        semantic_map.update(dets, frame(i, boxes))
    return semantic_map


def test_new_object_is_tentative_until_seen_enough_times():
    semantic_map = SemanticMap(SemanticMapConfig(min_observations=3))
    box = [((0.5, 0.1, 0.02), CUBE)]
    changes = run(semantic_map, [(frame(i, box), [detection()]) for i in range(3)])
    assert not changes[0] and not changes[1]
    assert changes[2].added == ["red_cube_1"]
    (obj,) = semantic_map.objects()
    assert obj.id == "red_cube_1" and obj.observations == 3 and obj.color == "red"
    assert obj.label == "small red cube" and obj.category == "cube"
    assert np.allclose(obj.position, (0.5, 0.1, 0.02))
    assert 0.0 < obj.confidence < 1.0


def test_single_spurious_detection_never_enters_the_map():
    semantic_map = SemanticMap()
    changes = [semantic_map.update([detection(position=(0.55, -0.05, 0.02))], frame(0))]
    # The place is in view and shows only table from now on.
    changes += [semantic_map.update([], frame(i)) for i in range(1, 30)]
    assert not any(changes)
    assert semantic_map.objects(include_tentative=True) == []


def test_confirmation_reports_once_and_steady_state_reports_nothing():
    semantic_map = SemanticMap()
    box = [((0.5, 0.1, 0.02), CUBE)]
    rng = np.random.default_rng(0)
    changes = [semantic_map.update([detection(position=np.array((0.5, 0.1, 0.02)) + rng.normal(0, 0.001, 3))],
                                   frame(i, box)) for i in range(40)]
    assert sum(bool(c) for c in changes) == 1
    assert changes[2].added == ["red_cube_1"]


def test_colours_never_merge_and_ids_are_unique():
    semantic_map = SemanticMap()
    box = [((0.5, 0.1, 0.02), CUBE)]
    for i in range(4):
        semantic_map.update([detection(color="red"), detection(color="blue")], frame(i, box))
    ids = sorted(obj.id for obj in semantic_map.objects())
    assert ids == ["blue_cube_1", "red_cube_1"]


def test_distinct_categories_do_not_merge_without_text_similarity():
    semantic_map = SemanticMap()
    for i in range(4):
        semantic_map.update([detection(category="mug", color=None)], frame(i))
        semantic_map.update([detection(category="cup", color=None)], frame(i))
    assert sorted(obj.category for obj in semantic_map.objects()) == ["cup", "mug"]


def test_open_vocabulary_labels_merge_by_text_similarity():
    similar = {("cup", "mug"): 0.71, ("cup", "cube"): 0.3, ("cube", "mug"): 0.3}

    def fake_similarity(a: str, b: str) -> float:
        return 1.0 if a == b else similar.get(tuple(sorted((a, b))), 0.0)

    semantic_map = SemanticMap(text_similarity=fake_similarity)
    for i in range(6):
        category = "mug" if i % 2 else "cup"
        semantic_map.update([detection(category=category, color=None, label=category)], frame(i))
    (obj,) = semantic_map.objects()
    assert obj.observations == 6
    assert obj.category in ("cup", "mug")
    # A cube at the same place is too different to merge.
    for i in range(6, 10):
        semantic_map.update([detection(category="cup", color=None), detection(category="cube", color=None)],
                            frame(i))
    assert sorted(o.category for o in semantic_map.objects()) == ["cube", "cup"]


def test_coarse_shape_flicker_at_one_place_stays_one_object():
    semantic_map = SemanticMap()
    box = [((0.5, 0.1, 0.02), CUBE)]
    for i in range(12):
        semantic_map.update([detection(category=("cube", "cylinder", "cube")[i % 3])], frame(i, box))
    (obj,) = semantic_map.objects(include_tentative=True)
    assert obj.id == "red_cube_1" and obj.category == "cube" and obj.observations == 12
    # Different shapes side by side stay apart.
    for i in range(12, 16):
        semantic_map.update([detection(), detection(category="sphere", position=(0.5, 0.16, 0.02))], frame(i, box))
    assert sorted(o.id for o in semantic_map.objects()) == ["red_cube_1", "red_sphere_1"]


def test_nearby_objects_are_assigned_one_to_one_and_averaged():
    rng = np.random.default_rng(1)
    truth = [np.array((0.5, 0.03, 0.02)), np.array((0.5, -0.03, 0.02))]
    semantic_map = SemanticMap()
    boxes = [(p, CUBE) for p in truth]
    for i in range(30):
        noisy = [detection(position=p + rng.normal(0, 0.004, 3)) for p in rng.permutation(truth)]
        semantic_map.update(noisy, frame(i, boxes))
    objects = semantic_map.objects()
    assert sorted(o.id for o in objects) == ["red_cube_1", "red_cube_2"]
    found = sorted((o.position for o in objects), key=lambda p: p[1])
    assert np.allclose(found[0], truth[1], atol=0.004) and np.allclose(found[1], truth[0], atol=0.004)
    assert all(o.observations == 30 for o in objects)


@pytest.mark.parametrize("new_position", [(0.5, 0.16, 0.02), (0.62, -0.15, 0.02), (0.5, 0.30, 0.02)])
def test_moved_object_updates_its_pose_within_one_second(new_position):
    semantic_map = confirmed_map(frames=20)
    moved_at = 20
    updated_frame = None
    for i in range(moved_at, moved_at + 45):
        change = semantic_map.update([detection(position=new_position)], frame(i, [(new_position, CUBE)]))
        assert "red_cube_1" not in change.removed
        obj = semantic_map.get("red_cube_1")
        if updated_frame is None and np.linalg.norm(obj.position - new_position) < 0.01:
            updated_frame = i
    assert updated_frame is not None and (updated_frame - moved_at + 1) / RATE_HZ <= 1.0
    # One object, the same id, at the new place.
    assert [o.id for o in semantic_map.objects()] == ["red_cube_1"]


def test_removed_object_leaves_the_map_within_three_seconds_in_view():
    semantic_map = confirmed_map(positions=((0.5, 0.1, 0.02), (0.45, -0.1, 0.02)), colors=("red", "green"))
    removed_after = None
    for k, i in enumerate(range(5, 5 + 60)):
        # The red cube was taken away; the green one stays and is detected.
        change = semantic_map.update([detection(color="green", position=(0.45, -0.1, 0.02))],
                                     frame(i, [((0.45, -0.1, 0.02), CUBE)]))
        if "red_cube_1" in change.removed:
            removed_after = (k + 1) / RATE_HZ
            break
    assert removed_after is not None and removed_after <= 3.0
    assert [o.id for o in semantic_map.objects()] == ["green_cube_1"]


def test_object_out_of_view_is_kept():
    semantic_map = confirmed_map()
    changes = [semantic_map.update([], frame(i, [((0.5, 0.1, 0.02), CUBE)], view=AWAY_VIEW))
               for i in range(5, 200)]
    assert not any(changes)
    assert [o.id for o in semantic_map.objects()] == ["red_cube_1"]


def test_occluded_object_is_kept():
    semantic_map = confirmed_map()
    # A box (an arm, a person) between the camera and the cube hides it; the detector sees nothing.
    occluder = ((0.8, 0.07, 0.3), (0.15, 0.15, 0.15))
    depth = render_depth(TABLE_VIEW, [((0.5, 0.1, 0.02), CUBE), occluder])
    assert not expected_visible(np.array([[0.5, 0.1, 0.02]]), CUBE[np.newaxis], frame(0, depth=depth))[0]
    changes = [semantic_map.update([], frame(i, depth=depth)) for i in range(5, 200)]
    assert not any(changes)
    assert [o.id for o in semantic_map.objects()] == ["red_cube_1"]


@pytest.mark.parametrize("depth", [
    np.full((480, 640), np.nan, np.float32),
    np.zeros((480, 640), np.float32),
    np.ones((240, 320), np.float32),
])
def test_unusable_depth_verifies_nothing_and_never_crashes(depth):
    semantic_map = confirmed_map()
    changes = [semantic_map.update([], frame(i, depth=depth)) for i in range(5, 100)]
    assert not any(changes)
    assert len(semantic_map) == 1


def test_expected_visible_checks_range_image_bounds_and_occlusion():
    scene = frame(0, [((0.5, 0.1, 0.02), CUBE)])
    positions = np.array([
        [0.5, 0.1, 0.02],    # in view, on the table
        [1.6, 0.0, 0.02],    # behind the camera
        [0.5, 2.0, 0.02],    # far outside the image
        [-3.0, 0.0, 0.02],   # beyond max range
    ])
    sizes = np.repeat(CUBE[np.newaxis], len(positions), axis=0)
    assert expected_visible(positions, sizes, scene).tolist() == [True, False, False, False]


def test_a_cube_lifted_above_its_place_moves_there_and_keeps_its_id():
    """Lifted by the gripper a centimetre a frame, the cube is followed up: one record, not two."""
    semantic_map = confirmed_map()
    heights = [0.02 + 0.01 * step for step in range(13)] + [0.14] * 20
    run(semantic_map, [(frame(5 + i, [((0.5, 0.1, z), CUBE)]), [detection(position=(0.5, 0.1, z))])
                       for i, z in enumerate(heights)])
    objects = semantic_map.objects()
    assert [o.id for o in objects] == ["red_cube_1"]
    assert objects[0].position == pytest.approx((0.5, 0.1, 0.14), abs=0.01)


def _on_the_floor_at_pixel(u: float, v: float) -> np.ndarray:
    """Return the floor point (z = 0) that TABLE_VIEW sees at pixel (u, v)."""
    ray = TABLE_VIEW.as_matrix()[:3, :3] @ np.array([(u - INTRINSICS.cx) / INTRINSICS.fx,
                                                     (v - INTRINSICS.cy) / INTRINSICS.fy, 1.0])
    eye = TABLE_VIEW.translation
    return eye + ray * (-eye[2] / ray[2])


def test_an_object_the_image_border_cuts_is_not_expected_visible():
    """Detectors drop a view cut by the border (its extent is unknown): not seeing it there is no evidence."""
    near_edge = _on_the_floor_at_pixel(40.0, 240.0) + np.array([0.0, 0.0, 0.02])
    positions = np.array([near_edge, near_edge])
    sizes = np.array([CUBE, [0.3, 0.3, 0.04]])
    scene = frame(0, [(near_edge, CUBE)])
    assert expected_visible(positions, sizes, scene).tolist() == [True, False]
    # A long box along the border fits inside; turned across it, one end leaves the image.
    long_box = np.array([[0.02, 0.3, 0.02]])
    axis = np.array([near_edge])
    along = math.atan2(*(_on_the_floor_at_pixel(40.0, 300.0) - near_edge)[1::-1]) - math.pi / 2
    assert expected_visible(axis, long_box, scene, yaws=[along]).tolist() == [True]
    assert expected_visible(axis, long_box, scene, yaws=[along + math.pi / 2]).tolist() == [False]


def test_a_confirmed_tray_cut_by_the_image_border_is_kept_while_undetected():
    tray = np.array([0.3, 0.3, 0.04])
    centre = _on_the_floor_at_pixel(40.0, 240.0) + np.array([0.0, 0.0, 0.02])
    semantic_map = SemanticMap()
    tray_detection = detection(category="tray", color="gray", position=centre, size=tray)
    run(semantic_map, [(frame(i, [(centre, tray)]), [tray_detection]) for i in range(5)])
    assert len(semantic_map) == 1
    # Gone, yet the border cuts its place: no evidence.
    run(semantic_map, [(frame(i), []) for i in range(5, 40)])
    assert len(semantic_map) == 1


def test_nonfinite_detections_are_ignored():
    semantic_map = SemanticMap()
    bad = detection(position=(np.nan, 0.0, 0.0))
    for i in range(5):
        semantic_map.update([bad], frame(i))
    assert semantic_map.objects(include_tentative=True) == []


def test_box_iou():
    assert box_iou(np.zeros(3), np.ones(3), 0.0, np.zeros(3), np.ones(3), 0.0) == pytest.approx(1.0)
    assert box_iou(np.zeros(3), np.ones(3), 0.0, np.array([0.5, 0, 0]), np.ones(3), 0.0) == pytest.approx(1 / 3)
    assert box_iou(np.zeros(3), np.ones(3), 0.0, np.array([2.0, 0, 0]), np.ones(3), 0.0) == 0.0
    # A square turned by 45 degrees has a larger enclosing box.
    assert box_iou(np.zeros(3), np.ones(3), math.pi / 4, np.zeros(3), np.ones(3), 0.0) < 1.0


def _state(semantic_map):
    return [o.to_dict() for o in semantic_map.objects(include_tentative=True)]


def test_save_load_round_trip_loses_nothing(tmp_path):
    semantic_map = confirmed_map(positions=((0.5, 0.1, 0.02), (0.45, -0.1, 0.02)), colors=("red", "blue"))
    # One tentative object too, and a pending miss streak.
    semantic_map.update([detection(color="yellow", category="sphere", position=(0.6, 0.0, 0.02)),
                         detection(color="red")], frame(5, [((0.5, 0.1, 0.02), CUBE)]))
    path = tmp_path / "maps" / "map.json"
    semantic_map.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["map.json"]
    document = json.loads(path.read_text())
    assert document["version"] == SCHEMA_VERSION

    restored = SemanticMap()
    assert restored.load(path) is None
    assert _state(restored) == _state(semantic_map)
    # The fusion state came back too: both maps evolve identically.
    for i in range(6, 12):
        scene = frame(i, [((0.5, 0.1, 0.02), CUBE), ((0.6, 0.0, 0.02), CUBE)])
        dets = [detection(color="yellow", category="sphere", position=(0.6, 0.0, 0.02)), detection(color="red")]
        assert semantic_map.update(dets, scene) == restored.update(dets, scene)
    assert _state(restored) == _state(semantic_map)
    assert "yellow_sphere_1" in [o.id for o in restored.objects()]


def test_map_object_dict_round_trip():
    obj = MapObject("duck_1", "rubber duck", "duck", ("yellow",), "yellow", [0.1, 0.2, 0.3], [0.1, 0.08, 0.09],
                    0.3, 0.77, 12, 5, 99)
    again = MapObject.from_dict(json.loads(json.dumps(obj.to_dict())))
    assert again.to_dict() == obj.to_dict()


def test_missing_file_starts_an_empty_map(tmp_path):
    semantic_map = confirmed_map()
    assert semantic_map.load(tmp_path / "none.json") is None
    assert semantic_map.objects() == []


@pytest.mark.parametrize("content", [
    "{not json",
    b"\xff\xfe\x00garbage",
    json.dumps({"schema": "modular_robot.semantic_map", "version": SCHEMA_VERSION + 1, "tracks": []}),
    json.dumps({"schema": "something.else", "version": SCHEMA_VERSION}),
    json.dumps([1, 2, 3]),
    json.dumps({"schema": "modular_robot.semantic_map", "version": SCHEMA_VERSION, "next_key": 1,
                "next_index": [], "tracks": []}),
    "[" * 100000,
    json.dumps({"schema": "modular_robot.semantic_map", "version": SCHEMA_VERSION, "next_key": 5,
                "next_index": {}, "tracks": [{"object": {"id": "x"}}]}),
])
def test_unusable_file_is_moved_aside_and_a_fresh_map_started(tmp_path, content):
    path = tmp_path / "map.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    semantic_map = confirmed_map()
    warning = semantic_map.load(path)
    assert isinstance(warning, MapLoadWarning) and isinstance(warning, UserWarning)
    assert warning.moved_to is not None and warning.moved_to.exists()
    assert warning.moved_to.name.startswith("map.json.unusable-")
    assert warning.moved_to.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    assert not path.exists()
    assert str(path) in str(warning) and warning.reason in str(warning)
    assert semantic_map.objects(include_tentative=True) == []
    # The fresh map works and saves over the old name.
    for i in range(3):
        semantic_map.update([detection()], frame(i, [((0.5, 0.1, 0.02), CUBE)]))
    semantic_map.save(path)
    assert SemanticMap().load(path) is None


def test_version_mismatch_is_named_in_the_warning(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"schema": "modular_robot.semantic_map", "version": 99}))
    warning = SemanticMap().load(path)
    assert "version 99" in warning.reason


def test_clear_reports_every_confirmed_object_removed():
    semantic_map = confirmed_map(positions=((0.5, 0.1, 0.02), (0.45, -0.1, 0.02)), colors=("red", "blue"))
    assert sorted(semantic_map.clear().removed) == ["blue_cube_1", "red_cube_1"]
    assert len(semantic_map) == 0


def _hold_red_cube(semantic_map, start=5):
    """Close the fingers (4.1 cm apart) on the confirmed red cube at (0.5, 0.1, 0.02); return the next frame index."""
    grasp = np.array([0.5, 0.1, 0.025])
    semantic_map.update([detection()], frame(start, [((0.5, 0.1, 0.02), CUBE)]), [Gripper(grasp, 0.08)])
    assert not semantic_map.objects()[0].held, "an open gripper around an object does not hold it"
    change = semantic_map.update([detection()], frame(start + 1, [((0.5, 0.1, 0.02), CUBE)]),
                                 [Gripper(grasp, 0.041, closed_by=0.039)])
    assert change.updated == ["red_cube_1"], "holding is news to the map's subscribers"
    assert semantic_map.held().id == "red_cube_1"
    return start + 2


def test_a_held_object_follows_the_gripper_unseen_and_is_never_dropped_for_it():
    """Carried where the camera cannot see it, the cube stays in the map at the gripper, its size kept."""
    semantic_map = confirmed_map()
    index = _hold_red_cube(semantic_map)
    path = [np.array([0.5, 0.1, 0.025 + 0.01 * k]) for k in range(12)] + [np.array([0.3, -0.2, 0.2])] * 60
    for k, grasp in enumerate(path):
        # Nothing is detected and the cube's old place is seen empty: an unheld cube is gone in 10 frames.
        assert not semantic_map.update([], frame(index + k), [Gripper(grasp, 0.041)]).removed
    (cube,) = semantic_map.objects()
    assert cube.held and cube.id == "red_cube_1"
    assert cube.position == pytest.approx((0.3, -0.2, 0.195), abs=1e-9)
    assert cube.size == pytest.approx(CUBE, abs=0.005)


def test_a_partial_view_of_a_held_object_neither_shrinks_nor_moves_it():
    semantic_map = confirmed_map()
    index = _hold_red_cube(semantic_map)
    grasp = np.array([0.5, 0.1, 0.1])
    for k in range(10):
        semantic_map.update([detection(position=(0.5, 0.1, 0.11), size=(0.02, 0.04, 0.02))],
                            frame(index + k, [((0.5, 0.1, 0.095), CUBE)]), [Gripper(grasp, 0.041)])
    (cube,) = semantic_map.objects()
    assert cube.held and cube.size == pytest.approx(CUBE, abs=0.005)
    assert cube.position == pytest.approx((0.5, 0.1, 0.095), abs=1e-9)


def test_opening_the_fingers_lets_go_and_the_object_is_observed_again_from_there():
    semantic_map = confirmed_map()
    index = _hold_red_cube(semantic_map)
    tray_spot = np.array([0.45, -0.25, 0.025])
    semantic_map.update([], frame(index, [((0.45, -0.25, 0.02), CUBE)]), [Gripper(tray_spot, 0.041)])
    change = semantic_map.update([], frame(index + 1, [((0.45, -0.25, 0.02), CUBE)]), [Gripper(tray_spot, 0.08)])
    assert change.updated == ["red_cube_1"]
    assert semantic_map.held() is None
    assert semantic_map.objects()[0].position == pytest.approx((0.45, -0.25, 0.02), abs=1e-9)
    # Let go of, it is an object like any other: seen where it lies, it stays; gone from there, it goes.
    for k in range(2, 30):
        semantic_map.update([detection(position=(0.45, -0.25, 0.02))], frame(index + k, [((0.45, -0.25, 0.02), CUBE)]),
                            [Gripper(np.array([0.45, -0.25, 0.3]), 0.08)])
    assert [(o.id, o.held) for o in semantic_map.objects()] == [("red_cube_1", False)]
    removed = [semantic_map.update([], frame(index + 30 + k), [Gripper(np.array([0.45, -0.25, 0.3]), 0.08)]).removed
               for k in range(15)]
    assert ["red_cube_1"] in removed


@pytest.mark.parametrize("grasp, opening", [
    ((0.5, 0.1, 0.025), 0.0),     # the fingers met: the grasp missed it
    ((0.5, 0.1, 0.025), None),    # the fingers are not known: nothing is concluded
    ((0.5, 0.25, 0.025), 0.041),  # closed on something 15 cm away from the cube
])
def test_nothing_is_held_without_fingers_closed_on_it_at_the_grasp_point(grasp, opening):
    semantic_map = confirmed_map()
    for k in range(5):
        semantic_map.update([detection()], frame(5 + k, [((0.5, 0.1, 0.02), CUBE)]),
                            [Gripper(np.array(grasp), opening, closed_by=0.04)])
    assert semantic_map.held() is None and not semantic_map.objects()[0].held


def test_fingers_that_meet_drop_a_held_object():
    semantic_map = confirmed_map()
    index = _hold_red_cube(semantic_map)
    semantic_map.update([], frame(index), [Gripper(np.array([0.5, 0.1, 0.2]), 0.001)])
    assert semantic_map.held() is None


def test_a_held_object_is_still_held_after_a_save_and_load(tmp_path):
    semantic_map = confirmed_map()
    index = _hold_red_cube(semantic_map)
    semantic_map.save(tmp_path / "map.json")
    reloaded = SemanticMap()
    assert reloaded.load(tmp_path / "map.json") is None
    reloaded.update([], frame(index), [Gripper(np.array([0.3, -0.2, 0.2]), 0.041)])
    assert reloaded.held().position == pytest.approx((0.3, -0.2, 0.195), abs=1e-9)


def test_a_cube_the_closing_hand_hides_in_part_is_grasped_and_kept_at_its_whole_size():
    """As in the simulated pick: the fingers around the cube shrink what perception sees of it to 2.6 cm
    before they close at 4.06 cm; the fingers, not the shrunk view, then measure it."""
    semantic_map = confirmed_map()
    grasp = np.array([0.5, 0.1, 0.021])
    for k, width in enumerate((0.035, 0.03, 0.026, 0.026)):
        semantic_map.update([detection(size=(width, width, 0.04))], frame(5 + k, [((0.5, 0.1, 0.02), CUBE)]),
                            [Gripper(grasp, 0.058)])
    assert semantic_map.held() is None, "the fingers around the cube, not closed on it, do not hold it"
    for k in range(9, 20):
        semantic_map.update([detection(size=(0.026, 0.026, 0.04))], frame(k, [((0.5, 0.1, 0.02), CUBE)]),
                            [Gripper(grasp, 0.0406, closed_by=0.0174)])
    held = semantic_map.held()
    assert held is not None and held.size[:2] == pytest.approx(CUBE[:2], abs=0.003)


def test_fingers_that_did_not_just_close_grasp_nothing():
    """Fingers opening off a cube stacked on another pass through the holding range of both, at the
    grasp point: that is a release, not a grasp (the map once took the cube below for held)."""
    blue_on_red = (0.5, 0.1, 0.075)
    semantic_map = confirmed_map(positions=((0.5, 0.1, 0.0275), blue_on_red), colors=("red", "blue"))
    grasp = np.array([0.5, 0.1, 0.077])
    for k, opening in enumerate((0.045, 0.055, 0.06, 0.06)):
        semantic_map.update([detection(color="blue", position=blue_on_red)], frame(5 + k, [(blue_on_red, CUBE)]),
                            [Gripper(grasp, opening, closed_by=0.0)])
        assert semantic_map.held() is None, f"held at a {opening * 100:.1f} cm opening"
