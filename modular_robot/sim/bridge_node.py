"""ROS 2 driver for the simulated robots: the hardware interfaces of ARCHITECTURE.md, nothing more.

Subscription callbacks only validate and queue commands under a lock; one stepping loop (a timer)
owns the PyBullet client, applies queued commands, steps physics and publishes. The emergency stop
has its own callback group, so that it is queued while the loop steps (a loaded machine's tick can
step 0.1 s of sim time) and applied at the next physics step.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass

import pybullet
from geometry_msgs.msg import TransformStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, Header, String
from trajectory_msgs.msg import JointTrajectory

from modular_robot.core.robot_model import PANDA_MAX_OPENING
from modular_robot.core.trajectory import TrajectoryError, check_start_velocity, validate_trajectory
from modular_robot.core.transforms import Transform
from modular_robot.paths import resolve_data_path
from modular_robot.ros import qos
from modular_robot.ros.conversions import (
    camera_info_from_intrinsics,
    make_transform_stamped,
    ns_to_stamp,
    numpy_to_image,
)
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.scenarios.scenario import load_scenario
from modular_robot.sim.robots import OPTICAL_FROM_LINK, SimRobot
from modular_robot.sim.world import SimWorld

try:
    from tf2_msgs.msg import TFMessage
except ImportError as error:  # pragma: no cover - depends on the build
    raise ImportError("tf2_msgs is missing: run `make setup` to build interfaces/compat/tf2_msgs") from error

CAMERA_FRAME = "camera_link"
OPTICAL_FRAME = "camera_color_optical_frame"
MODES = ("realtime", "lockstep")
# Real-time mode: sim time catches up at most this much per tick, and never lags the wall clock by
# more (s). A machine too slow for real time slows sim time down (every node runs on it) instead of
# piling up a debt that it would later pay in bursts of 10x speed between camera frames.
CATCH_UP_S = 0.1
MAX_LAG_S = 0.2
# Seconds between reports of the real-time factor achieved while the machine cannot keep up.
SLOW_REPORT_S = 5.0
# How often the driver looks for senders of arm trajectories that left the graph (wall s). The
# shield is the only sender in a stack: killed mid-trajectory, it would leave the motion playing.
SENDER_CHECK_PERIOD_S = 0.1


@dataclass
class _Pending:
    """Commands received since the last step, waiting for the stepping loop."""

    trajectory: object | None = None
    gripper: float | None = None
    twist: tuple[float, float] | None = None
    estop: bool | None = None
    hold: bool = False


class _RobotInterfaces:
    """Publishers, subscriptions and queued commands of one robot, under its namespace prefix."""

    def __init__(self, node: SimBridgeNode, robot: SimRobot, index: int) -> None:
        self.node = node
        self.robot = robot
        self.index = index
        self.pending = _Pending()
        self.twist_deadline = -math.inf
        p = f"{robot.name}/" if robot.name else ""
        self.joint_pub = node.create_publisher(JointState, p + "joint_states", qos.RELIABLE)
        self.tf_pub = node.create_publisher(TFMessage, p + "tf", qos.TF)
        self.tf_static_pub = node.create_publisher(TFMessage, p + "tf_static", qos.TF_STATIC)
        self.color_pub = node.create_publisher(Image, p + "camera/color/image_raw", qos.SENSOR_DATA)
        self.info_pub = node.create_publisher(CameraInfo, p + "camera/color/camera_info", qos.SENSOR_DATA)
        self.depth_pub = node.create_publisher(Image, p + "camera/depth/image_raw", qos.SENSOR_DATA)
        self.depth_info_pub = node.create_publisher(CameraInfo, p + "camera/depth/camera_info", qos.SENSOR_DATA)
        if node.publish_segmentation:
            self.segmentation_pub = node.create_publisher(Image, p + "camera/segmentation/image_raw",
                                                          qos.SENSOR_DATA)
            self.labels_pub = node.create_publisher(String, p + "camera/segmentation/labels", qos.LATCHED)
            self.labels_sent = ""
        node.create_subscription(Bool, p + "emergency_stop", self.on_estop, qos.LATCHED,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.arm_senders = 0
        if robot.has_arm:
            self.trajectory_sub = node.create_subscription(JointTrajectory, p + "arm_controller/joint_trajectory",
                                                           self.on_trajectory, qos.RELIABLE)
            node.create_subscription(Float64MultiArray, p + "gripper_controller/commands",
                                     self.on_gripper, qos.RELIABLE)
        if robot.has_base:
            self.odom_pub = node.create_publisher(Odometry, p + "odom", qos.RELIABLE)
            if node.cmd_vel_stamped:
                node.create_subscription(TwistStamped, p + "cmd_vel", lambda m: self.on_twist(m.twist), qos.RELIABLE)
            else:
                node.create_subscription(Twist, p + "cmd_vel", self.on_twist, qos.RELIABLE)
        parents = robot.link_parents()
        self.dynamic_edges = [(child, parent) for child, (parent, fixed) in parents.items() if not fixed]
        self.static_edges = [(child, parent) for child, (parent, fixed) in parents.items() if fixed]

    def log_rejected(self, what: str, reason: str) -> None:
        self.node.get_logger().error(f"{self.robot.name or 'robot'}: rejected {what}: {reason}")

    # --- callbacks: validate, then queue -------------------------------------------------------

    def on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            trajectory = validate_trajectory(
                list(msg.joint_names),
                [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points],
                [list(p.positions) for p in msg.points],
                [list(p.velocities) for p in msg.points],
                self.robot.arm_limits,
            )
        except TrajectoryError as error:
            self.log_rejected("joint trajectory", str(error))
            return
        with self.node.lock:
            self.pending.trajectory = trajectory

    def on_gripper(self, msg: Float64MultiArray) -> None:
        values = list(msg.data)
        if len(values) != 1 or not math.isfinite(values[0]) or not 0.0 <= values[0] <= PANDA_MAX_OPENING:
            self.log_rejected("gripper command", f"expected one opening in [0, {PANDA_MAX_OPENING}] m, got {values}")
            return
        with self.node.lock:
            self.pending.gripper = values[0]

    def on_twist(self, twist: Twist) -> None:
        v, w = twist.linear.x, twist.angular.z
        others = (twist.linear.y, twist.linear.z, twist.angular.x, twist.angular.y)
        limits = self.robot.base_limits
        if not all(math.isfinite(x) for x in (v, w, *others)):
            self.log_rejected("cmd_vel", "non-finite velocity")
            return
        if abs(v) > limits.linear or abs(w) > limits.angular:
            self.log_rejected("cmd_vel", f"({v:.3f} m/s, {w:.3f} rad/s) beyond limits "
                                         f"({limits.linear} m/s, {limits.angular} rad/s)")
            return
        with self.node.lock:
            self.pending.twist = (v, w)

    def on_estop(self, msg: Bool) -> None:
        with self.node.lock:
            self.pending.estop = bool(msg.data)

    def check_arm_senders(self) -> None:
        """Hold the arm when a sender of arm trajectories left the graph: its motion must not play on."""
        count = self.trajectory_sub.get_publisher_count()
        if count < self.arm_senders:
            with self.node.lock:
                self.pending.hold = True
        self.arm_senders = count

    # --- stepping loop side ----------------------------------------------------------------------

    def apply_pending(self, now: float) -> None:
        """Apply queued commands; called by the stepping loop with the lock held."""
        pending, self.pending = self.pending, _Pending()
        robot = self.robot
        if pending.estop is not None:
            if pending.estop and not robot.frozen:
                self.node.get_logger().warning(f"{robot.name or 'robot'}: emergency stop engaged")
                robot.freeze()
            elif not pending.estop and robot.frozen:
                self.node.get_logger().info(f"{robot.name or 'robot'}: emergency stop released")
                robot.release()
        if pending.hold and not robot.frozen:
            # The emergency stop's brake, then commands are taken again: the restarted sender's next
            # trajectory starts from rest here.
            self.node.get_logger().warning(f"{robot.name or 'robot'}: a sender of arm trajectories left: "
                                           "the arm stops where it is")
            robot.freeze()
            robot.release()
        if robot.frozen:
            if pending.trajectory is not None or pending.gripper is not None or pending.twist:
                self.log_rejected("command", "emergency stop is engaged")
            return
        if pending.trajectory is not None:
            try:
                check_start_velocity(pending.trajectory, robot.arm_positions_of(pending.trajectory.joint_names),
                                     robot.arm_limits)
                robot.start_trajectory(pending.trajectory, now)
            except TrajectoryError as error:
                self.log_rejected("joint trajectory", str(error))
        if pending.gripper is not None:
            robot.set_gripper(pending.gripper)
        if pending.twist is not None:
            robot.set_twist(*pending.twist)
            self.twist_deadline = now + self.node.cmd_vel_timeout
        elif now > self.twist_deadline and robot.has_base:
            # As diff_drive_controller: a silent command stream stops the base.
            robot.set_twist(0.0, 0.0)

    def header(self, stamp, frame: str) -> Header:
        return Header(stamp=stamp, frame_id=frame)

    def publish_joint_states(self, stamp) -> None:
        position, velocity, effort = self.robot.joint_state()
        self.joint_pub.publish(JointState(header=self.header(stamp, ""), name=self.robot.joint_names(),
                                          position=position.tolist(), velocity=velocity.tolist(),
                                          effort=effort.tolist()))

    def publish_odometry(self, stamp) -> TransformStamped:
        pose, twist = self.robot.odometry()
        msg = Odometry(header=self.header(stamp, "odom"), child_frame_id="base_link")
        base_height = self.robot.base_pose()[0][2]
        msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.position.z = pose[0], pose[1], base_height
        q = pybullet.getQuaternionFromEuler([0, 0, pose[2]])
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = q
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(twist[0]), float(twist[1])
        self.odom_pub.publish(msg)
        return _transform(stamp, "odom", "base_link", (pose[0], pose[1], base_height), q)

    def publish_tf(self, stamp) -> None:
        poses = self.robot.link_poses()
        transforms = [_relative(stamp, parent, child, poses[parent], poses[child])
                      for child, parent in self.dynamic_edges]
        if self.robot.has_base:
            transforms.append(self.publish_odometry(stamp))
        if transforms:
            self.tf_pub.publish(TFMessage(transforms=transforms))

    def publish_static_tf(self, stamp) -> None:
        poses = self.robot.link_poses()
        transforms = [_relative(stamp, parent, child, poses[parent], poses[child])
                      for child, parent in self.static_edges]
        mount = self.robot.camera
        transforms.append(_transform(stamp, mount.parent, CAMERA_FRAME, mount.xyz,
                                     pybullet.getQuaternionFromEuler(mount.rpy)))
        transforms.append(_transform(stamp, CAMERA_FRAME, OPTICAL_FRAME, (0, 0, 0), OPTICAL_FROM_LINK))
        transforms.append(_transform(stamp, "map", "odom", (0, 0, 0), (0, 0, 0, 1)))
        if not self.robot.has_base:
            transforms.append(_transform(stamp, "odom", "base_link", (0, 0, 0), (0, 0, 0, 1)))
        self.tf_static_pub.publish(TFMessage(transforms=transforms))

    def publish_camera(self, stamp, world: SimWorld) -> None:
        header = self.header(stamp, OPTICAL_FRAME)
        if self.node.publish_segmentation:
            rgb, depth, segmentation = world.render_with_segmentation(self.index)
            labels = json.dumps(world.segment_labels(), sort_keys=True)
            if labels != self.labels_sent:
                self.labels_pub.publish(String(data=labels))
                self.labels_sent = labels
            self.segmentation_pub.publish(numpy_to_image(segmentation, "32SC1", header=header))
        else:
            rgb, depth = world.render(self.index)
        info = camera_info_from_intrinsics(world.cameras[self.index].intrinsics, header)
        self.color_pub.publish(numpy_to_image(rgb, "rgb8", header=header))
        self.depth_pub.publish(numpy_to_image(depth, "32FC1", header=header))
        self.info_pub.publish(info)
        self.depth_info_pub.publish(info)


def _transform(stamp, parent: str, child: str, xyz, quat) -> TransformStamped:
    return make_transform_stamped(Transform(xyz, quat), parent, child, stamp)


def _relative(stamp, parent: str, child: str, parent_pose, child_pose) -> TransformStamped:
    inv = pybullet.invertTransform(*parent_pose)
    xyz, quat = pybullet.multiplyTransforms(*inv, *child_pose)
    return _transform(stamp, parent, child, xyz, quat)


class _Schedule:
    """Fixed-rate events in sim time."""

    def __init__(self, rate_hz: float) -> None:
        self.period = 1.0 / rate_hz if rate_hz > 0 else math.inf
        self.next = 0.0

    def due(self, now: float) -> bool:
        if now + 1e-9 < self.next:
            return False
        self.next = max(self.next + self.period, now)
        return True


class SimBridgeNode(StackNode):
    """Runs a SimWorld and exposes it through the robot hardware interfaces."""

    def __init__(self, world: SimWorld | None = None, **kwargs) -> None:
        super().__init__("sim", **kwargs)
        self.world: SimWorld | None = None
        self.lock = threading.Lock()
        self._declare_parameters()

        def get(name: str):
            return self.get_parameter(name).value

        self.mode = get("mode")
        if self.mode not in MODES:
            raise ValueError(f"parameter mode must be one of {MODES}, got {self.mode!r}")
        self.cmd_vel_stamped = get("cmd_vel_stamped")
        self.cmd_vel_timeout = get("cmd_vel_timeout_s")
        self.real_time_factor = get("real_time_factor")
        self.publish_segmentation = get("publish_segmentation")
        if world is None:
            scenario_path = get("scenario")
            if not scenario_path:
                raise ValueError("parameter 'scenario' (path to a scenario YAML) is required")
            world = SimWorld(load_scenario(resolve_data_path(scenario_path)), width=get("camera_width"),
                             height=get("camera_height"), renderer=get("renderer"),
                             mesh_detail=get("robot_mesh_detail"))
        self.world = world
        self.get_logger().info(
            f"world '{world.scenario.name}': {len(world.bodies)} objects, robots "
            f"{[(r.name or '/', r.kind) for r in world.robots]}, renderer {world.renderer}, mode {self.mode}")
        self.robots = [_RobotInterfaces(self, robot, i) for i, robot in enumerate(world.robots)]
        if any(robot.has_arm for robot in world.robots):
            self.create_timer(SENDER_CHECK_PERIOD_S, self._check_senders, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", qos.CLOCK)
        self._schedules = {
            name: _Schedule(get(f"{name}_rate_hz")) for name in ("clock", "joint_states", "tf", "camera")
        }
        stamp = ns_to_stamp(world.sim_time_ns)
        for robot in self.robots:
            robot.publish_static_tf(stamp)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._wall_start = time.monotonic()
        self._sim_start = world.sim_time
        self._slow_since: tuple[float, float] | None = None
        self.last_camera_stamp_ns = -1
        self.last_clock_stamp_ns = -1
        self._timer = None
        if get("autostart"):
            self.start()

    def _check_senders(self) -> None:
        for robot in self.robots:
            if robot.robot.has_arm:
                robot.check_arm_senders()

    def _declare_parameters(self) -> None:
        def declare(name, default, description, read_only=False):
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=read_only))

        declare("scenario", "", "Scenario YAML that builds the world.", read_only=True)
        declare("mode", "realtime", "realtime: sim time follows the wall clock; lockstep: as fast as possible.")
        declare("real_time_factor", 1.0, "Sim seconds per wall second in realtime mode.")
        declare("renderer", "auto", "auto (EGL when it loads, else TinyRenderer), egl, or tiny.", read_only=True)
        declare("robot_mesh_detail", "low", "Robot visual meshes: low (collision meshes, fast rendering) or full.",
                read_only=True)
        declare("camera_width", 640, "Camera image width (px).", read_only=True)
        declare("camera_height", 480, "Camera image height (px).", read_only=True)
        declare("camera_rate_hz", 15.0, "RGB-D frames per second of sim time.", read_only=True)
        declare("joint_states_rate_hz", 100.0, "joint_states per second of sim time.", read_only=True)
        declare("tf_rate_hz", 50.0, "tf and odom messages per second of sim time.", read_only=True)
        declare("clock_rate_hz", 100.0, "/clock messages per second of sim time.", read_only=True)
        declare("publish_segmentation", False, "Publish ground-truth segmentation and labels (sim_truth "
                "ablations only: it hands ground truth to the stack).", read_only=True)
        declare("cmd_vel_stamped", True, "cmd_vel is geometry_msgs/TwistStamped (else Twist).", read_only=True)
        declare("cmd_vel_timeout_s", 0.5, "Stop the base when no cmd_vel came for this long (sim s).")
        declare("autostart", True, "Start stepping on construction (tests drive advance() instead).",
                read_only=True)

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "mode" and param.value not in MODES:
                return SetParametersResult(successful=False, reason=f"mode must be one of {MODES}")
            if param.name in ("real_time_factor", "cmd_vel_timeout_s") and not (
                    isinstance(param.value, float) and param.value > 0 and math.isfinite(param.value)):
                return SetParametersResult(successful=False, reason=f"{param.name} must be a positive number")
        for param in params:
            if param.name == "mode":
                self.mode = param.value
                self._wall_start, self._sim_start = time.monotonic(), self.world.sim_time
            elif param.name == "real_time_factor":
                self.real_time_factor = param.value
                self._wall_start, self._sim_start = time.monotonic(), self.world.sim_time
            elif param.name == "cmd_vel_timeout_s":
                self.cmd_vel_timeout = param.value
        return SetParametersResult(successful=True)

    def start(self) -> None:
        """Start the stepping timer (lockstep steps in small chunks so callbacks interleave)."""
        if self._timer is None:
            self._wall_start, self._sim_start = time.monotonic(), self.world.sim_time
            # The sim is the source of /clock: its own loop must run on the steady clock, not sim time.
            self._timer = self.create_timer(0.01 if self.mode == "realtime" else 0.001, self._on_timer,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_timer(self) -> None:
        if self.mode == "lockstep":
            self.advance(0.01)
            return
        now = time.monotonic()
        behind = self._sim_start + (now - self._wall_start) * self.real_time_factor - self.world.sim_time
        if behind > MAX_LAG_S:
            # Back-pressure: drop the debt beyond the bound; sim time runs slower than the wall clock.
            self._wall_start += (behind - MAX_LAG_S) / self.real_time_factor
            behind = MAX_LAG_S
            self._report_slow(now)
        elif behind < MAX_LAG_S / 2:
            self._slow_since = None
        self.advance(min(behind, CATCH_UP_S))

    def _report_slow(self, now: float) -> None:
        """Warn, at most every SLOW_REPORT_S, of the real-time factor the machine achieves."""
        if self._slow_since is None:
            self._slow_since = (now, self.world.sim_time)
            return
        wall_start, sim_start = self._slow_since
        if now - wall_start >= SLOW_REPORT_S:
            achieved = (self.world.sim_time - sim_start) / (now - wall_start)
            self.get_logger().warning(f"the machine keeps the simulation at {achieved:.2f}x real time (asked "
                                      f"{self.real_time_factor:.2f}x): sim time runs slower, never more than "
                                      f"{MAX_LAG_S} s behind")
            self._slow_since = (now, self.world.sim_time)

    def advance(self, seconds: float) -> None:
        """Step the world by `seconds` of sim time, applying commands and publishing what is due."""
        world = self.world
        end_step = world.steps + int(round(seconds / world.time_step))
        while world.steps < end_step:
            with self.lock:
                now = world.sim_time
                for robot in self.robots:
                    robot.apply_pending(now)
            world.step()
            self._publish_due()

    def _publish_due(self) -> None:
        now = self.world.sim_time
        due = {name for name, schedule in self._schedules.items() if schedule.due(now)}
        if not due:
            return
        stamp = ns_to_stamp(self.world.sim_time_ns)
        if "clock" in due:
            self.clock_pub.publish(ClockMsg(clock=stamp))
            self.last_clock_stamp_ns = self.world.sim_time_ns
        for robot in self.robots:
            if "joint_states" in due:
                robot.publish_joint_states(stamp)
            # A camera frame comes with the transforms at its own stamp, as a robot_state_publisher
            # fed at the joint-state rate gives: consumers need not extrapolate the arm's pose.
            if "tf" in due or "camera" in due:
                robot.publish_tf(stamp)
            if "camera" in due:
                robot.publish_camera(stamp, self.world)
        if "camera" in due:
            self.last_camera_stamp_ns = self.world.sim_time_ns

    def destroy_node(self) -> None:
        """Destroy the node and disconnect the physics client (if the world was built)."""
        super().destroy_node()
        if self.world is not None:
            self.world.close()


def main(args=None) -> None:
    """Run the sim bridge node until shutdown; a bad scenario ends it with a clear error."""
    # Single-threaded: the EGL renderer's context is current only in the thread that built the world,
    # and a camera frame rendered from an executor worker crashes the process. The stop then waits
    # for the tick in progress at most (measured 12-21 ms of sim time with the brake).
    spin_node(SimBridgeNode, "sim", args)


if __name__ == "__main__":
    main()
