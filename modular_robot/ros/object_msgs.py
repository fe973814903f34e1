"""Conversions between perception records and modular_robot_interfaces messages, and RViz markers."""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from modular_robot.core.colors import NAMED_COLORS
from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.perception.types import Detection
from modular_robot.ros.conversions import clip, ns_to_stamp, stamp_to_ns
from modular_robot_interfaces.msg import ObjectObservation, ObjectObservationArray, SemanticObject


def yaw_pose(position: np.ndarray, yaw: float) -> Pose:
    """Return a Pose at `position` turned by `yaw` about z."""
    return Pose(position=Point(x=float(position[0]), y=float(position[1]), z=float(position[2])),
                orientation=Quaternion(z=math.sin(yaw / 2), w=math.cos(yaw / 2)))


def pose_yaw(pose: Pose) -> float:
    """Return the rotation about z of a Pose (its roll and pitch are ignored)."""
    q = pose.orientation
    return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


# Bounds past which an observed or mapped object is a publisher's bug, not a thing on a table.
MAX_NAME_CHARS = 200
MAX_ATTRIBUTES = 32
MAX_COORDINATE_M = 1e4
MAX_SIZE_M = 100.0


def object_problem(msg: ObjectObservation | SemanticObject) -> str | None:
    """Return why an ObjectObservation or SemanticObject cannot be used, or None when it can.

    Refused: non-finite numbers (pose, size, score, confidence), positions farther than
    ``MAX_COORDINATE_M`` from the origin, negative or larger than ``MAX_SIZE_M`` sizes, names
    (label, id, attributes) longer than ``MAX_NAME_CHARS`` and more than ``MAX_ATTRIBUTES``
    attributes. One NaN would otherwise spread through every fusion and verdict it joins.
    """
    p, q, size = msg.pose.position, msg.pose.orientation, msg.size
    values = [p.x, p.y, p.z, q.x, q.y, q.z, q.w, size.x, size.y, size.z,
              getattr(msg, "score", 0.0), getattr(msg, "confidence", 0.0)]
    if not all(math.isfinite(v) for v in values):
        return f"non-finite pose, size or score: {values}"
    if max(abs(p.x), abs(p.y), abs(p.z)) > MAX_COORDINATE_M:
        return f"position ({p.x:g}, {p.y:g}, {p.z:g}) is farther than {MAX_COORDINATE_M:g} m"
    if not all(0.0 <= v <= MAX_SIZE_M for v in (size.x, size.y, size.z)):
        return f"size ({size.x:g}, {size.y:g}, {size.z:g}) is not within 0 to {MAX_SIZE_M:g} m"
    if len(msg.attributes) > MAX_ATTRIBUTES:
        return f"{len(msg.attributes)} attributes, more than {MAX_ATTRIBUTES}"
    for name in [msg.label, getattr(msg, "id", ""), *msg.attributes]:
        if len(name) > MAX_NAME_CHARS:
            return f"name {clip(name, 40)!r} is longer than {MAX_NAME_CHARS} characters"
    return None


def detection_to_msg(detection: Detection, header: Header) -> ObjectObservation:
    """Return the ObjectObservation of one detection."""
    x, y, w, h = (max(0, int(v)) for v in detection.bbox)
    return ObjectObservation(
        header=header, label=detection.label, attributes=[detection.category, *detection.attributes],
        score=float(detection.score), bbox=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
        pose=yaw_pose(detection.position, detection.yaw),
        size=Vector3(x=float(detection.size[0]), y=float(detection.size[1]), z=float(detection.size[2])))


def msg_to_detection(msg: ObjectObservation) -> Detection:
    """Return the Detection an ObjectObservation carries (the inverse of detection_to_msg)."""
    category, *attributes = list(msg.attributes) or [msg.label]
    colors = [a for a in attributes if a in NAMED_COLORS]
    b = msg.bbox
    p = msg.pose.position
    return Detection(
        label=msg.label, category=category, attributes=tuple(attributes), score=float(msg.score),
        bbox=(b.x_offset, b.y_offset, b.width, b.height), position=np.array([p.x, p.y, p.z]),
        size=np.array([msg.size.x, msg.size.y, msg.size.z]), yaw=pose_yaw(msg.pose),
        color=colors[0] if colors else None)


def object_to_msg(obj: MapObject) -> SemanticObject:
    """Return the SemanticObject message of a map object."""
    return SemanticObject(
        id=obj.id, label=obj.label, attributes=[obj.category, *obj.attributes],
        pose=yaw_pose(obj.position, obj.yaw),
        size=Vector3(x=float(obj.size[0]), y=float(obj.size[1]), z=float(obj.size[2])),
        confidence=float(obj.confidence), observations=int(obj.observations), last_seen=ns_to_stamp(obj.last_seen_ns),
        held=bool(obj.held))


def msg_to_object(msg: SemanticObject) -> MapObject:
    """Return the map object a SemanticObject carries (the inverse of object_to_msg, less first_seen)."""
    category, *attributes = list(msg.attributes) or [msg.label]
    colors = [a for a in attributes if a in NAMED_COLORS]
    p = msg.pose.position
    last_seen = stamp_to_ns(msg.last_seen)
    return MapObject(
        id=msg.id, label=msg.label, category=category, attributes=tuple(attributes),
        color=colors[0] if colors else None, position=np.array([p.x, p.y, p.z]),
        size=np.array([msg.size.x, msg.size.y, msg.size.z]), yaw=pose_yaw(msg.pose),
        confidence=float(msg.confidence), observations=int(msg.observations),
        first_seen_ns=last_seen, last_seen_ns=last_seen, held=bool(msg.held))


def detections_to_array(detections: list[Detection], header: Header) -> ObjectObservationArray:
    """Return one frame's detections as an ObjectObservationArray."""
    return ObjectObservationArray(header=header, observations=[detection_to_msg(d, header) for d in detections])


def box_markers(header: Header, namespace: str, boxes, lifetime_s: float = 0.0) -> MarkerArray:
    """Return cube and text markers for (label, color name or None, position, size, yaw) boxes.

    The first marker deletes the namespace's old markers, so vanished objects disappear in RViz.
    """
    markers = [Marker(header=header, ns=namespace, action=Marker.DELETEALL)]
    for i, (label, color, position, size, yaw) in enumerate(boxes):
        r, g, b = NAMED_COLORS.get(color or "", (0.6, 0.6, 0.6))
        box = Marker(header=header, ns=namespace, id=2 * i, type=Marker.CUBE, action=Marker.ADD,
                     pose=yaw_pose(position, yaw), color=ColorRGBA(r=r, g=g, b=b, a=0.6),
                     scale=Vector3(x=max(float(size[0]), 1e-3), y=max(float(size[1]), 1e-3),
                                   z=max(float(size[2]), 1e-3)))
        text = Marker(header=header, ns=namespace, id=2 * i + 1, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, text=label, color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0),
                      scale=Vector3(z=0.025),
                      pose=yaw_pose(np.asarray(position) + [0, 0, float(size[2]) / 2 + 0.03], 0.0))
        box.lifetime.sec = text.lifetime.sec = int(lifetime_s)
        markers += [box, text]
    return MarkerArray(markers=markers)
