"""`modular-robot run`: builds the world, judges predicates on ground truth, writes the report."""

import json
import subprocess
import sys
from pathlib import Path

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from std_msgs.msg import String

from modular_robot.core.stack import load_stack
from modular_robot.harness.runner import MapSettling, run_scenario, write_results
from modular_robot.scenarios.scenario import load_scenario, parse_scenario
from modular_robot_interfaces.msg import SemanticMap, SemanticObject

ROOT = Path(__file__).resolve().parents[1]

DISTURBED = """
name: disturbed
category: disturbance
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, pose: [0.55, 0.10, 0.0, 0.0]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
commands: ["put the red cube in the tray"]
disturbances:
  - {at: time, time_s: 0.5, action: move, object: red_cube, pose: [0.45, -0.25, 0.03, 0.0]}
expect:
  - {in: [red_cube, tray]}
  - {reply: {contains_any: [planner]}}
  - {not: {unmoved: [red_cube]}}
timeout_s: 5
"""


def test_spine_scenario_passes_and_writes_report(tmp_path):
    result = run_scenario(load_scenario(ROOT / "sim/scenarios/spine_tabletop.yaml"), tmp_path, renderer="tiny")
    assert result.passed and not result.false_success
    assert all(p["passed"] for p in result.predicates)
    write_results([result], tmp_path / "results.json")
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["summary"] == {"total": 1, "passed": 1, "false_success": 0}
    assert report["scenarios"][0]["name"] == "spine_tabletop"
    for picture in ("before.png", "after.png"):
        assert (tmp_path / picture).stat().st_size > 1000


def test_disturbance_applies_and_missing_planner_is_reported(tmp_path):
    result = run_scenario(parse_scenario(DISTURBED), tmp_path, renderer="tiny", record=True)
    assert result.passed, result.predicates
    texts = [entry["text"] for entry in result.transcript]
    assert any("disturbance: move red_cube" in t for t in texts)
    assert any("no task planner" in t for t in texts)
    assert not result.false_success
    # The recording holds the conversation, as the chat node publishes it live.
    chat = {}
    with Reader(tmp_path / "episode.mcap") as reader:
        for connection, _, data in reader.messages():
            if connection.topic.startswith("/chat/"):
                chat.setdefault(connection.topic, []).append(deserialize_message(bytes(data), String).data)
    assert chat == {"/chat/user": ["put the red cube in the tray"],
                    "/chat/robot": ["no task planner is serving 'execute_task' in this stack"]}, chat


def test_cli_exit_codes(tmp_path):
    failing = tmp_path / "failing.yaml"
    failing.write_text(DISTURBED.replace("{in: [red_cube, tray]}", "{unmoved: [tray, red_cube]}"))
    run = [sys.executable, "-m", "modular_robot.cli", "run", "--renderer", "tiny", "--out", str(tmp_path / "out")]
    result = subprocess.run([*run, str(failing)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout
    # Without --stack, run picks the robot's stack as eval does: its planner answers the command.
    assert "no task planner" not in result.stdout, result.stdout
    assert "planner:" in result.stdout, result.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nrobot: panda_tabletop\nobjects:\n  - {id: a, type: teapot}\nexpect:\n"
                      "  - {unmoved: [a]}\n")
    result = subprocess.run([*run, str(broken)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "broken.yaml:4" in result.stderr and "teapot" in result.stderr


def test_run_with_the_stack_records_what_its_map_holds(tmp_path):
    stack = load_stack(ROOT / "config/stacks/sim_tabletop.yaml")
    result = run_scenario(load_scenario(ROOT / "sim/scenarios/spine_tabletop.yaml"), tmp_path, stack,
                          renderer="tiny", verbose=False)
    (entry,) = [e for e in result.transcript if e["role"] == "map"]
    assert entry["text"].startswith("6 objects:"), entry["text"]
    assert "small red cube at (0.55, 0.10)" in entry["text"]


def _map(*objects: tuple[str, str]) -> SemanticMap:
    return SemanticMap(objects=[SemanticObject(id=i, label=label) for i, label in objects])


def test_the_map_settles_once_its_objects_hold_for_the_period():
    settling = MapSettling(2.0)
    assert not settling.update(None, 0.0)
    assert not settling.update(_map(), 0.5)
    assert not settling.update(_map(), 3.0), "an empty map never settles"
    tray, cube = ("gray_tray_1", "large gray tray"), ("red_cube_1", "small red cube")
    assert not settling.update(_map(tray), 3.5)
    assert not settling.update(_map(tray, cube), 4.0)
    assert not settling.update(_map(cube, tray), 5.9)
    assert settling.update(_map(cube, tray), 6.0)


def test_a_relabelled_object_restarts_the_wait_though_the_count_holds():
    settling = MapSettling(2.0)
    tray = ("gray_tray_1", "large gray tray")
    assert not settling.update(_map(tray, ("red_flat_1", "medium red flat")), 0.0)
    assert not settling.update(_map(tray, ("red_cube_1", "medium red cube")), 1.9)
    assert not settling.update(_map(tray, ("red_cube_1", "medium red flat")), 3.0)
    assert not settling.update(_map(tray, ("red_cube_1", "medium red flat")), 4.9)
    assert settling.update(_map(tray, ("red_cube_1", "medium red flat")), 5.0)


def test_lockstep_builds_what_prepare_makes_before_its_executor_spins():
    from modular_robot.harness.lockstep import LockstepStack

    scene = parse_scenario("name: prep\ncategory: spine\nrobot: panda_tabletop\nobjects:\n"
                           "  - {id: cube, type: cube, color: red, pose: [0.5, 0.0, 0.0, 0.0]}\n"
                           "expect:\n  - {unmoved: [cube]}\n")
    seen = []
    lockstep = LockstepStack(scene, renderer="tiny", log=lambda line: None,
                             prepare=lambda node: seen.append(node.executor) or node.get_name())
    try:
        # Not yet on the executor when prepared: an action client built then cannot race its spin thread.
        assert seen == [None] and lockstep.prepared == "evaluator"
        assert lockstep.client.executor is lockstep.executor
    finally:
        lockstep.close()


def test_run_picks_the_stack_by_robot_as_eval_does(tmp_path):
    from modular_robot.cli import stack_for_run

    husky = parse_scenario("name: h\ncategory: nav\nrobot: husky_base\nobjects: []\n"
                           "expect:\n  - {at: [robot, [0, 0], 1]}\n")
    assert stack_for_run(husky).resolve() == ROOT / "config/stacks/sim_husky.yaml"
    assert stack_for_run(parse_scenario(DISTURBED)).resolve() == ROOT / "config/stacks/sim_tabletop.yaml"
    assert stack_for_run(husky, "mine.yaml") == Path("mine.yaml")
