"""Critic node in the simulated stack: verdicts from real perception after a real pick, after knocking it
out, and after putting a cube down at a position.

The stack (sim, perception, map, safety shield, skill server, critic) runs in lockstep through
`SkillTrial`, which steps the simulator while the nodes spin on a multi-threaded executor: the
critic's service blocks while it waits for fresh frames.
"""

import math
import time

import pytest
import rclpy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header, String
from trajectory_msgs.msg import JointTrajectory

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS
from modular_robot.core.stack import parse_stack
from modular_robot.harness.skill_trials import SkillTrial
from modular_robot.nodes.critic_node import CriticNode
from modular_robot.ros import qos
from modular_robot.ros.conversions import ns_to_stamp
from modular_robot.scenarios.scenario import Disturbance, ObjectPose, parse_scenario
from modular_robot_interfaces.msg import ObjectObservation, ObjectObservationArray, SemanticMap, SemanticObject, Verdict
from modular_robot_interfaces.srv import CheckStep

SCENE = """
name: critic_pick
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.5]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
expect:
  - {holding: red_cube}
"""
STACK = {"name": "critic_test", "use_sim_time": True, "nodes": [
    {"name": "sim", "executable": "sim_bridge",
     "parameters": {"camera_width": 320, "camera_height": 240, "camera_rate_hz": 10.0}},
    {"name": "perception", "executable": "perception", "parameters": {"detector": "geometric"}},
    {"name": "semantic_map", "executable": "semantic_map"},
    {"name": "safety_shield", "executable": "safety_shield"},
    {"name": "skill_server", "executable": "skill_server"},
    {"name": "critic", "executable": "critic", "parameters": {"post_timeout_s": 2.0}},
]}


@pytest.fixture(scope="module")
def episode():
    """Pick the red cube through the skill server, ask the critic, knock the cube out, ask again."""
    results = {}
    with SkillTrial(parse_scenario(SCENE), parse_stack(STACK), renderer="tiny") as trial:
        verdicts = []
        trial.stack.client.create_subscription(Verdict, "verdicts", verdicts.append, qos.RELIABLE)
        assert trial.wait_for_map(["red_cube", "tray"], 4.0), [o.id for o in trial.map_objects()]
        cube, tray = trial.map_id("red_cube"), trial.map_id("tray")
        pick = {"object": cube}
        results["cube_id"] = cube
        results["pre_pick"] = trial.check("pre", "pick", pick, step_index=1)
        picked = trial.call("pick", pick)
        assert picked.success, picked.message
        results["truth_after_pick"] = trial.world.ground_truth().robot.holding
        started = time.monotonic()
        results["post_pick"] = trial.check("post", "pick", pick, since_s=trial.sim_time, step_index=1)
        results["post_wall_s"] = time.monotonic() - started
        results["pre_place"] = trial.check("pre", "place", {"object": cube, "relation": "in", "target": tray},
                                           step_index=2)
        results["bad"] = [trial.check(*request, step_index=3) for request in (
            ("post", "fly", {}), ("post", "pick", {"object": 3}), ("during", "pick", pick),
            ("post", "place", '{"object": "x", "relation": "under", "target": "y"}'))]
        results["alive"] = trial.check("pre", "say", {"text": "still here"}, step_index=4)

        # Knock the cube out of the gripper, back onto the table 15 cm to the right.
        trial.world.apply_disturbance(Disturbance("time", None, "move", "red_cube", ObjectPose(0.55, -0.05, 0.0, 0.0),
                                                  0.0))
        trial.stack.advance(1.0)
        results["truth_after_knock"] = trial.world.ground_truth().robot.holding
        results["post_knocked"] = trial.check("post", "pick", pick, since_s=trial.sim_time, step_index=1)
        results["stale"] = trial.check("post", "pick", pick, since_s=1e6, step_index=1)
        trial.stack.advance(0.2)
        results["verdicts"] = list(verdicts)
    yield results


def test_pick_preconditions_hold_in_the_simulator(episode):
    verdict = episode["pre_pick"]
    assert verdict.ok and "reachable" in verdict.reason and "gripper empty" in verdict.reason, verdict.reason


def test_post_pick_ok_when_perception_reports_the_held_cube(episode):
    assert episode["truth_after_pick"] == "red_cube"
    verdict = episode["post_pick"]
    assert verdict.ok and verdict.confidence >= 0.66, verdict.reason
    assert episode["post_wall_s"] < 30.0
    assert verdict.phase == "post" and verdict.task_id == "trial" and verdict.step_index == 1
    assert verdict.header.frame_id == "map" and verdict.header.stamp.sec > 0
    assert "seen" in verdict.reason and "above its rest" in verdict.reason


def test_place_preconditions_after_the_pick(episode):
    verdict = episode["pre_place"]
    assert verdict.ok and "is held" in verdict.reason, verdict.reason


def test_knocked_out_cube_is_not_held(episode):
    assert episode["truth_after_knock"] is None
    verdict = episode["post_knocked"]
    assert not verdict.ok and verdict.confidence == 0.0, verdict.reason
    assert episode["cube_id"] in verdict.reason or "closed on nothing" in verdict.reason


def test_no_fresh_frames_is_not_ok(episode):
    verdict = episode["stale"]
    assert not verdict.ok and "no fresh perception" in verdict.reason, verdict.reason


def test_bad_requests_get_a_reason_and_the_node_stays_alive(episode):
    unknown, bad_args, bad_phase, bad_relation = episode["bad"]
    assert not unknown.ok and "unknown skill 'fly'" in unknown.reason
    assert not bad_args.ok and "object: Input should be a valid string" in bad_args.reason
    assert not bad_phase.ok and "unknown phase 'during'" in bad_phase.reason
    assert not bad_relation.ok and "relation" in bad_relation.reason
    assert episode["alive"].ok


def test_every_verdict_is_published(episode):
    published = episode["verdicts"]
    assert len(published) == 10
    assert [v.ok for v in published] == [True, True, True, False, False, False, False, True, False, False]


PLACE_AT_SCENE = """
name: critic_place_at
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.5]}
  - {id: blue_cube, type: cube, color: blue, size: 0.04, pose: [0.45, 0.10, 0.0, 0.0]}
expect:
  - {holding: red_cube}
"""


def test_place_at_a_free_spot_is_confirmed_and_an_occupied_one_refused():
    with SkillTrial(parse_scenario(PLACE_AT_SCENE), parse_stack(STACK), renderer="tiny") as trial:
        trajectories = []
        trial.stack.client.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                               trajectories.append, qos.RELIABLE)
        assert trial.wait_for_map(["red_cube", "blue_cube"], 4.0), [o.id for o in trial.map_objects()]
        cube, blue = trial.map_id("red_cube"), trial.map_id("blue_cube")
        assert trial.check("pre", "pick", {"object": cube}, step_index=1).ok
        picked = trial.call("pick", {"object": cube})
        assert picked.success, picked.message

        # Onto the blue cube's spot: refused by the critic and by the skill, with no motion.
        occupied = {"object": cube, "position": [0.45, 0.10]}
        pre_occupied = trial.check("pre", "place_at", occupied, step_index=2)
        assert not pre_occupied.ok and f"is not free: '{blue}'" in pre_occupied.reason, pre_occupied.reason
        commanded = len(trajectories)
        refused = trial.call("place_at", occupied)
        assert refused.status == "aborted" and f"the spot is taken by '{blue}'" in refused.message, refused
        assert refused.effects["moved"] is False
        trial.stack.advance(0.2)
        assert len(trajectories) == commanded
        assert trial.world.ground_truth().robot.holding == "red_cube"

        # 10 cm to the right of where it stood, on the free table.
        spot = [0.55, 0.0]
        args = {"object": cube, "position": spot}
        pre = trial.check("pre", "place_at", args, step_index=3)
        assert pre.ok and "is held" in pre.reason and "free" in pre.reason and "reachable" in pre.reason, pre.reason
        placed = trial.call("place_at", args)
        assert placed.success, placed.message
        trial.stack.advance(0.5)
        post = trial.check("post", "place_at", args, since_s=trial.sim_time, step_index=3)
        assert post.ok and post.confidence >= 0.66, post.reason
        truth = trial.world.ground_truth()
        assert truth.robot.holding is None
        assert math.dist(truth.objects["red_cube"].center[:2], spot) < 0.02, truth.objects["red_cube"].center


SPEECH_STACK = {"name": "critic_speech_test", "use_sim_time": True, "nodes": [
    {"name": "sim", "executable": "sim_bridge",
     "parameters": {"camera_width": 160, "camera_height": 120, "camera_rate_hz": 10.0}},
    {"name": "skill_server", "executable": "skill_server"},
    {"name": "critic", "executable": "critic", "parameters": {"post_timeout_s": 1.0}},
]}


def test_only_the_skill_servers_speech_verifies_say():
    """Any node's text on chat/robot once made the critic verify a `say` the robot never said."""
    with SkillTrial(parse_scenario(SCENE), parse_stack(SPEECH_STACK), renderer="tiny") as trial:
        critic = next(n for n in trial.stack.nodes if isinstance(n, CriticNode))
        forged_pub = trial.stack.client.create_publisher(String, "chat/robot", qos.RELIABLE)
        assert trial.stack.advance_until(lambda: forged_pub.get_subscription_count() > 0, 2.0)
        said = {"text": "I put the red cube in the tray"}
        assert trial.check("pre", "say", said, step_index=1).ok
        forged_pub.publish(String(data=said["text"]))
        forged = trial.check("post", "say", said, since_s=trial.sim_time, step_index=1)
        assert not forged.ok and "was not observed on chat/robot" in forged.reason, forged.reason
        assert critic.speech.rejected == 1

        assert trial.check("pre", "say", said, step_index=2).ok
        assert trial.call("say", said).success
        spoken = trial.check("post", "say", said, since_s=trial.sim_time, step_index=2)
        assert spoken.ok, spoken.reason
        assert critic.speech.rejected == 1


class _Log:
    """Records what a node logs, in place of its rclpy logger."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, severity):
        return lambda message, **kwargs: self.lines.append(message)


@pytest.fixture
def bare_critic():
    """A critic in a context of its own, its callbacks called directly as its subscriptions would."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = CriticNode(context=context)
    log = _Log()
    node.get_logger = lambda: log
    node.log = log
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def _semantic_object(object_id: str, x: float) -> SemanticObject:
    obj = SemanticObject(id=object_id, label="red cube", attributes=["cube", "red"], confidence=0.9)
    obj.pose.position.x, obj.pose.orientation.w = x, 1.0
    obj.size.x = obj.size.y = obj.size.z = 0.04
    return obj


def test_malformed_evidence_never_enters_the_critics_state(bare_critic):
    """NaN poses and future stamps once went into the evidence every later verdict is judged on."""
    now_ns = bare_critic.get_clock().now().nanoseconds
    huge = _semantic_object("x" * 1_000_000, 0.5)
    bare_critic._on_map(SemanticMap(header=Header(stamp=ns_to_stamp(now_ns)), objects=[
        _semantic_object("good", 0.5), _semantic_object("nan", math.nan), huge]))
    assert set(bare_critic._remembered) == {"good"}

    observation = ObjectObservation(label="red cube", attributes=["cube", "red"], score=math.inf)
    observation.pose.orientation.w = 1.0
    bare_critic._on_observations(ObjectObservationArray(header=Header(frame_id="map", stamp=ns_to_stamp(now_ns)),
                                                        observations=[observation]))
    assert [f.boxes for f in bare_critic._frames] == [()]
    future = Header(frame_id="map", stamp=ns_to_stamp(now_ns + 3600 * 10**9))
    bare_critic._on_observations(ObjectObservationArray(header=future))
    assert len(bare_critic._frames) == 1

    names = [*PANDA_ARM_JOINTS, *PANDA_FINGER_JOINTS]
    bare_critic._on_joint_states(JointState(header=Header(stamp=ns_to_stamp(now_ns)), name=names,
                                            position=[math.nan] * len(names), velocity=[0.0] * len(names)))
    sample = bare_critic._joints[-1]
    assert sample.opening is None and sample.arm is None
    bare_critic._on_joint_states(JointState(header=future, name=names, position=[0.0] * len(names)))
    assert len(bare_critic._joints) == 1
    bare_critic._on_gripper_command(Float64MultiArray(data=[math.nan]))
    assert bare_critic._gripper_command is None
    assert all(len(line) < 1000 for line in bare_critic.log.lines), max(map(len, bare_critic.log.lines))


@pytest.mark.parametrize("args_json, reason", [
    ("[" * 100_000 + "]" * 100_000, "arguments of 200000 characters"),
    ("[" * 4_000 + "]" * 4_000, "nested too deeply"),
    ('{"object": "' + "x" * 9_000 + '"}', "bad step"),
])
def test_huge_or_deep_arguments_get_a_clear_verdict_and_a_short_log_line(bare_critic, args_json, reason):
    response = bare_critic._on_check_step(
        CheckStep.Request(phase="pre", skill="pick", args_json=args_json, task_id="t"), CheckStep.Response())
    assert not response.verdict.ok and reason in response.verdict.reason, response.verdict.reason[:300]
    assert bare_critic.log.lines and all(len(line) < 1000 for line in bare_critic.log.lines)
