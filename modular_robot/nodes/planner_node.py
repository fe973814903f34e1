"""The planner node: serves `execute_task`, turning instructions into verified skill plans.

Each goal is planned by the configured backend (`rules` offline by default, `transformers` with a
local model directory, or `openai` against any OpenAI-compatible server) from a snapshot of the
semantic map (`query_objects` with an empty text returns every object). Every step goes through the
critic (`check_step`, pre and post) and the skill server (`execute_skill`); a failed verdict makes
the executor replan from the current map, at most `max_attempts` plans per task. The plan is
published on the latched `task_plan` at every change; feedback carries the plan text, the step and
one status line. Cancelling a task cancels the running skill, which stops the robot.

The latched `emergency_stop` (std_msgs/Bool) is the hard stop: engaging it cancels the running skill
and ends the running task, never with a replan; while it is engaged new tasks are refused, and after
its release nothing moves until a new task arrives. "stop", "halt", "wait" or "cancel" on
`chat/user` (any UI's instructions) cancels the running task like a cancel request. A critic or
skill server that goes away (or stops answering) mid-step ends the task with a message naming it;
so does any node the task depends on that leaves the graph while it runs (perception, the semantic
map, the critic, the skill server, the safety shield: `DependencyWatch`), and the running skill is
cancelled at once, which stops the robot. The planner takes the next task. Every wait has a timeout.

The dialogue (pronouns, follow-ups, clarifications, undo) lives here for the node's lifetime.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType, JumpThreshold
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import Bool, String

from modular_robot.core.mapping.objects import MapObject
from modular_robot.planning.dependencies import DependencyWatch
from modular_robot.planning.executor import (
    CANCEL_REQUEST,
    EMERGENCY_STOP,
    CallOutcome,
    CheckResult,
    NodeLost,
    Step,
    TaskEvents,
    TaskExecutor,
    is_stop_word,
    render_plan,
)
from modular_robot.planning.plan import Call, Planner
from modular_robot.ros import qos
from modular_robot.ros.arm_client import ARM_TOPIC
from modular_robot.ros.conversions import ns_to_stamp
from modular_robot.ros.object_msgs import msg_to_object
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.skills.library import SKILLS
from modular_robot_interfaces.action import ExecuteSkill, ExecuteTask
from modular_robot_interfaces.msg import PlanStep, TaskPlan
from modular_robot_interfaces.srv import CheckStep, QueryObjects

BACKENDS = ("rules", "transformers", "openai")
# Wall time to wait for a service answer or for a server to appear (s).
SERVICE_TIMEOUT_S = 10.0
# Longest wall time for a critic's verdict: a post check waits for new camera frames in sim time,
# which a loaded machine in lockstep delivers slowly.
CHECK_TIMEOUT_S = 120.0
# Longest wall time for one skill's result (a long drive of the base included).
SKILL_TIMEOUT_S = 600.0
# How often a wait for the critic or the skill server checks that it is still there, and how often
# a running task's dependencies are looked for in the graph (wall s).
LIVENESS_PERIOD_S = 0.5
# The semantic map as a task's dependency.
MAP = "semantic map ('query_objects')"
# Perception's output: its publishers are what the graph shows of perception.
OBSERVATIONS_TOPIC = "objects/observations"
# Longest wall time a wait on the stack's clock takes: a clock that stops (the simulator gone) ends it.
SETTLE_TIMEOUT_S = 60.0


def make_planner(backend: str, parameters: Callable[[str], object]) -> Planner:
    """Build the planner backend a node's parameters ask for.

    Raises:
        ValueError: for an unknown backend or missing settings.
    """
    if backend == "rules":
        from modular_robot.core.mapping.query import known_nouns
        from modular_robot.core.mapping.text_embedding import default_embedder
        from modular_robot.planning.rules import RulesPlanner

        # Load MiniLM and embed the common nouns now, not on the first command: the load takes
        # seconds and each new word about 15 ms, which the first motion would wait for.
        embedder = default_embedder()
        embedder.load()
        embedder.embed(known_nouns())
        return RulesPlanner(similarity=embedder.similarity)
    if backend == "transformers":
        from modular_robot.planning.transformers_backend import TransformersPlanner

        model_dir = str(parameters("model_dir"))
        if not model_dir:
            raise ValueError("backend 'transformers' needs the parameter model_dir (a local model directory)")
        return TransformersPlanner(model_dir)
    if backend == "openai":
        from modular_robot.planning.openai_backend import OpenAIPlanner

        base_url, model = str(parameters("base_url")), str(parameters("model"))
        if not base_url or not model:
            raise ValueError("backend 'openai' needs the parameters base_url and model")
        api_key = os.environ.get(str(parameters("api_key_env")), "") or "none"
        return OpenAIPlanner(base_url, model, api_key=api_key)
    raise ValueError(f"parameter backend must be one of {BACKENDS}, got {backend!r}")


def available_skills(catalog_json: str) -> tuple[str, ...]:
    """Return the library's skills that a `skills/catalog` message marks available.

    Raises:
        ValueError: unless the text is a JSON list of objects, each with a string "name" and, if
            present, a boolean "available".
    """
    try:
        entries = json.loads(catalog_json)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(entries, list):
        raise ValueError(f"expected a list of skills, got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"entry {i} is not an object with a string 'name'")
        if not isinstance(entry.get("available", True), bool):
            raise ValueError(f"entry {i} ({entry['name']!r}): 'available' is not a boolean")
    return tuple(e["name"] for e in entries if e.get("available", True) and e["name"] in SKILLS)


class _RosPorts:
    """The executor's view of the stack, over ROS clients; blocking calls wait on threading events.

    Attributes:
        estop_engaged: Whether the emergency stop is engaged now.
        goal_handle: The running task's goal handle (None between tasks).
    """

    def __init__(self, node: Node, group: ReentrantCallbackGroup) -> None:
        self.node = node
        self.query = node.create_client(QueryObjects, "query_objects", callback_group=group)
        self.critic = node.create_client(CheckStep, "check_step", callback_group=group)
        self.skills = ActionClient(node, ExecuteSkill, "execute_skill", callback_group=group)
        self.goal_handle = None
        self.estop_engaged = False
        # Set when the emergency stop was engaged during the running task: it stays stopped after the release.
        self._estopped = False
        self._stop_said = False
        self._skill_handle = None
        self._lock = threading.Lock()
        self.dependencies = DependencyWatch(tuple(self._dependency_endpoints()))

    def begin(self, goal_handle) -> None:
        """Start following a task's goal."""
        with self._lock:
            self.goal_handle = goal_handle
            self._estopped = self.estop_engaged
            self._stop_said = False
            self.dependencies.begin(self._dependency_endpoints())

    def end(self) -> None:
        """Stop following the task's goal."""
        with self._lock:
            self.goal_handle = None
            self._estopped = False
            self._stop_said = False
            self.dependencies.end()

    def _dependency_endpoints(self) -> dict[str, frozenset[bytes]]:
        """Return, per node a task depends on, the GIDs of the endpoints the graph lists for it."""
        def gids(infos) -> frozenset[bytes]:
            return frozenset(bytes(info.endpoint_gid) for info in infos)
        publishers, subscribers = self.node.get_publishers_info_by_topic, self.node.get_subscriptions_info_by_topic
        resolve = self.node.resolve_topic_name
        return {
            f"perception node ('{OBSERVATIONS_TOPIC}')": gids(publishers(resolve(OBSERVATIONS_TOPIC))),
            MAP: gids(publishers(resolve("semantic_map"))),
            "critic ('verdicts')": gids(publishers(resolve("verdicts"))),
            "skill server ('skills/catalog')": gids(publishers(resolve("skills/catalog"))),
            f"safety shield ('{ARM_TOPIC}')": gids(subscribers(resolve(ARM_TOPIC))),
        }

    def watch_dependencies(self) -> list[str]:
        """Look for the running task's dependencies in the graph; cancel the skill if one left.

        Returns:
            The dependencies that left since the last look.
        """
        endpoints = self._dependency_endpoints()
        with self._lock:
            dropped = self.dependencies.update(endpoints)
        if dropped:
            self.cancel_skill()
        return dropped

    def _raise_if_lost(self) -> None:
        """Raise NodeLost naming the first dependency that left during the task, if any."""
        with self._lock:
            lost = self.dependencies.lost
        if lost:
            raise NodeLost(f"the {lost[0]} went away")

    def emergency_stop(self, engaged: bool) -> None:
        """Follow the emergency stop: engaging it ends the running task and cancels its skill."""
        with self._lock:
            self.estop_engaged = engaged
            if engaged and self.goal_handle is not None:
                self._estopped = True
        if engaged:
            self.cancel_skill()

    def stop_said(self) -> bool:
        """Cancel the running task on a stop word; return whether a task was running."""
        with self._lock:
            if self.goal_handle is None:
                return False
            self._stop_said = True
        self.cancel_skill()
        return True

    def _wait(self, future, timeout_s: float) -> bool:
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        return done.wait(timeout_s)

    def _await(self, future, server: str, ready: Callable[[], bool], timeout_s: float) -> None:
        """Wait for a server's answer while the server is there.

        Raises:
            NodeLost: naming the server, when it left the graph or did not answer within `timeout_s`.
        """
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        deadline = time.monotonic() + timeout_s
        while not done.wait(LIVENESS_PERIOD_S):
            self._raise_if_lost()
            if not ready():
                raise NodeLost(f"the {server} went away")
            if time.monotonic() > deadline:
                raise NodeLost(f"the {server} did not answer within {timeout_s:.0f} s")

    def snapshot(self) -> list[MapObject]:
        with self._lock:
            lost = MAP in self.dependencies.lost
        if lost:
            # Waiting for it would only delay the end of the task it ended.
            self.node.get_logger().warning("the semantic map went away during the task: no snapshot")
            return []
        if not self.query.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
            self.node.get_logger().warning("no semantic map serving 'query_objects': planning on an empty map")
            return []
        future = self.query.call_async(QueryObjects.Request(text="", max_results=0))
        if not self._wait(future, SERVICE_TIMEOUT_S) or future.result() is None:
            self.node.get_logger().warning("the semantic map did not answer 'query_objects'")
            return []
        return [msg_to_object(o) for o in future.result().objects]

    def check(self, task_id: str, step_index: int, phase: str, call: Call, since_ns: int) -> CheckResult:
        self._raise_if_lost()
        if not self.critic.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
            return CheckResult(False, 0.0, "no critic is serving 'check_step'")
        request = CheckStep.Request(task_id=task_id, step_index=step_index, phase=phase, skill=call.skill,
                                    args_json=call.args_json())
        if since_ns:
            request.since = ns_to_stamp(since_ns)
        future = self.critic.call_async(request)
        self._await(future, "critic ('check_step')", self.critic.service_is_ready, CHECK_TIMEOUT_S)
        if future.result() is None:
            return CheckResult(False, 0.0, "the critic did not answer")
        verdict = future.result().verdict
        return CheckResult(bool(verdict.ok), float(verdict.confidence), verdict.reason, bool(verdict.observed))

    def execute(self, call: Call, feedback: Callable[[str], None]) -> CallOutcome:
        if self.stopped():
            return CallOutcome(False, f"{call.skill} was not started: the task is stopping", cancelled=True,
                               moved=False)
        self._raise_if_lost()
        if not self.skills.wait_for_server(timeout_sec=SERVICE_TIMEOUT_S):
            return CallOutcome(False, "no skill server is serving 'execute_skill'", moved=False)
        server = "skill server ('execute_skill')"
        goal_future = self.skills.send_goal_async(
            ExecuteSkill.Goal(skill=call.skill, args_json=call.args_json()),
            feedback_callback=lambda msg: feedback(msg.feedback.phase))
        self._await(goal_future, server, self.skills.server_is_ready, SERVICE_TIMEOUT_S)
        handle = goal_future.result()
        if handle is None or not handle.accepted:
            return CallOutcome(False, "the skill server rejected the call", moved=False)
        with self._lock:
            self._skill_handle = handle
        if self.stopped():
            handle.cancel_goal_async()
        result_future = handle.get_result_async()
        try:
            self._await(result_future, server, self.skills.server_is_ready, SKILL_TIMEOUT_S)
        except NodeLost:
            handle.cancel_goal_async()
            raise
        finally:
            with self._lock:
                self._skill_handle = None
        # A dependency that left while the skill ran cancelled it: the task ends naming that node.
        self._raise_if_lost()
        response = result_future.result()
        effects = _effects(response.result.effects_json)
        if effects.get("emergency_stop"):
            # The skill server saw the stop first: the task ends even if this node's own message is late.
            self.emergency_stop_seen()
        cancelled = bool(self.stopped())
        return CallOutcome(bool(response.result.success) and not cancelled, response.result.message,
                           cancelled=cancelled, moved=bool(effects.get("moved", True)))

    def emergency_stop_seen(self) -> None:
        """Mark the running task as stopped by the emergency stop."""
        with self._lock:
            if self.goal_handle is not None:
                self._estopped = True

    def cancel_skill(self) -> None:
        """Cancel the running skill goal, if any (the skill server stops the motion)."""
        with self._lock:
            handle = self._skill_handle
        if handle is not None:
            handle.cancel_goal_async()

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def settle(self, seconds: float) -> None:
        # The node's clock: sim time in simulation, so the wait follows the simulator, however fast;
        # a clock that stops (the simulator gone) ends the wait after SETTLE_TIMEOUT_S of wall time.
        clock = self.node.get_clock()
        if not clock.ros_time_is_active:
            threading.Event().wait(seconds)
            return
        until = clock.now() + Duration(seconds=seconds)
        reached = threading.Event()

        def on_jump(_jump) -> None:
            if clock.now() >= until:
                reached.set()

        threshold = JumpThreshold(min_forward=Duration(nanoseconds=1), min_backward=None, on_clock_change=True)
        with clock.create_jump_callback(threshold, post_callback=on_jump):
            if clock.now() < until and not reached.wait(SETTLE_TIMEOUT_S):
                self.node.get_logger().warning(
                    f"the clock did not advance {seconds} s in {SETTLE_TIMEOUT_S:.0f} s of wall time: going on")

    def stopped(self) -> str:
        with self._lock:
            handle, estopped, said = self.goal_handle, self._estopped, self._stop_said
        if estopped:
            return EMERGENCY_STOP
        return CANCEL_REQUEST if said or (handle is not None and handle.is_cancel_requested) else ""


def _effects(text: str) -> dict:
    """Return a skill result's effects; a malformed effects_json counts as none."""
    try:
        effects = json.loads(text or "{}")
    except ValueError:
        return {}
    return effects if isinstance(effects, dict) else {}


class PlannerNode(StackNode):
    """Serve `execute_task`: plan, check, execute and replan, one task at a time."""

    def __init__(self, **kwargs) -> None:
        super().__init__("planner", **kwargs)
        read_only = {"backend", "model_dir", "base_url", "model", "api_key_env"}
        for name, default, description in (
                ("backend", "rules", f"Planner backend: {', '.join(BACKENDS)}."),
                ("model_dir", "", "Local model directory of the 'transformers' backend."),
                ("base_url", "", "OpenAI-compatible endpoint of the 'openai' backend, e.g. http://localhost:11434/v1."),
                ("model", "", "Model name of the 'openai' backend."),
                ("api_key_env", "OPENAI_API_KEY", "Environment variable holding the 'openai' backend's API key."),
                ("max_attempts", 3, "Plans per task at most: the first plan and its replans.")):
            self.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                      read_only=name in read_only))
        self.add_on_set_parameters_callback(self._check_parameters)
        backend = self.get_parameter("backend").value
        planner = make_planner(backend, lambda name: self.get_parameter(name).value)
        max_attempts = int(self.get_parameter("max_attempts").value)
        if max_attempts < 1:
            raise ValueError(f"parameter max_attempts must be at least 1, got {max_attempts}")
        group = ReentrantCallbackGroup()
        self.ports = _RosPorts(self, group)
        self.tasks = TaskExecutor(planner, self.ports, tuple(SKILLS), max_attempts)
        self._busy = threading.Lock()
        self.plan_pub = self.create_publisher(TaskPlan, "task_plan", qos.LATCHED)
        self.create_subscription(String, "skills/catalog", self._on_catalog, qos.LATCHED, callback_group=group)
        self.create_subscription(Bool, "emergency_stop", self._on_emergency_stop, qos.LATCHED, callback_group=group)
        self.create_subscription(String, "chat/user", self._on_user, qos.RELIABLE, callback_group=group)
        self.create_timer(LIVENESS_PERIOD_S, self._watch_dependencies, callback_group=group,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._server = ActionServer(self, ExecuteTask, "execute_task", execute_callback=self._execute,
                                    goal_callback=lambda goal: GoalResponse.ACCEPT,
                                    cancel_callback=self._on_cancel, callback_group=group)
        self.get_logger().info(f"planning with the '{backend}' backend, at most {max_attempts} plans per task")

    def _check_parameters(self, parameters: list) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name == "max_attempts":
                if int(parameter.value) < 1:
                    return SetParametersResult(successful=False, reason="max_attempts must be at least 1")
                self.tasks.max_attempts = int(parameter.value)
        return SetParametersResult(successful=True)

    def _on_catalog(self, msg: String) -> None:
        try:
            available = available_skills(msg.data)
        except ValueError as error:
            self.get_logger().warning(
                f"ignoring a malformed skills/catalog, keeping {list(self.tasks.skills)}: {error}")
            return
        self.tasks.skills = available

    def _on_emergency_stop(self, msg: Bool) -> None:
        engaged = bool(msg.data)
        if engaged != self.ports.estop_engaged:
            if engaged:
                self.get_logger().warning("emergency stop engaged: stopping the running task; new tasks are refused")
            else:
                self.get_logger().info("emergency stop released: nothing moves until a new task")
        self.ports.emergency_stop(engaged)

    def _watch_dependencies(self) -> None:
        for name in self.ports.watch_dependencies():
            self.get_logger().warning(f"the {name} went away during the task: stopping the task")

    def _on_user(self, msg: String) -> None:
        if is_stop_word(msg.data) and self.ports.stop_said():
            self.get_logger().info(f"{msg.data.strip()!r} on chat/user: cancelling the running task")

    def _on_cancel(self, goal_handle) -> CancelResponse:
        self.get_logger().info("task cancel requested: cancelling the running skill")
        self.ports.cancel_skill()
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle) -> ExecuteTask.Result:
        instruction = goal_handle.request.instruction.strip()
        if not self._busy.acquire(blocking=False):
            goal_handle.abort()
            return ExecuteTask.Result(success=False,
                                      summary=f"I am busy with another task; '{instruction}' was not started.")
        try:
            if self.ports.estop_engaged:
                goal_handle.abort()
                return ExecuteTask.Result(success=False, summary=(
                    f"The emergency stop is engaged: '{instruction}' was not started. "
                    "Release it, then give the command again."))
            return self._run(goal_handle, instruction)
        except Exception as error:  # noqa: BLE001 - a planner bug must not leave the goal without an answer
            self.get_logger().error(f"task {instruction!r} raised: {traceback.format_exc()}")
            self.ports.cancel_skill()
            goal_handle.abort()
            return ExecuteTask.Result(success=False,
                                      summary=f"Internal error while planning or running the task: {error}")
        finally:
            self.ports.end()
            self._busy.release()

    def _run(self, goal_handle, instruction: str) -> ExecuteTask.Result:
        task_id = uuid.uuid4().hex[:8]
        self.ports.begin(goal_handle)
        current = {"plan": "", "step": 0}

        def publish_plan(steps: list[Step], revision: int) -> None:
            msg = TaskPlan(task_id=task_id, instruction=instruction, revision=revision,
                           steps=[PlanStep(skill=s.call.skill, args_json=s.call.args_json(), status=s.status)
                                  for s in steps])
            self.plan_pub.publish(msg)
            current["plan"] = render_plan(steps, revision)

        def status(step: int, text: str) -> None:
            current["step"] = step
            goal_handle.publish_feedback(ExecuteTask.Feedback(plan=current["plan"], step=step, status=text))

        self.get_logger().info(f"task {task_id}: {instruction!r}")
        if not instruction:
            report_summary, success = "Tell me what to do, e.g. 'put the red cube in the tray'.", False
            goal_handle.abort()
            return ExecuteTask.Result(success=success, summary=report_summary)
        report = self.tasks.run(task_id, instruction, TaskEvents(plan=publish_plan, status=status))
        tokens = f", tokens {report.tokens}" if report.tokens else ""
        self.get_logger().info(f"task {task_id} planned in {report.planning_ms:.1f} ms{tokens}; "
                               f"{'succeeded' if report.success else 'not done'}: {report.summary}")
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif report.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return ExecuteTask.Result(success=report.success, summary=report.summary)


def main(args=None) -> None:
    """Run the planner node until shutdown."""
    spin_node(PlannerNode, "planner", args, multithreaded=True)


if __name__ == "__main__":
    main()
