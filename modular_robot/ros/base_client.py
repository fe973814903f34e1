"""BaseInterface over ROS: pose from TF, velocity on the safety shield's input, occupancy from the map node.

`RosBase` never spins its node: a MultiThreadedExecutor in another thread delivers TF, the grid and
/clock while a skill calls `wait` from its own thread. `wait` counts the node's clock, so with
use_sim_time it waits for simulated seconds: when the simulator pauses, so does the skill.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import OccupancyGrid
from rclpy.callback_groups import CallbackGroup
from rclpy.clock import ClockChange, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node

from modular_robot.core.navigation.geometry import OccupancyMap
from modular_robot.core.tf_tree import TfError
from modular_robot.core.transforms import quat_to_rpy
from modular_robot.ros import qos
from modular_robot.ros.tf_listener import TfListener

# Wall seconds between checks of the cancel event while waiting: the latency of a cancellation.
CANCEL_POLL_S = 0.02
# A grid whose origin is turned by more than this about any axis cannot be an OccupancyMap (rad).
_MAX_ORIGIN_ROTATION_RAD = 1e-3


class RosBase:
    """A differential-drive base seen through TF, the shield's cmd_vel input and the occupancy grid.

    Args:
        node: Node that owns the publisher and subscriptions; spun by an executor elsewhere.
        world_frame: Frame of poses and of the grid.
        base_frame: The base's frame.
        cmd_vel_topic: Where TwistStamped commands go: the safety shield's input.
        grid_topic: Latched nav_msgs/OccupancyGrid from the map node.
        cancel_event: Once set, `wait` returns False at once; None means a private event
            (see `cancel_event`).
        callback_group: Callback group of the subscriptions.
        tf_listener: A listener of the node to share; None makes one (removed again by `close`).
    """

    def __init__(self, node: Node, world_frame: str = "map", base_frame: str = "base_link",
                 cmd_vel_topic: str = "safe/cmd_vel", grid_topic: str = "occupancy_grid",
                 cancel_event: threading.Event | None = None, callback_group: CallbackGroup | None = None,
                 tf_listener: TfListener | None = None) -> None:
        self._node = node
        self.world_frame = world_frame
        self.base_frame = base_frame
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()
        self._own_tf = tf_listener is None
        self._tf = tf_listener if tf_listener is not None else TfListener(node, callback_group=callback_group)
        self._lock = threading.Lock()
        self._grid_msg: OccupancyGrid | None = None
        self._grid: OccupancyMap | None = None
        self._publisher = node.create_publisher(TwistStamped, cmd_vel_topic, qos.RELIABLE)
        self._subscription = node.create_subscription(OccupancyGrid, grid_topic, self._on_grid, qos.LATCHED,
                                                      callback_group=callback_group)

    def pose(self) -> tuple[float, float, float] | None:
        """Return the base's latest (x, y, yaw) in the world frame, or None when TF cannot tell."""
        try:
            transform = self._tf.lookup(self.world_frame, self.base_frame)
        except (TfError, LookupError, ValueError):
            return None
        x, y = float(transform.translation[0]), float(transform.translation[1])
        yaw = float(quat_to_rpy(transform.rotation)[2])
        return (x, y, yaw) if all(math.isfinite(v) for v in (x, y, yaw)) else None

    def send_velocity(self, linear: float, angular: float) -> None:
        """Publish a forward speed (m/s) and turn rate (rad/s); non-finite values publish a stop instead."""
        try:
            values = (float(linear), float(angular))
        except (TypeError, ValueError):
            values = (math.nan, math.nan)
        if not all(math.isfinite(v) for v in values):
            self._node.get_logger().error(f"non-finite velocity ({linear!r}, {angular!r}) replaced by a stop")
            values = (0.0, 0.0)
        msg = TwistStamped()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = self.base_frame
        msg.twist.linear.x, msg.twist.angular.z = values
        self._publisher.publish(msg)

    def stop(self) -> None:
        """Publish zero velocity."""
        self.send_velocity(0.0, 0.0)

    def occupancy(self) -> OccupancyMap | None:
        """Return the latest valid grid (the same object until a new one arrives), or None before the first."""
        with self._lock:
            if self._grid_msg is not None:
                converted = self._to_map(self._grid_msg)
                self._grid_msg = None
                if converted is not None:
                    self._grid = converted
            return self._grid

    def wait(self, seconds: float) -> bool:
        """Block until ``seconds`` of the node's clock have passed; return False as soon as cancelled.

        Wakes on every clock update (a jump callback), and polls the cancel event every
        CANCEL_POLL_S of wall time. A clock source change or a backwards jump (a simulator reset)
        ends the wait early, since the deadline no longer means anything.
        """
        if self.cancel_event.is_set():
            return False
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            seconds = 0.0
        if not (math.isfinite(seconds) and seconds > 0.0):
            return True
        clock = self._node.get_clock()
        deadline = clock.now() + Duration(nanoseconds=round(seconds * 1e9))
        woken = threading.Event()

        def on_jump(jump: TimeJump) -> None:
            if (jump.clock_change in (ClockChange.ROS_TIME_ACTIVATED, ClockChange.ROS_TIME_DEACTIVATED)
                    or jump.delta.nanoseconds < 0 or clock.now() >= deadline):
                woken.set()

        threshold = JumpThreshold(min_forward=Duration(nanoseconds=1), min_backward=Duration(nanoseconds=-1),
                                  on_clock_change=True)
        with clock.create_jump_callback(threshold, post_callback=on_jump):
            while not (self.cancel_event.is_set() or woken.is_set() or clock.now() >= deadline):
                if not self._node.context.ok():
                    return False
                woken.wait(CANCEL_POLL_S)
        return not self.cancel_event.is_set()

    def close(self) -> None:
        """Remove the publisher and subscriptions (and the TF listener this made) from the node."""
        self._node.destroy_subscription(self._subscription)
        self._node.destroy_publisher(self._publisher)
        if self._own_tf:
            self._tf.destroy()

    def _on_grid(self, msg: OccupancyGrid) -> None:
        with self._lock:
            self._grid_msg = msg

    def _to_map(self, msg: OccupancyGrid) -> OccupancyMap | None:
        """Convert a grid message, or log why it is unusable and return None."""
        logger = self._node.get_logger()
        info = msg.info
        width, height, resolution = int(info.width), int(info.height), float(info.resolution)
        problem = None
        if msg.header.frame_id and msg.header.frame_id != self.world_frame:
            problem = f"it is in frame '{msg.header.frame_id}', not '{self.world_frame}'"
        elif width <= 0 or height <= 0 or len(msg.data) != width * height:
            problem = f"{len(msg.data)} cells do not fill {width} x {height}"
        elif not (math.isfinite(resolution) and resolution > 0.0):
            problem = f"resolution {resolution} is not positive"
        else:
            q = info.origin.orientation
            quaternion = (q.x, q.y, q.z, q.w)
            if not all(math.isfinite(v) for v in quaternion) or not any(quaternion):
                problem = "its origin orientation is not a rotation"
            elif max(abs(a) for a in quat_to_rpy(quaternion)) > _MAX_ORIGIN_ROTATION_RAD:
                problem = "its origin is rotated; only axis-aligned grids are supported"
            elif not (math.isfinite(info.origin.position.x) and math.isfinite(info.origin.position.y)):
                problem = "its origin is not finite"
        if problem is not None:
            logger.error(f"ignoring occupancy grid: {problem}", throttle_duration_sec=5.0)
            return None
        data = np.array(msg.data, dtype=np.int8).reshape(height, width)
        return OccupancyMap(data, resolution, (float(info.origin.position.x), float(info.origin.position.y)))
