"""Run one scenario: build the world, bring up the stack, send commands, judge on ground truth."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from modular_robot.core.stack import Stack
from modular_robot.harness.lockstep import LockstepStack
from modular_robot.ros import qos
from modular_robot.ros.recorder import start_recorder
from modular_robot.scenarios.predicates import PredicateResult, evaluate_all
from modular_robot.scenarios.scenario import Disturbance, Scenario
from modular_robot.sim.world import SimWorld
from modular_robot_interfaces.action import ExecuteTask
from modular_robot_interfaces.msg import PlanStep, SemanticMap, TaskPlan

_SETTLE_S = 1.0
# Before the first command, the stack gets this long (sim time) to see the scene, as a robot has
# looked at the table before anyone talks to it: until its map has held the same objects, by id and
# label, for _MAP_STABLE_S (small objects take more sightings to confirm than a tray, and a far one
# may be relabelled once seen better), at most _WARMUP_S.
_WARMUP_S = 6.0
_MAP_STABLE_S = 2.0
_SERVER_WAIT_S = 3.0
# Sim seconds a cancelled task gets to end before the episode goes on without its answer.
_CANCEL_WAIT_S = 5.0


@dataclass
class ScenarioResult:
    """What `modular-robot run` reports for one scenario (one entry of results.json)."""

    name: str
    category: str
    passed: bool
    false_success: bool
    predicates: list[dict]
    wall_s: float
    sim_s: float
    transcript: list[dict] = field(default_factory=list)
    first_motion_ms: list[float | None] = field(default_factory=list)


class MapSettling:
    """Tells when a semantic map has settled: the same objects, by id and label, for `period_s`.

    An object relabelled (a far cube first taken for something flat) or renamed counts as a
    change, as one added or removed does; an empty map never settles.
    """

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._objects: tuple[tuple[str, str], ...] | None = None
        self._since = 0.0

    def update(self, semantic_map: SemanticMap | None, now_s: float) -> bool:
        """Take the latest map (None: none yet) at sim time `now_s`; return whether it has settled."""
        objects = None if semantic_map is None else tuple(sorted((o.id, o.label) for o in semantic_map.objects))
        if objects != self._objects:
            self._objects, self._since = objects, now_s
            return False
        return bool(objects) and now_s - self._since >= self.period_s


class _Episode:
    """The evaluator's side of an episode: sends commands, applies disturbances, records a transcript."""

    def __init__(self, scenario: Scenario, stack: LockstepStack) -> None:
        self.scenario = scenario
        self.stack = stack
        self.world = stack.world
        self.transcript: list[dict] = []
        self.replies: list[list[str]] = []
        self.reported_success = False
        self.pending_steps = [d for d in scenario.disturbances if d.at == "after_step"]
        self.pending_times = sorted((d for d in scenario.disturbances if d.at == "time"), key=lambda d: d.time_s)
        self.lock = threading.Lock()
        self.finished_steps = 0
        client_node = stack.client
        self.client = stack.prepared
        client_node.create_subscription(TaskPlan, "task_plan", self._on_plan, 10)
        self.semantic_map: SemanticMap | None = None
        client_node.create_subscription(SemanticMap, "semantic_map", self._on_map, qos.LATCHED)
        # The first command reaching the arm's controllers after a goal is sent: the latency a
        # user feels from their words to motion (wall time, every node computing as it does live).
        self.sent_wall: float | None = None
        self.first_motion_ms: list[float | None] = []
        for kind, topic in ((JointTrajectory, "arm_controller/joint_trajectory"),
                            (Float64MultiArray, "gripper_controller/commands")):
            client_node.create_subscription(kind, topic, self._on_motion, qos.RELIABLE)
        self.last_status = ""
        self.last_plan = ""
        # What the chat node publishes live: the instructions and the replies, for recordings and other UIs.
        self.chat = {role: client_node.create_publisher(String, f"chat/{role}", qos.RELIABLE)
                     for role in ("user", "robot")}

    def _on_motion(self, msg) -> None:
        with self.lock:
            if self.sent_wall is not None and self.first_motion_ms and self.first_motion_ms[-1] is None:
                self.first_motion_ms[-1] = round((time.monotonic() - self.sent_wall) * 1000.0, 1)

    def _on_feedback(self, feedback) -> None:
        fb = feedback.feedback
        if fb.plan and fb.plan != self.last_plan:
            self.last_plan = fb.plan
            self.log("plan", fb.plan.replace("\n", "\n" + " " * 24))
        if fb.status and fb.status != self.last_status:
            self.last_status = fb.status
            self.log("planner", fb.status)

    def _on_map(self, msg: SemanticMap) -> None:
        with self.lock:
            self.semantic_map = msg

    def log_map(self) -> None:
        """Record what the stack's semantic map holds, when the stack has one."""
        with self.lock:
            semantic_map = self.semantic_map
        if semantic_map is None:
            return
        seen = ", ".join(f"{o.label} at ({o.pose.position.x:.2f}, {o.pose.position.y:.2f})"
                         for o in semantic_map.objects)
        self.log("map", f"{len(semantic_map.objects)} objects: {seen}" if seen else "no objects")

    def _on_plan(self, plan: TaskPlan) -> None:
        done = 0
        for step in plan.steps:
            if step.status != PlanStep.STATUS_SUCCEEDED:
                break
            done += 1
        with self.lock:
            self.finished_steps = max(self.finished_steps, done)

    def log(self, role: str, text: str) -> None:
        self.transcript.append({"sim_s": round(self.world.sim_time, 3), "role": role, "text": text})
        print(f"  [{self.world.sim_time:7.2f} s] {role:>9}: {text}")
        if role in self.chat:
            self.chat[role].publish(String(data=text))

    def step(self) -> None:
        """Advance the stack one chunk and apply disturbances that have come due."""
        self.stack.step()
        now = self.world.sim_time
        while self.pending_times and self.pending_times[0].time_s <= now:
            self._disturb(self.pending_times.pop(0))
        with self.lock:
            finished = self.finished_steps
        for disturbance in [d for d in self.pending_steps if d.step <= finished]:
            self.pending_steps.remove(disturbance)
            self._disturb(disturbance)

    def _disturb(self, disturbance: Disturbance) -> None:
        self.world.apply_disturbance(disturbance)
        self.log("sim", f"disturbance: {disturbance.action} {disturbance.object}"
                        + (f" to {list(disturbance.pose)}" if disturbance.pose else ""))

    def warm_up(self, until_sim: float) -> None:
        """Step until the semantic map has held the same objects for a while (or `until_sim`)."""
        settled = MapSettling(_MAP_STABLE_S)
        while self.world.sim_time < until_sim:
            with self.lock:
                semantic_map = self.semantic_map
            if settled.update(semantic_map, self.world.sim_time):
                return
            self.step()

    def wait(self, future, deadline_sim: float) -> bool:
        while not future.done():
            if self.world.sim_time >= deadline_sim:
                return False
            self.step()
        return True

    def send(self, command: str, deadline_sim: float) -> None:
        self.log("user", command)
        wall_deadline = time.monotonic() + _SERVER_WAIT_S
        while not self.client.server_is_ready() and time.monotonic() < wall_deadline:
            self.step()
        if not self.client.server_is_ready():
            reply = "no task planner is serving 'execute_task' in this stack"
            self.log("robot", reply)
            self.replies.append([reply])
            return
        with self.lock:
            self.sent_wall = time.monotonic()
            self.first_motion_ms.append(None)
        self.last_status = self.last_plan = ""
        goal_future = self.client.send_goal_async(ExecuteTask.Goal(instruction=command),
                                                  feedback_callback=self._on_feedback)
        if not self.wait(goal_future, deadline_sim) or not goal_future.result().accepted:
            reply = "the planner did not accept the task"
            self.log("robot", reply)
            self.replies.append([reply])
            return
        handle = goal_future.result()
        result_future = handle.get_result_async()
        if not self.wait(result_future, deadline_sim):
            handle.cancel_goal_async()
            # The planner winds a cancelled task down on sim time (it lets the arm settle): the sim
            # must keep stepping until it answers, or its thread blocks the executor's shutdown.
            self.wait(result_future, self.world.sim_time + _CANCEL_WAIT_S)
            reply = f"timed out after {self.scenario.timeout_s} s of sim time; task cancelled"
            self.log("robot", reply)
            self.replies.append([reply])
            return
        response = result_future.result()
        result = response.result
        ok = response.status == GoalStatus.STATUS_SUCCEEDED and result.success
        self.reported_success = self.reported_success or ok
        self.log("robot", result.summary)
        motion_ms = self.first_motion_ms[-1]
        if motion_ms is not None:
            self.log("sim", f"first motion command {motion_ms:.0f} ms (wall) after the instruction was sent")
        self.replies.append([result.summary])


def run_scenario(scenario: Scenario, out_dir: Path, stack: Stack | None = None, renderer: str = "auto",
                 verbose: bool = True, record: bool = False) -> ScenarioResult:
    """Run one scenario in lockstep and write its report folder.

    The simulator runs in this process (its ground truth stays here, with the evaluator); the
    other nodes of `stack` run on the same executor. With `record`, every topic of the episode,
    from before the warm-up to the end, goes to `<out_dir>/episode.mcap` (an earlier one is
    replaced). Returns the result; `passed` is True only when every predicate holds.
    """
    wall_start = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    lockstep = LockstepStack(scenario, stack, renderer=renderer, client_name="scenario_runner",
                             prepare=lambda node: ActionClient(node, ExecuteTask, "execute_task"))
    recorder = None
    try:
        if record:
            (out_dir / "episode.mcap").unlink(missing_ok=True)
            recorder = start_recorder(out_dir / "episode.mcap", lockstep.context, lockstep.executor,
                                      introspection=False)
        world = lockstep.world
        _save_view(world, out_dir / "before.png")
        initial = world.ground_truth()
        episode = _Episode(scenario, lockstep)
        lockstep.log = lambda line: episode.log("sim", line)
        deadline = world.sim_time + scenario.timeout_s
        if scenario.commands:
            episode.warm_up(world.sim_time + _WARMUP_S)
        for command in scenario.commands:
            episode.send(command, deadline)
        settle_until = world.sim_time + _SETTLE_S
        while world.sim_time < settle_until or (episode.pending_times and world.sim_time < deadline):
            episode.step()
        episode.log_map()
        final = world.ground_truth(episode.replies)
        _save_view(world, out_dir / "after.png")
        results = evaluate_all(scenario.expect, final, initial)
        sim_s = world.sim_time
    finally:
        if recorder is not None:
            recorder.close()
        lockstep.close()
    passed = all(r.passed for r in results)
    outcome = ScenarioResult(
        name=scenario.name, category=scenario.category, passed=passed,
        false_success=episode.reported_success and not passed,
        predicates=[asdict(r) for r in results], wall_s=round(time.monotonic() - wall_start, 3),
        sim_s=round(sim_s, 3), transcript=episode.transcript, first_motion_ms=episode.first_motion_ms)
    if verbose:
        print(format_table(scenario.name, results))
    return outcome


def _save_view(world: SimWorld, path: Path) -> None:
    rgb, _ = world.render(0)
    cv2.imwrite(str(path), rgb[:, :, ::-1])


def format_table(name: str, results: list[PredicateResult]) -> str:
    """Return a readable PASS/FAIL table of predicate results."""
    width = max([len(r.predicate) for r in results] + [9])
    lines = [f"scenario {name}", f"  {'predicate':<{width}}  result  detail"]
    lines += [f"  {r.predicate:<{width}}  {'PASS' if r.passed else 'FAIL':<6}  {r.detail}" for r in results]
    passed = sum(r.passed for r in results)
    lines.append(f"  {passed}/{len(results)} predicates hold: {'PASS' if passed == len(results) else 'FAIL'}")
    return "\n".join(lines)


def write_results(results: list[ScenarioResult], path: Path) -> None:
    """Write results.json in the format of ARCHITECTURE.md."""
    summary = {"total": len(results), "passed": sum(r.passed for r in results),
               "false_success": sum(r.false_success for r in results)}
    path.write_text(json.dumps({"summary": summary, "scenarios": [asdict(r) for r in results]}, indent=2))
