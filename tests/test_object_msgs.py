"""Detections survive the trip through ObjectObservation messages; markers follow the boxes."""

import math

import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from modular_robot.core.perception.types import Detection
from modular_robot.ros.object_msgs import box_markers, detection_to_msg, detections_to_array, msg_to_detection


def _detection():
    return Detection(label="small red cube", category="cube", attributes=("red", "small"), score=0.9,
                     bbox=(10, 20, 30, 40), position=np.array([0.5, 0.1, 0.02]),
                     size=np.array([0.04, 0.04, 0.04]), yaw=0.7, color="red")


def test_detection_round_trip():
    header = Header(frame_id="map")
    back = msg_to_detection(detection_to_msg(_detection(), header))
    original = _detection()
    assert back.label == original.label and back.category == "cube"
    assert back.attributes == ("red", "small") and back.color == "red"
    assert back.bbox == (10, 20, 30, 40)
    assert np.allclose(back.position, original.position) and np.allclose(back.size, original.size)
    assert math.isclose(back.yaw, 0.7, abs_tol=1e-6)
    array = detections_to_array([original, original], header)
    assert len(array.observations) == 2 and array.header.frame_id == "map"


def test_markers_clear_old_ones_and_label_each_box():
    markers = box_markers(Header(frame_id="map"), "objects", [("red cube", "red", np.zeros(3), np.ones(3), 0.0)])
    assert markers.markers[0].action == Marker.DELETEALL
    assert [m.type for m in markers.markers[1:]] == [Marker.CUBE, Marker.TEXT_VIEW_FACING]
    assert markers.markers[2].text == "red cube"
