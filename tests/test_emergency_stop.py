"""Stops that stay stopped: the simulated arm's brake, and a planner that survives bad input and lost nodes."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration, Time
from rclpy.action import ActionServer, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration as RosDuration
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.task import Future
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.robot_model import PANDA_ARM_JOINTS
from modular_robot.nodes import planner_node
from modular_robot.nodes.planner_node import PlannerNode, _RosPorts, available_skills
from modular_robot.planning.executor import CANCEL_REQUEST, NodeLost
from modular_robot.planning.plan import Call
from modular_robot.ros import qos
from modular_robot.scenarios.scenario import parse_scenario
from modular_robot.sim.bridge_node import SimBridgeNode
from modular_robot.sim.world import SimWorld
from modular_robot_interfaces.action import ExecuteSkill
from modular_robot_interfaces.srv import CheckStep
from ros_helpers import SimHarness

TABLETOP = """
name: brake
robot: panda_tabletop
objects:
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
expect:
  - {unmoved: [tray]}
"""
# Far from home on every joint: joint 1 moves at 1 rad/s for most of 1.2 s.
FAR = (1.2, -0.2, -0.6, -1.5, 0.6, 2.2, 0.0)
# Where an arm at rest reads on joint_states (rad/s).
AT_REST = 0.01
# Sim time within which a braked arm is at rest: the next joint_states, at 100 Hz (s).
BRAKE_S = 0.01
# Longest wall time a busy tick waits for the stop to be queued.
QUEUED_WAIT_S = 2.0
# Wall time a port call is seen waiting before its server goes, and the longest it may take to notice.
STILL_WAITING_S = 1.0
GONE_NOTICED_S = 10.0


def _stamp(msg: JointState) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _moving_fast(robot) -> bool:
    return np.abs(robot.joint_state()[1][:len(PANDA_ARM_JOINTS)]).max() > 0.5


def _far_trajectory() -> JointTrajectory:
    return JointTrajectory(joint_names=list(PANDA_ARM_JOINTS), points=[
        JointTrajectoryPoint(positions=list(FAR), time_from_start=Duration(sec=1, nanosec=200_000_000))])


def _speeds_after(states: list[JointState], since: float) -> np.ndarray:
    return np.array([np.abs(s.velocity[:len(PANDA_ARM_JOINTS)]).max() for s in states if _stamp(s) >= since])


def test_the_emergency_stop_brakes_a_fast_arm_to_rest_at_once():
    harness = SimHarness(TABLETOP)
    try:
        states: list[JointState] = []
        harness.track(JointState, "joint_states", keep=states)
        arm = harness.probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
        estop = harness.probe.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        harness.advance(0.1)
        arm.publish(_far_trajectory())
        harness.advance(0.5)
        assert _moving_fast(harness.world.robots[0])
        estop.publish(Bool(data=True))
        harness.spin()
        stopped = harness.world.sim_time
        harness.advance(0.5)
        # A brake, not a position loop pulling against the arm's momentum: at rest by the next joint_states.
        speeds = _speeds_after(states, stopped + BRAKE_S)
        assert len(speeds) > 20 and speeds.max() < AT_REST, speeds[:5]
    finally:
        harness.close()


def test_a_stop_that_arrives_while_the_sim_steps_reaches_the_arm_within_100_ms_of_sim_time():
    context = rclpy.Context()
    rclpy.init(context=context)
    world = SimWorld(parse_scenario(TABLETOP), renderer="tiny", width=160, height=120)
    sim = SimBridgeNode(world, context=context)
    probe = rclpy.create_node("probe", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    try:
        states: list[JointState] = []
        seen = threading.Condition()

        def on_state(msg: JointState) -> None:
            with seen:
                states.append(msg)
                seen.notify_all()

        probe.create_subscription(JointState, "joint_states", on_state, qos.RELIABLE)
        arm = probe.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", qos.RELIABLE)
        estop = probe.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        robot, step, stopped = world.robots[0], sim.advance, []

        def busy_advance(seconds: float) -> None:
            if not stopped and _moving_fast(robot):
                stopped.append(world.sim_time)
                estop.publish(Bool(data=True))
                # A tick that takes long in wall time (rendering on a loaded machine): the stop arrives
                # meanwhile, and must be queued for the physics steps that follow, not after the tick.
                deadline = time.monotonic() + QUEUED_WAIT_S
                while sim.robots[0].pending.estop is None and time.monotonic() < deadline:
                    threading.Event().wait(0.001)
            step(seconds)

        sim.advance = busy_advance
        executor.add_node(sim)
        executor.add_node(probe)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        with seen:
            assert seen.wait_for(lambda: states, 30.0)
        arm.publish(_far_trajectory())
        with seen:
            assert seen.wait_for(lambda: stopped and _stamp(states[-1]) > stopped[0] + 0.5, 60.0)
        speeds = _speeds_after(list(states), stopped[0] + 0.1)
        assert len(speeds) > 10 and speeds.max() < AT_REST, speeds[:10]
    finally:
        executor.shutdown()
        sim.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.parametrize("catalog", ["[1]", "{}", "null", '[{"name": 3}]', '[{"name": "pick", "available": "no"}]',
                                     "not json", "[" * 100_000])
def test_a_malformed_catalog_is_refused_at_the_door(catalog):
    with pytest.raises(ValueError):
        available_skills(catalog)


class BarePlanner:
    """A planner node without a backend, a probe node beside it, one executor stepped from the test."""

    def __init__(self, monkeypatch, before=lambda probe: None) -> None:
        # The backend plays no part here; the rules backend would load its embedding model.
        monkeypatch.setattr(planner_node, "make_planner", lambda backend, parameters: None)
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = rclpy.create_node("probe", context=self.context)
        before(self.probe)
        self.planner = PlannerNode(context=self.context)
        self.executor.add_node(self.probe)
        self.executor.add_node(self.planner)

    def spin_until(self, condition, rounds: int = 100) -> bool:
        """Spin until condition() holds, at most `rounds` waits of 50 ms; return whether it held."""
        for _ in range(rounds):
            if condition():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return condition()

    def close(self) -> None:
        self.executor.shutdown()
        rclpy.shutdown(context=self.context)


def test_a_planner_started_after_a_malformed_latched_catalog_keeps_its_skills_and_takes_the_next(monkeypatch):
    seen: list[String] = []
    publishers = []

    def publish_first(probe) -> None:
        probe.create_subscription(String, "skills/catalog", seen.append, qos.LATCHED)
        publishers.append(probe.create_publisher(String, "skills/catalog", qos.LATCHED))
        publishers[0].publish(String(data="[1]"))

    bare = BarePlanner(monkeypatch, publish_first)
    try:
        skills = bare.planner.tasks.skills
        # The probe's copy arriving means the planner's is on its way: a few more rounds deliver it.
        assert bare.spin_until(lambda: seen)
        bare.spin_until(lambda: False, rounds=20)
        assert bare.planner.tasks.skills == skills
        publishers[0].publish(String(data=json.dumps([{"name": "pick"}, {"name": "place", "available": False}])))
        assert bare.spin_until(lambda: bare.planner.tasks.skills == ("pick",))
    finally:
        bare.close()


class _SkillHandle:
    """A running skill's goal handle that records cancel requests."""

    def __init__(self) -> None:
        self.cancels = 0

    def cancel_goal_async(self) -> None:
        self.cancels += 1


class _TaskHandle:
    is_cancel_requested = False


def test_a_stop_word_on_chat_user_cancels_the_running_task_and_its_skill(monkeypatch):
    bare = BarePlanner(monkeypatch)
    try:
        said = bare.probe.create_publisher(String, "chat/user", qos.RELIABLE)
        ports = bare.planner.ports
        assert bare.spin_until(lambda: bare.planner.count_publishers("chat/user") == 1)
        said.publish(String(data="Stop!"))
        bare.spin_until(lambda: False, rounds=10)
        assert ports.stopped() == ""  # no task runs: nothing to stop, nothing remembered
        ports.begin(_TaskHandle())
        skill = _SkillHandle()
        ports._skill_handle = skill
        said.publish(String(data="stop the arm above the tray"))
        bare.spin_until(lambda: False, rounds=10)
        assert ports.stopped() == "" and skill.cancels == 0
        said.publish(String(data="halt"))
        assert bare.spin_until(lambda: ports.stopped() == CANCEL_REQUEST)
        assert skill.cancels == 1
        ports.end()
        assert ports.stopped() == ""
    finally:
        bare.close()


class Ports:
    """The planner's `_RosPorts` on a node of its own, spinning in the background."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("ports_test", context=self.context,
                                      parameter_overrides=[Parameter("use_sim_time", value=True)])
        self.ports = _RosPorts(self.node, ReentrantCallbackGroup())
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _in_thread(call) -> tuple[threading.Thread, dict]:
    """Run a blocking port call on a thread; its result or the NodeLost message goes into the dict."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = call()
        except NodeLost as error:
            box["lost"] = str(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_a_critic_that_goes_away_mid_check_ends_the_wait_naming_it():
    stack = Ports()
    try:
        # Never spun: it takes no request and answers none, like a critic stuck or killed mid-check.
        critic = rclpy.create_node("critic", context=stack.context)
        critic.create_service(CheckStep, "check_step", lambda request, response: response)
        thread, box = _in_thread(lambda: stack.ports.check("t1", 0, "post", Call("move_arm_home"), 0))
        thread.join(STILL_WAITING_S)
        assert thread.is_alive() and not box
        critic.destroy_node()
        thread.join(GONE_NOTICED_S)
        assert not thread.is_alive(), "the planner still waits for a critic that went away"
        assert "critic" in box["lost"] and "went away" in box["lost"]
    finally:
        stack.close()


def test_a_skill_server_that_goes_away_mid_skill_ends_the_wait_naming_it():
    stack = Ports()
    server = rclpy.create_node("skill_server", context=stack.context)
    accepted = threading.Event()
    # Goals are accepted and never executed: the result never comes, as from a server killed mid-skill.
    action = ActionServer(server, ExecuteSkill, "execute_skill",
                          execute_callback=lambda goal_handle: ExecuteSkill.Result(),
                          goal_callback=lambda goal: GoalResponse.ACCEPT,
                          handle_accepted_callback=lambda goal_handle: accepted.set())
    serving = SingleThreadedExecutor(context=stack.context)
    serving.add_node(server)
    stop = Future()
    spinner = threading.Thread(target=serving.spin_until_future_complete, args=(stop,), daemon=True)
    spinner.start()
    try:
        thread, box = _in_thread(lambda: stack.ports.execute(Call("move_arm_home"), lambda phase: None))
        assert accepted.wait(STILL_WAITING_S * 10)
        thread.join(STILL_WAITING_S)
        assert thread.is_alive() and not box
        stop.set_result(None)
        spinner.join(GONE_NOTICED_S)
        serving.shutdown()
        action.destroy()
        server.destroy_node()
        thread.join(GONE_NOTICED_S)
        assert not thread.is_alive(), "the planner still waits for a skill server that went away"
        assert "skill server" in box["lost"] and "went away" in box["lost"]
    finally:
        stack.close()


def test_a_wait_on_the_clock_follows_it_and_ends_when_it_stops(monkeypatch):
    monkeypatch.setattr(planner_node, "SETTLE_TIMEOUT_S", 1.0)
    stack = Ports()
    try:
        clock = stack.node.create_publisher(ClockMsg, "/clock", qos.CLOCK)
        received = threading.Event()
        jumped = JumpThreshold(min_forward=RosDuration(seconds=1), min_backward=None)
        with stack.node.get_clock().create_jump_callback(jumped, post_callback=lambda jump: received.set()):
            clock.publish(ClockMsg(clock=Time(sec=100)))
            assert received.wait(GONE_NOTICED_S)
        thread, _ = _in_thread(lambda: stack.ports.settle(0.5))
        tenths = 0
        # Well within SETTLE_TIMEOUT_S of wall time: only the clock can end this wait.
        while thread.is_alive() and tenths < 10:
            tenths += 1
            clock.publish(ClockMsg(clock=Time(sec=100, nanosec=tenths * 100_000_000 % 1_000_000_000)))
            thread.join(0.05)
        assert not thread.is_alive() and 5 <= tenths < 10, tenths
        # The simulator gone: no /clock any more; the wait ends after SETTLE_TIMEOUT_S of wall time.
        thread, _ = _in_thread(lambda: stack.ports.settle(0.5))
        thread.join(GONE_NOTICED_S)
        assert not thread.is_alive(), "the planner still waits on a clock that stopped"
    finally:
        stack.close()
