"""Arm motion: kinematics round trips, top-down grasp plans, trajectory timing, and a pick in the sim."""

import math
from itertools import pairwise

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_MAX_OPENING
from modular_robot.core.trajectory import JointLimits, sample, validate_trajectory
from modular_robot.core.transforms import quat_to_rpy
from modular_robot.motion.grasping import (
    CONTAINER_WALL,
    FINGER_HALF_THICKNESS,
    HAND_ABOVE_GRASP,
    NEIGHBOUR_GAP,
    PLACE_MARGIN,
    PUSH_RUN_UP,
    PUSH_SPAN_MARGIN,
    RELEASE_CLEARANCE,
    footprint_radius,
    grasp_rejection,
    place_pose,
    place_spots,
    push_plan,
    release_opening,
    top_down_grasp,
    top_down_orientation,
)
from modular_robot.motion.kinematics import panda_kinematics
from modular_robot.motion.timing import interpolate_cartesian, time_parameterize
from modular_robot.ros import qos
from ros_helpers import SimHarness


@pytest.fixture(scope="module")
def kinematics():
    arm = panda_kinematics()
    yield arm
    arm.close()


def _angle_between(q1: np.ndarray, q2: np.ndarray) -> float:
    return 2.0 * math.acos(min(1.0, abs(float(np.dot(q1, q2)))))


def test_forward_kinematics_of_home_points_grasp_centre_down(kinematics):
    position, quaternion = kinematics.forward(kinematics.rest)
    assert 0.3 < position[0] < 0.5 and abs(position[1]) < 1e-6 and 0.3 < position[2] < 0.6
    assert _angle_between(quaternion, top_down_orientation(0.0)) < 1e-3


def test_inverse_kinematics_reproduces_random_reachable_poses(kinematics):
    rng = np.random.default_rng(7)
    margin = 0.1 * (kinematics.upper - kinematics.lower)
    solved = 0
    for _ in range(30):
        target_q = rng.uniform(kinematics.lower + margin, kinematics.upper - margin)
        position, quaternion = kinematics.forward(target_q)
        q = kinematics.inverse(position, quaternion, seed=kinematics.rest)
        if q is None:
            continue
        solved += 1
        assert np.all(q >= kinematics.lower) and np.all(q <= kinematics.upper)
        reached_p, reached_q = kinematics.forward(q)
        assert np.linalg.norm(reached_p - position) < 1e-3
        assert math.degrees(_angle_between(reached_q, quaternion)) < 1.0
    assert solved >= 28, f"only {solved}/30 reachable poses solved"


def test_inverse_kinematics_refuses_unreachable_pose_with_reason(kinematics):
    solution = kinematics.solve([2.0, 0.0, 0.3], top_down_orientation(0.0))
    assert solution.q is None and "reach" in solution.reason
    assert kinematics.inverse([2.0, 0.0, 0.3], top_down_orientation(0.0)) is None
    # Within the reach bound but pointing the gripper into the robot's own base: no solution.
    assert kinematics.inverse([0.0, 0.0, -0.3], top_down_orientation(0.0)) is None


@pytest.mark.parametrize("size, yaw, expected_yaw, width", [
    ((0.04, 0.04, 0.04), 0.0, 0.0, 0.04),                       # cube: the wrist stays as at home
    ((0.05, 0.05, 0.08), 0.0, 0.0, 0.05),                       # cylinder, as tall as wide
    ((0.12, 0.03, 0.05), 0.4, 0.4, 0.03),                       # long side along x: close across y
    ((0.03, 0.12, 0.05), 0.4, 0.4 - math.pi / 2, 0.03),         # long side along y: turn a quarter
    ((0.12, 0.03, 0.05), 2.0, 2.0 - math.pi, 0.03),             # same grasp, a half turn nearer home
])
def test_top_down_grasp_closes_across_narrow_side(size, yaw, expected_yaw, width):
    centre = np.array([0.5, 0.0, size[2] / 2])
    plan = top_down_grasp(centre, size, yaw)
    assert plan is not None
    assert math.remainder(plan.yaw - expected_yaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)
    assert plan.width == pytest.approx(width)
    assert width < plan.opening <= PANDA_MAX_OPENING
    top = size[2]
    assert plan.grasp.position[2] == pytest.approx(top - min(size[2] / 2, 0.02))
    assert plan.grasp.position[2] >= 0.015
    assert np.allclose(plan.pre_grasp.position, plan.grasp.position + [0, 0, 0.1])
    assert np.allclose(plan.lift.position, plan.grasp.position + [0, 0, 0.1])
    closing_axis = _rotate(plan.grasp.quaternion, [0.0, 1.0, 0.0])
    box_narrow_axis = np.array([math.cos(yaw), math.sin(yaw), 0.0]) if size[0] < size[1] else np.array(
        [-math.sin(yaw), math.cos(yaw), 0.0])
    assert abs(np.dot(closing_axis, box_narrow_axis)) == pytest.approx(1.0, abs=1e-9)
    assert _rotate(plan.grasp.quaternion, [0.0, 0.0, 1.0]) == pytest.approx([0.0, 0.0, -1.0])


def test_flat_object_is_grasped_above_the_table():
    plan = top_down_grasp([0.5, 0.1, 0.01], (0.05, 0.05, 0.02), 0.0)
    assert plan.grasp.position[2] == pytest.approx(0.015)


@pytest.mark.parametrize("size, words", [((0.10, 0.09, 0.05), "narrow side"), ((0.05, 0.05, 0.005), "high"),
                                          ((0.05, -0.01, 0.05), "positive")])
def test_ungraspable_objects_are_refused_with_reason(size, words):
    assert top_down_grasp([0.5, 0.0, 0.05], size, 0.0) is None
    assert words in grasp_rejection(size)


class _Box:
    def __init__(self, position, size, yaw=0.0):
        self.position, self.size, self.yaw = np.array(position), np.array(size), yaw


def test_place_in_container_clears_its_walls_and_on_support_rests_on_top():
    tray = _Box([0.45, -0.25, 0.02], [0.30, 0.20, 0.04], yaw=0.3)
    held = (0.04, 0.04, 0.04)
    inside = place_pose(tray, "in", held)
    assert np.allclose(inside.release.position[:2], tray.position[:2])
    # Lowered in: the held cube's bottom (grasped 2 cm below its top) 1 cm above the tray's floor.
    assert inside.release.position[2] - 0.02 == pytest.approx(CONTAINER_WALL + RELEASE_CLEARANCE)
    assert math.remainder(inside.yaw - 0.3, math.pi) == pytest.approx(0.0, abs=1e-9)
    assert inside.pre_place.position[2] == pytest.approx(inside.release.position[2] + 0.1)
    cube = _Box([0.5, 0.1, 0.025], [0.05, 0.05, 0.05])
    on = place_pose(cube, "on", held)
    assert on.release.position[2] - 0.02 == pytest.approx(0.05 + 0.01)
    assert place_pose(_Box([0.5, 0.1, 0.05], [0.06, 0.06, 0.1]), "in", (0.08, 0.05, 0.04)) is None
    assert place_pose(tray, "under", held) is None


def _local(point, box):
    """Return a point's x, y in a box's frame."""
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    d = np.asarray(point)[:2] - box.position[:2]
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])


def test_place_spots_start_at_the_centre_and_avoid_what_lies_in_the_container():
    tray = _Box([0.45, -0.25, 0.02], [0.30, 0.20, 0.04], yaw=0.3)
    held = (0.04, 0.04, 0.04)
    radius = footprint_radius(held)
    empty = place_spots(tray, "in", held, [])
    assert np.allclose(empty[0], tray.position[:2])
    # Nearest the centre first, each spot's circle inside the walls with the margin.
    offsets = [float(np.hypot(*_local(p, tray))) for p in empty]
    assert np.all(np.diff(offsets) > -1e-9) and len(empty) > 50
    assert all(np.all(np.abs(_local(p, tray)) + radius + PLACE_MARGIN <= tray.size[:2] / 2 - CONTAINER_WALL + 1e-9)
               for p in empty)
    occupant = _Box([0.45, -0.25, 0.06], [0.05, 0.05, 0.04])
    # Objects outside the footprint (the table's other cubes) take no spot in it.
    outside = _Box([0.45, 0.0, 0.02], [0.05, 0.05, 0.04])
    spots = place_spots(tray, "in", held, [occupant, outside])
    assert math.dist(spots[0], tray.position[:2]) >= radius + footprint_radius(occupant.size) + NEIGHBOUR_GAP
    clear = [p for p in empty if math.dist(p, occupant.position[:2]) >= footprint_radius(occupant.size) + radius
             + NEIGHBOUR_GAP]
    assert np.array_equal(spots, clear)


def test_place_spots_fill_a_container_and_keep_a_round_ones_walls_clear():
    bowl = _Box([0.5, 0.0, 0.03], [0.16, 0.16, 0.06])
    held = (0.04, 0.04, 0.04)
    spots = place_spots(bowl, "in", held, [])
    # The map's box does not say the bowl is round: no spot reaches into its box's corners.
    assert max(math.dist(p, bowl.position[:2]) for p in spots) + footprint_radius(held) + PLACE_MARGIN <= \
        0.08 - CONTAINER_WALL + 1e-9
    assert place_spots(bowl, "in", held, [_Box([0.5, 0.0, 0.02], [0.04, 0.04, 0.04])]) == []
    # A tray's walls stand on its box's edges: its corners take objects too, so a second cube finds
    # a spot far enough from one at the centre for perception to tell the two apart.
    tray = _Box([0.45, -0.25, 0.025], [0.24, 0.24, 0.05])
    centred = [_Box([0.45, -0.25, 0.02], held)]
    assert place_spots(tray, "in", held, centred) == []
    assert place_spots(tray, "in", held, centred, rectangular=True)
    placed = []
    while spots := place_spots(tray, "in", held, placed, rectangular=True):
        placed.append(_Box([*spots[0], 0.02], held))
    assert len(placed) >= 4
    assert all(np.all(np.abs(_local(p.position[:2], tray)) + footprint_radius(held) + PLACE_MARGIN
                      <= tray.size[:2] / 2 - CONTAINER_WALL + 1e-9) for p in placed)
    assert all(math.dist(a.position[:2], b.position[:2]) >= 2 * footprint_radius(held) + NEIGHBOUR_GAP - 1e-9
               for i, a in enumerate(placed) for b in placed[i + 1:])


def test_place_spots_on_a_large_support_avoid_its_load_and_a_small_one_stacks_centred():
    held = (0.04, 0.04, 0.04)
    box = _Box([0.5, 0.0, 0.05], [0.30, 0.20, 0.10], yaw=-0.2)
    load = _Box([0.5, 0.0, 0.12], [0.05, 0.05, 0.04])
    spots = place_spots(box, "on", held, [load])
    assert math.dist(spots[0], load.position[:2]) >= footprint_radius(held) + footprint_radius(load.size)
    assert np.all(np.abs(_local(spots[0], box)) + footprint_radius(held) <= box.size[:2] / 2)
    assert np.allclose(place_spots(box, "on", held, [])[0], box.position[:2])
    cube = _Box([0.5, 0.1, 0.025], [0.05, 0.05, 0.05])
    on_cube = _Box([0.5, 0.1, 0.07], [0.04, 0.04, 0.04])
    assert [p.tolist() for p in place_spots(cube, "on", held, [on_cube])] == [[0.5, 0.1]]
    assert place_spots(box, "under", held, []) == []


def test_place_pose_releases_above_a_given_spot():
    tray = _Box([0.45, -0.25, 0.02], [0.30, 0.20, 0.04])
    plan = place_pose(tray, "in", (0.04, 0.04, 0.04), spot=(0.50, -0.22))
    # 7 cm from the wall the opened fingers have no room to go in: the cube is released over the rim.
    assert plan.release.position == pytest.approx([0.50, -0.22, 0.04 + RELEASE_CLEARANCE + 0.02])
    assert plan.pre_place.position[:2] == pytest.approx([0.50, -0.22])


def test_an_object_placed_in_a_container_is_lowered_to_just_above_its_floor():
    bowl = _Box([0.52, 0.26, 0.03], [0.16, 0.16, 0.06])
    ball = (0.04, 0.04, 0.04)
    plan = place_pose(bowl, "in", ball)
    # The ball's bottom a clearance above the floor (its grasp centre is half its height up).
    assert plan.release.position[2] == pytest.approx(CONTAINER_WALL + RELEASE_CLEARANCE + 0.02)
    assert plan.release.position[:2] == pytest.approx([0.52, 0.26])
    assert plan.pre_place.position[2] > 0.06 + 0.04, "the carry ends with the ball above the rim"
    # Placed on the bowl, it is released a clearance over its top.
    assert place_pose(bowl, "on", ball).release.position[2] == pytest.approx(0.06 + RELEASE_CLEARANCE + 0.02)


def test_a_deep_container_lowers_the_object_only_as_far_as_the_hand_clears_the_rim():
    bin_ = _Box([0.5, 0.0, 0.1], [0.2, 0.2, 0.2])
    plan = place_pose(bin_, "in", (0.04, 0.04, 0.04))
    assert plan.release.position[2] + HAND_ABOVE_GRASP == pytest.approx(0.2 + RELEASE_CLEARANCE)


def test_an_object_is_released_over_the_rim_where_the_fingers_have_no_room():
    bowl = _Box([0.5, 0.0, 0.03], [0.16, 0.16, 0.06])
    ball = (0.04, 0.04, 0.04)
    over_rim_z = 0.06 + RELEASE_CLEARANCE + 0.02
    # The gripper's x points to the arm base at the origin, so its fingers close along y: off centre
    # along y a pad meets the wall; as far off along x the pads have room.
    near_wall = place_pose(bowl, "in", ball, spot=(0.5, 0.03))
    assert near_wall.yaw == pytest.approx(0.0)
    assert near_wall.release.position[2] == pytest.approx(over_rim_z)
    across = place_pose(bowl, "in", ball, spot=(0.53, 0.0))
    assert across.release.position[2] < over_rim_z
    # A ball already in the bowl beside the spot: the fingers would come down on it.
    other = _Box([0.5, 0.05, 0.03], [0.04, 0.04, 0.04])
    assert place_pose(bowl, "in", ball, others=[other]).release.position[2] == pytest.approx(over_rim_z)
    far = _Box([0.9, 0.5, 0.02], [0.04, 0.04, 0.04])
    assert place_pose(bowl, "in", ball, others=[far]).release.position[2] < over_rim_z


@pytest.mark.parametrize("direction, axis, sign", [("forward", 0, 1), ("backward", 0, -1), ("left", 1, 1),
                                                   ("right", 1, -1)])
def test_push_starts_behind_the_face_and_moves_it_the_distance(direction, axis, sign):
    cube = _Box([0.5, 0.1, 0.02], [0.06, 0.04, 0.04], yaw=0.0)
    plan = push_plan(cube, direction, 0.1)
    depth = cube.size[axis]
    behind = (plan.start.position[axis] - cube.position[axis]) * sign
    assert behind == pytest.approx(-(depth / 2 + PUSH_RUN_UP))
    # The pads' front moves from the run-up to the face, then on by the distance.
    travelled = (plan.end.position[axis] - plan.start.position[axis]) * sign
    assert travelled - (PUSH_RUN_UP - FINGER_HALF_THICKNESS) == pytest.approx(0.1)
    assert plan.start.position[2] == pytest.approx(0.02) and plan.end.position[2] == pytest.approx(0.02)
    # The fingers span the face across the push, a little narrower than it.
    assert plan.opening == pytest.approx(cube.size[1 - axis] - PUSH_SPAN_MARGIN)
    closing_axis = _rotate(plan.start.quaternion, [0.0, 1.0, 0.0])
    assert abs(closing_axis[axis]) == pytest.approx(0.0, abs=1e-9)
    assert plan.pre_push.position[2] == pytest.approx(plan.start.position[2] + 0.1)


def test_push_refuses_low_objects_and_unknown_directions():
    assert push_plan(_Box([0.5, 0.0, 0.003], [0.05, 0.05, 0.006]), "forward", 0.1) is None
    assert push_plan(_Box([0.5, 0.0, 0.02], [0.04, 0.04, 0.04]), "up", 0.1) is None


def _rotate(quaternion, vector):
    x, y, z, w = quaternion
    matrix = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    return matrix @ np.asarray(vector)


@pytest.mark.parametrize("n_waypoints", [2, 3, 6])
def test_timed_path_respects_velocity_and_acceleration_limits(n_waypoints):
    rng = np.random.default_rng(n_waypoints)
    limits = {name: JointLimits(-2.8, 2.8, v) for name, v in zip(PANDA_ARM_JOINTS, (2.1, 2.1, 2.1, 2.1, 2.6, 2.6, 2.6))}
    vmax = np.array([limit.velocity for limit in limits.values()])
    amax = np.array([2.5, 2.5, 3.0, 3.0, 4.0, 4.0, 4.0])
    path = rng.uniform(-2.5, 2.5, (n_waypoints, 7))
    path[1] = path[0] + 0.01  # a segment too short to reach full speed
    timed = time_parameterize(path, vmax, amax)
    trajectory = validate_trajectory(list(PANDA_ARM_JOINTS), timed.times.tolist(), timed.positions.tolist(),
                                     timed.velocities.tolist(), limits)
    for waypoint in path:
        assert np.min(np.max(np.abs(timed.positions - waypoint), axis=1)) < 1e-9, "passes every waypoint"
    assert np.allclose(timed.velocities[[0, -1]], 0.0)
    dt = 1e-3
    samples = np.array([sample(trajectory, path[0], t)[0] for t in np.arange(0.0, timed.duration + dt, dt)])
    velocity = np.diff(samples, axis=0) / dt
    acceleration = np.diff(velocity, axis=0) / dt
    assert np.all(np.abs(velocity) <= vmax * 1.01)
    assert np.all(np.abs(acceleration) <= amax * 1.01)
    # Time-optimal for one joint at its limits: the slowest segment's trapezoid is not stretched.
    assert timed.duration < 1.05 * sum(
        max(_trapezoid_time(abs(d), v, a) for d, v, a in zip(b - a0, vmax, amax)) for a0, b in pairwise(path))


def _trapezoid_time(distance: float, v: float, a: float) -> float:
    return distance / v + v / a if distance > v * v / a else 2 * math.sqrt(distance / a)


def test_cartesian_interpolation_keeps_a_straight_line(kinematics):
    start = np.array(kinematics.rest)
    position, quaternion = kinematics.forward(start)
    target = position + np.array([0.05, 0.1, -0.15])
    path = interpolate_cartesian(kinematics, start, (target, quaternion), steps=10)
    assert path is not None and len(path) == 11
    for k, q in enumerate(path):
        p, o = kinematics.forward(q)
        assert np.linalg.norm(p - (position + (target - position) * k / 10)) < 1e-3
        assert _angle_between(o, quaternion) < math.radians(1.0)
    assert interpolate_cartesian(kinematics, start, (position + [1.5, 0, 0], quaternion), steps=5) is None


PICK_SCENE = """
name: motion_pick
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.5]}
expect:
  - {holding: red_cube}
"""


def _duration(seconds: float) -> Duration:
    return Duration(sec=int(seconds), nanosec=round((seconds % 1) * 1e9))


def test_pick_cube_in_simulator_over_topics(kinematics):
    harness = SimHarness(PICK_SCENE)
    try:
        harness.track(JointState, "joint_states")
        arm = harness.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
        gripper = harness.probe.create_publisher(Float64MultiArray, "gripper_controller/commands", qos.RELIABLE)
        assert harness.advance_until(lambda: "joint_states" in harness.last, 1.0)
        vmax = np.array([kinematics.limits[n].velocity for n in PANDA_ARM_JOINTS]) * 0.5

        def current() -> np.ndarray:
            msg = harness.last["joint_states"]
            return np.array([msg.position[msg.name.index(n)] for n in PANDA_ARM_JOINTS])

        def move(path) -> None:
            timed = time_parameterize(path, vmax, kinematics.accelerations)
            msg = JointTrajectory(joint_names=list(PANDA_ARM_JOINTS))
            msg.points = [JointTrajectoryPoint(positions=q.tolist(), velocities=v.tolist(),
                                               time_from_start=_duration(t))
                          for t, q, v in zip(timed.times, timed.positions, timed.velocities)]
            arm.publish(msg)
            goal = timed.positions[-1]
            assert harness.advance_until(lambda: np.max(np.abs(current() - goal)) < 2e-3, timed.duration + 2.0)

        truth = harness.world.ground_truth().objects["red_cube"]
        lo, hi = np.array(truth.aabb_min), np.array(truth.aabb_max)
        # The observed box: the cube's edge from the scene, its centre and yaw from ground truth.
        plan = top_down_grasp((lo + hi) / 2, (0.04, 0.04, 0.04), quat_to_rpy(truth.orientation)[2])
        gripper.publish(Float64MultiArray(data=[plan.opening]))
        start = current()
        pre_grasp = kinematics.inverse(plan.pre_grasp.position, plan.pre_grasp.quaternion, seed=start)
        assert pre_grasp is not None
        move([start, pre_grasp])
        descent = interpolate_cartesian(kinematics, current(), (plan.grasp.position, plan.grasp.quaternion), 4)
        assert descent is not None
        move(descent)
        gripper.publish(Float64MultiArray(data=[0.0]))
        harness.advance(1.0)
        lift = interpolate_cartesian(kinematics, current(), (plan.lift.position, plan.lift.quaternion), 4)
        assert lift is not None
        move(lift)
        harness.advance(0.5)
        state = harness.world.ground_truth()
        raised = state.objects["red_cube"].aabb_min[2] - lo[2]
        assert raised >= 0.05, f"cube raised {raised:.3f} m"
        assert state.robot.holding == "red_cube"
    finally:
        harness.close()


def test_release_opens_past_the_footprint_diagonal_so_a_turned_cube_cannot_wedge():
    # A 5 cm cube turned between the fingers spans up to its 7.07 cm diagonal: width + 2 cm is not enough.
    assert release_opening(0.05, diagonal=math.hypot(0.05, 0.05)) == pytest.approx(0.0757, abs=1e-4)
    assert release_opening(0.02, diagonal=math.hypot(0.02, 0.02)) == pytest.approx(0.04)
    assert release_opening(0.04, diagonal=math.hypot(0.04, 0.08)) == 0.08
    assert release_opening(0.03, irregular=True) == 0.08
