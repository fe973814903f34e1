"""Perception node: synchronised RGB-D + TF in, 3D object observations out.

Callbacks only pair messages (StampSync), keep the newest frame and trigger a guard condition;
its callback runs the detector on the newest frame, so a slow detector drops frames instead of
queueing them, and frames are processed as they come (also when sim time stands still).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from modular_robot.core.perception.geometric_params import GeometricParams
from modular_robot.core.perception.registry import create_detector
from modular_robot.core.perception.self_filter import PANDA_GRASP_FRAME, PANDA_LINK_CAPSULES, panda_capsules
from modular_robot.core.perception.types import CameraFrame, Detector
from modular_robot.core.sync import StampSync, StampThrottle
from modular_robot.core.tf_tree import TfError
from modular_robot.ros import qos
from modular_robot.ros.conversions import (
    MalformedMessageError,
    clip,
    color_image_to_rgb,
    depth_image_to_metres,
    image_to_numpy,
    intrinsics_from_camera_info,
    stamp_to_ns,
)
from modular_robot.ros.object_msgs import box_markers, detections_to_array
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.ros.tf_listener import TfListener
from modular_robot_interfaces.msg import ObjectObservationArray

_LATENCY_WINDOW = 100
# A frame waits this long (wall time) for the transforms at its stamp.
_TF_WAIT_S = 0.2
# A frame stamped further than this ahead of the node's clock is refused: a camera cannot see the future,
# and one such frame would hold the throttle (and the map's idea of "now") until time caught up.
MAX_FUTURE_STAMP_S = 1.0


class PerceptionNode(StackNode):
    """Runs a detector plugin on the robot's camera and publishes what it finds in the world frame."""

    def __init__(self, **kwargs) -> None:
        super().__init__("perception", **kwargs)
        self._declare_parameters()

        def get(name: str):
            return self.get_parameter(name).value

        self.world_frame = get("world_frame")
        self.prompts = tuple(p for p in get("prompts") if p)
        self.robot_model = get("self_filter")
        self._lock = threading.Lock()
        self._frame: dict | None = None
        self._slop_ns = int(get("sync_slop_s") * 1e9)
        self._segment_labels: dict[int, dict] = {}
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._errors: dict[str, int] = {}
        self._last_error = ""
        self.detector: Detector | None = None
        self._detector_error = ""
        self._set_detector(get("detector"), get("model_dir"))
        # Transforms keep arriving while a frame is processed, which waits for those at its stamp.
        self.tf = TfListener(self, callback_group=MutuallyExclusiveCallbackGroup())
        # The camera's own group: frames are taken while one is processed, so the next detection runs
        # on the newest, not on the oldest of the frames DDS queued meanwhile (half a second of them).
        camera = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, "camera/color/image_raw", lambda m: self._on("color", m), qos.SENSOR_DATA,
                                 callback_group=camera)
        self.create_subscription(Image, "camera/depth/image_raw", lambda m: self._on("depth", m), qos.SENSOR_DATA,
                                 callback_group=camera)
        self.create_subscription(CameraInfo, "camera/color/camera_info", lambda m: self._on("info", m),
                                 qos.SENSOR_DATA, callback_group=camera)
        # Ground-truth segmentation from the simulator, used by the sim_truth ablation detector only.
        self.create_subscription(Image, "camera/segmentation/image_raw", lambda m: self._on("segmentation", m),
                                 qos.SENSOR_DATA, callback_group=camera)
        self.create_subscription(String, "camera/segmentation/labels", self._on_labels, qos.LATCHED)
        self.observations_pub = self.create_publisher(ObjectObservationArray, "objects/observations", qos.RELIABLE)
        self.markers_pub = self.create_publisher(MarkerArray, "objects/markers", qos.RELIABLE)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "diagnostics", qos.RELIABLE)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # 90% of the period: camera stamps jitter by a nanosecond of rounding.
        self._frames = StampThrottle(int(0.9e9 / get("max_rate_hz")))
        self._frame_ready = self.create_guard_condition(self._process)
        self.create_timer(1.0, self._publish_diagnostics)

    def _declare_parameters(self) -> None:
        def declare(name, default, description, read_only=False):
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=read_only))

        declare("detector", "geometric", "Detector plugin: geometric, owlv2, grounding_dino, or sim_truth "
                "(ground-truth segmentation, for ablations).")
        declare("model_dir", "", "Local model directory for owlv2 / grounding_dino (from_pretrained).")
        declare("prompts", [""], "Object names open-vocabulary detectors look for.")
        declare("world_frame", "map", "Frame the observations are expressed in.", read_only=True)
        declare("max_rate_hz", 15.0, "Most frames processed per second of frame stamps (newest frame wins).",
                read_only=True)
        declare("sync_slop_s", 0.02, "Largest stamp difference of colour, depth and camera_info.", read_only=True)
        declare("self_filter", "panda", "Robot whose links are cut out of the view: panda or none.",
                read_only=True)
        declare("max_range_m", GeometricParams.max_range, "Farthest depth (m) the geometric detector uses: "
                "depth noise grows with range, and a mobile robot looks across a room.", read_only=True)
        declare("grazing_factor", GeometricParams.grazing_factor, "Neighbouring pixels join one object when "
                "their 3D gap is within this many times the sample spacing of a surface facing the camera: a "
                "low camera sees the tops of far objects nearly edge-on (asin(1 / factor) from edge-on stays "
                "whole), a larger factor also joins objects closer behind one another.", read_only=True)

    def _set_detector(self, name: str, model_dir: str) -> str:
        """Build the named detector; on failure keep none and remember why (reported on diagnostics)."""
        params: dict = {"model_dir": model_dir} if name in ("owlv2", "grounding_dino") else {}
        if name == "geometric":
            params["params"] = GeometricParams(max_range=self.get_parameter("max_range_m").value,
                                               grazing_factor=self.get_parameter("grazing_factor").value)
        try:
            detector = create_detector(name, **params)
        except (ValueError, OSError, ImportError) as error:
            self._detector_error = f"cannot use detector {name!r}: {error}"
            self.get_logger().error(self._detector_error)
            return self._detector_error
        streams = ("color", "depth", "info") + (("segmentation",) if name == "sim_truth" else ())
        with self._lock:
            self.detector = detector
            self._detector_error = ""
            self._sync = StampSync(streams, self._slop_ns)
        if name == "sim_truth":
            self.get_logger().warning("detector sim_truth: objects come from ground-truth segmentation "
                                      "(ablations only; results are not those of real perception)")
        else:
            self.get_logger().info(f"detector: {name}")
        return ""

    def _on_set_parameters(self, params) -> SetParametersResult:
        updates = {p.name: p.value for p in params}
        if "prompts" in updates:
            self.prompts = tuple(p for p in updates["prompts"] if p)
        if "detector" in updates or "model_dir" in updates:
            name = updates.get("detector", self.get_parameter("detector").value)
            model_dir = updates.get("model_dir", self.get_parameter("model_dir").value)
            error = self._set_detector(name, model_dir)
            if error:
                return SetParametersResult(successful=False, reason=error)
        return SetParametersResult(successful=True)

    def _on(self, stream: str, msg) -> None:
        with self._lock:
            if self.detector is None or stream not in self._sync.streams:
                return
            match = self._sync.add(stream, stamp_to_ns(msg.header.stamp), msg)
            if match is None or not self._frames.due(stamp_to_ns(msg.header.stamp)):
                return
            self._frame = match
        self._frame_ready.trigger()

    def _on_labels(self, msg: String) -> None:
        try:
            labels = {int(segment): dict(value) for segment, value in json.loads(msg.data).items()}
        except (ValueError, TypeError, AttributeError, RecursionError) as error:
            self.get_logger().error(f"ignoring malformed segmentation labels: {clip(error)}")
            return
        with self._lock:
            self._segment_labels = labels

    def _count_error(self, kind: str, message: str) -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1
        self._last_error = clip(message)
        self.get_logger().warning(self._last_error, throttle_duration_sec=5.0)

    def _process(self) -> None:
        with self._lock:
            frame_msgs, self._frame = self._frame, None
            detector = self.detector
        if frame_msgs is None or detector is None:
            return
        started = time.perf_counter()
        color = frame_msgs["color"]
        with self._lock:
            self._frames.take(stamp_to_ns(color.header.stamp))
        try:
            frame = self._camera_frame(frame_msgs)
            detections = detector.detect(frame, self.prompts)
        except MalformedMessageError as error:
            self._count_error(error.cause, f"frame skipped: {error}")
            return
        except TfError as error:
            self._count_error("tf", f"no transform for the frame: {error}")
            return
        except ValueError as error:
            self._count_error("input", f"frame skipped: {error}")
            return
        header = Header(stamp=color.header.stamp, frame_id=self.world_frame)
        self.observations_pub.publish(detections_to_array(detections, header))
        self.markers_pub.publish(box_markers(
            header, "observations", [(d.label, d.color, d.position, d.size, d.yaw) for d in detections]))
        self._latencies.append((time.perf_counter() - started) * 1e3)

    def _camera_frame(self, frame_msgs: dict) -> CameraFrame:
        """Convert and check one synchronised frame, then wait for and look up its transforms.

        Raises:
            MalformedMessageError: for a frame no detector should see, with the cause to count it by.
            TfError: when the camera's pose at the frame's stamp is unknown.
        """
        color, depth_msg, info = frame_msgs["color"], frame_msgs["depth"], frame_msgs["info"]
        camera_frame = color.header.frame_id
        if not camera_frame.strip("/") or not depth_msg.header.frame_id.strip("/"):
            raise MalformedMessageError("frame_id", f"empty frame_id: colour {clip(camera_frame)!r}, "
                                                    f"depth {clip(depth_msg.header.frame_id)!r}")
        if depth_msg.header.frame_id != camera_frame:
            raise MalformedMessageError("frame_id", f"depth in {clip(depth_msg.header.frame_id)!r} is not registered "
                                                    f"to the colour camera {clip(camera_frame)!r}")
        stamp_ns = stamp_to_ns(color.header.stamp)
        now_ns = self.get_clock().now().nanoseconds
        # A clock at zero has not started (sim time before the first /clock): nothing to compare with.
        if stamp_ns < 0 or (now_ns and stamp_ns > now_ns + MAX_FUTURE_STAMP_S * 1e9):
            raise MalformedMessageError("stamp", f"frame stamped {stamp_ns / 1e9:.3f} s, the clock reads "
                                                 f"{now_ns / 1e9:.3f} s")
        rgb = color_image_to_rgb(color)
        depth = depth_image_to_metres(depth_msg)
        if rgb.size == 0 or depth.size == 0:
            raise MalformedMessageError("empty", f"an image has no pixels: colour {color.width}x{color.height}, "
                                                 f"depth {depth_msg.width}x{depth_msg.height}")
        intrinsics = intrinsics_from_camera_info(info)
        segmentation = None
        if "segmentation" in frame_msgs:
            segmentation = image_to_numpy(frame_msgs["segmentation"])
            if segmentation.ndim != 2:
                raise MalformedMessageError("encoding", f"segmentation must be one channel, got "
                                                        f"{clip(frame_msgs['segmentation'].encoding)!r}")
        sizes = {"colour": rgb.shape[:2], "depth": depth.shape, "camera_info": (intrinsics.height, intrinsics.width)}
        if segmentation is not None:
            sizes["segmentation"] = segmentation.shape
        if len(set(sizes.values())) > 1:
            raise MalformedMessageError("size", "image sizes differ: " + ", ".join(
                f"{name} {h}x{w}" for name, (h, w) in sizes.items()))
        self._wait_for_transforms(camera_frame, color.header.stamp)
        return CameraFrame(
            rgb=rgb, depth=depth, intrinsics=intrinsics,
            world_from_camera=self.tf.lookup(self.world_frame, camera_frame, color.header.stamp),
            stamp_ns=stamp_ns, world_frame=self.world_frame,
            robot_capsules=self._robot_capsules(color.header.stamp),
            grasp_points=self._grasp_points(color.header.stamp),
            segmentation=segmentation, segment_labels=self._segment_labels)

    def _wait_for_transforms(self, camera_frame: str, stamp) -> None:
        """Wait briefly for the camera's and the arm's transforms at the frame's stamp to arrive."""
        frames = [camera_frame] + ([PANDA_GRASP_FRAME] if self.robot_model == "panda" else [])
        deadline = time.monotonic() + _TF_WAIT_S
        for frame in frames:
            if not self.tf.wait_for_transform(self.world_frame, frame, stamp, max(0.0, deadline - time.monotonic())):
                return

    def _robot_capsules(self, stamp):
        """Return the robot's links in the world frame at `stamp`, for the self filter."""
        if self.robot_model != "panda":
            return ()
        poses = {}
        for link in PANDA_LINK_CAPSULES:
            try:
                poses[link] = self.tf.lookup(self.world_frame, link, stamp)
            except TfError:
                continue
        return panda_capsules(poses) if poses else ()

    def _grasp_points(self, stamp):
        """Return the robot's grasp centre in the world frame at `stamp`, where held objects float."""
        if self.robot_model != "panda" or not self.tf.can_transform(self.world_frame, PANDA_GRASP_FRAME, stamp):
            return ()
        return (self.tf.lookup(self.world_frame, PANDA_GRASP_FRAME, stamp).translation,)

    def _publish_diagnostics(self) -> None:
        latencies = np.array(self._latencies) if self._latencies else np.array([np.nan])
        if self._detector_error:
            level, message = DiagnosticStatus.ERROR, self._detector_error
        elif not self._latencies:
            level, message = DiagnosticStatus.WARN, "no frame processed yet"
        else:
            level, message = DiagnosticStatus.OK, f"processing with {self.detector.name}"
            if self.detector.name == "sim_truth":
                message += " (ground-truth segmentation: an ablation, not real perception)"
        values = [KeyValue(key="latency_ms_p50", value=f"{np.nanpercentile(latencies, 50):.2f}"),
                  KeyValue(key="latency_ms_p95", value=f"{np.nanpercentile(latencies, 95):.2f}"),
                  KeyValue(key="frames", value=str(len(self._latencies))),
                  KeyValue(key="last_error", value=self._last_error)]
        values += [KeyValue(key=f"errors_{kind}", value=str(n)) for kind, n in self._errors.items()]
        values.append(KeyValue(key="tf_rejected", value=str(self.tf.rejected)))
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: perception",
                                  message=message, hardware_id="camera", values=values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(msg)


def main(args=None) -> None:
    """Run the perception node until shutdown."""
    spin_node(PerceptionNode, "perception", args, multithreaded=True)


if __name__ == "__main__":
    main()
