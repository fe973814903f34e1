"""Skill server node: the execute_skill action and the catalog, in the simulated stack in lockstep."""

import json
import threading

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_HOME
from modular_robot.core.stack import parse_stack
from modular_robot.harness.lockstep import MAX_LAG_S, LockstepStack
from modular_robot.harness.skill_trials import SkillTrial
from modular_robot.motion.grasping import RELEASE_SETTLE_S
from modular_robot.ros import qos
from modular_robot.scenarios.predicates import evaluate
from modular_robot.scenarios.scenario import parse_scenario
from modular_robot_interfaces.action import ExecuteSkill

SCENE = """
name: skill_server
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.045, pose: [0.55, 0.12, 0.0, 0.4]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.22, 0.0, 0.0]}
expect:
  - {in: [red_cube, tray]}
"""


TWO_CUBES = """
name: two_cubes_in_tray
robot: panda_tabletop
objects:
  - {id: cube_a, type: cube, color: red, size: 0.04, pose: [0.55, 0.12, 0.0, 0.4]}
  - {id: cube_b, type: cube, color: blue, size: 0.04, pose: [0.40, 0.20, 0.0, -0.3]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.22, 0.0, 0.0]}
expect:
  - {in: [cube_a, tray]}
  - {in: [cube_b, tray]}
"""


def _stack(perception: bool, critic: bool = False):
    nodes = [{"name": "sim", "executable": "sim_bridge",
              "parameters": {"camera_width": 320, "camera_height": 240, "camera_rate_hz": 10.0}},
             {"name": "safety_shield", "executable": "safety_shield", "parameters": {"robot": "panda_tabletop"}},
             {"name": "skill_server", "executable": "skill_server", "parameters": {"robot": "panda_tabletop"}}]
    if perception:
        nodes += [{"name": "perception", "executable": "perception",
                   "parameters": {"detector": "geometric", "self_filter": "panda"}},
                  {"name": "semantic_map", "executable": "semantic_map"}]
    if critic:
        nodes.append({"name": "critic", "executable": "critic", "parameters": {"robot": "panda_tabletop"}})
    return parse_stack({"name": "skills_test", "use_sim_time": True, "nodes": nodes})


@pytest.fixture
def bare():
    """The stack without perception: the map stays empty."""
    trial = SkillTrial(parse_scenario(SCENE), _stack(perception=False), renderer="tiny")
    # Else a call that gets past validation may be refused for want of joint states (seen once in CI).
    assert trial.wait_ready()
    commands = []
    node = trial.stack.client
    node.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", commands.append, qos.RELIABLE)
    node.create_subscription(Float64MultiArray, "gripper_controller/commands", commands.append, qos.RELIABLE)
    yield trial, commands
    trial.close()


def test_catalog_is_latched_with_schemas_and_availability(bare):
    trial, _ = bare
    received = []
    trial.stack.client.create_subscription(String, "skills/catalog", received.append, qos.LATCHED)
    assert trial.stack.advance_until(lambda: received, 2.0)
    catalog = {entry["name"]: entry for entry in json.loads(received[-1].data)}
    assert {"pick", "place", "push", "navigate_to", "search", "say"} <= set(catalog)
    assert catalog["pick"]["available"] and not catalog["navigate_to"]["available"]
    assert catalog["place"]["parameters"]["required"] == ["object", "relation", "target"]
    assert "holding(object)" in catalog["place"]["preconditions"]


@pytest.mark.parametrize("skill, args, words", [
    ("fly", "{}", "unknown skill 'fly'"),
    ("pick", '{"object": 7}', "object: Input should be a valid string"),
    ("pick", "{not json", "not valid JSON"),
    ("pick", '{"object": "ghost_cube_9"}', "unknown object 'ghost_cube_9'"),
    ("place", '{"object": "a", "relation": "under", "target": "b"}', "relation: Input should be"),
    ("navigate_to", '{"pose": [1.0, 0.0]}', "needs a base"),
])
def test_bad_calls_are_refused_without_motion(bare, skill, args, words):
    trial, commands = bare
    call = trial.call(skill, args, timeout_s=5.0)
    assert call.status == "aborted" and not call.success
    assert words in call.message, call.message
    assert call.effects["moved"] is False
    trial.stack.advance(0.2)
    assert commands == []
    # The server keeps serving.
    assert trial.call("say", {"text": "still here"}).success


def test_cancel_then_pick_and_place_in_tray_from_perception():
    with SkillTrial(parse_scenario(SCENE), _stack(perception=True), renderer="tiny") as trial:
        states, grips = [], []
        trial.stack.client.create_subscription(JointState, "joint_states", states.append, qos.RELIABLE)
        trial.stack.client.create_subscription(
            Float64MultiArray, "gripper_controller/commands",
            lambda msg: grips.append((trial.stack.sim_time, msg.data[0])), qos.RELIABLE)
        assert trial.wait_for_map(["red_cube", "tray"]), [o.id for o in trial.map_objects()]
        cube, tray = trial.map_id("red_cube"), trial.map_id("tray")
        cancelled = trial.call("pick", {"object": cube}, cancel_after_s=0.6)
        assert cancelled.status == "canceled" and "cancelled" in cancelled.message, cancelled
        trial.stack.advance(0.5)
        stopped_at = np.array(states[-1].position[:7])
        assert np.all(np.abs(states[-1].velocity[:7]) < 0.01)
        trial.stack.advance(0.5)
        assert np.allclose(states[-1].position[:7], stopped_at, atol=1e-3)
        picked = trial.call("pick", {"object": cube})
        assert picked.success, picked.message
        assert picked.effects["unverified"] == [f"holding({cube})"]
        assert picked.feedback[0] == "validating" and any("arm motion" in p for p in picked.feedback)
        assert trial.world.ground_truth().robot.holding == "red_cube"
        placed = trial.call("place", {"object": cube, "relation": "in", "target": tray})
        assert placed.success, placed.message
        # The fingers loosen, wait (robot time) while the cube drops between them, then open wide.
        (loosened_at, loosened), (opened_at, opened) = grips[-2:]
        assert 0.045 < loosened < 0.055 < opened
        # Each command reaches the sim up to MAX_LAG_S after the sim time its sender saw.
        assert opened_at - loosened_at >= RELEASE_SETTLE_S - 2 * MAX_LAG_S, opened_at - loosened_at
        trial.stack.advance(1.0)
        verdict = evaluate({"in": ["red_cube", "tray"]}, trial.world.ground_truth(), trial.world.ground_truth())
        assert verdict.passed, verdict.detail


def test_object_outside_the_workspace_is_refused_and_the_arm_does_not_move():
    scene = SCENE.replace("pose: [0.55, 0.12, 0.0, 0.4]", "pose: [0.12, 0.30, 0.0, 0.4]")
    with SkillTrial(parse_scenario(scene), _stack(perception=True), renderer="tiny") as trial:
        trajectories = []
        trial.stack.client.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                               trajectories.append, qos.RELIABLE)
        assert trial.wait_for_map(["red_cube"]), [o.id for o in trial.map_objects()]
        call = trial.call("pick", {"object": trial.map_id("red_cube")})
        assert call.status == "aborted" and "safety shield refused" in call.message, call
        assert "leaves the workspace" in call.message
        trial.stack.advance(0.2)
        assert trajectories == []
        assert trial.world.ground_truth().objects["red_cube"].center[0] == pytest.approx(0.12, abs=0.005)


# Far enough from home that move_arm_home moves for about two seconds.
AWAY = (0.9, -0.1, -0.5, -1.6, 0.4, 2.0, 0.2)


def _send_arm_away(stack) -> None:
    """Move the arm away from home directly on the sim's controller, so that move_arm_home has work to do."""
    away = stack.client.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
    away.publish(JointTrajectory(joint_names=list(PANDA_ARM_JOINTS), points=[
        JointTrajectoryPoint(positions=list(AWAY), time_from_start=Duration(sec=2))]))
    stack.advance(2.5)


def test_the_emergency_stop_stops_the_running_skill_and_refuses_new_ones_until_released(bare):
    trial, commands = bare
    estop = trial.stack.client.create_publisher(Bool, "emergency_stop", qos.LATCHED)
    _send_arm_away(trial.stack)
    sent = len(commands)
    goal = trial.stack.prepared.send_goal_async(ExecuteSkill.Goal(skill="move_arm_home", args_json="{}"))
    assert trial.stack.wait_future(goal, 10.0) and goal.result().accepted
    assert trial.stack.advance_until(lambda: len(commands) > sent, 5.0)
    trial.stack.advance(0.3)
    estop.publish(Bool(data=True))
    result = goal.result().get_result_async()
    assert trial.stack.wait_future(result, 2.0), "the skill did not end on the emergency stop"
    stopped = result.result().result
    assert not stopped.success and stopped.message.startswith("emergency stop: move_arm_home was stopped")
    assert json.loads(stopped.effects_json)["emergency_stop"] is True
    refused = trial.call("say", {"text": "hello"})
    assert not refused.success and "emergency stop engaged" in refused.message
    assert refused.effects == {"moved": False, "emergency_stop": True}
    estop.publish(Bool(data=False))
    trial.stack.advance(0.2)
    assert trial.call("say", {"text": "hello"}).success


class _StandInClient:
    """A client of `execute_skill` in a context of its own, spinning on its own thread, like a planner process."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("planner_stand_in", context=self.context)
        self.client = ActionClient(self.node, ExecuteSkill, "execute_skill")
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._stop = Future()
        self._spinner = threading.Thread(target=self._executor.spin_until_future_complete, args=(self._stop,),
                                         daemon=True)
        self._spinner.start()

    def leave(self) -> None:
        """Go away, as a planner that dies does."""
        if self._stop.done():
            return
        self._stop.set_result(None)
        self._spinner.join(5.0)
        self._executor.shutdown()
        self.client.destroy()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def test_a_skill_whose_only_client_goes_away_is_stopped():
    # No evaluator's client here: the skill server stops a skill when no client of its action is left.
    stack = LockstepStack(parse_scenario(SCENE), _stack(perception=False), renderer="tiny", log=lambda line: None)
    planner = _StandInClient()
    try:
        commands = []
        stack.client.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", commands.append,
                                         qos.RELIABLE)
        _send_arm_away(stack)
        assert stack.wait_server(planner.client, 10.0)
        sent = len(commands)
        goal = planner.client.send_goal_async(ExecuteSkill.Goal(skill="move_arm_home", args_json="{}"))
        assert stack.advance_until(lambda: len(commands) > sent, 5.0)
        stack.advance(0.2)
        assert goal.done() and goal.result().accepted
        planner.leave()
        robot = stack.world.robots[0]
        stack.advance(1.0)
        still = robot.arm_positions()
        stack.advance(1.0)
        assert np.abs(robot.arm_positions() - still).max() < 1e-3, "the arm still moves for a client that went away"
        assert np.abs(robot.arm_positions() - np.array(PANDA_HOME)).max() > 0.05, "stopped only at home"
    finally:
        planner.leave()
        stack.close()
