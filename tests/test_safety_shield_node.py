"""Safety shield node between skill topics (safe/...) and the simulated robot's hardware topics."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
import yaml
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import TwistStamped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_HOME
from modular_robot.core.safety import ESTOP_REASON, Verdict
from modular_robot.core.trajectory import Trajectory, sample
from modular_robot.motion.kinematics import panda_kinematics
from modular_robot.nodes.safety_shield_node import COMMANDS, SafetyShieldNode
from modular_robot.paths import resolve_data_path
from modular_robot.ros import qos
from ros_helpers import SimHarness

TABLETOP = """
name: shield_tabletop
robot: panda_tabletop
objects:
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
expect:
  - {unmoved: [tray]}
"""

HUSKY = """
name: shield_husky
robot: husky_base
objects:
  - {id: blue_cube, type: cube, color: blue, size: 0.2, pose: [4.0, 3.0, 0.0, 0.0]}
expect:
  - {unmoved: [blue_cube]}
"""

GOAL = (0.4, -0.2, -0.3, -1.9, 0.2, 1.9, 0.5)


def _duration(seconds: float) -> Duration:
    return Duration(sec=int(seconds), nanosec=round((seconds % 1) * 1e9))


def _trajectory(points) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(PANDA_ARM_JOINTS))
    msg.points = [JointTrajectoryPoint(positions=[float(v) for v in q], time_from_start=_duration(t))
                  for t, q in points]
    return msg


def _twist(linear: float, angular: float = 0.0) -> TwistStamped:
    msg = TwistStamped()
    msg.twist.linear.x, msg.twist.angular.z = linear, angular
    return msg


def _arm(harness: SimHarness) -> np.ndarray:
    msg = harness.last["joint_states"]
    return np.array([msg.position[msg.name.index(n)] for n in PANDA_ARM_JOINTS])


class _Shielded:
    """A SimHarness with the shield node on its executor and the probe recording both sides."""

    def __init__(self, scene: str, robot: str) -> None:
        self.harness = SimHarness(scene)
        # Sim time, so that twist accelerations are judged over the robot's time, not the test's.
        self.shield = SafetyShieldNode(context=self.harness.context, parameter_overrides=[
            Parameter("robot", value=robot), Parameter("use_sim_time", value=True)])
        self.harness.executor.add_node(self.shield)
        self.refusals: list[str] = []
        self.hardware_arm: list[JointTrajectory] = []
        self.hardware_twists: list[TwistStamped] = []
        self.harness.track(JointState, "joint_states")
        self.harness.probe.create_subscription(String, "safety/refusals",
                                               lambda m: self.refusals.append(m.data), qos.RELIABLE)
        self.harness.probe.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                               self.hardware_arm.append, qos.RELIABLE)
        self.harness.probe.create_subscription(TwistStamped, "cmd_vel", self.hardware_twists.append, qos.RELIABLE)
        probe = self.harness.probe
        self.arm = probe.create_publisher(JointTrajectory, "safe/arm_controller/joint_trajectory", qos.RELIABLE)
        self.gripper = probe.create_publisher(Float64MultiArray, "safe/gripper_controller/commands", qos.RELIABLE)
        self.cmd_vel = probe.create_publisher(TwistStamped, "safe/cmd_vel", qos.RELIABLE)
        self.estop = probe.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        # Let discovery finish and the shield see joint_states before any command.
        self.harness.advance(0.2)

    def close(self) -> None:
        self.harness.executor.remove_node(self.shield)
        self.shield.destroy_node()
        self.harness.close()


@pytest.fixture
def tabletop():
    shielded = _Shielded(TABLETOP, "panda_tabletop")
    yield shielded
    shielded.close()


@pytest.fixture
def husky():
    shielded = _Shielded(HUSKY, "husky_base")
    yield shielded
    shielded.close()


def test_safe_trajectory_reaches_the_arm_and_moves_it_to_its_goal(tabletop):
    midpoint = tuple((a + b) / 2 for a, b in zip(PANDA_HOME, GOAL))
    tabletop.arm.publish(_trajectory([(1.5, midpoint), (3.0, GOAL)]))
    tabletop.harness.advance(4.0)
    assert tabletop.refusals == []
    assert len(tabletop.hardware_arm) == 1
    assert np.max(np.abs(_arm(tabletop.harness) - GOAL)) < 1e-3


BEYOND_LIMIT = PANDA_HOME[:3] + (0.3,) + PANDA_HOME[4:]      # panda_joint4 upper limit is 0
BEHIND_BASE = (2.0,) + PANDA_HOME[1:]                      # hand swings out of the workspace
INTO_COLUMN = (0.0, 0.3, 0.0, -2.6, 0.0, 1.7, 0.785)     # hand low and close to the arm's column


@pytest.mark.parametrize("points, reason", [
    ([(3.0, BEYOND_LIMIT)], "outside limits"),
    ([(0.1, GOAL)], "rad/s"),
    ([(3.0, BEHIND_BASE)], "workspace"),
    ([(3.0, INTO_COLUMN)], "keep-out zone 'base_column'"),
], ids=["joint_beyond_limit", "too_fast", "outside_workspace", "into_keep_out"])
def test_unsafe_trajectory_is_refused_with_reason_and_arm_does_not_move(tabletop, points, reason):
    before = _arm(tabletop.harness)
    tabletop.arm.publish(_trajectory(points))
    tabletop.harness.advance(1.0)
    assert len(tabletop.refusals) == 1 and reason in tabletop.refusals[0], tabletop.refusals
    assert tabletop.refusals[0].startswith("refused arm_controller/joint_trajectory: ")
    assert tabletop.hardware_arm == []
    assert np.max(np.abs(_arm(tabletop.harness) - before)) < 2e-3


def test_malformed_commands_are_refused_and_the_node_keeps_working(tabletop):
    ragged = _trajectory([(1.0, PANDA_HOME), (2.0, GOAL)])
    ragged.points[0].velocities = [0.0] * 7
    bad_commands = [
        (tabletop.arm, JointTrajectory(joint_names=list(PANDA_ARM_JOINTS))),
        (tabletop.arm, ragged),
        (tabletop.arm, _trajectory([(1.0, (float("nan"),) * 7)])),
        (tabletop.arm, JointTrajectory(joint_names=["not_a_joint"])),
        (tabletop.gripper, Float64MultiArray(data=[0.02, 0.02])),
        (tabletop.gripper, Float64MultiArray(data=[0.5])),
    ]
    for publisher, msg in bad_commands:
        publisher.publish(msg)
    tabletop.harness.advance(0.5)
    assert len(tabletop.refusals) == len(bad_commands), tabletop.refusals
    assert tabletop.hardware_arm == []
    tabletop.arm.publish(_trajectory([(3.0, GOAL)]))
    tabletop.harness.advance(4.0)
    assert np.max(np.abs(_arm(tabletop.harness) - GOAL)) < 1e-3


class _IndependentLimits:
    """The tabletop limits read straight from the YAML, checked by dense sampling, not by the shield."""

    def __init__(self) -> None:
        doc = yaml.safe_load(resolve_data_path("config/safety/panda_tabletop.yaml").read_text())
        joints = doc["arm"]["joints"]
        self.lower = np.array([joints[n]["lower"] for n in PANDA_ARM_JOINTS])
        self.upper = np.array([joints[n]["upper"] for n in PANDA_ARM_JOINTS])
        self.velocity = np.array([joints[n]["velocity"] for n in PANDA_ARM_JOINTS])
        self.workspace = (np.array(doc["arm"]["workspace"]["min"]), np.array(doc["arm"]["workspace"]["max"]))
        self.keep_out = doc["arm"]["keep_out"]
        self.kinematics = panda_kinematics()

    def violations(self, msg: JointTrajectory, start: np.ndarray, rate_hz: float = 200.0) -> list[str]:
        """Return every limit the published trajectory breaks at some sampled time."""
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        order = [list(msg.joint_names).index(n) for n in PANDA_ARM_JOINTS]
        positions = np.array([list(p.positions) for p in msg.points])[:, order]
        trajectory = Trajectory(PANDA_ARM_JOINTS, times, positions, None)
        found = []
        for t in np.linspace(0.0, times[-1], int(times[-1] * rate_hz) + 2):
            q, qd = sample(trajectory, start, float(t))
            if np.any(q < self.lower) or np.any(q > self.upper):
                found.append(f"t={t:.3f}: joints {q.round(3).tolist()} outside limits")
            if np.any(np.abs(qd) > self.velocity):
                found.append(f"t={t:.3f}: velocities {qd.round(3).tolist()} beyond limits")
            ee = self.kinematics.forward(q)[0]
            if np.any(ee < self.workspace[0]) or np.any(ee > self.workspace[1]):
                found.append(f"t={t:.3f}: end effector {ee.round(3).tolist()} outside the workspace")
            for zone in self.keep_out:
                if _inside(zone, ee):
                    found.append(f"t={t:.3f}: end effector {ee.round(3).tolist()} in {zone['name']}")
        return found


def _inside(zone: dict, point: np.ndarray) -> bool:
    if zone["type"] == "box":
        return bool(np.all(point >= zone["min"]) and np.all(point <= zone["max"]))
    radial = np.hypot(point[0] - zone["center"][0], point[1] - zone["center"][1])
    return bool(radial <= zone["radius"] and zone["z_min"] <= point[2] <= zone["z_max"])


# Waypoints as offsets from home: two in three small (mostly safe), the rest wild enough to pass
# joint limits or leave the workspace; durations range from far too fast to leisurely.
_small = st.lists(st.floats(-0.3, 0.3), min_size=7, max_size=7)
_wild = st.lists(st.floats(-0.8, 0.8) | st.floats(-4.0, 4.0), min_size=7, max_size=7)
_offsets = _small | _small | _wild
_waypoints = st.lists(st.tuples(st.floats(0.05, 2.0), _offsets), min_size=1, max_size=3)


def test_nothing_outside_the_limits_is_ever_published_on_the_hardware_topic(tabletop):
    independent = _IndependentLimits()
    start = _arm(tabletop.harness)
    sent = []

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_waypoints)
    def publish_random_trajectory(waypoints):
        t, points = 0.0, []
        for step, offset in waypoints:
            t += step
            points.append((t, start + np.array(offset)))
        sent.append(_trajectory(points))
        tabletop.arm.publish(sent[-1])
        tabletop.harness.spin(20)

    try:
        publish_random_trajectory()
        # Never advanced: the arm stays at `start`, which is where every forwarded trajectory begins.
        assert len(tabletop.refusals) + len(tabletop.hardware_arm) == len(sent), "every command got an answer"
        assert tabletop.refusals, "some generated trajectories were unsafe"
        assert tabletop.hardware_arm, "some generated trajectories were safe"
        for msg in tabletop.hardware_arm:
            assert independent.violations(msg, start) == []
    finally:
        independent.kinematics.close()


def test_cmd_vel_within_limits_drives_the_husky_and_beyond_is_refused(husky):
    robot = husky.harness.world.robots[0]
    start, _ = robot.ground_truth_base()
    for bad in (_twist(1.5), _twist(0.0, 3.0), _twist(float("nan"))):
        husky.cmd_vel.publish(bad)
        husky.harness.advance(0.3)
    sideways = _twist(0.3)
    sideways.twist.linear.y = 0.2
    husky.cmd_vel.publish(sideways)
    husky.harness.advance(0.3)
    assert len(husky.refusals) == 4 and husky.hardware_twists == [], husky.refusals
    assert "exceeds limit" in husky.refusals[0] and "angular speed" in husky.refusals[1]
    assert np.linalg.norm(np.subtract(robot.ground_truth_base()[0][:2], start[:2])) < 0.005
    for _ in range(20):
        husky.cmd_vel.publish(_twist(0.5))
        husky.harness.advance(0.1)
    assert len(husky.hardware_twists) == 20 and len(husky.refusals) == 4
    assert np.linalg.norm(np.subtract(robot.ground_truth_base()[0][:2], start[:2])) > 0.6


def test_emergency_stop_holds_the_base_and_refuses_commands_until_released(husky):
    husky.cmd_vel.publish(_twist(0.5))
    husky.harness.advance(0.2)
    husky.estop.publish(Bool(data=True))
    husky.harness.advance(0.2)
    hold = husky.hardware_twists[-1].twist
    assert (hold.linear.x, hold.angular.z) == (0.0, 0.0)
    forwarded = len(husky.hardware_twists)
    husky.cmd_vel.publish(_twist(0.3))
    husky.harness.advance(0.2)
    assert len(husky.hardware_twists) == forwarded
    assert husky.refusals == ["refused cmd_vel: emergency stop engaged"]
    husky.estop.publish(Bool(data=False))
    husky.harness.advance(0.2)
    husky.cmd_vel.publish(_twist(0.3))
    husky.harness.advance(0.2)
    assert len(husky.hardware_twists) == forwarded + 1


def test_emergency_stop_refuses_safe_trajectory(tabletop):
    tabletop.estop.publish(Bool(data=True))
    tabletop.harness.advance(0.2)
    before = _arm(tabletop.harness)
    tabletop.arm.publish(_trajectory([(3.0, GOAL)]))
    tabletop.harness.advance(1.0)
    assert tabletop.refusals == ["refused arm_controller/joint_trajectory: emergency stop engaged"]
    assert tabletop.hardware_arm == []
    assert np.max(np.abs(_arm(tabletop.harness) - before)) < 2e-3


# --- bounded checks, bursts and the emergency stop racing a check ---------------------------------


def test_endless_trajectories_are_refused_at_once_and_the_node_keeps_working(tabletop):
    endless = _trajectory([(3.0, GOAL)])
    endless.points[0].time_from_start = Duration(sec=2147483647)
    tabletop.arm.publish(endless)
    tabletop.arm.publish(_trajectory([(3000.0, GOAL)]))
    tabletop.harness.spin(20)
    assert tabletop.refusals == [
        "refused arm_controller/joint_trajectory: trajectory lasts 2147483647.000 s, longer than max_duration_s 60.0",
        "refused arm_controller/joint_trajectory: trajectory lasts 3000.000 s, longer than max_duration_s 60.0"]
    tabletop.arm.publish(_trajectory([(3.0, GOAL)]))
    tabletop.harness.advance(4.0)
    assert len(tabletop.hardware_arm) == 1
    assert np.max(np.abs(_arm(tabletop.harness) - GOAL)) < 1e-3


def test_every_command_of_a_burst_is_forwarded_or_refused(tabletop):
    probe = tabletop.harness.probe
    answers = {"refused": 0, "forwarded": 0}

    def count(kind):
        return lambda _: answers.__setitem__(kind, answers[kind] + 1)

    probe.create_subscription(String, "safety/refusals", count("refused"), COMMANDS)
    probe.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", count("forwarded"), COMMANDS)
    probe.create_subscription(Float64MultiArray, "gripper_controller/commands", count("forwarded"), COMMANDS)
    arm = probe.create_publisher(JointTrajectory, "safe/arm_controller/joint_trajectory", COMMANDS)
    gripper = probe.create_publisher(Float64MultiArray, "safe/gripper_controller/commands", COMMANDS)
    home = _arm(tabletop.harness)
    sent = 0
    # Mostly cheap refusals, some accepted openings, and a few trajectories that need a full check.
    for k in range(2000):
        if k % 400 == 0:
            arm.publish(_trajectory([(2.0, home + 0.05 * (k % 800 == 0))]))
        elif k % 2:
            arm.publish(_trajectory([(1.0, (float("nan"),) * 7)]))
        else:
            gripper.publish(Float64MultiArray(data=[0.04 if k % 10 == 0 else 0.5]))
        sent += 1
    for _ in range(20_000):
        if sum(answers.values()) >= sent:
            break
        tabletop.harness.executor.spin_once(timeout_sec=0.0)
    assert answers["forwarded"] + answers["refused"] == sent, answers
    # The five trajectories and the 195 openings of 4 cm.
    assert answers["forwarded"] == 200, answers


class _BareShield:
    """A shield node and a probe on a multi-threaded executor, spun as the process does it, no sim."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = SafetyShieldNode(context=self.context)
        self.probe = rclpy.create_node("probe", context=self.context)
        self.refusals: list[str] = []
        self.hardware_arm: list[JointTrajectory] = []
        self.answered = threading.Event()
        self.probe.create_subscription(String, "safety/refusals", self._on_refusal, qos.RELIABLE)
        self.probe.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", self._on_arm, qos.RELIABLE)
        self.arm = self.probe.create_publisher(JointTrajectory, "safe/arm_controller/joint_trajectory", qos.RELIABLE)
        self.estop = self.probe.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        self.joint_states = self.probe.create_publisher(JointState, "joint_states", qos.RELIABLE)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    def _on_refusal(self, msg: String) -> None:
        self.refusals.append(msg.data)
        self.answered.set()

    def _on_arm(self, msg: JointTrajectory) -> None:
        self.hardware_arm.append(msg)
        self.answered.set()

    def at_home(self, timeout_s: float = 10.0) -> None:
        """Publish joint_states at home until the shield has them."""
        deadline = time.monotonic() + timeout_s
        msg = JointState(name=list(PANDA_ARM_JOINTS), position=list(PANDA_HOME), velocity=[0.0] * 7)
        while not self.node._joint_positions and time.monotonic() < deadline:
            self.joint_states.publish(msg)
            threading.Event().wait(0.05)
        assert self.node._joint_positions, "the shield never saw joint_states"

    def close(self) -> None:
        self.executor.shutdown()
        self.spinner.join(timeout=10.0)
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def bare():
    shield = _BareShield()
    yield shield
    shield.close()


def test_emergency_stop_is_handled_while_a_trajectory_is_being_checked(bare):
    bare.at_home()
    checking, stop_seen = threading.Event(), threading.Event()
    end_effector = bare.node._end_effector

    def slow_end_effector(q: np.ndarray) -> np.ndarray:
        # The first sample waits (3 s at most) for the stop to be engaged by its own callback.
        if not checking.is_set():
            checking.set()
            deadline = time.monotonic() + 3.0
            while not bare.node.shield.engaged and time.monotonic() < deadline:
                threading.Event().wait(0.01)
            if bare.node.shield.engaged:
                stop_seen.set()
        return end_effector(q)

    bare.node._end_effector = slow_end_effector
    bare.arm.publish(_trajectory([(3.0, GOAL)]))
    assert checking.wait(10.0), "the check never started"
    bare.estop.publish(Bool(data=True))
    assert bare.answered.wait(10.0), "the trajectory got no answer"
    assert stop_seen.is_set(), "the stop waited for the check to finish"
    assert bare.refusals == [f"refused arm_controller/joint_trajectory: {ESTOP_REASON}"]
    assert bare.hardware_arm == []


def test_a_command_checked_before_the_stop_is_not_forwarded_after_it():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = SafetyShieldNode(context=context)
    probe = rclpy.create_node("probe", context=context)
    try:
        forwarded, refusals = [], []
        probe.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", forwarded.append, qos.RELIABLE)
        probe.create_subscription(String, "safety/refusals", refusals.append, qos.RELIABLE)
        node._on_joint_states(JointState(name=list(PANDA_ARM_JOINTS), position=list(PANDA_HOME), velocity=[0.0] * 7))

        def accepted_as_the_stop_engages(*args, **kwargs) -> Verdict:
            # The stop's callback runs on another thread after the check has decided.
            stop = threading.Thread(target=node._on_emergency_stop, args=(Bool(data=True),))
            stop.start()
            stop.join(timeout=5.0)
            return Verdict(True, "ok")

        node.shield.check_trajectory = accepted_as_the_stop_engages
        node._on_trajectory(_trajectory([(3.0, GOAL)]))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(probe)
        for _ in range(50):
            executor.spin_once(timeout_sec=0.01)
            if refusals or forwarded:
                break
        executor.shutdown()
        assert forwarded == []
        assert [m.data for m in refusals] == [f"refused arm_controller/joint_trajectory: {ESTOP_REASON}"]
    finally:
        node.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=context)


def test_the_measured_velocity_counts_for_the_first_segment(tabletop):
    # 0.1 s ahead from where the arm is, at rest: fine for an arm at rest, not for one still moving.
    here = _arm(tabletop.harness)
    lead = _trajectory([(0.1, here), (3.0, GOAL)])
    for point in lead.points:
        point.velocities = [0.0] * 7
    moving = JointState(name=list(PANDA_ARM_JOINTS), position=list(here), velocity=[0.0, 0.2] + [0.0] * 5)
    tabletop.shield._on_joint_states(moving)
    tabletop.arm.publish(lead)
    tabletop.harness.spin(20)
    assert tabletop.refusals == ["refused arm_controller/joint_trajectory: segment 0->1: panda_joint2 needs "
                                 "8.0000 rad/s^2, limit 4.0000"]
