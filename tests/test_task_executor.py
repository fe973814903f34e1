"""The task executor and plan repair without ROS: verdict handling, replanning, cancel, dialogue memory."""

from __future__ import annotations

import numpy as np
import pytest

from modular_robot.core.mapping.objects import MapObject
from modular_robot.planning.dialogue import Dialogue, Move, moves_between
from modular_robot.planning.executor import (
    CANCEL_REQUEST,
    EMERGENCY_STOP,
    FAILED,
    SUCCEEDED,
    CallOutcome,
    CheckResult,
    NodeLost,
    TaskEvents,
    TaskExecutor,
    is_stop_word,
    render_plan,
)
from modular_robot.planning.plan import Call, Plan, PlanRequest
from modular_robot.planning.repair import Failure, repair
from modular_robot.skills.library import SKILLS


def cube(object_id="red_cube_1", xy=(0.55, 0.10), label="small red cube"):
    return MapObject(object_id, label, "cube", ("red", "small"), "red", [xy[0], xy[1], 0.02], [0.04] * 3)


def tray():
    return MapObject("tray_1", "large gray tray", "tray", ("gray", "large"), "gray", [0.45, -0.25, 0.025],
                     [0.24, 0.24, 0.05])


PICK = Call("pick", {"object": "red_cube_1"})
PLACE = Call("place", {"object": "red_cube_1", "relation": "in", "target": "tray_1"})


class ScriptedPlanner:
    """Returns the given plans in turn and records the requests."""

    name = "scripted"

    def __init__(self, *plans: Plan) -> None:
        self.plans = list(plans)
        self.requests: list[PlanRequest] = []

    def plan(self, request: PlanRequest) -> Plan:
        self.requests.append(request)
        return self.plans.pop(0)


class Stack:
    """A stack whose critic answers from a script: verdicts[(skill, phase)] is a list used in turn."""

    def __init__(self, objects, verdicts=None, after=None, cancel_after_calls=None) -> None:
        self.objects = list(objects)
        self.after = after
        self.verdicts = {k: list(v) for k, v in (verdicts or {}).items()}
        self.calls: list[Call] = []
        self.checks: list[tuple[str, str, int]] = []
        self.cancel_after_calls = cancel_after_calls
        self.clock = 0
        self.settled: list[float] = []

    def snapshot(self):
        if self.calls and self.after is not None:
            return list(self.after)
        return list(self.objects)

    def check(self, task_id, step_index, phase, call, since_ns):
        self.checks.append((call.skill, phase, since_ns))
        script = self.verdicts.get((call.skill, phase))
        if script:
            return script.pop(0)
        return CheckResult(True, 0.9, f"{call.skill} {phase} ok")

    def execute(self, call, feedback):
        self.calls.append(call)
        feedback("moving")
        self.clock += 1_000_000_000
        return CallOutcome(True, "done")

    def now_ns(self):
        return self.clock

    def settle(self, seconds):
        self.settled.append(seconds)
        self.clock += int(seconds * 1e9)

    def stopped(self):
        stopping = self.cancel_after_calls is not None and len(self.calls) >= self.cancel_after_calls
        return CANCEL_REQUEST if stopping else ""


def run(stack, *plans, max_attempts=3, dialogue=None):
    planner = ScriptedPlanner(*plans)
    executor = TaskExecutor(planner, stack, tuple(SKILLS), max_attempts, dialogue)
    plans_seen, statuses = [], []
    events = TaskEvents(plan=lambda steps, revision: plans_seen.append(([s.status for s in steps], revision)),
                        status=lambda step, text: statuses.append((step, text)))
    report = executor.run("t1", "put the red cube in the tray", events)
    return report, executor, plans_seen, statuses


def test_a_verified_plan_succeeds_and_every_step_is_checked_before_and_after():
    stack = Stack([cube(), tray()])
    report, executor, plans_seen, statuses = run(stack, Plan("execute", (PICK, PLACE), "put the cube in the tray"))
    assert report.success and report.revisions == 1
    assert stack.calls == [PICK, PLACE]
    # Where the cube was put is checked again once the plan is done: an effect must still hold.
    assert [(s, p) for s, p, _ in stack.checks] == [("pick", "pre"), ("pick", "post"), ("place", "pre"),
                                                   ("place", "post"), ("place", "post")]
    # The post check only counts perception from after the step ended.
    assert stack.checks[1][2] == 1_000_000_000 and stack.checks[3][2] == 2_000_000_000
    assert plans_seen[-1] == ([SUCCEEDED, SUCCEEDED], 1)
    assert any("post-check ok" in text for _, text in statuses)
    assert "verified" in report.summary
    assert executor.held is None
    assert report.first_motion_ms is not None and report.first_motion_ms >= report.planning_ms


def test_a_step_the_critic_only_inferred_is_never_reported_as_verified():
    hidden = ("holding(red_cube_1) inferred, not seen, in 3 of 3 fresh frames: no small red cube is seen anywhere, "
              "its place is empty and the fingers are held 4.0 cm apart: hidden in the gripper")
    stack = Stack([cube(), tray()], verdicts={("pick", "post"): [CheckResult(True, 0.6, hidden, observed=False)]})
    report, _, _, _ = run(stack, Plan("execute", (PICK,), "pick up the red cube"))
    assert report.success
    assert "verified" not in report.summary
    assert "step 1 pick(object=red_cube_1) was inferred, not seen (0.60)" in report.summary
    assert "hidden in the gripper" in report.summary


def test_a_failed_place_verdict_replans_with_a_pick_and_the_transcript_shows_why():
    stack = Stack([cube(), tray()], verdicts={("place", "pre"): [
        CheckResult(False, 0.95, "the gripper is empty: it does not hold red_cube_1")]})
    report, _, plans_seen, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success and report.revisions == 2
    assert stack.calls == [PICK, Call("move_arm_home"), PICK, PLACE]
    failed = [e for e in report.transcript if e["role"] == "verdict" and not e["ok"]]
    assert failed and "does not hold" in failed[0]["text"]
    replans = [e for e in report.transcript if e["role"] == "replan"]
    assert replans and "does not hold" in replans[0]["text"] and "pick(object=red_cube_1)" in replans[0]["text"]
    # The published plan keeps the finished step and shows the failed one before the replan.
    assert ([SUCCEEDED, FAILED], 1) in plans_seen
    assert plans_seen[-1] == ([SUCCEEDED] * 4, 2)


def test_replanning_stops_after_max_attempts_with_the_reason():
    never = [CheckResult(False, 0.9, "red_cube_1 is not in tray_1")] * 5
    stack = Stack([cube(), tray()], verdicts={("place", "post"): never})
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)), max_attempts=2)
    assert not report.success and report.revisions == 2
    assert "not in tray_1" in report.summary and "gave up after 2 plans" in report.summary
    home = Call("move_arm_home")
    # Each failed place is looked at again from home before it counts; then home + pick + place.
    assert stack.calls == [PICK, PLACE, home, home, PICK, PLACE, home]


def test_cancel_stops_before_the_next_step():
    stack = Stack([cube(), tray()], cancel_after_calls=1)
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert not report.success and "Cancelled" in report.summary
    assert stack.calls == [PICK]


def test_an_emergency_stop_during_a_step_ends_the_task_without_a_replan_and_says_so():
    class Stopped(Stack):
        def execute(self, call, feedback):
            self.calls.append(call)
            return CallOutcome(False, "emergency stop: pick was stopped (cancelled)", cancelled=True)

        def stopped(self):
            return EMERGENCY_STOP if self.calls else ""

    stack = Stopped([cube(), tray()])
    report, _, _, statuses = run(stack, Plan("execute", (PICK, PLACE)))
    assert not report.success
    assert report.summary.startswith("Stopped by the emergency stop during step 1 (pick(")
    assert "new command" in report.summary
    assert stack.calls == [PICK] and report.revisions == 1
    assert not any("replanning" in text for _, text in statuses)


@pytest.mark.parametrize("lost_in", ["check", "execute"])
def test_a_lost_node_ends_the_task_naming_it_and_the_step_without_a_replan(lost_in):
    class Losing(Stack):
        def check(self, task_id, step_index, phase, call, since_ns):
            if lost_in == "check" and phase == "post":
                raise NodeLost("the critic ('check_step') went away")
            return super().check(task_id, step_index, phase, call, since_ns)

        def execute(self, call, feedback):
            if lost_in == "execute" and call.skill == "place":
                raise NodeLost("the skill server ('execute_skill') went away")
            return super().execute(call, feedback)

    stack = Losing([cube(), tray()])
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert not report.success and report.revisions == 1
    node, step = ("critic", "step 1 (pick(") if lost_in == "check" else ("skill server", "step 2 (place(")
    assert f"at {step}" in report.summary and f"the {node} (" in report.summary and "went away" in report.summary


def test_stop_words_are_told_from_instructions():
    assert all(is_stop_word(text) for text in ("stop", " Stop! ", "HALT.", "wait", "cancel"))
    assert not any(is_stop_word(text) for text in ("stop the arm at the tray", "put it down", "", "waiting"))


def test_answers_succeed_refusals_do_not_and_nothing_moves():
    stack = Stack([cube(), tray()])
    report, executor, _, _ = run(stack, Plan("answer", reply="I see a red cube and a tray."))
    assert report.success and report.summary == "I see a red cube and a tray." and not stack.calls
    report, _, _, _ = run(stack, Plan("refuse", reply="I cannot find a purple elephant."))
    assert not report.success and "purple elephant" in report.summary and not stack.calls


def test_a_plan_naming_an_object_not_in_the_map_is_refused_before_anything_runs():
    stack = Stack([cube(), tray()])
    report, _, _, _ = run(stack, Plan("execute", (Call("pick", {"object": "green_cube_9"}),)))
    assert not report.success and report.kind == "refuse"
    assert "green_cube_9" in report.summary and not stack.calls and not stack.checks


def test_the_dialogue_remembers_turns_and_what_moved():
    moved = [cube(xy=(0.45, -0.25)), tray()]
    stack = Stack([cube(), tray()], after=moved)
    dialogue = Dialogue()
    report, executor, _, _ = run(stack, Plan("execute", (PICK, PLACE)), dialogue=dialogue)
    assert report.success
    assert dialogue.turns[-1].user == "put the red cube in the tray" and dialogue.turns[-1].success
    (move,) = dialogue.last_moves()
    assert move.object_id == "red_cube_1"
    assert np.allclose(move.before, (0.55, 0.10, 0.02)) and np.allclose(move.after, (0.45, -0.25, 0.02))


def test_a_moved_object_the_map_renamed_is_remembered_under_its_new_id():
    # After the first motion the map knows the cube only as red_cube_2 (seen anew); the pick of
    # red_cube_1 is refused and replanned on the new id. "Undo that" must then move red_cube_2 back
    # to where red_cube_1 was, not undo an older task.
    renamed = [cube("red_cube_2", xy=(0.45, -0.25)), tray()]
    stack = Stack([cube(), tray()], after=renamed, verdicts={("pick", "pre"): [
        CheckResult(False, 1.0, "unknown object 'red_cube_1': it is not in the semantic map")]})
    dialogue = Dialogue()
    report, _, _, _ = run(stack, Plan("execute", (Call("move_arm_home"), PICK, PLACE)), dialogue=dialogue)
    assert report.success and Call("pick", {"object": "red_cube_2"}) in stack.calls
    (move,) = dialogue.last_moves()
    assert move.object_id == "red_cube_2"
    assert np.allclose(move.before, (0.55, 0.10, 0.02)) and np.allclose(move.after, (0.45, -0.25, 0.02))


def test_a_moved_object_the_map_saw_anew_after_the_task_is_remembered_under_its_new_id():
    # No step fails, so nothing replans: the map has re-identified the cube only once it lay in the
    # tray. A new blue cube is no stand-in for it, a new red cube is.
    after = [cube("red_cube_2", xy=(0.45, -0.25)), tray(),
             MapObject("blue_cube_1", "small blue cube", "cube", ("blue", "small"), "blue", [0.5, 0.1, 0.02],
                       [0.04] * 3)]
    stack = Stack([cube(), tray()], after=after)
    dialogue = Dialogue()
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)), dialogue=dialogue)
    assert report.success and stack.calls == [PICK, PLACE]
    (move,) = dialogue.last_moves()
    assert move.object_id == "red_cube_2"
    assert np.allclose(move.before, (0.55, 0.10, 0.02)) and np.allclose(move.after, (0.45, -0.25, 0.02))


def test_a_moved_object_the_map_lost_is_still_the_last_move():
    # "Undo that" must not reach back to the task before when the map has lost what this one moved.
    dialogue = Dialogue()
    dialogue.record_moves((Move("green_cube_1", (0.4, 0.1, 0.02), (0.45, -0.2, 0.02)),))
    run(Stack([cube(), tray()], after=[tray()]), Plan("execute", (PICK, PLACE)), dialogue=dialogue)
    assert dialogue.last_moves() == (Move("red_cube_1", (0.55, 0.10, 0.02), None),)


def test_moves_follow_a_chain_of_renames_and_keep_what_stayed_put():
    before = {"cube_1": np.array([0.5, 0.1, 0.02]), "ball_1": np.array([0.3, 0.2, 0.02])}
    after = {"cube_3": np.array([0.4, -0.2, 0.02]), "ball_1": np.array([0.3, 0.205, 0.02])}
    moves = moves_between(before, after, {"cube_1", "ball_1"}, None,
                          renamed={"cube_1": "cube_2", "cube_2": "cube_3"})
    assert [(m.object_id, m.before, m.after) for m in moves] == [("cube_3", (0.5, 0.1, 0.02), (0.4, -0.2, 0.02))]
    assert moves_between(before, after, {"cube_1"}, "cube_2", renamed={"cube_1": "cube_2"})[0].after is None


def test_render_plan_marks_each_steps_status():
    from modular_robot.planning.executor import Step

    text = render_plan([Step(PICK, SUCCEEDED), Step(PLACE)], 2)
    assert text.splitlines() == ["plan revision 2", "  1. pick(object=red_cube_1)  [done]",
                                 "  2. place(object=red_cube_1, relation=in, target=tray_1)  [pending]"]


def test_repair_refinds_an_object_whose_id_changed_and_gives_up_on_a_vanished_one():
    before = [cube(), tray()]
    renamed = [cube("red_cube_2", xy=(0.60, 0.12)), tray()]
    calls = repair([PLACE], Failure(PLACE, "pre", "not holding"), before, renamed, None, tuple(SKILLS))
    assert calls == [Call("move_arm_home"), Call("pick", {"object": "red_cube_2"}),
                     Call("place", {"object": "red_cube_2", "relation": "in", "target": "tray_1"})]
    gone = repair([PLACE], Failure(PLACE, "pre", "not holding"), before, [tray()], None, tuple(SKILLS))
    assert gone == "'red_cube_1' is no longer in the map"


def test_repair_decomposes_only_what_failed():
    objects = [cube(), tray()]
    still_held = repair([PLACE], Failure(PLACE, "execute", "arm motion failed"), objects, objects, "red_cube_1",
                        tuple(SKILLS))
    assert still_held == [Call("move_arm_home"), PLACE]
    missed_pick = repair([PICK, PLACE], Failure(PICK, "post", "closed on nothing"), objects, objects, None,
                         tuple(SKILLS))
    assert missed_pick == [Call("move_arm_home"), PICK, PLACE]
    other_held = repair([PICK], Failure(PICK, "pre", "gripper not empty"), objects, objects, "tray_1", tuple(SKILLS))
    assert other_held == "the gripper still holds 'tray_1'"


def test_a_place_refused_because_the_object_left_the_gripper_is_replanned_with_a_pick():
    class Refusing(Stack):
        def execute(self, call, feedback):
            if call.skill == "place" and self.calls.count(PLACE) == 0 and PLACE not in self.refused:
                self.refused.append(PLACE)
                return CallOutcome(False, "the gripper is 0.0 cm open: it does not hold 'red_cube_1'", moved=False)
            return super().execute(call, feedback)

    stack = Refusing([cube(), tray()], verdicts={("place", "pre"): [
        CheckResult(True, 0.9, "holding"), CheckResult(False, 0.9, "not holding red_cube_1")]})
    stack.refused = []
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success and report.revisions == 2
    assert stack.calls == [PICK, Call("move_arm_home"), PICK, PLACE]


def test_after_a_replan_the_map_settles_and_the_next_object_step_is_regrounded():
    class Renaming(Stack):
        def __init__(self, snapshots, **kwargs):
            super().__init__(snapshots[0], **kwargs)
            self.snapshots = list(snapshots)

        def snapshot(self):
            return list(self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0])

    moved = [cube("red_cube_7", xy=(0.40, 0.20)), tray()]
    stack = Renaming([[cube(), tray()], [cube(), tray()], moved, moved],
                     verdicts={("place", "pre"): [CheckResult(False, 0.9, "red_cube_1 is not held")]})
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success, report.summary
    # Once before the re-grounded pick, once before reporting.
    assert stack.settled == [1.0, 1.0]
    # Home runs before the settle; the pick after it goes to the id the settled map has.
    assert stack.calls == [PICK, Call("move_arm_home"), Call("pick", {"object": "red_cube_7"}),
                           Call("place", {"object": "red_cube_7", "relation": "in", "target": "tray_1"})]


def test_repair_drives_up_again_to_what_the_arm_cannot_reach_on_a_robot_with_a_base():
    objects = [cube(), tray()]
    far = "'tray_1' is unreachable: no joint solution within limits reaches the pose"
    again = repair([PLACE], Failure(PLACE, "pre", far), objects, objects, "red_cube_1", tuple(SKILLS))
    assert again == [Call("move_arm_home"), Call("navigate_to", {"object": "tray_1"}), PLACE]
    pick = repair([PICK, PLACE], Failure(PICK, "pre", far.replace("tray_1", "red_cube_1")), objects, objects, None,
                  tuple(SKILLS))
    assert pick == [Call("move_arm_home"), Call("navigate_to", {"object": "red_cube_1"}), PICK, PLACE]
    arm_only = tuple(s for s in SKILLS if s != "navigate_to")
    assert repair([PLACE], Failure(PLACE, "pre", far), objects, objects, "red_cube_1", arm_only) == [
        Call("move_arm_home"), PLACE]


def test_a_place_out_of_reach_keeps_the_object_held_and_drives_up_to_the_target():
    stack = Stack([cube(), tray()], verdicts={("place", "pre"): [
        CheckResult(False, 1.0, "'tray_1' is unreachable: no joint solution within limits reaches the pose")]})
    report, executor, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success, report.summary
    assert stack.calls == [PICK, Call("move_arm_home"), Call("navigate_to", {"object": "tray_1"}), PLACE]


def test_repair_opens_the_gripper_when_the_critic_thinks_something_is_in_it_and_keeps_the_held_id():
    objects = [cube(), tray()]
    calls = repair([PICK], Failure(PICK, "pre", "the gripper is not empty"), objects, objects, None, tuple(SKILLS))
    assert calls == [Call("open_gripper"), Call("move_arm_home"), PICK]
    # The map loses sight of a held object; its id stays valid for the skill server.
    kept = repair([PLACE], Failure(PLACE, "execute", "arm motion failed"), objects, [tray()], "red_cube_1",
                  tuple(SKILLS))
    assert kept == [Call("move_arm_home"), PLACE]


def test_a_failed_post_check_is_asked_again_with_the_arm_out_of_the_view():
    stack = Stack([cube(), tray()], verdicts={("place", "post"): [CheckResult(False, 0.0, "no red cube is seen"),
                                                                  CheckResult(True, 1.0, "red_cube_1 in tray_1")]})
    report, _, _, statuses = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success and report.revisions == 1
    assert stack.calls == [PICK, PLACE, Call("move_arm_home")]
    # The second look only counts perception from after the arm reached home.
    assert stack.checks[-2] == ("place", "post", 3_000_000_000)
    assert any("looking again" in text for _, text in statuses)


def test_an_effect_undone_after_its_check_is_found_at_the_end_and_redone():
    stack = Stack([cube(), tray()], verdicts={("place", "post"): [
        CheckResult(True, 1.0, "red_cube_1 in tray_1"),
        CheckResult(False, 0.0, "red_cube_1 is not in tray_1")]})
    report, executor, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success and report.revisions == 2
    assert stack.calls == [PICK, PLACE, Call("move_arm_home"), PICK, PLACE]
    replan = next(e for e in report.transcript if e["role"] == "replan")
    assert "no longer holds at the end" in replan["text"]
