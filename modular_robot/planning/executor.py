"""Run one task: plan, check each step with the critic, execute it, and replan when reality disagrees.

The planner node supplies `TaskPorts` (ROS clients for the map, the critic and the skill server);
everything here is plain Python, so the whole loop is unit-tested without ROS. For each step the
critic gives a pre verdict (preconditions hold in the current map), the skill server runs the call,
and the critic gives a post verdict from perception newer than the step's start. Success is claimed
only when every post verdict is ok. A failed verdict or a failed call triggers `repair`: the rest
of the plan is re-grounded in the current map and the failed step decomposed into what it needs
(as-needed decomposition, ADaPT), within `max_attempts` plans per task.

A task stops without a replan when the ports say so (a cancel request, the emergency stop) and when
a node it needs is lost (`NodeLost`): the report names why and at which step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from modular_robot.core.mapping.objects import MapObject
from modular_robot.planning.dialogue import Dialogue, Turn, moves_between
from modular_robot.planning.plan import Call, Plan, Planner, PlanRequest, validate_plan
from modular_robot.planning.repair import Failure, is_out_of_reach, refind_moved, reground, repair
from modular_robot.skills.library import SKILLS

# Step statuses, as in modular_robot_interfaces/PlanStep.
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = 0, 1, 2, 3, 4
STATUS_WORDS = {PENDING: "pending", RUNNING: "running", SUCCEEDED: "done", FAILED: "failed", SKIPPED: "skipped"}
# The map needs a few perception frames to move, add or drop an object. After a replan the stack's
# clock advances this long (s) before the first step that acts on an object (which is then
# re-grounded in the settled map), and after a task that moved objects before it reports, so that
# the next command ("what is in the tray?") is answered from a map that has seen the result.
MAP_SETTLE_S = 1.0
# Steps that prepare the robot rather than act on an object; they run before the settle.
_PREPARING = ("open_gripper", "move_arm_home")
# Why a task stops before its end, as `TaskPorts.stopped` reports it, and how the report says so.
CANCEL_REQUEST, EMERGENCY_STOP = "cancel_request", "emergency_stop"
_STOPPED_WORDS = {
    CANCEL_REQUEST: ("Cancelled", "the robot was stopped."),
    EMERGENCY_STOP: ("Stopped by the emergency stop", "the robot stays still until you give a new command."),
}

# Words that, said alone while a task runs (in the chat or on chat/user), cancel it at once.
STOP_WORDS = frozenset({"stop", "halt", "wait", "cancel"})


def is_stop_word(text: str) -> bool:
    """Return whether a line said during a task asks to stop it ("stop", "Halt!", "wait.")."""
    return text.strip().strip(".!").strip().lower() in STOP_WORDS


class NodeLost(Exception):
    """A node the task needs (the critic, the skill server) went away or stopped answering."""


@dataclass(frozen=True)
class CheckResult:
    """A critic verdict as the executor sees it.

    Attributes:
        ok: The preconditions hold (pre) or the effects were judged to hold (post).
        confidence: The critic's confidence in [0, 1].
        reason: What the critic measured.
        observed: False when an ok post verdict rests only on indirect evidence (inferred, not seen).
    """

    ok: bool
    confidence: float
    reason: str
    observed: bool = True


@dataclass(frozen=True)
class CallOutcome:
    """What the skill server answered for one call.

    Attributes:
        success: The skill ran to completion and its own checks passed.
        message: Its reason.
        cancelled: The call was cancelled (the task was cancelled).
        moved: Whether any motion was commanded.
    """

    success: bool
    message: str
    cancelled: bool = False
    moved: bool = True


class TaskPorts(Protocol):
    """The stack as the executor uses it."""

    def snapshot(self) -> list[MapObject]:
        """Return the semantic map's objects now."""
        ...

    def check(self, task_id: str, step_index: int, phase: str, call: Call, since_ns: int) -> CheckResult:
        """Ask the critic for a "pre" or "post" verdict on a step."""
        ...

    def execute(self, call: Call, feedback: Callable[[str], None]) -> CallOutcome:
        """Run a call on the skill server until it finishes or the task is cancelled."""
        ...

    def now_ns(self) -> int:
        """Return the stack's clock (sim time in simulation)."""
        ...

    def settle(self, seconds: float) -> None:
        """Wait until the stack's clock has advanced by `seconds`."""
        ...

    def stopped(self) -> str:
        """Return why the task must stop now: "" while it may go on, else CANCEL_REQUEST or EMERGENCY_STOP.

        Raising `NodeLost` from `check` or `execute` also ends the task, without a replan.
        """
        ...


@dataclass
class Step:
    """One step of the published plan."""

    call: Call
    status: int = PENDING
    # The post verdict that accepted the step.
    evidence: CheckResult | None = None


@dataclass
class TaskReport:
    """What a finished task reports.

    Attributes:
        success: The task's goal holds on the critic's evidence (answers count as successes).
        summary: The robot's human-readable answer.
        kind: The first plan's kind.
        revisions: How many plans were made (1 + replans).
        transcript: Events in order: {"role": "plan"|"verdict"|"skill"|"replan"|..., "text": ...}.
        tokens: Token counts summed over the task's model calls.
        planning_ms: Wall time of the first planning call.
        first_motion_ms: Wall time from the instruction to the first motion command (None if none).
    """

    success: bool
    summary: str
    kind: str
    revisions: int = 0
    transcript: list[dict] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    planning_ms: float = 0.0
    first_motion_ms: float | None = None


@dataclass
class TaskEvents:
    """Callbacks the node turns into TaskPlan messages and action feedback."""

    plan: Callable[[list[Step], int], None] = lambda steps, revision: None
    status: Callable[[int, str], None] = lambda step, text: None


def render_plan(steps: Sequence[Step], revision: int) -> str:
    """Return the plan as readable lines with each step's status."""
    lines = [f"plan revision {revision}"]
    lines += [f"  {i}. {s.call}  [{STATUS_WORDS[s.status]}]" for i, s in enumerate(steps, start=1)]
    return "\n".join(lines)


class TaskExecutor:
    """Plans and runs tasks for one robot, keeping the dialogue between them.

    Args:
        planner: The planner backend.
        ports: The stack's map, critic and skill server.
        skills: Skills this robot can run.
        max_attempts: Plans per task at most (the first one included).
        dialogue: The conversation's memory (a new one by default).
    """

    def __init__(self, planner: Planner, ports: TaskPorts, skills: Sequence[str], max_attempts: int = 3,
                 dialogue: Dialogue | None = None) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.planner = planner
        self.ports = ports
        self.skills = tuple(skills)
        self.max_attempts = max_attempts
        self.dialogue = dialogue or Dialogue()
        self.held: str | None = None

    def run(self, task_id: str, instruction: str, events: TaskEvents | None = None) -> TaskReport:
        """Plan and execute one instruction; never raises on bad input."""
        events = events or TaskEvents()
        started = time.perf_counter()
        events.status(0, "planning")
        before = self.ports.snapshot()
        # What the gripper holds is observed (the map's word), not remembered from earlier tasks: a
        # cancel, a failed pick or a person's hand may have changed it since.
        self.held = next((obj.id for obj in before if obj.held), None)
        request = PlanRequest(instruction, before, self.dialogue, self.skills, self.held)
        plan = self.planner.plan(request)
        planning_ms = (time.perf_counter() - started) * 1000.0
        report = TaskReport(False, "", plan.kind, 1, tokens=dict(plan.tokens), planning_ms=planning_ms)
        report.transcript.append({"role": "plan", "text": _describe_plan(plan), "planning_ms": round(planning_ms, 1),
                                  "tokens": dict(plan.tokens)})
        if plan.kind == "execute":
            problems = validate_plan(plan, before, self.skills)
            if problems:
                plan = Plan("refuse", reply="I cannot run that plan: " + "; ".join(problems))
                report.kind = "refuse"
        if plan.kind != "execute":
            report.success = plan.kind == "answer"
            report.summary = plan.reply
            self.dialogue.add_turn(Turn(instruction, plan.reply, plan.kind, success=report.success))
            events.status(0, plan.reply)
            return report
        renamed: dict[str, str] = {}
        self._execute(task_id, plan, before, events, report, started, renamed)
        if any(_fact(call, "moves_object") for call in plan.steps):
            self.ports.settle(MAP_SETTLE_S)
        after = self.ports.snapshot()
        touched = {str(s.args.get("object")) for s in plan.steps if _fact(s, "moves_object")}
        refind_moved(touched, before, after, self.held, renamed)
        self.dialogue.record_moves(moves_between(_centres(before), _centres(after), touched, self.held,
                                                 renamed=renamed))
        self.dialogue.add_turn(Turn(instruction, report.summary, "execute",
                                    tuple(str(s) for s in plan.steps), report.success))
        return report

    def _execute(self, task_id: str, plan: Plan, before: list[MapObject], events: TaskEvents,
                 report: TaskReport, started: float, renamed: dict[str, str]) -> None:
        """Run the plan's steps, replanning on failures; every object id the map replaced goes into `renamed`."""
        steps = [Step(call) for call in plan.steps]
        events.plan(steps, report.revisions)
        index = 0
        known = before
        settle_at: int | None = None
        while True:
            if index >= len(steps):
                try:
                    undone = self._final_check(task_id, steps, events, report)
                except NodeLost as error:
                    _report_lost(report, events, len(steps), "the final check", error)
                    return
                if undone is None:
                    break
                # An effect the critic saw has since been undone (someone took the cube out of the tray):
                # the task is not done; the step is planned again as if it had just failed.
                earlier, verdict = undone
                steps.append(Step(steps[earlier].call))
                index = len(steps) - 1
                step = steps[index]
                failure = Failure(step.call, "post", f"no longer holds at the end: {verdict.reason}")
                self._learn_from(step.call, "post", verdict.reason)
            else:
                why = self.ports.stopped()
                if why:
                    _report_stop(report, why, f"before step {index + 1} ({steps[index].call})")
                    return
                if settle_at == index:
                    settle_at = None
                    self.ports.settle(MAP_SETTLE_S)
                    current = self.ports.snapshot()
                    calls = reground([s.call for s in steps[index:]], known, current, self.held, renamed)
                    if isinstance(calls, str):
                        report.summary = f"I could not finish: before step {index + 1} {steps[index].call}, {calls}."
                        return
                    known = current
                    for pending, call in zip(steps[index:], calls):
                        pending.call = call
                step = steps[index]
                step.status = RUNNING
                events.plan(steps, report.revisions)
                try:
                    outcome = self._run_step(task_id, index, step.call, events, report, started)
                except NodeLost as error:
                    _report_lost(report, events, index + 1, f"step {index + 1} ({step.call})", error)
                    return
                if isinstance(outcome, CheckResult):
                    step.evidence = outcome
                    step.status = SUCCEEDED
                    index += 1
                    continue
                failure = outcome
            step.status = FAILED
            events.plan(steps, report.revisions)
            why = self.ports.stopped() or (CANCEL_REQUEST if failure.phase == "cancelled" else "")
            if why:
                _report_stop(report, why, f"during step {index + 1} ({step.call})")
                return
            if report.revisions >= self.max_attempts:
                report.summary = (f"I could not finish: step {index + 1} {step.call} failed "
                                  f"({failure.phase}: {failure.reason}). I gave up after {report.revisions} "
                                  f"plan{'s' if report.revisions > 1 else ''}.")
                return
            current = self.ports.snapshot()
            repaired = repair([s.call for s in steps[index:]], failure, known, current, self.held, self.skills,
                              renamed)
            if isinstance(repaired, str):
                report.summary = (f"I could not finish: step {index + 1} {step.call} failed ({failure.reason}); "
                                  f"{repaired}.")
                return
            known = current
            report.revisions += 1
            steps = steps[:index] + [Step(call) for call in repaired]
            settle_at = index + next((i for i, call in enumerate(repaired) if call.skill not in _PREPARING),
                                     len(repaired))
            text = (f"replanning after step {index + 1} {failure.call} failed ({failure.phase}: {failure.reason}): "
                    + ", ".join(str(c) for c in repaired))
            report.transcript.append({"role": "replan", "revision": report.revisions, "text": text})
            events.status(index + 1, f"{text} (plan {report.revisions} of at most {self.max_attempts})")
            events.plan(steps, report.revisions)
        report.success = True
        replans = report.revisions - 1
        after = f" after {replans} replan{'s' if replans > 1 else ''}" if replans else ""
        report.summary = f"Done{after}: {_intent(plan, steps)}. {_evidence(steps)}"
        events.plan(steps, report.revisions)

    def _run_step(self, task_id: str, index: int, call: Call, events: TaskEvents, report: TaskReport,
                  started: float) -> Failure | CheckResult:
        """Check, run and check one step; return why it failed, or the post verdict that accepted it."""
        number = index + 1
        pre = self.ports.check(task_id, index, "pre", call, 0)
        self._verdict(report, events, number, call, "pre", pre)
        if not pre.ok:
            self._learn_from(call, "pre", pre.reason)
            return Failure(call, "pre", pre.reason)
        if report.first_motion_ms is None:
            report.first_motion_ms = (time.perf_counter() - started) * 1000.0
        events.status(number, f"step {number} running {call}")
        outcome = self.ports.execute(call, lambda phase: events.status(number, f"step {number} {call.skill}: {phase}"))
        report.transcript.append({"role": "skill", "step": number, "call": str(call), "success": outcome.success,
                                  "text": outcome.message})
        if outcome.cancelled:
            return Failure(call, "cancelled", outcome.message)
        if not outcome.success:
            events.status(number, f"step {number} {call.skill} failed: {outcome.message}")
            if _places(call) and not outcome.moved:
                # Refused before moving: ask the critic again whether the object is still held
                # (something may have taken it from the gripper since the pre-check).
                again = self.ports.check(task_id, index, "pre", call, 0)
                self._verdict(report, events, number, call, "pre", again)
                self._learn_from(call, "pre" if not again.ok else "execute", again.reason)
            return Failure(call, "execute", outcome.message, moved=outcome.moved)
        # Only what perception saw after the skill ended counts: frames from during the motion (late to
        # arrive on a loaded machine) show the world before the effect, or an effect undone at the end.
        post = self.ports.check(task_id, index, "post", call, self.ports.now_ns())
        self._verdict(report, events, number, call, "post", post)
        if not post.ok and _leaves_in_view(call) and "move_arm_home" in self.skills:
            post = self._look_again(task_id, index, call, events, report) or post
        if not post.ok:
            self._learn_from(call, "post", post.reason)
            return Failure(call, "post", post.reason)
        self._learn_from(call, "ok", "")
        return post

    def _final_check(self, task_id: str, steps: Sequence[Step], events: TaskEvents,
                     report: TaskReport) -> tuple[int, CheckResult] | None:
        """Ask the critic again for every lasting effect (where objects were put); return the first undone."""
        since = self.ports.now_ns()
        for index, step in enumerate(steps):
            call = step.call
            moved_later = any(later.call.args.get("object") == call.args.get("object")
                              for later in steps[index + 1:] if _fact(later.call, "moves_object"))
            if not _places(call) or step.status != SUCCEEDED or moved_later:
                continue
            verdict = self.ports.check(task_id, index, "post", call, since)
            self._verdict(report, events, index + 1, call, "final", verdict)
            if not verdict.ok:
                return index, verdict
        return None

    def _look_again(self, task_id: str, index: int, call: Call, events: TaskEvents,
                    report: TaskReport) -> CheckResult | None:
        """Send the arm home, out of the camera's view, and ask the critic again; None if home failed."""
        number = index + 1
        events.status(number, f"step {number}: looking again with the arm home")
        home = self.ports.execute(Call("move_arm_home"), lambda phase: None)
        report.transcript.append({"role": "skill", "step": number, "call": "move_arm_home()", "success": home.success,
                                  "text": home.message})
        if not home.success or home.cancelled:
            return None
        again = self.ports.check(task_id, index, "post", call, self.ports.now_ns())
        self._verdict(report, events, number, call, "post", again)
        return again

    def _verdict(self, report: TaskReport, events: TaskEvents, number: int, call: Call, phase: str,
                 verdict: CheckResult) -> None:
        word = "ok" if verdict.ok else "FAILED"
        text = f"step {number} {phase}-check {word} ({verdict.confidence:.2f}): {verdict.reason}"
        report.transcript.append({"role": "verdict", "step": number, "phase": phase, "call": str(call),
                                  "ok": verdict.ok, "confidence": round(verdict.confidence, 3), "text": verdict.reason})
        events.status(number, text)

    def _learn_from(self, call: Call, outcome: str, reason: str) -> None:
        """Track what the gripper holds from the verified outcomes of calls."""
        obj = call.args.get("object")
        if outcome == "ok":
            if _fact(call, "grasps"):
                self.held = obj
            elif _fact(call, "releases") or _fact(call, "moves_object"):
                self.held = None
        elif _fact(call, "grasps") and outcome in ("post", "execute"):
            self.held = None
        elif _places(call) and (outcome == "post" or (
                outcome == "pre" and self.held == obj and not reason.startswith("unknown target")
                and not is_out_of_reach(reason))):
            # A target missing from the map (re-identified under a new id), or out of the arm's reach,
            # says nothing about the gripper.
            self.held = None



def _fact(call: Call, fact: str) -> bool:
    """Return a fact the skill declares (`Skill.moves_object`, `grasps`, `releases`); False if unknown."""
    skill = SKILLS.get(call.skill)
    return skill is not None and getattr(skill, fact)


def _places(call: Call) -> bool:
    """Whether the call puts the object it names somewhere and lets go of it (place, place_at)."""
    return _fact(call, "moves_object") and _fact(call, "releases")


def _leaves_in_view(call: Call) -> bool:
    """Whether the call leaves the object it moved where the camera judges it, which the arm may
    still block after the step: a failed post-check is asked once more with the arm home."""
    return _fact(call, "moves_object") and not _fact(call, "grasps")

def _report_stop(report: TaskReport, why: str, where: str) -> None:
    """End the report of a task stopped by a cancel request or the emergency stop."""
    opening, closing = _STOPPED_WORDS[why]
    report.summary = f"{opening} {where}; {closing}"
    report.transcript.append({"role": "cancel", "text": report.summary})


def _report_lost(report: TaskReport, events: TaskEvents, number: int, where: str, error: NodeLost) -> None:
    """End the report of a task whose critic or skill server was lost."""
    report.summary = f"I stopped the task at {where}: {error}."
    report.transcript.append({"role": "node_lost", "text": report.summary})
    events.status(number, report.summary)


def _evidence(steps: Sequence[Step]) -> str:
    """Say how the critic judged the steps: seen, or which were only inferred and from what."""
    inferred = [(number, step) for number, step in enumerate(steps, start=1)
                if step.evidence is not None and not step.evidence.observed]
    if not inferred:
        return "Every step was verified by the critic."
    parts = [f"step {number} {step.call} was inferred, not seen ({step.evidence.confidence:.2f}): "
             f"{step.evidence.reason}" for number, step in inferred]
    return "The critic did not see every effect: " + "; ".join(parts) + "."


def _centres(objects: Sequence[MapObject]) -> dict[str, np.ndarray]:
    return {o.id: np.asarray(o.position, dtype=float) for o in objects}


def _describe_plan(plan: Plan) -> str:
    if plan.kind == "execute":
        return f"{plan.reply + ': ' if plan.reply else ''}" + ", ".join(str(c) for c in plan.steps)
    return f"{plan.kind}: {plan.reply}"


def _intent(plan: Plan, steps: Sequence[Step]) -> str:
    """Return what was done: the planner's statement of intent, else the calls."""
    text = plan.reply.strip().rstrip(".")
    if text.lower().startswith("i will "):
        return text[len("i will "):]
    return text or ", ".join(str(s.call) for s in steps)
