"""Skill library: schemas and call validation, and pick/place/home/gripper over the real Panda kinematics."""

import json
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.robot_model import PANDA_FINGER_JOINTS
from modular_robot.core.trajectory import validate_trajectory
from modular_robot.core.transforms import Transform, quat_to_rpy
from modular_robot.motion.grasping import RELEASE_SETTLE_S
from modular_robot.motion.kinematics import panda_kinematics
from modular_robot.ros import qos
from modular_robot.scenarios.predicates import evaluate
from modular_robot.skills.interfaces import MotionResult, SkillContext
from modular_robot.skills.library import (
    SKILLS,
    CallError,
    PlaceParams,
    bind_predicates,
    skill_catalog,
    validate_call,
)
from ros_helpers import SimHarness


@pytest.fixture(scope="module")
def kinematics():
    arm = panda_kinematics()
    yield arm
    arm.close()


class FakeArm:
    """The ROS side of the arm: validates each trajectory and jumps to its last waypoint.

    Closing the gripper stops at the width of the object under the grasp centre, if any.
    """

    def __init__(self, kinematics, objects):
        self.kinematics = kinematics
        self.q = np.array(kinematics.rest)
        self.opening = 0.08
        self.objects = objects
        self.trajectories = []
        self.gripper_commands = []
        self.steps = []

    def joint_positions(self):
        return self.q.copy()

    def execute(self, joint_names, path):
        trajectory = validate_trajectory(list(joint_names), path.times.tolist(), path.positions.tolist(),
                                         path.velocities.tolist(), self.kinematics.limits)
        self.trajectories.append(trajectory)
        self.steps.append(("arm", len(self.trajectories) - 1))
        self.q = trajectory.positions[-1].copy()
        return MotionResult(True)

    def set_gripper(self, opening):
        self.gripper_commands.append(opening)
        self.steps.append(("gripper", opening))
        self.opening = opening
        if opening == 0.0:
            position, _ = self.kinematics.forward(self.q)
            for obj in self.objects:
                if np.all(np.abs(position - obj.position) < obj.size / 2):
                    self.opening = float(min(obj.size[:2]))
        return MotionResult(True)

    def gripper_opening(self):
        return self.opening

    def pause(self, seconds):
        self.steps.append(("pause", seconds))
        return MotionResult(True)


class FakeWorld:
    def __init__(self, objects):
        self._objects = {o.id: o for o in objects}

    def lookup(self, object_id):
        return self._objects.get(object_id)

    def objects(self):
        return list(self._objects.values())

    def refresh(self, timeout_s):
        return True


class FakeSpeech:
    def __init__(self):
        self.said = []

    def say(self, text):
        self.said.append(text)


def _cube(object_id="red_cube", xy=(0.55, 0.10), edge=0.04, yaw=0.5):
    return MapObject(object_id, "red cube", "cube", ("red",), "red", [xy[0], xy[1], edge / 2], [edge] * 3, yaw)


def _tray():
    return MapObject("tray", "gray tray", "tray", ("gray",), "gray", [0.45, -0.25, 0.02], [0.30, 0.20, 0.04], 0.0)


def _context(kinematics, objects, **kwargs):
    arm = FakeArm(kinematics, objects)
    return SkillContext(arm, FakeWorld(objects), FakeSpeech(), kinematics, **kwargs), arm


def _run(name, args, ctx):
    params = validate_call(name, json.dumps(args))
    assert not isinstance(params, CallError), params
    return SKILLS[name].run(params, ctx)


# --- schemas and validation -----------------------------------------------------------------------


def test_catalog_lists_every_skill_with_schema_and_conditions():
    catalog = {entry["name"]: entry for entry in skill_catalog()}
    assert {"pick", "place", "place_at", "push", "move_arm_home", "open_gripper", "close_gripper",
            "say"} <= set(catalog)
    place = catalog["place"]
    assert place["parameters"]["properties"]["relation"]["enum"] == [
        "in", "on", "left_of", "right_of", "in_front_of", "behind", "near"]
    assert place["parameters"]["required"] == ["object", "relation", "target"]
    assert all(p["description"] for p in place["parameters"]["properties"].values())
    assert "holding(object)" in place["preconditions"] and "gripper_empty" in catalog["pick"]["preconditions"]
    place_at = catalog["place_at"]
    assert place_at["parameters"]["required"] == ["object", "position"]
    assert place_at["parameters"]["properties"]["position"]["minItems"] == 2
    assert place_at["preconditions"] == ["holding(object)", "free(position)", "reachable(position)"]
    assert place_at["effects"] == ["at(object, position)", "gripper_empty", "not holding(object)"]
    assert catalog["open_gripper"]["parameters"]["properties"]["opening"]["maximum"] == 0.08
    for entry in catalog.values():
        assert entry["description"] and not entry["description"].startswith(" ")
        json.dumps(entry)


def test_predicates_bind_to_call_arguments():
    params = PlaceParams(object="red_cube", relation="in", target="tray")
    assert bind_predicates(SKILLS["place"].effects, params) == [
        "in(red_cube, tray)", "gripper_empty", "not holding(red_cube)"]


@pytest.mark.parametrize("name, args, words", [
    ("fly", "{}", "unknown skill 'fly'"),
    ("pick", '{"object": 3}', "object: Input should be a valid string"),
    ("pick", "{}", "object: Field required"),
    ("pick", '{"object": "a", "speed": 2}', "speed: Extra inputs"),
    ("pick", "[1]", "must be a JSON object"),
    ("pick", "{object}", "not valid JSON"),
    ("place", '{"object": "a", "relation": "under", "target": "b"}', "relation: Input should be 'in'"),
    ("place_at", '{"object": "a", "position": [0.5]}', "position: List should have at least 2 items"),
    ("place_at", '{"object": "a", "position": [0.5, 0.1, 0.0]}', "position: List should have at most 2 items"),
    ("place_at", '{"object": "a", "position": [0.5, NaN]}', "position.1: Input should be a finite number"),
    ("place_at", '{"object": "a", "position": [0.5, 0.1], "z": 0.2}', "z: Extra inputs"),
    ("open_gripper", '{"opening": 0.5}', "opening: Input should be less than or equal to 0.08"),
    ("say", '{"text": ""}', "text: String should have at least 1 character"),
])
def test_bad_calls_are_rejected_with_reason(name, args, words):
    result = validate_call(name, args)
    assert isinstance(result, CallError) and words in result.reason, result


def test_valid_call_returns_typed_parameters():
    params = validate_call("place", '{"object": "red_cube", "relation": "left_of", "target": "tray"}')
    assert isinstance(params, PlaceParams) and params.relation == "left_of"
    assert validate_call("move_arm_home", "").model_dump() == {}


# --- execution over the real kinematics -----------------------------------------------------------


def test_pick_commands_grasp_pose_at_the_objects_grasp_point(kinematics):
    cube = _cube()
    ctx, arm = _context(kinematics, [cube])
    result = _run("pick", {"object": "red_cube"}, ctx)
    assert result.success, result.reason
    assert result.effects["unverified"] == ["holding(red_cube)"] and "unverified" in result.reason
    assert arm.gripper_commands[0] == pytest.approx(0.06) and arm.gripper_commands[1] == 0.0
    # Trajectories: approach, descent, lift; the fingers close at the descent's end.
    _, descent, lift = arm.trajectories
    grasp_point = np.array([0.55, 0.10, 0.04 - 0.02])
    position, _ = kinematics.forward(descent.positions[-1])
    assert np.linalg.norm(position - grasp_point) < 0.01
    lifted, _ = kinematics.forward(lift.positions[-1])
    assert lifted[2] == pytest.approx(grasp_point[2] + 0.1, abs=0.01)


def test_pick_in_a_shifted_arm_base_frame(kinematics):
    # The arm stands at world (1, 0) turned a half turn: world (0.45, -0.1) is base (0.55, 0.1).
    cube = _cube(xy=(0.45, -0.10))
    base_from_world = Transform.from_xyz_rpy(1.0, 0.0, 0.0, yaw=math.pi)
    ctx, arm = _context(kinematics, [], arm_base_from_world=base_from_world)
    ctx.world = FakeWorld([cube])
    arm.set_gripper = lambda opening: (arm.gripper_commands.append(opening),
                                       setattr(arm, "opening", opening or 0.04))[0] or MotionResult(True)
    assert _run("pick", {"object": "red_cube"}, ctx).success
    position, _ = kinematics.forward(arm.trajectories[1].positions[-1])
    assert np.linalg.norm(position - [0.55, 0.10, 0.02]) < 0.01


@pytest.mark.parametrize("objects, object_id, words", [
    ([], "red_cube", "unknown object 'red_cube'"),
    ([_cube(xy=(1.5, 0.0))], "red_cube", "unreachable"),
    ([_cube(edge=0.09)], "red_cube", "narrow side"),
])
def test_pick_refuses_without_moving(kinematics, objects, object_id, words):
    ctx, arm = _context(kinematics, objects)
    result = _run("pick", {"object": object_id}, ctx)
    assert not result.success and words in result.reason and result.effects["moved"] is False
    assert arm.trajectories == [] and arm.gripper_commands == []


def test_pick_of_nothing_fails_after_closing_on_air(kinematics):
    ctx, arm = _context(kinematics, [_cube()])
    arm.objects = []  # the map believes in a cube that is not there
    result = _run("pick", {"object": "red_cube"}, ctx)
    assert not result.success and "closed on nothing" in result.reason
    assert len(arm.trajectories) == 2, "no lift after an empty grasp"


def test_pick_then_place_in_tray_releases_above_the_tray(kinematics):
    ctx, arm = _context(kinematics, [_cube(), _tray()])
    assert _run("pick", {"object": "red_cube"}, ctx).success
    result = _run("place", {"object": "red_cube", "relation": "in", "target": "tray"}, ctx)
    assert result.success, result.reason
    assert result.effects["unverified"] == ["in(red_cube, tray)", "not holding(red_cube)"]
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    # Centred on the tray and lowered in: the cube's bottom (held 2 cm below its top) 1 cm above the
    # tray's floor, taken as 1 cm up its box (CONTAINER_WALL).
    assert np.linalg.norm(release - [0.45, -0.25, 0.01 + 0.01 + 0.02]) < 0.01
    # Carry and descent; the fingers loosen to 5 mm past the 4 cm cube and wait while it drops
    # between them, then open past its footprint's diagonal; retreat.
    last = len(arm.trajectories) - 1
    assert arm.steps[-6:] == [("arm", last - 2), ("arm", last - 1), ("gripper", pytest.approx(0.045)),
                              ("pause", RELEASE_SETTLE_S), ("gripper", pytest.approx(0.04 * math.sqrt(2) + 0.005)),
                              ("arm", last)]
    assert arm.gripper_commands[-1] > 0.04


def test_place_in_a_tray_with_its_centre_taken_releases_beside_the_occupant(kinematics):
    # The geometric detector reports what rests in the tray as objects of its own.
    occupant = _cube("blue_cube", xy=(0.45, -0.25), yaw=0.0)
    occupant.position[2] = 0.028
    ctx, arm = _context(kinematics, [_cube(), _tray(), occupant])
    arm.opening = 0.04
    result = _run("place", {"object": "red_cube", "relation": "in", "target": "tray"}, ctx)
    assert result.success, result.reason
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    assert result.effects["observed"]["release_position"] == pytest.approx(release, abs=0.005)
    # Clear of the occupant (bounding circles of two 4 cm cubes), the cube's circle inside the walls.
    assert math.dist(release[:2], occupant.position[:2]) >= 0.04 * math.sqrt(2)
    assert np.all(np.abs(release[:2] - [0.45, -0.25]) + 0.02 * math.sqrt(2) <= [0.15, 0.10])
    assert release[2] == pytest.approx(0.04 + 0.01 + 0.02, abs=0.005)


def test_place_in_a_tray_ignores_the_held_objects_own_record(kinematics):
    # Picked from the tray's centre, the cube may still be mapped there: its own record takes no spot.
    ctx, arm = _context(kinematics, [_cube(xy=(0.45, -0.25)), _tray()])
    arm.opening = 0.04
    assert _run("place", {"object": "red_cube", "relation": "in", "target": "tray"}, ctx).success
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    assert np.linalg.norm(release[:2] - [0.45, -0.25]) < 0.005


def test_place_in_a_full_container_is_refused_without_moving(kinematics):
    bin_ = MapObject("bin", "gray bin", "box", ("gray",), "gray", [0.5, -0.2, 0.04], [0.12, 0.12, 0.08], 0.0)
    ctx, arm = _context(kinematics, [_cube(), bin_, _cube("blue_cube", xy=(0.51, -0.19))])
    arm.opening = 0.04
    result = _run("place", {"object": "red_cube", "relation": "in", "target": "bin"}, ctx)
    assert not result.success and result.effects["moved"] is False
    assert result.reason == "no free spot in 'bin' for 'red_cube'"
    assert arm.trajectories == [] and arm.gripper_commands == []


@pytest.mark.parametrize("support, size, off_centre", [("box", [0.30, 0.20, 0.06], True),
                                                        ("green_cube", [0.05, 0.05, 0.06], False)])
def test_place_on_a_loaded_support_avoids_the_load_unless_stacking(kinematics, support, size, off_centre):
    below = MapObject(support, support, "box", (), None, [0.45, -0.2, 0.03], size, 0.0)
    load = _cube("blue_cube", xy=(0.45, -0.2), yaw=0.0)
    load.position[2] = 0.08
    ctx, arm = _context(kinematics, [_cube(), below, load])
    arm.opening = 0.04
    result = _run("place", {"object": "red_cube", "relation": "on", "target": support}, ctx)
    assert result.success, result.reason
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    assert (math.dist(release[:2], [0.45, -0.2]) >= 0.04 * math.sqrt(2)) is off_centre
    assert release[2] == pytest.approx(0.06 + 0.01 + 0.02, abs=0.005)


@pytest.mark.parametrize("relation, axis, sign", [("left_of", 1, 1.0), ("right_of", 1, -1.0),
                                                  ("in_front_of", 0, -1.0), ("behind", 0, 1.0)])
def test_place_beside_a_target_releases_on_that_side(kinematics, relation, axis, sign):
    landmark = _cube("blue_cube", xy=(0.5, 0.0))
    ctx, arm = _context(kinematics, [_cube(xy=(0.4, 0.3)), landmark])
    assert _run("pick", {"object": "red_cube"}, ctx).success
    result = _run("place", {"object": "red_cube", "relation": relation, "target": "blue_cube"}, ctx)
    assert result.success, result.reason
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    assert sign * (release[axis] - landmark.position[axis]) > 0.05
    # The cube (held 2 cm below its 4 cm top) is released with its bottom 1 cm above the table.
    assert release[2] == pytest.approx(0.03, abs=0.005)


def test_place_refuses_when_not_holding_or_target_unknown(kinematics):
    ctx, arm = _context(kinematics, [_cube(), _tray()])
    result = _run("place", {"object": "red_cube", "relation": "in", "target": "tray"}, ctx)
    assert not result.success and "does not hold" in result.reason
    arm.opening = 0.04
    result = _run("place", {"object": "red_cube", "relation": "on", "target": "shelf"}, ctx)
    assert not result.success and "unknown object 'shelf'" in result.reason
    assert arm.trajectories == []


def test_place_at_releases_the_object_centred_on_the_position(kinematics):
    ctx, arm = _context(kinematics, [_cube(), _tray()])
    assert _run("pick", {"object": "red_cube"}, ctx).success
    result = _run("place_at", {"object": "red_cube", "position": [0.45, 0.15]}, ctx)
    assert result.success, result.reason
    assert result.effects["unverified"] == ["at(red_cube, [0.45, 0.15])", "not holding(red_cube)"]
    # Carry, descent, retreat; the fingers open at the descent's end.
    assert len(arm.trajectories) == 3 + 3 and arm.gripper_commands[-1] > 0.04
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    # Centred on the point, the cube (held 2 cm below its 4 cm top) with its bottom 1 cm above the table.
    assert np.linalg.norm(release - [0.45, 0.15, 0.03]) < 0.005
    assert result.effects["observed"]["release_position"] == pytest.approx([0.45, 0.15, 0.03], abs=1e-9)


def test_place_at_a_world_position_in_a_shifted_arm_base_frame(kinematics):
    # The arm stands at world (1, 0) turned a half turn: world (0.5, -0.1) is base (0.5, 0.1).
    base_from_world = Transform.from_xyz_rpy(1.0, 0.0, 0.0, yaw=math.pi)
    ctx, arm = _context(kinematics, [_cube(xy=(0.45, -0.10))], arm_base_from_world=base_from_world)
    arm.opening = 0.04
    result = _run("place_at", {"object": "red_cube", "position": [0.5, -0.1]}, ctx)
    assert result.success, result.reason
    release, _ = kinematics.forward(arm.trajectories[-2].positions[-1])
    assert np.linalg.norm(release - [0.5, 0.1, 0.03]) < 0.005


@pytest.mark.parametrize("opening, position, words", [
    (0.001, [0.45, 0.15], "does not hold 'red_cube'"),
    (0.04, [0.5, -0.2], "the spot is taken by 'tray'"),
    (0.04, [0.62, 0.10], "the spot is taken by 'blue_cube'"),
    (0.04, [1.5, 0.0], "unreachable"),
])
def test_place_at_refuses_without_moving(kinematics, opening, position, words):
    blue = _cube("blue_cube", xy=(0.66, 0.12))
    ctx, arm = _context(kinematics, [_cube(), _tray(), blue])
    arm.opening = opening
    result = _run("place_at", {"object": "red_cube", "position": position}, ctx)
    assert not result.success and words in result.reason and result.effects["moved"] is False, result
    assert arm.trajectories == [] and arm.gripper_commands == []


def test_place_at_the_spot_the_held_object_was_picked_from(kinematics):
    # The map may still hold the picked cube where it stood: its own record does not take the spot.
    ctx, _ = _context(kinematics, [_cube()])
    assert _run("pick", {"object": "red_cube"}, ctx).success
    result = _run("place_at", {"object": "red_cube", "position": [0.55, 0.10]}, ctx)
    assert result.success, result.reason
    unknown = _run("place_at", {"object": "green_cube", "position": [0.4, 0.0]}, ctx)
    assert not unknown.success and "unknown object 'green_cube'" in unknown.reason


def test_home_and_gripper_skills_report_observed_state(kinematics):
    ctx, arm = _context(kinematics, [])
    arm.q = kinematics.rest + 0.2
    result = _run("move_arm_home", {}, ctx)
    assert result.success and np.allclose(arm.q, kinematics.rest)
    closed = _run("close_gripper", {}, ctx)
    assert closed.success and closed.effects["observed"]["something_between_fingers"] is False
    opened = _run("open_gripper", {"opening": 0.05}, ctx)
    assert opened.success and opened.effects["observed"]["gripper_opening"] == pytest.approx(0.05)
    assert _run("say", {"text": "done"}, ctx).success and ctx.speech.said == ["done"]


def test_push_moves_the_fingers_through_the_object_along_the_direction(kinematics):
    cube = _cube(yaw=0.0)
    ctx, arm = _context(kinematics, [cube])
    result = _run("push", {"object": "red_cube", "direction": "left", "distance": 0.08}, ctx)
    assert result.success, result.reason
    assert result.effects["unverified"] == ["pushed(red_cube, left, 0.08)"]
    # The fingertips sweep the cube's footprint at push height: the path crosses its centre line.
    tips = np.array([kinematics.forward(q)[0] for t in arm.trajectories for q in t.positions])
    low = tips[tips[:, 2] < 0.03]
    assert low[:, 1].min() < cube.position[1] - 0.02 and low[:, 1].max() > cube.position[1] + 0.05
    assert np.all(np.abs(low[:, 0] - cube.position[0]) < 0.005)
    assert arm.gripper_commands == [pytest.approx(0.04 - 0.015)]


def test_arm_skills_refuse_on_a_robot_without_an_arm():
    ctx = SkillContext(None, FakeWorld([_cube()]), FakeSpeech(), None)
    result = _run("pick", {"object": "red_cube"}, ctx)
    assert not result.success and "needs an arm" in result.reason and result.effects["moved"] is False
    assert _run("say", {"text": "hello"}, ctx).success


# --- in the simulator, over the real hardware topics ----------------------------------------------

SIM_SCENE = """
name: skills_pick_place
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.5]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
expect:
  - {in: [red_cube, tray]}
"""


def test_pick_and_place_in_tray_in_simulator(kinematics):
    harness = SimHarness(SIM_SCENE)

    class TopicArm:
        """ArmInterface over arm_controller/joint_trajectory, gripper_controller/commands and joint_states."""

        def __init__(self):
            harness.track(JointState, "joint_states")
            self.arm = harness.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory",
                                                      qos.RELIABLE)
            self.gripper = harness.probe.create_publisher(Float64MultiArray, "gripper_controller/commands",
                                                          qos.RELIABLE)

        def _state(self, names):
            msg = harness.last["joint_states"]
            return np.array([msg.position[msg.name.index(n)] for n in names])

        def joint_positions(self):
            return self._state(kinematics.joint_names)

        def execute(self, joint_names, path):
            msg = JointTrajectory(joint_names=list(joint_names))
            msg.points = [JointTrajectoryPoint(positions=q.tolist(), velocities=v.tolist(),
                                               time_from_start=Duration(sec=int(t), nanosec=round((t % 1) * 1e9)))
                          for t, q, v in zip(path.times, path.positions, path.velocities)]
            self.arm.publish(msg)
            goal = path.positions[-1]
            reached = harness.advance_until(lambda: np.max(np.abs(self.joint_positions() - goal)) < 2e-3,
                                            path.duration + 2.0)
            return MotionResult(reached, "" if reached else "goal not reached in time")

        def set_gripper(self, opening):
            self.gripper.publish(Float64MultiArray(data=[opening]))
            harness.advance(1.0)
            return MotionResult(True)

        def gripper_opening(self):
            return float(np.sum(self._state(PANDA_FINGER_JOINTS)))

        def pause(self, seconds):
            harness.advance(seconds)
            return MotionResult(True)

    class TruthWorld:
        """WorldModel from ground-truth boxes (the cube's edge from the scene; the tray's box from its AABB)."""

        def lookup(self, object_id):
            truth = harness.world.ground_truth().objects.get(object_id)
            if truth is None:
                return None
            lo, hi = np.array(truth.aabb_min), np.array(truth.aabb_max)
            if object_id == "red_cube":
                return MapObject(object_id, "red cube", "cube", (), "red", (lo + hi) / 2, [0.04] * 3,
                                 quat_to_rpy(truth.orientation)[2])
            return MapObject(object_id, object_id, object_id, (), None, (lo + hi) / 2, hi - lo, 0.0)

        def objects(self):
            return [self.lookup(i) for i in harness.world.ground_truth().objects]

        def refresh(self, timeout_s):
            harness.advance(0.1)
            return True

    try:
        arm = TopicArm()
        assert harness.advance_until(lambda: "joint_states" in harness.last, 1.0)
        initial = harness.world.ground_truth()
        ctx = SkillContext(arm, TruthWorld(), FakeSpeech(), kinematics)
        picked = _run("pick", {"object": "red_cube"}, ctx)
        assert picked.success, picked.reason
        placed = _run("place", {"object": "red_cube", "relation": "in", "target": "tray"}, ctx)
        assert placed.success, placed.reason
        harness.advance(1.0)
        verdict = evaluate({"in": ["red_cube", "tray"]}, harness.world.ground_truth(), initial)
        assert verdict.passed, verdict
    finally:
        harness.close()
