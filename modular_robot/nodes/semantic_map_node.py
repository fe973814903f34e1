"""Semantic map node: fuses observations into persistent objects, answers text queries.

Observations are paired with the depth frame they came from (same stamp), so the map can tell
which known objects the camera should have seen and did not: the world changes, and the map
follows. The map is published latched on change, saved to disk, and reloaded on restart. Each frame
also carries the gripper's grasp point (TF) and finger opening (joint_states) at its stamp: the
map is the one record of what the robot holds.
"""

from __future__ import annotations

import array
import threading
import time

import numpy as np
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from modular_robot.core.gripper import Gripper, OpeningHistory
from modular_robot.core.mapping.occupancy import OccupancyGridBuilder
from modular_robot.core.mapping.query import query
from modular_robot.core.mapping.semantic_map import SemanticMap
from modular_robot.core.mapping.text_embedding import default_embedder
from modular_robot.core.perception.types import CameraFrame
from modular_robot.core.robot_model import PANDA_FINGER_JOINTS, PANDA_MAX_OPENING
from modular_robot.core.sync import StampSync, StampThrottle
from modular_robot.core.tf_tree import TfError
from modular_robot.ros import qos
from modular_robot.ros.conversions import (
    clip,
    depth_image_to_metres,
    intrinsics_from_camera_info,
    stamp_to_ns,
)
from modular_robot.ros.object_msgs import box_markers, msg_to_detection, object_problem, object_to_msg
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.ros.tf_listener import TfListener
from modular_robot_interfaces.msg import ObjectObservationArray
from modular_robot_interfaces.msg import SemanticMap as SemanticMapMsg
from modular_robot_interfaces.srv import QueryObjects

# A frame waits this long (wall time) for the camera's transform at its stamp.
_TF_WAIT_S = 0.2
# A frame stamped further than this ahead of the node's clock is refused (as perception does).
_MAX_FUTURE_STAMP_S = 1.0
# Fingers that closed within this much of a frame's stamp, or since the frame before it (perception
# may have been down while the robot grasped), may have grasped what they hold in it.
_CLOSING_WINDOW_NS = 1_000_000_000
# How much finger history is kept, and so the longest gap between frames over which a grasp is seen.
_OPENING_HISTORY_NS = 30_000_000_000
# Longest query text: names and short phrases; a megabyte of text would stall the embedder.
MAX_QUERY_CHARS = 1000


class SemanticMapNode(StackNode):
    """Owns the SemanticMap; all map access happens under one lock."""

    def __init__(self, **kwargs) -> None:
        super().__init__("semantic_map", **kwargs)
        self._lock = threading.Lock()
        self._dirty = False
        self._declare_parameters()

        def get(name: str):
            return self.get_parameter(name).value

        self.world_frame = get("world_frame")
        self.map_file = get("map_file")
        self.save_period_s = get("save_period_s")
        self.grasp_frame = get("grasp_frame")
        self.max_opening = get("max_opening")
        self._openings = OpeningHistory(get("finger_joints"), _OPENING_HISTORY_NS)
        self._last_frame_ns: int | None = None
        # Loaded now: fusing frames needs it, and loading it mid-run would stall the map for seconds.
        self._embedder = default_embedder()
        self._embedder.load()
        self.map = SemanticMap(text_similarity=self._embedder.similarity)
        if self.map_file:
            warning = self.map.load(self.map_file)
            if warning is not None:
                self.get_logger().error(str(warning))
            else:
                self.get_logger().info(f"map: {len(self.map)} objects from {self.map_file}")
        self._last_save = time.monotonic()
        self._sync = StampSync(("observations", "depth", "info"), int(get("sync_slop_s") * 1e9), queue_size=15)
        # Its own group, so transforms keep arriving while a frame waits for them.
        self.tf = TfListener(self, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(ObjectObservationArray, "objects/observations",
                                 lambda m: self._on("observations", m), qos.RELIABLE)
        self.create_subscription(Image, "camera/depth/image_raw", lambda m: self._on("depth", m), qos.SENSOR_DATA)
        self.create_subscription(CameraInfo, "camera/color/camera_info", lambda m: self._on("info", m),
                                 qos.SENSOR_DATA)
        if self.grasp_frame:
            self.create_subscription(JointState, "joint_states", self._on_joint_states, qos.RELIABLE)
        self.map_pub = self.create_publisher(SemanticMapMsg, "semantic_map", qos.LATCHED)
        self.markers_pub = self.create_publisher(MarkerArray, "semantic_map/markers", qos.LATCHED)
        self.grid_builder = None
        if get("occupancy_grid"):
            self.grid_builder = OccupancyGridBuilder(
                get("grid_resolution_m"), get("grid_size_m"), get("grid_size_m"),
                origin=(-get("grid_size_m") / 2, -get("grid_size_m") / 2))
            self.grid_pub = self.create_publisher(OccupancyGrid, "occupancy_grid", qos.LATCHED)
            self._grid_updates = StampThrottle(int(get("grid_update_period_s") * 1e9))
            self._grid_publications = StampThrottle(int(get("grid_publish_period_s") * 1e9))
        self.create_service(QueryObjects, "query_objects", self._on_query)
        self._publish_map()
        if self.map_file:
            self.create_timer(self.save_period_s, self._save_if_dirty)

    def _declare_parameters(self) -> None:
        def declare(name, default, description):
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))

        declare("world_frame", "map", "Frame of observations and map.")
        declare("map_file", "", "JSON file the map is saved to and reloaded from ('' keeps it in memory).")
        declare("save_period_s", 2.0, "Save a changed map at most this often.")
        declare("grasp_frame", "panda_grasptarget", "TF frame of the grasp centre between the fingertips "
                "('' for a robot without a gripper).")
        declare("finger_joints", list(PANDA_FINGER_JOINTS),
                "Finger joints whose positions add up to the finger opening (m).")
        declare("max_opening", PANDA_MAX_OPENING, "Widest finger opening (m).")
        declare("sync_slop_s", 0.02, "Largest stamp difference of observations, depth and camera_info.")
        declare("occupancy_grid", False, "Also build and publish a 2D occupancy grid from depth (mobile base).")
        declare("grid_resolution_m", 0.05, "Occupancy grid cell size.")
        declare("grid_size_m", 20.0, "Occupancy grid edge, centred on the world origin.")
        declare("grid_update_period_s", 0.2, "Integrate depth into the occupancy grid at most this often "
                "(s of frame stamps): a frame's rays cost tens of milliseconds.")
        declare("grid_publish_period_s", 1.0, "Publish the occupancy grid at most this often (s of frame stamps).")

    def _on(self, stream: str, msg) -> None:
        match = self._sync.add(stream, stamp_to_ns(msg.header.stamp), msg)
        if match is not None:
            self._update(match)

    def _on_joint_states(self, msg: JointState) -> None:
        with self._lock:
            self._openings.add(stamp_to_ns(msg.header.stamp), list(msg.name), list(msg.position))

    def _grippers(self, frame: CameraFrame, stamp) -> list[Gripper]:
        """Return the gripper at a frame's stamp; none when the grasp frame is unknown (no arm, no TF yet)."""
        if not self.grasp_frame or not self.tf.can_transform(self.world_frame, self.grasp_frame, stamp):
            return []
        grasp = self.tf.lookup(self.world_frame, self.grasp_frame, stamp).translation
        with self._lock:
            since_last = frame.stamp_ns - self._last_frame_ns if self._last_frame_ns is not None else 0
            self._last_frame_ns = frame.stamp_ns
            opening = self._openings.at(frame.stamp_ns)
            closed_by = self._openings.closed_by(frame.stamp_ns, max(_CLOSING_WINDOW_NS, since_last))
        return [Gripper(grasp, opening, closed_by, self.max_opening)]

    def _update(self, match: dict) -> None:
        try:
            frame, detections = self._frame(match)
            grippers = self._grippers(frame, match["depth"].header.stamp)
        except (TfError, ValueError) as error:
            self.get_logger().warning(f"frame skipped: {clip(error)}", throttle_duration_sec=5.0)
            return
        depth_msg = match["depth"]
        with self._lock:
            change = self.map.update(detections, frame, grippers)
            if change:
                self._dirty = True
        if change:
            self._publish_map()
        if self.grid_builder is not None and self._grid_updates.due(frame.stamp_ns):
            self._grid_updates.take(frame.stamp_ns)
            self.grid_builder.integrate(frame)
            if self._grid_publications.due(frame.stamp_ns):
                self._grid_publications.take(frame.stamp_ns)
                self._publish_grid(depth_msg.header.stamp)

    def _frame(self, match: dict) -> tuple[CameraFrame, list]:
        """Check and convert one synchronised frame: the camera's view and the usable observations in it.

        Observations that are not finite, sane-sized objects in the world frame are dropped, each
        with a logged reason; the rest of the frame still counts.

        Raises:
            ValueError: for a frame that cannot be used at all (images, frame ids, stamps).
            TfError: when the camera's pose at the frame's stamp is unknown.
        """
        observations, depth_msg, info = match["observations"], match["depth"], match["info"]
        camera_frame = depth_msg.header.frame_id
        if not camera_frame.strip("/"):
            raise ValueError("the depth image has an empty frame_id")
        if observations.header.frame_id and observations.header.frame_id != self.world_frame:
            raise ValueError(f"observations in frame {clip(observations.header.frame_id)!r}, not {self.world_frame!r}")
        stamp_ns = stamp_to_ns(depth_msg.header.stamp)
        now_ns = self.get_clock().now().nanoseconds
        # A clock at zero has not started (sim time before the first /clock): nothing to compare with.
        if stamp_ns < 0 or (now_ns and stamp_ns > now_ns + _MAX_FUTURE_STAMP_S * 1e9):
            raise ValueError(f"frame stamped {stamp_ns / 1e9:.3f} s, the clock reads {now_ns / 1e9:.3f} s")
        self.tf.wait_for_transform(self.world_frame, camera_frame, depth_msg.header.stamp, _TF_WAIT_S)
        frame = CameraFrame(
            rgb=np.zeros((0, 0, 3), np.uint8), depth=depth_image_to_metres(depth_msg),
            intrinsics=intrinsics_from_camera_info(info),
            world_from_camera=self.tf.lookup(self.world_frame, camera_frame, depth_msg.header.stamp),
            stamp_ns=stamp_ns, world_frame=self.world_frame)
        if frame.depth.shape != (frame.intrinsics.height, frame.intrinsics.width):
            raise ValueError(f"depth image {depth_msg.width}x{depth_msg.height} does not match camera_info "
                             f"{info.width}x{info.height}")
        detections = []
        for observation in observations.observations:
            problem = object_problem(observation)
            if problem is not None:
                self.get_logger().warning(f"observation dropped: {problem}", throttle_duration_sec=5.0)
                continue
            detections.append(msg_to_detection(observation))
        return frame, detections

    def _publish_map(self) -> None:
        with self._lock:
            objects = self.map.objects()
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.world_frame)
        self.map_pub.publish(SemanticMapMsg(header=header, objects=[object_to_msg(o) for o in objects]))
        self.markers_pub.publish(box_markers(
            header, "semantic_map", [(o.id, o.color, o.position, o.size, o.yaw) for o in objects]))

    def _publish_grid(self, stamp) -> None:
        grid = self.grid_builder.grid()
        msg = OccupancyGrid(header=Header(stamp=stamp, frame_id=self.world_frame))
        msg.info.resolution = self.grid_builder.resolution
        msg.info.height, msg.info.width = grid.shape
        msg.info.origin.position.x, msg.info.origin.position.y = self.grid_builder.origin
        msg.info.origin.orientation.w = 1.0
        msg.data = array.array("b", grid.reshape(-1).tobytes())
        self.grid_pub.publish(msg)

    def _on_query(self, request: QueryObjects.Request, response: QueryObjects.Response) -> QueryObjects.Response:
        if len(request.text) > MAX_QUERY_CHARS:
            self.get_logger().warning(f"query refused: {len(request.text)} characters, more than {MAX_QUERY_CHARS}: "
                                      f"{clip(request.text)!r}", throttle_duration_sec=5.0)
            return response
        with self._lock:
            objects = self.map.objects()
        if request.text.strip():
            matches = query(objects, request.text, int(request.max_results) or 5, similarity=self._embedder.similarity)
        else:
            # A blank text asks for a snapshot of the whole map (max_results 0: no limit).
            matches = [(obj, 1.0) for obj in sorted(objects, key=lambda o: o.id)]
            matches = matches[:int(request.max_results)] if request.max_results else matches
        response.objects = [object_to_msg(obj) for obj, _ in matches]
        response.scores = [float(score) for _, score in matches]
        return response

    def _save_if_dirty(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            try:
                self.map.save(self.map_file)
                self._dirty = False
            except OSError as error:
                self.get_logger().error(f"cannot save the map to {self.map_file}: {error}",
                                        throttle_duration_sec=30.0)

    def destroy_node(self) -> None:
        """Save the map one last time, then destroy the node."""
        if self.map_file:
            self._save_if_dirty()
        super().destroy_node()


def main(args=None) -> None:
    """Run the semantic map node until shutdown."""
    spin_node(SemanticMapNode, "semantic_map", args, multithreaded=True)


if __name__ == "__main__":
    main()
