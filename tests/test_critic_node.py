"""Critic node in the simulator: verdicts from real perception after a real pick, and after knocking it out.

The critic's service blocks while it waits for fresh frames, so here the nodes spin on a
multi-threaded executor in a background thread while the test thread steps the simulator (as
`modular_robot.runner` does), waiting for perception to finish each camera frame.
"""

import json
import threading
import time

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.scenario import Disturbance, ObjectPose, parse_scenario
from modular_robot.motion.kinematics import panda_kinematics
from modular_robot.nodes.critic_node import FINGER_JOINTS, CriticNode
from modular_robot.nodes.perception_node import PerceptionNode
from modular_robot.nodes.semantic_map_node import SemanticMapNode
from modular_robot.ros import qos
from modular_robot.ros.conversions import stamp_to_ns
from modular_robot.ros.object_msgs import msg_to_object
from modular_robot.sim.bridge_node import SimBridgeNode
from modular_robot.sim.world import SimWorld
from modular_robot.skills.interfaces import MotionResult, SkillContext
from modular_robot.skills.library import SKILLS, validate_call
from modular_robot_interfaces.msg import ObjectObservationArray, SemanticMap, Verdict
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
_CHUNK_S = 0.01
_PERCEPTION_WAIT_S = 1.0


class ThreadedSim:
    """The simulator stepped from the test thread; sim bridge, perception, map, critic and a probe on a
    multi-threaded executor in a background thread."""

    def __init__(self, post_frames=3):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.world = SimWorld(parse_scenario(SCENE), renderer="tiny", width=320, height=240)
        self.sim = SimBridgeNode(self.world, context=self.context, parameter_overrides=[
            Parameter("mode", value="lockstep"), Parameter("autostart", value=False)])
        sim_time = Parameter("use_sim_time", value=True)
        self.perception = PerceptionNode(context=self.context, parameter_overrides=[sim_time])
        self.mapper = SemanticMapNode(context=self.context, parameter_overrides=[sim_time])
        self.critic = CriticNode(context=self.context, parameter_overrides=[
            sim_time, Parameter("post_frames", value=post_frames), Parameter("post_timeout_s", value=2.0),
            Parameter("post_wall_timeout_s", value=20.0)])
        self.probe = rclpy.create_node("probe", context=self.context)
        self.nodes = [self.sim, self.perception, self.mapper, self.critic, self.probe]
        self.lock = threading.Condition()
        self.joint_states = None
        self.semantic_map = None
        self.perceived_ns = -1
        self.verdicts = []
        self.probe.create_subscription(JointState, "joint_states", self._on_joint_states, qos.RELIABLE)
        self.probe.create_subscription(SemanticMap, "semantic_map", self._set("semantic_map"), qos.LATCHED)
        self.probe.create_subscription(ObjectObservationArray, "objects/observations", self._on_observations,
                                       qos.RELIABLE)
        self.probe.create_subscription(Verdict, "verdicts", self.verdicts.append, qos.RELIABLE)
        self.check_client = self.probe.create_client(CheckStep, "check_step")
        self.executor = MultiThreadedExecutor(num_threads=6, context=self.context)
        for node in self.nodes:
            self.executor.add_node(node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.waited_ns = -1

    def _set(self, name):
        def callback(msg):
            with self.lock:
                setattr(self, name, msg)
        return callback

    def _on_joint_states(self, msg):
        # Only the Panda's: a test process that draws the same DDS domain would otherwise leak in.
        if "panda_joint1" in msg.name and all(f in msg.name for f in FINGER_JOINTS):
            with self.lock:
                self.joint_states = msg

    def _on_observations(self, msg):
        with self.lock:
            self.perceived_ns = max(self.perceived_ns, stamp_to_ns(msg.header.stamp))
            self.lock.notify_all()

    def step(self):
        """Advance one chunk; after a camera frame, wait until perception has published its observations."""
        self.sim.advance(_CHUNK_S)
        frame_ns = self.sim.last_camera_stamp_ns
        if frame_ns > self.waited_ns:
            self.waited_ns = frame_ns
            with self.lock:
                self.lock.wait_for(lambda: self.perceived_ns >= frame_ns, timeout=_PERCEPTION_WAIT_S)
        else:
            time.sleep(0.0005)  # let the executor threads deliver joint states and tf

    def advance(self, seconds):
        for _ in range(round(seconds / _CHUNK_S)):
            self.step()

    def advance_until(self, condition, max_seconds):
        for _ in range(round(max_seconds / _CHUNK_S)):
            if condition():
                return True
            self.step()
        return condition()

    def map_objects(self):
        with self.lock:
            msg = self.semantic_map
        return {} if msg is None else {o.id: msg_to_object(o) for o in msg.objects}

    def check(self, phase, skill, args, step=1, since_ns=0, max_seconds=5.0):
        """Call check_step for step `step` of task t1 and step the sim until the answer comes."""
        assert self.check_client.wait_for_service(timeout_sec=5.0)
        request = CheckStep.Request(task_id="t1", step_index=step, phase=phase, skill=skill,
                                    args_json=args if isinstance(args, str) else json.dumps(args))
        request.since.sec, request.since.nanosec = divmod(since_ns, 1_000_000_000)
        future = self.check_client.call_async(request)
        wall_deadline = time.monotonic() + 60.0
        steps = round(max_seconds / _CHUNK_S)
        while not future.done() and time.monotonic() < wall_deadline:
            if steps > 0:
                self.step()
                steps -= 1
            else:
                time.sleep(0.01)
        assert future.done(), f"no answer to {phase} {skill} {args}"
        return future.result().verdict

    def close(self):
        self.executor.shutdown()
        for node in self.nodes:
            node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.spinner.join(timeout=5.0)


class TopicArm:
    """ArmInterface over the hardware topics, stepping the simulator while motions run."""

    def __init__(self, sim, kinematics):
        self.sim = sim
        self.kinematics = kinematics
        self.arm = sim.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
        self.gripper = sim.probe.create_publisher(Float64MultiArray, "gripper_controller/commands", qos.RELIABLE)

    def _state(self, names):
        with self.sim.lock:
            msg = self.sim.joint_states
        return np.array([msg.position[msg.name.index(n)] for n in names])

    def joint_positions(self):
        return self._state(self.kinematics.joint_names)

    def execute(self, joint_names, path):
        msg = JointTrajectory(joint_names=list(joint_names))
        msg.points = [JointTrajectoryPoint(positions=q.tolist(), velocities=v.tolist(),
                                           time_from_start=Duration(sec=int(t), nanosec=round((t % 1) * 1e9)))
                      for t, q, v in zip(path.times, path.positions, path.velocities)]
        self.arm.publish(msg)
        goal = path.positions[-1]
        reached = self.sim.advance_until(lambda: np.max(np.abs(self.joint_positions() - goal)) < 2e-3,
                                         path.duration + 2.0)
        return MotionResult(reached, "" if reached else "goal not reached in time")

    def set_gripper(self, opening):
        self.gripper.publish(Float64MultiArray(data=[opening]))
        self.sim.advance(1.0)
        return MotionResult(True)

    def gripper_opening(self):
        return float(np.sum(self._state(FINGER_JOINTS)))


class MapWorld:
    """WorldModel over the semantic_map topic."""

    def __init__(self, sim):
        self.sim = sim

    def lookup(self, object_id):
        return self.sim.map_objects().get(object_id)

    def objects(self):
        return list(self.sim.map_objects().values())

    def refresh(self, timeout_s):
        self.sim.advance(0.2)
        return True

    def find(self, text, max_results):
        return []


class Quiet:
    def say(self, text):
        pass


def _find(objects, color, category):
    return next((o for o in objects.values() if o.color == color and o.category == category), None)


@pytest.fixture(scope="module")
def episode():
    """Pick the red cube with the skill library, ask the critic, knock the cube out, ask again."""
    sim = ThreadedSim()
    kinematics = panda_kinematics()
    results = {}
    try:
        assert sim.advance_until(lambda: _find(sim.map_objects(), "red", "cube") is not None, 4.0), \
            f"map: {list(sim.map_objects())}"
        cube = _find(sim.map_objects(), "red", "cube")
        pick = {"object": cube.id}
        results["cube_id"] = cube.id
        results["pre_pick"] = sim.check("pre", "pick", pick)

        ctx = SkillContext(TopicArm(sim, kinematics), MapWorld(sim), Quiet(), kinematics)
        picked = SKILLS["pick"].run(validate_call("pick", json.dumps(pick)), ctx)
        assert picked.success, picked.reason
        results["truth_after_pick"] = sim.world.ground_truth().robot.holding

        started = time.monotonic()
        results["post_pick"] = sim.check("post", "pick", pick)
        results["post_wall_s"] = time.monotonic() - started
        results["map_after_pick"] = sim.map_objects().get(cube.id)
        results["pre_place"] = sim.check("pre", "place", {"object": cube.id, "relation": "in", "target":
                                                          _find(sim.map_objects(), "gray", "flat").id}, step=2)

        results["bad"] = [sim.check(*request, step=3) for request in (
            ("post", "fly", {}), ("post", "pick", {"object": 3}), ("during", "pick", pick),
            ("post", "place", '{"object": "x", "relation": "under", "target": "y"}'))]
        results["alive"] = sim.check("pre", "say", {"text": "still here"}, step=4)

        # Knock the cube out of the gripper, back onto the table 25 cm to the right.
        sim.world.apply_disturbance(Disturbance("time", None, "move", "red_cube", ObjectPose(0.55, -0.05, 0.0, 0.0),
                                                0.0))
        sim.advance(1.0)
        results["truth_after_knock"] = sim.world.ground_truth().robot.holding
        results["post_knocked"] = sim.check("post", "pick", pick)
        results["stale"] = sim.check("post", "pick", pick, since_ns=10**15, max_seconds=2.5)
        results["verdicts"] = list(sim.verdicts)
        yield results
    finally:
        kinematics.close()
        sim.close()


def test_pick_preconditions_hold_in_the_simulator(episode):
    verdict = episode["pre_pick"]
    assert verdict.ok and "reachable" in verdict.reason and "gripper empty" in verdict.reason, verdict.reason


def test_post_pick_ok_when_perception_reports_the_held_cube(episode):
    assert episode["truth_after_pick"] == "red_cube"
    verdict = episode["post_pick"]
    assert verdict.ok and verdict.confidence >= 0.66, verdict.reason
    assert episode["post_wall_s"] < 30.0
    assert verdict.phase == "post" and verdict.task_id == "t1" and verdict.step_index == 1
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
