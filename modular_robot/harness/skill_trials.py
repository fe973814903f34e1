"""One simulated trial of skills: call them over `execute_skill`, ask the critic, compare with ground truth.

Used by `benchmarks/skills_eval.py` and the skill server's tests. The stack runs in lockstep in this
process (see `lockstep.LockstepStack`); this class is the evaluator's side, speaking only the stack's
public interfaces (the ExecuteSkill action, the CheckStep service, the latched semantic map), plus
the simulator's ground truth, which never reaches the stack.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.stack import Stack
from modular_robot.harness.lockstep import LockstepStack
from modular_robot.nodes.skill_server_node import SkillServerNode
from modular_robot.ros import qos
from modular_robot.ros.conversions import ns_to_stamp
from modular_robot.ros.object_msgs import msg_to_object
from modular_robot.scenarios.scenario import Scenario
from modular_robot_interfaces.action import ExecuteSkill
from modular_robot_interfaces.msg import SemanticMap, Verdict
from modular_robot_interfaces.srv import CheckStep

# Sim time a call or check may take before the trial gives up on it (s).
SKILL_TIMEOUT_S = 120.0
CHECK_TIMEOUT_S = 10.0
STATUS_NAMES = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_ABORTED: "aborted",
                GoalStatus.STATUS_CANCELED: "canceled"}


@dataclass
class SkillCall:
    """What one ExecuteSkill goal came back with.

    Attributes:
        skill: Skill name.
        args: Its arguments.
        success: The result's success flag (False when the goal did not finish).
        status: "succeeded", "aborted", "canceled", "rejected" or "timeout".
        message: The skill's reason.
        effects: The result's effects JSON, parsed.
        feedback: Phases reported, in order.
        started_s: Sim time the goal was sent.
        finished_s: Sim time the result arrived.
    """

    skill: str
    args: dict
    success: bool
    status: str
    message: str
    effects: dict = field(default_factory=dict)
    feedback: list[str] = field(default_factory=list)
    started_s: float = 0.0
    finished_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.finished_s - self.started_s


class SkillTrial:
    """A lockstep stack with a skill server (and usually perception, map and critic) to drive.

    Args:
        scenario: The world.
        stack: The stack to run beside the sim.
        renderer: "auto", "egl" or "tiny".
    """

    def __init__(self, scenario: Scenario, stack: Stack, renderer: str = "auto") -> None:
        self.stack = LockstepStack(scenario, stack, renderer=renderer, log=lambda line: None,
                                   prepare=lambda node: ActionClient(node, ExecuteSkill, "execute_skill"))
        self.world = self.stack.world
        node = self.stack.client
        self._skills = self.stack.prepared
        self._critic = node.create_client(CheckStep, "check_step")
        self._lock = threading.Lock()
        self._map: list[MapObject] = []
        node.create_subscription(SemanticMap, "semantic_map", self._on_map, qos.LATCHED)

    def _on_map(self, msg: SemanticMap) -> None:
        objects = [msg_to_object(o) for o in msg.objects]
        with self._lock:
            self._map = objects

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> SkillTrial:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def sim_time(self) -> float:
        return self.world.sim_time

    def wait_ready(self, max_seconds: float = 2.0) -> bool:
        """Step until the skill server has heard every arm joint (it refuses arm skills until then)."""
        servers = [n for n in self.stack.nodes if isinstance(n, SkillServerNode)]
        return self.stack.advance_until(lambda: all(s.arm is None or s.arm.ready() for s in servers), max_seconds)

    def map_objects(self) -> list[MapObject]:
        """Return the semantic map's objects as last published."""
        with self._lock:
            return list(self._map)

    def map_id(self, truth_id: str, within_m: float = 0.06) -> str | None:
        """Return the id of the map object nearest a ground-truth object's centre, if within `within_m`."""
        truth = self.world.ground_truth().objects.get(truth_id)
        if truth is None:
            return None
        best = min(self.map_objects(), key=lambda o: math.dist(o.position, truth.center), default=None)
        if best is None or math.dist(best.position, truth.center) > within_m:
            return None
        return best.id

    def wait_for_map(self, truth_ids: list[str], max_seconds: float = 5.0, within_m: float = 0.06) -> bool:
        """Step until every listed ground-truth object has a map object near it."""
        return self.stack.advance_until(lambda: all(self.map_id(i, within_m) for i in truth_ids), max_seconds)

    def call(self, skill: str, args: dict | str, timeout_s: float = SKILL_TIMEOUT_S,
             cancel_after_s: float | None = None) -> SkillCall:
        """Send one ExecuteSkill goal and step until its result (or the timeout)."""
        args_json = args if isinstance(args, str) else json.dumps(args)
        call = SkillCall(skill, args if isinstance(args, dict) else {}, False, "timeout", "",
                         started_s=self.sim_time)
        if not self.stack.wait_server(self._skills):
            call.message = "no skill server"
            return call
        goal_future = self._skills.send_goal_async(
            ExecuteSkill.Goal(skill=skill, args_json=args_json),
            feedback_callback=lambda fb: call.feedback.append(fb.feedback.phase))
        if not self.stack.wait_future(goal_future, timeout_s):
            return call
        handle = goal_future.result()
        if not handle.accepted:
            call.status = "rejected"
            return call
        result_future = handle.get_result_async()
        if cancel_after_s is not None:
            self.stack.advance_until(result_future.done, cancel_after_s)
            if not result_future.done():
                handle.cancel_goal_async()
        if not self.stack.wait_future(result_future, timeout_s):
            handle.cancel_goal_async()
            return call
        response = result_future.result()
        call.finished_s = self.sim_time
        call.status = STATUS_NAMES.get(response.status, str(response.status))
        call.success = response.status == GoalStatus.STATUS_SUCCEEDED and response.result.success
        call.message = response.result.message
        call.effects = json.loads(response.result.effects_json) if response.result.effects_json else {}
        return call

    def check(self, phase: str, skill: str, args: dict | str, since_s: float | None = None,
              step_index: int = 0) -> Verdict:
        """Ask the critic for a verdict; a missing critic or a timeout is a not-ok verdict."""
        args_json = args if isinstance(args, str) else json.dumps(args)
        if not self.stack.wait_server(self._critic):
            return Verdict(phase=phase, ok=False, reason="no critic")
        request = CheckStep.Request(task_id="trial", step_index=step_index, phase=phase, skill=skill,
                                    args_json=args_json)
        if since_s is not None:
            request.since = ns_to_stamp(int(since_s * 1e9))
        future = self._critic.call_async(request)
        if not self.stack.wait_future(future, CHECK_TIMEOUT_S):
            return Verdict(phase=phase, ok=False, reason="the critic did not answer")
        return future.result().verdict
