"""Perception and semantic map nodes on the simulated robot: the map follows a changing world."""

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import OccupancyGrid
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.perception.types import Detection
from modular_robot.nodes.perception_node import PerceptionNode
from modular_robot.nodes.semantic_map_node import SemanticMapNode
from modular_robot.ros import qos
from modular_robot.ros.conversions import camera_info_from_intrinsics, ns_to_stamp, numpy_to_image
from modular_robot.ros.object_msgs import detections_to_array
from modular_robot.scenarios.scenario import Disturbance, ObjectPose
from modular_robot_interfaces.msg import ObjectObservationArray, SemanticMap
from modular_robot_interfaces.srv import QueryObjects
from ros_helpers import SimHarness

ROOT = Path(__file__).resolve().parents[1]

SCENE = """
name: dynamic
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.50, 0.15, 0.0, 0.0]}
  - {id: blue_cylinder, type: cylinder, color: blue, size: 0.05, pose: [0.55, -0.12, 0.0, 0.0]}
  - {id: tray, type: tray, color: gray, pose: [0.42, -0.30, 0.0, 0.0]}
expect:
  - {unmoved: [tray]}
"""


@pytest.fixture(params=["geometric", "sim_truth"])
def stack(request, tmp_path):
    detector = request.param
    harness = SimHarness(SCENE, width=640, height=480, publish_segmentation=detector == "sim_truth")
    sim_time = Parameter("use_sim_time", value=True)
    perception = PerceptionNode(context=harness.context, parameter_overrides=[
        sim_time, Parameter("detector", value=detector)])
    mapper = SemanticMapNode(context=harness.context, parameter_overrides=[
        sim_time, Parameter("map_file", value=str(tmp_path / "map.json"))])
    for node in (perception, mapper):
        harness.executor.add_node(node)
    harness.track(SemanticMap, "semantic_map", qos.LATCHED)
    harness.track(ObjectObservationArray, "objects/observations")
    harness.mapper = mapper
    yield harness
    for node in (perception, mapper):
        harness.executor.remove_node(node)
        node.destroy_node()
    harness.close()


def _objects(harness):
    msg = harness.last.get("semantic_map")
    return {} if msg is None else {o.id: o for o in msg.objects}


def _find(harness, color, category):
    for obj in _objects(harness).values():
        if color in obj.attributes and category in obj.attributes:
            return obj
    return None


def test_map_finds_objects_then_follows_removal_and_motion(stack):
    assert stack.advance_until(lambda: _find(stack, "red", "cube") and _find(stack, "blue", "cylinder"), 3.0), \
        f"map after 3 s: {[o.label for o in _objects(stack).values()]}"
    truth = stack.world.ground_truth().objects
    cube = _find(stack, "red", "cube")
    assert math.dist((cube.pose.position.x, cube.pose.position.y), truth["red_cube"].center[:2]) < 0.02

    stack.world.apply_disturbance(Disturbance("time", None, "remove", "red_cube", None, 0.0))
    removed_at = stack.world.sim_time
    assert stack.advance_until(lambda: _find(stack, "red", "cube") is None, 3.0), "removed cube still mapped"
    assert stack.world.sim_time - removed_at <= 3.0

    target = ObjectPose(0.62, 0.05, 0.0, 0.0)
    stack.world.apply_disturbance(Disturbance("time", None, "move", "blue_cylinder", target, 0.0))
    moved_at = stack.world.sim_time

    def at_target():
        obj = _find(stack, "blue", "cylinder")
        return obj is not None and math.dist((obj.pose.position.x, obj.pose.position.y), target[:2]) < 0.02

    assert stack.advance_until(at_target, 1.0), "moved cylinder not updated within 1 s"
    assert stack.world.sim_time - moved_at <= 1.0


def test_query_service_grounds_text_in_the_map(stack):
    assert stack.advance_until(lambda: _find(stack, "red", "cube") is not None, 3.0)
    client = stack.probe.create_client(QueryObjects, "query_objects")
    future = client.call_async(QueryObjects.Request(text="the crimson block", max_results=3))
    stack.advance_until(future.done, 1.0)
    response = future.result()
    assert response.objects and "red" in response.objects[0].attributes
    assert list(response.scores) == sorted(response.scores, reverse=True)
    future = client.call_async(QueryObjects.Request(text="the purple elephant", max_results=3))
    stack.advance_until(future.done, 1.0)
    assert list(future.result().objects) == []


def test_map_is_saved_and_reloaded(stack, tmp_path):
    assert stack.advance_until(lambda: len(_objects(stack)) >= 2, 3.0)
    stack.advance(2.5)
    stack.mapper._save_if_dirty()
    reloaded = SemanticMapNode(context=stack.context, parameter_overrides=[
        Parameter("map_file", value=str(tmp_path / "map.json"))])
    try:
        assert {o.id for o in reloaded.map.objects()} == {o.id for o in stack.mapper.map.objects()}
    finally:
        reloaded.destroy_node()


def test_corrupt_map_file_is_moved_aside_and_a_fresh_map_started(tmp_path):
    path = tmp_path / "map.json"
    path.write_text("{ not json")
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = SemanticMapNode(context=context, parameter_overrides=[Parameter("map_file", value=str(path))])
        assert len(node.map) == 0
        assert any(p.name.startswith("map.json.unusable") for p in tmp_path.iterdir())
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_unknown_detector_is_reported_not_fatal():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = PerceptionNode(context=context, parameter_overrides=[Parameter("detector", value="x-ray")])
        assert node.detector is None and "x-ray" in node._detector_error
        result = node.set_parameters([Parameter("detector", value="also-unknown")])[0]
        assert not result.successful and "unknown detector" in result.reason
        assert node.set_parameters([Parameter("detector", value="geometric")])[0].successful
        assert node.detector is not None
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_perception_survives_bad_frames_and_missing_tf():
    """Mismatched image sizes and frames without TF are skipped and counted, never fatal."""
    harness = SimHarness(SCENE, width=640, height=480)
    perception = PerceptionNode(context=harness.context)
    harness.executor.add_node(perception)
    try:
        harness.advance(0.3)
        intrinsics = harness.world.cameras[0].intrinsics

        stamps = iter(range(harness.world.sim_time_ns + 10**9, harness.world.sim_time_ns + 10**10, 10**9))

        def process(rgb, depth, frame_id):
            # Stamps a second apart: the node processes at most max_rate_hz frames per second of stamps.
            header = Header(frame_id=frame_id, stamp=ns_to_stamp(next(stamps)))
            perception._on("color", numpy_to_image(rgb, "rgb8", header=header))
            perception._on("depth", numpy_to_image(depth, "32FC1", header=header))
            perception._on("info", camera_info_from_intrinsics(intrinsics, header))
            perception._process()

        good_rgb, good_depth = harness.world.render(0)
        perception._errors.clear()
        processed = len(perception._latencies)
        process(np.zeros((10, 10, 3), np.uint8), good_depth, "camera_color_optical_frame")
        assert perception._errors == {"size": 1}
        process(good_rgb, good_depth, "no_such_frame")
        assert perception._errors == {"size": 1, "tf": 1}
        process(good_rgb, np.full((480, 640), np.nan, np.float32), "camera_color_optical_frame")
        assert perception._errors == {"size": 1, "tf": 1}, "all-NaN depth is a frame with nothing in it"
        process(good_rgb, good_depth, "camera_color_optical_frame")
        assert len(perception._latencies) == processed + 2
    finally:
        harness.executor.remove_node(perception)
        perception.destroy_node()
        harness.close()


def test_map_fuses_frames_whose_camera_transform_arrives_after_them():
    """Observations and the camera's transform at their stamp come on different topics, in no fixed
    order: the map waits for the transform instead of skipping the frame."""
    context = rclpy.Context()
    rclpy.init(context=context)
    mapper = SemanticMapNode(context=context)
    try:
        intrinsics = PinholeIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)
        cube = Detection(label="small red cube", category="cube", attributes=("red", "small"), score=0.9,
                         bbox=(29, 21, 6, 6), position=np.array([0.0, 0.0, 1.0]),
                         size=np.array([0.05, 0.05, 0.05]), color="red")
        for frame in range(mapper.map.config.min_observations):
            header = Header(frame_id="camera_color_optical_frame", stamp=ns_to_stamp((frame + 1) * 10**8))
            camera = TransformStamped(header=Header(frame_id="map", stamp=header.stamp),
                                      child_frame_id="camera_color_optical_frame")
            camera.transform.rotation.w = 1.0
            late = threading.Timer(0.05, mapper.tf.add_transforms, ([camera],), {"static": False})
            late.start()
            mapper._update({"observations": detections_to_array([cube], Header(frame_id="map", stamp=header.stamp)),
                            "depth": numpy_to_image(np.full((48, 64), 0.975, np.float32), "32FC1", header=header),
                            "info": camera_info_from_intrinsics(intrinsics, header)})
            late.join()
        assert [o.label for o in mapper.map.objects()] == ["small red cube"]
    finally:
        mapper.destroy_node()
        rclpy.shutdown(context=context)


def test_map_node_integrates_the_occupancy_grid_at_its_period_of_frame_stamps():
    """By stamps, not wall time, so that a lockstep run integrates the same frames every time."""
    context = rclpy.Context()
    rclpy.init(context=context)
    mapper = SemanticMapNode(context=context, parameter_overrides=[
        Parameter("occupancy_grid", value=True), Parameter("grid_update_period_s", value=0.5)])
    try:
        integrated = []
        mapper.grid_builder.integrate = lambda frame: integrated.append(frame.stamp_ns)
        intrinsics = PinholeIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)
        for tenth in [*range(1, 11), 3]:  # then time goes back, as when a sim restarts
            header = Header(frame_id="camera_color_optical_frame", stamp=ns_to_stamp(tenth * 10**8))
            camera = TransformStamped(header=Header(frame_id="map", stamp=header.stamp),
                                      child_frame_id="camera_color_optical_frame")
            camera.transform.rotation.w = 1.0
            mapper.tf.add_transforms([camera], static=False)
            mapper._update({"observations": detections_to_array([], Header(frame_id="map", stamp=header.stamp)),
                            "depth": numpy_to_image(np.full((48, 64), 1.0, np.float32), "32FC1", header=header),
                            "info": camera_info_from_intrinsics(intrinsics, header)})
        assert integrated == [10**8, 6 * 10**8, 3 * 10**8]
    finally:
        mapper.destroy_node()
        rclpy.shutdown(context=context)


def test_map_node_publishes_an_occupancy_grid_for_the_mobile_base():
    harness = SimHarness((ROOT / "sim/scenarios/spine_husky.yaml").read_text(), width=640, height=480)
    mapper = SemanticMapNode(context=harness.context, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("occupancy_grid", value=True),
        Parameter("grid_publish_period_s", value=0.01)])
    perception = PerceptionNode(context=harness.context, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("self_filter", value="none")])
    for node in (perception, mapper):
        harness.executor.add_node(node)
    try:
        harness.track(OccupancyGrid, "occupancy_grid", qos.LATCHED)
        assert harness.advance_until(lambda: "occupancy_grid" in harness.last, 2.0)
        harness.advance(0.5)
        msg = harness.last["occupancy_grid"]
        grid = np.array(msg.data, dtype=np.int8).reshape(msg.info.height, msg.info.width)

        def cell(x, y):
            return grid[int((y - msg.info.origin.position.y) / msg.info.resolution),
                        int((x - msg.info.origin.position.x) / msg.info.resolution)]

        assert cell(1.6, -0.8) == 100, "the 20 cm blue box ahead is an obstacle"
        assert cell(1.5, 0.0) == 0, "the floor between the robot and the table is free"
        assert cell(-3.0, 0.0) == -1, "behind the robot is unknown"
    finally:
        for node in (perception, mapper):
            harness.executor.remove_node(node)
            node.destroy_node()
        harness.close()


def _mono(color: Image) -> Image:
    color.encoding, color.step = "mono8", color.width
    color.data = bytes(color.width * color.height)
    return color


def _short_data(color: Image) -> Image:
    color.data = bytes(color.data[:-1])
    return color


def _zero_size(color: Image) -> Image:
    color.width = color.height = color.step = 0
    color.data = b""
    return color


def _empty_frame_id(color: Image) -> Image:
    color.header.frame_id = ""
    return color


def _from_the_future(color: Image) -> Image:
    color.header.stamp = ns_to_stamp((2**31 - 1) * 10**9)
    return color


def _nan_k(info: CameraInfo) -> CameraInfo:
    info.k = [math.nan] * 9
    return info


def _inf_focal(info: CameraInfo) -> CameraInfo:
    info.k = [math.inf, 0.0, 32.0, 0.0, math.inf, 24.0, 0.0, 0.0, 1.0]
    return info


@pytest.mark.parametrize("stream, spoil, cause", [
    ("color", _mono, "encoding"),
    ("color", _short_data, "size"),
    ("color", _zero_size, "empty"),
    ("color", _empty_frame_id, "frame_id"),
    ("color", _from_the_future, "stamp"),
    ("depth", _mono, "encoding"),
    ("depth", _empty_frame_id, "frame_id"),
    ("info", _nan_k, "camera_info"),
    ("info", _inf_focal, "camera_info"),
])
def test_a_malformed_frame_is_skipped_and_counted_by_cause_and_the_next_frame_processed(stream, spoil, cause):
    """One bad camera frame (a mono8 colour image, an empty frame_id, ...) once killed perception."""
    context = rclpy.Context()
    rclpy.init(context=context)
    perception = PerceptionNode(context=context, parameter_overrides=[Parameter("self_filter", value="none")])
    try:
        intrinsics = PinholeIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)

        def frame(stamp_s: int, spoiled: bool) -> None:
            header = Header(frame_id="camera_color_optical_frame", stamp=ns_to_stamp(stamp_s * 10**9))
            camera = TransformStamped(header=Header(frame_id="map", stamp=header.stamp),
                                      child_frame_id="camera_color_optical_frame")
            camera.transform.rotation.w = 1.0
            perception.tf.add_transforms([camera], static=False)
            msgs = {"color": numpy_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8", header=header),
                    "depth": numpy_to_image(np.full((48, 64), 1.0, np.float32), "32FC1", header=header),
                    "info": camera_info_from_intrinsics(intrinsics, header)}
            if spoiled:
                msgs[stream] = spoil(msgs[stream])
            # Called directly, as the subscriptions and the guard condition would.
            perception._frame = msgs
            perception._process()

        frame(1, spoiled=True)
        assert perception._errors == {cause: 1}
        assert len(perception._latencies) == 0
        published = []
        perception.diagnostics_pub.publish = published.append
        perception._publish_diagnostics()
        values = {v.key: v.value for v in published[0].status[0].values}
        assert values[f"errors_{cause}"] == "1" and values["tf_rejected"] == "0"
        frame(2, spoiled=False)
        assert len(perception._latencies) == 1, perception._last_error
    finally:
        perception.destroy_node()
        rclpy.shutdown(context=context)


def test_map_drops_malformed_observations_and_frames_and_keeps_working():
    """A NaN pose once went into the map (and its file); an empty frame_id killed the node."""
    context = rclpy.Context()
    rclpy.init(context=context)
    mapper = SemanticMapNode(context=context)
    try:
        intrinsics = PinholeIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)
        cube = Detection(label="small red cube", category="cube", attributes=("red", "small"), score=0.9,
                         bbox=(29, 21, 6, 6), position=np.array([0.0, 0.0, 1.0]),
                         size=np.array([0.05, 0.05, 0.05]), color="red")
        bad = [Detection(label="nan cube", category="cube", attributes=(), score=0.9, bbox=(29, 21, 6, 6),
                         position=np.array([math.nan, 0.0, 1.0]), size=np.array([0.05, 0.05, 0.05])),
               Detection(label="x" * 1_000_000, category="cube", attributes=(), score=0.9, bbox=(29, 21, 6, 6),
                         position=np.array([0.0, 0.0, 1.0]), size=np.array([0.05, 0.05, 0.05]))]

        def update(frame: int, frame_id: str = "camera_color_optical_frame") -> None:
            header = Header(frame_id=frame_id, stamp=ns_to_stamp((frame + 1) * 10**8))
            camera = TransformStamped(header=Header(frame_id="map", stamp=header.stamp),
                                      child_frame_id="camera_color_optical_frame")
            camera.transform.rotation.w = 1.0
            mapper.tf.add_transforms([camera], static=False)
            mapper._update({"observations": detections_to_array([cube, *bad], Header(frame_id="map",
                                                                                      stamp=header.stamp)),
                            "depth": numpy_to_image(np.full((48, 64), 0.975, np.float32), "32FC1", header=header),
                            "info": camera_info_from_intrinsics(intrinsics, header)})

        update(0, frame_id="")
        for frame in range(1, mapper.map.config.min_observations + 1):
            update(frame)
        assert [o.label for o in mapper.map.objects()] == ["small red cube"]
        client_request = QueryObjects.Request(text="x" * 1_000_000, max_results=3)
        assert list(mapper._on_query(client_request, QueryObjects.Response()).objects) == []
    finally:
        mapper.destroy_node()
        rclpy.shutdown(context=context)
