"""The executor keeps what the gripper holds when a place fails only because the map renamed its target."""

from modular_robot.core.mapping.objects import MapObject
from modular_robot.planning.executor import CheckResult
from modular_robot.planning.plan import Call, Plan
from test_task_executor import PICK, PLACE, Stack, cube, run, tray


def renamed_tray():
    return MapObject("tray_2", "large gray tray", "tray", ("gray", "large"), "gray", [0.46, -0.24, 0.025],
                     [0.24, 0.24, 0.05])


def test_a_place_whose_target_was_renamed_is_regrounded_with_the_object_still_held():
    # After the pick the map knows the tray only under a new id (seen anew from where the robot is).
    stack = Stack([cube(), tray()], after=[renamed_tray()],
                  verdicts={("place", "pre"): [CheckResult(False, 1.0, "unknown target 'tray_1': not in the "
                                                                       "semantic map")]})
    report, executor, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success, report.summary
    assert stack.calls == [PICK, Call("move_arm_home"),
                           Call("place", {"object": "red_cube_1", "relation": "in", "target": "tray_2"})]
    assert executor.held is None


def test_a_place_refused_because_the_object_is_not_held_still_forgets_it():
    stack = Stack([cube(), tray()], verdicts={("place", "pre"): [
        CheckResult(False, 1.0, "'red_cube_1' is not held: the fingers are 0.0 cm apart")]})
    report, _, _, _ = run(stack, Plan("execute", (PICK, PLACE)))
    assert report.success and stack.calls == [PICK, Call("move_arm_home"), PICK, PLACE]
