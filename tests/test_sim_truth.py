"""The sim_truth detector on the simulator's published segmentation (ablations only)."""

import json

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from modular_robot.core.perception.sim_truth import SimTruthDetector
from modular_robot.core.perception.types import CameraFrame
from modular_robot.ros import qos
from modular_robot.ros.conversions import depth_image_to_metres, image_to_numpy, intrinsics_from_camera_info
from ros_helpers import SimHarness

SCENE = """
name: truth
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.50, 0.12, 0.0, 0.3]}
  - {id: blue_ball, type: sphere, color: blue, size: 0.06, pose: [0.55, -0.15, 0.0, 0.0]}
expect:
  - {unmoved: [red_cube]}
"""


def test_sim_truth_finds_every_object_from_published_segmentation():
    harness = SimHarness(SCENE, publish_segmentation=True)
    try:
        topics = {"camera/color/image_raw": Image, "camera/depth/image_raw": Image,
                  "camera/segmentation/image_raw": Image, "camera/color/camera_info": CameraInfo}
        for topic, kind in topics.items():
            harness.track(kind, topic, qos.SENSOR_DATA)
        harness.track(String, "camera/segmentation/labels", qos.LATCHED)
        listener = harness.track_tf()
        assert harness.advance_until(
            lambda: len(harness.last) == 5 and listener.can_transform("map", "camera_color_optical_frame"), 2.0)
        harness.advance(0.1)
        info = harness.last["camera/color/camera_info"]
        labels = {int(k): v for k, v in json.loads(harness.last["camera/segmentation/labels"].data).items()}
        frame = CameraFrame(
            rgb=image_to_numpy(harness.last["camera/color/image_raw"]),
            depth=depth_image_to_metres(harness.last["camera/depth/image_raw"]),
            intrinsics=intrinsics_from_camera_info(info),
            world_from_camera=listener.lookup("map", info.header.frame_id),
            segmentation=image_to_numpy(harness.last["camera/segmentation/image_raw"]), segment_labels=labels)
        detections = {d.category: d for d in SimTruthDetector().detect(frame)}
        truth = harness.world.ground_truth().objects
        assert set(detections) == {"cube", "sphere"}
        assert detections["cube"].label == "small red cube"
        # The camera sees the near side only: the box centre is within a half-size of the truth.
        for kind, object_id in (("cube", "red_cube"), ("sphere", "blue_ball")):
            error = np.linalg.norm(detections[kind].position[:2] - np.array(truth[object_id].center[:2]))
            assert error < 0.03
    finally:
        harness.close()


def test_sim_truth_without_segmentation_is_a_clear_error():
    frame = CameraFrame(rgb=np.zeros((4, 4, 3), np.uint8), depth=np.ones((4, 4), np.float32),
                        intrinsics=None, world_from_camera=None)
    with pytest.raises(ValueError, match="publish_segmentation"):
        SimTruthDetector().detect(frame)
