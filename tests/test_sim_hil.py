"""Hardware-in-the-loop tests: the sim bridge driven over real rclpy topics, as a robot would be."""

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.camera import depth_to_points
from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_HOME
from modular_robot.ros import qos
from modular_robot.ros.conversions import depth_image_to_metres, image_to_numpy, intrinsics_from_camera_info
from modular_robot.scenarios.scenario import parse_scenario
from modular_robot.sim import world as sim_world
from modular_robot.sim.world import SimWorld, auto_renderer
from ros_helpers import SimHarness

TABLETOP = """
name: hil_tabletop
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.05, pose: [0.50, 0.12, 0.0, 0.3]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
expect:
  - {unmoved: [tray]}
"""

HUSKY = """
name: hil_husky
robot: husky_base
objects:
  - {id: blue_cube, type: cube, color: blue, size: 0.2, pose: [4.0, 3.0, 0.0, 0.0]}
expect:
  - {unmoved: [blue_cube]}
"""

TWO_HUSKIES = """
name: hil_two
robots:
  - {name: r1, type: husky_base, pose: [0.0, 0.0, 0.0]}
  - {name: r2, type: husky_base, pose: [0.0, 3.0, 0.0]}
objects:
  - {id: box, type: cube, color: green, size: 0.2, pose: [5.0, -3.0, 0.0, 0.0]}
expect:
  - {unmoved: [box]}
"""

GOAL = (0.4, -0.2, -0.3, -1.9, 0.2, 1.9, 0.5)


def _duration(seconds: float) -> Duration:
    return Duration(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))


def _trajectory(names, points) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(names))
    msg.points = [JointTrajectoryPoint(positions=list(q), time_from_start=_duration(t)) for t, q in points]
    return msg


def _arm(msg: JointState) -> np.ndarray:
    return np.array([msg.position[msg.name.index(n)] for n in PANDA_ARM_JOINTS])


@pytest.fixture
def tabletop():
    harness = SimHarness(TABLETOP)
    harness.track(JointState, "joint_states")
    yield harness
    harness.close()


@pytest.fixture
def husky():
    harness = SimHarness(HUSKY)
    harness.track(Odometry, "odom")
    harness.track(JointState, "joint_states")
    yield harness
    harness.close()


def test_joint_trajectory_moves_arm_to_goal_within_one_mrad(tabletop):
    command = tabletop.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
    tabletop.advance(0.1)
    midpoint = tuple((a + b) / 2 for a, b in zip(PANDA_HOME, GOAL))
    command.publish(_trajectory(PANDA_ARM_JOINTS, [(1.5, midpoint), (3.0, GOAL)]))
    tabletop.advance(1.5)
    halfway = _arm(tabletop.last["joint_states"])
    assert np.max(np.abs(halfway - midpoint)) < 0.05, "the arm follows the trajectory's timing"
    tabletop.advance(2.5)
    error = np.abs(_arm(tabletop.last["joint_states"]) - GOAL)
    assert np.max(error) < 1e-3, f"joint errors {error}"


def test_gripper_command_sets_finger_opening(tabletop):
    command = tabletop.probe.create_publisher(Float64MultiArray, "gripper_controller/commands", qos.RELIABLE)
    tabletop.advance(0.1)
    command.publish(Float64MultiArray(data=[0.02]))
    tabletop.advance(1.0)
    js = tabletop.last["joint_states"]
    fingers = [js.position[js.name.index(n)] for n in ("panda_finger_joint1", "panda_finger_joint2")]
    assert sum(fingers) == pytest.approx(0.02, abs=1e-3)


@pytest.mark.parametrize("bad", [
    _trajectory(["panda_joint1", "not_a_joint"], [(1.0, (0.1, 0.1))]),
    _trajectory(PANDA_ARM_JOINTS, [(1.0, (math.nan,) * 7)]),
    _trajectory(PANDA_ARM_JOINTS, [(1.0, GOAL), (1.0, PANDA_HOME)]),
    _trajectory(PANDA_ARM_JOINTS, [(0.01, GOAL)]),
    _trajectory(PANDA_ARM_JOINTS, [(2.0, (5.0,) * 7)]),
    JointTrajectory(joint_names=list(PANDA_ARM_JOINTS)),
], ids=["wrong_joint_names", "nan_positions", "non_increasing_times", "huge_velocity", "outside_limits",
        "no_points"])
def test_malformed_trajectory_is_rejected_and_arm_does_not_move(tabletop, bad):
    command = tabletop.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
    gripper = tabletop.probe.create_publisher(Float64MultiArray, "gripper_controller/commands", qos.RELIABLE)
    tabletop.advance(0.2)
    before = _arm(tabletop.last["joint_states"])
    command.publish(bad)
    gripper.publish(Float64MultiArray(data=[math.nan]))
    gripper.publish(Float64MultiArray(data=[0.5, 0.1]))
    tabletop.advance(1.0)
    after = _arm(tabletop.last["joint_states"])
    assert np.max(np.abs(after - before)) < 2e-3
    # The node keeps working: a valid trajectory afterwards executes.
    command.publish(_trajectory(PANDA_ARM_JOINTS, [(2.0, GOAL)]))
    tabletop.advance(3.0)
    assert np.max(np.abs(_arm(tabletop.last["joint_states"]) - GOAL)) < 1e-3


def test_cmd_vel_drives_husky_and_odometry_agrees_with_ground_truth(husky):
    command = husky.probe.create_publisher(TwistStamped, "cmd_vel", qos.RELIABLE)
    start, _ = husky.world.robots[0].ground_truth_base()
    twist = TwistStamped()
    twist.twist.linear.x, twist.twist.angular.z = 0.6, 0.25
    for _ in range(60):
        command.publish(twist)
        husky.advance(0.1)
    end, yaw = husky.world.robots[0].ground_truth_base()
    travelled = math.dist(start[:2], end[:2])
    assert travelled > 2.5, "the base moved"
    pose = husky.last["odom"].pose.pose
    odom_yaw = 2 * math.atan2(pose.orientation.z, pose.orientation.w)
    error = math.dist((pose.position.x, pose.position.y), end[:2])
    assert error < 0.02 * travelled, f"odom off by {error:.3f} m over {travelled:.2f} m"
    assert abs(math.remainder(odom_yaw - yaw, 2 * math.pi)) < 0.02
    # Without further commands the base stops (cmd_vel timeout).
    husky.advance(2.0)
    assert abs(husky.last["odom"].twist.twist.linear.x) < 0.01


def test_cmd_vel_beyond_limits_is_rejected(husky):
    command = husky.probe.create_publisher(TwistStamped, "cmd_vel", qos.RELIABLE)
    start, _ = husky.world.robots[0].ground_truth_base()
    for bad in ((50.0, 0.0), (0.0, math.inf), (math.nan, 0.0)):
        twist = TwistStamped()
        twist.twist.linear.x, twist.twist.angular.z = bad
        command.publish(twist)
        husky.advance(0.3)
    end, _ = husky.world.robots[0].ground_truth_base()
    assert math.dist(start[:2], end[:2]) < 0.005


@pytest.mark.parametrize("renderer", ["tiny", "egl"])
def test_camera_back_projects_known_cube_through_tf(renderer):
    harness = SimHarness(TABLETOP, renderer=renderer, width=640, height=480)
    try:
        harness.track(Image, "camera/color/image_raw", qos.SENSOR_DATA)
        harness.track(Image, "camera/depth/image_raw", qos.SENSOR_DATA)
        harness.track(CameraInfo, "camera/color/camera_info", qos.SENSOR_DATA)
        listener = harness.track_tf()
        assert harness.advance_until(
            lambda: len(harness.last) == 3 and listener.can_transform("map", "camera_color_optical_frame"), 2.0)
        harness.advance(0.1)
        info = harness.last["camera/color/camera_info"]
        rgb = image_to_numpy(harness.last["camera/color/image_raw"])
        depth = depth_image_to_metres(harness.last["camera/depth/image_raw"])
        assert rgb.shape == (480, 640, 3) and depth.shape == (480, 640)
        assert info.header.frame_id == "camera_color_optical_frame"
        red = (rgb[:, :, 0] > 150) & (rgb[:, :, 1] < 60) & (rgb[:, :, 2] < 60)
        assert red.sum() > 200, "the cube is in view"
        masked = np.where(red, depth, np.nan).astype(np.float32)
        points = depth_to_points(masked, intrinsics_from_camera_info(info))
        to_map = listener.lookup("map", info.header.frame_id)
        world_points = to_map.apply(points)
        truth = harness.world.ground_truth().objects["red_cube"]
        top = world_points[world_points[:, 2] > world_points[:, 2].max() - 0.004]
        assert abs(world_points[:, 2].max() - truth.aabb_max[2]) < 0.01
        assert np.linalg.norm(top[:, :2].mean(axis=0) - np.array(truth.center[:2])) < 0.01
    finally:
        harness.close()


def test_auto_renderer_is_egl_where_its_plugin_loads_else_tiny(monkeypatch):
    """A fixed rule, not a timing race: the two renderers draw different images of one scene."""
    world = SimWorld(parse_scenario(TABLETOP), width=64, height=48, renderer="auto")
    try:
        assert world.renderer == "egl", "EGL loads on this machine (the egl cases above need it)"
    finally:
        world.close()
    monkeypatch.setattr(sim_world, "load_egl", lambda client: False)
    sim_world._egl_loads.cache_clear()
    try:
        assert auto_renderer() == "tiny"
    finally:
        sim_world._egl_loads.cache_clear()


def test_emergency_stop_freezes_joints_and_wheels_within_100ms():
    harness = SimHarness(TABLETOP.replace("panda_tabletop", "mobile_manipulator"))
    try:
        states: list[JointState] = []
        harness.track(JointState, "joint_states", keep=states)
        arm = harness.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
        base = harness.probe.create_publisher(TwistStamped, "cmd_vel", qos.RELIABLE)
        estop = harness.probe.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        arm.publish(_trajectory(PANDA_ARM_JOINTS, [(4.0, GOAL)]))
        twist = TwistStamped()
        twist.twist.linear.x = 0.8
        for _ in range(10):
            base.publish(twist)
            harness.advance(0.1)
        estop.publish(Bool(data=True))
        harness.spin()
        stop_time = harness.world.sim_time
        base.publish(twist)
        harness.advance(0.6)
        after = [s for s in states if s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 >= stop_time + 0.1]
        assert len(after) > 20
        velocities = np.array([s.velocity for s in after])
        assert np.max(np.abs(velocities)) < 0.05, "joints and wheels still moving after 100 ms"
        positions = np.array([s.position[:7] for s in after])
        assert np.ptp(positions, axis=0).max() < 2e-3
        # Commands are refused while the stop is engaged; releasing lets new commands through.
        arm.publish(_trajectory(PANDA_ARM_JOINTS, [(3.0, PANDA_HOME)]))
        harness.advance(0.5)
        assert np.ptp(np.array([s.position[:7] for s in states[-20:]]), axis=0).max() < 2e-3
        estop.publish(Bool(data=False))
        harness.spin()
        arm.publish(_trajectory(PANDA_ARM_JOINTS, [(3.0, PANDA_HOME)]))
        harness.advance(3.5)
        assert np.max(np.abs(np.array(states[-1].position[:7]) - PANDA_HOME)) < 5e-3
    finally:
        harness.close()


def test_two_namespaced_robots_do_not_cross_talk():
    harness = SimHarness(TWO_HUSKIES)
    try:
        for name in ("r1", "r2"):
            harness.track(Odometry, f"{name}/odom")
            harness.track(JointState, f"{name}/joint_states")
        listener = harness.track_tf("r2/")
        command = harness.probe.create_publisher(TwistStamped, "r1/cmd_vel", qos.RELIABLE)
        starts = [r.ground_truth_base()[0] for r in harness.world.robots]
        twist = TwistStamped()
        twist.twist.linear.x = 0.5
        for _ in range(20):
            command.publish(twist)
            harness.advance(0.1)
        ends = [r.ground_truth_base()[0] for r in harness.world.robots]
        assert math.dist(starts[0][:2], ends[0][:2]) > 0.7
        assert math.dist(starts[1][:2], ends[1][:2]) < 0.005
        assert harness.last["r1/odom"].pose.pose.position.x > 0.7
        assert abs(harness.last["r2/odom"].pose.pose.position.x) < 0.005
        assert "front_left_wheel" in harness.last["r2/joint_states"].name
        # Each robot's transforms live on its own tf topic: r2's base is still at r2's odom origin.
        assert harness.advance_until(lambda: listener.can_transform("odom", "base_link"), 1.0)
        assert abs(listener.lookup("odom", "base_link").translation[0]) < 0.005
    finally:
        harness.close()


def test_wrist_camera_sees_the_table_through_tf():
    harness = SimHarness(TABLETOP.replace("robot: panda_tabletop", "robot: panda_tabletop\ncamera: wrist"))
    try:
        harness.track(Image, "camera/depth/image_raw", qos.SENSOR_DATA)
        harness.track(CameraInfo, "camera/depth/camera_info", qos.SENSOR_DATA)
        listener = harness.track_tf()
        assert harness.advance_until(
            lambda: len(harness.last) == 2 and listener.can_transform("map", "camera_color_optical_frame"), 2.0)
        harness.advance(0.1)
        info = harness.last["camera/depth/camera_info"]
        depth = depth_image_to_metres(harness.last["camera/depth/image_raw"])
        points = listener.lookup("map", info.header.frame_id).apply(
            depth_to_points(depth, intrinsics_from_camera_info(info)))
        # At the home pose the hand looks down at the table: most of the view is the table top (z = 0).
        assert np.mean(np.abs(points[:, 2]) < 0.005) > 0.5
    finally:
        harness.close()
