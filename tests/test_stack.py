"""Stack files resolve into node specs; launch entries and command lines come from the same specs."""

from pathlib import Path

import pytest
import yaml

from modular_robot.core.stack import (
    DDS_PROFILE_VARIABLE,
    RestartPolicy,
    RestartTracker,
    StackError,
    load_stack,
    parse_stack,
)
from modular_robot.harness.stack_runner import node_command, node_environment
from modular_robot.launch_description import nodes_for_launch
from modular_robot.paths import resolve_data_path

ROOT = Path(__file__).resolve().parents[1]


def _doc(**node):
    base = {"name": "sim", "executable": "sim_bridge", "parameters": {"scenario": "x.yaml", "camera_rate_hz": 15.0}}
    base.update(node)
    return {"name": "test", "use_sim_time": True, "nodes": [base]}


def test_ros_arguments_carry_name_namespace_parameters_and_remaps():
    stack = parse_stack(_doc(namespace="arm", remappings={"cmd_vel": "cmd_vel_safe"}), namespace="/robot1")
    (spec,) = stack.nodes
    assert spec.namespace == "/robot1/arm"
    args = spec.ros_arguments()
    assert args[:5] == ["--ros-args", "-r", "__node:=sim", "-r", "__ns:=/robot1/arm"]
    assert "scenario:=\"x.yaml\"" in args
    assert "camera_rate_hz:=15.0" in args
    assert "use_sim_time:=true" in args
    assert "cmd_vel:=cmd_vel_safe" in args


def test_overrides_replace_file_values():
    stack = parse_stack(_doc(), overrides={"sim": {"mode": "lockstep", "camera_rate_hz": 5.0}})
    assert stack.nodes[0].parameters["mode"] == "lockstep"
    assert stack.nodes[0].parameters["camera_rate_hz"] == 5.0


@pytest.mark.parametrize("document, message", [
    ({"nodes": []}, "'name'"),
    ({"name": "x", "nodes": []}, "non-empty list"),
    ({"name": "x", "bogus": 1, "nodes": [{}]}, "unknown keys"),
    (_doc(executable="nope"), "unknown executable 'nope'"),
    (_doc(parameters={"rate": float("nan")}), "not finite"),
    (_doc(parameters={"mixed": [1, "a"]}), "one scalar type"),
    (_doc(parameters={"nested": {"a": 1}}), "unsupported type"),
    (_doc(name="bad name"), "valid ROS name"),
    ({"name": "x", "nodes": [_doc()["nodes"][0], _doc()["nodes"][0]]}, "appears twice"),
])
def test_bad_stack_files_are_rejected_with_reason(document, message):
    with pytest.raises(StackError, match=message):
        parse_stack(document, "stack.yaml")


def test_node_command_runs_module_with_ros_args():
    (spec,) = parse_stack(_doc()).nodes
    command = node_command(spec)
    assert command[1:3] == ["-m", "modular_robot.sim.bridge_node"]
    assert command[3:] == spec.ros_arguments()


def test_launch_entries_match_the_process_specs(tmp_path):
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(_doc(remappings={"a": "b"})))
    (entry,) = nodes_for_launch(path, namespace="/r1", use_sim_time=True)
    (spec,) = load_stack(path, namespace="/r1").nodes
    assert entry["package"] == "modular_robot"
    assert entry["executable"] == spec.executable
    assert entry["name"] == spec.name and entry["namespace"] == spec.namespace == "/r1"
    assert entry["parameters"] == [spec.parameters, {"use_sim_time": True}]
    assert ("a", "b") in entry["remappings"] and ("/tf", "tf") in entry["remappings"]
    assert nodes_for_launch(path, skip_executables=("sim_bridge",)) == []


def test_shipped_stacks_load():
    stacks = sorted((ROOT / "config" / "stacks").glob("*.yaml"))
    assert stacks
    for path in stacks:
        assert load_stack(path).nodes


def test_launch_files_build_from_the_shared_generator():
    for name, skip in (("sim.launch.py", ""), ("bringup.launch.py", 'skip_executables=("sim_bridge",)')):
        text = (ROOT / "launch" / name).read_text()
        assert "return generate(" in text and skip in text


def test_data_paths_resolve_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = resolve_data_path("sim/scenarios/spine_tabletop.yaml")
    assert found.is_file() and found.is_absolute()
    with pytest.raises(FileNotFoundError, match="no_such.yaml"):
        resolve_data_path("sim/scenarios/no_such.yaml")


def _spec(executable="perception", **policy):
    entry = {"name": "n", "executable": executable, **policy}
    return parse_stack({"name": "t", "nodes": [entry]}).nodes[0]


def test_default_policies_keep_the_driver_and_shield_and_respawn_the_rest():
    stack = load_stack(ROOT / "config/stacks/sim_tabletop.yaml")
    by_executable = {spec.executable: spec.policy for spec in stack.nodes}
    assert not by_executable["sim_bridge"].respawn and by_executable["sim_bridge"].required
    assert by_executable["safety_shield"].respawn and by_executable["safety_shield"].required
    for executable in ("perception", "semantic_map", "skill_server", "critic", "planner"):
        assert by_executable[executable].respawn and not by_executable[executable].required, executable
    assert _spec(respawn=False, respawn_delay=2.5).policy == RestartPolicy(False, 2.5, False)


def test_restarts_back_off_and_stop_after_the_limit_within_the_window():
    tracker = RestartTracker(max_restarts=3, window_s=60.0, max_delay_s=3.0)
    spec = _spec(respawn_delay=1.0)
    decisions = [tracker.on_exit(spec, 1, t) for t in (0.0, 1.0, 3.0, 6.0)]
    assert [d.action for d in decisions] == ["restart", "restart", "restart", "give_up"]
    assert [d.delay_s for d in decisions[:3]] == [1.0, 2.0, 3.0], "doubled, capped at max_delay_s"
    assert "/n exited with code 1" in decisions[0].reason and "restart 1 of 3" in decisions[0].reason
    assert "restarted 3 times within 60 s" in decisions[3].reason
    # Once the window has passed, the node gets a fresh budget.
    later = tracker.on_exit(spec, 1, 70.0)
    assert later.action == "restart" and later.delay_s == 1.0


def test_a_required_node_that_is_down_for_good_stops_the_stack():
    tracker = RestartTracker(max_restarts=1)
    assert tracker.on_exit(_spec("sim_bridge"), -9, 0.0).action == "stop_stack"
    shield = _spec("safety_shield")
    assert tracker.on_exit(shield, 1, 0.0).action == "restart"
    decision = tracker.on_exit(shield, 1, 1.0)
    assert decision.action == "stop_stack" and "stopping the stack" in decision.reason


@pytest.mark.parametrize("document, message", [
    ({"name": "x", "use_sim_time": "false", "nodes": [{"name": "sim", "executable": "sim_bridge"}]},
     "'use_sim_time' must be true or false"),
    (_doc(parameters={"use_sim_time": "false"}), "'use_sim_time' must be true or false"),
    (_doc(respawn="yes"), "'respawn' must be true or false"),
    (_doc(required=1), "'required' must be true or false"),
    (_doc(respawn_delay=-1.0), "'respawn_delay' must be a number"),
    (_doc(respawn_delay="1"), "'respawn_delay' must be a number"),
])
def test_non_boolean_switches_and_bad_delays_are_rejected(document, message):
    with pytest.raises(StackError, match=message):
        parse_stack(document, "stack.yaml")


def test_parameters_for_an_unknown_node_name_the_known_ones():
    with pytest.raises(StackError, match=r"unknown node\(s\) 'simm'; the stack's nodes are sim"):
        parse_stack(_doc(), "stack.yaml", overrides={"simm": {"mode": "lockstep"}})
    with pytest.raises(StackError, match="'planer'.*sim, perception, semantic_map"):
        load_stack(ROOT / "config/stacks/sim_tabletop.yaml", overrides={"planer": {"backend": "rules"}})


def test_node_processes_get_the_dds_profile_unless_the_user_chose_one(monkeypatch):
    monkeypatch.delenv(DDS_PROFILE_VARIABLE, raising=False)
    profile = node_environment()[DDS_PROFILE_VARIABLE]
    assert Path(profile) == (ROOT / "config/fastdds_localhost.xml").resolve()
    assert "segment_size" in Path(profile).read_text()
    monkeypatch.setenv(DDS_PROFILE_VARIABLE, "/elsewhere/mine.xml")
    assert node_environment()[DDS_PROFILE_VARIABLE] == "/elsewhere/mine.xml"


def test_launch_entries_carry_the_dds_profile_and_the_restart_policy(tmp_path, monkeypatch):
    monkeypatch.delenv(DDS_PROFILE_VARIABLE, raising=False)
    entries = {e["executable"]: e for e in nodes_for_launch(ROOT / "config/stacks/sim_tabletop.yaml")}
    expected = str((ROOT / "config/fastdds_localhost.xml").resolve())
    assert all(e["additional_env"] == {DDS_PROFILE_VARIABLE: expected} for e in entries.values())
    assert entries["sim_bridge"]["respawn"] is False and entries["sim_bridge"]["required"] is True
    assert entries["perception"]["respawn"] is True and entries["perception"]["respawn_delay"] == 1.0
    monkeypatch.setenv(DDS_PROFILE_VARIABLE, "/elsewhere/mine.xml")
    assert all(e["additional_env"] == {} for e in nodes_for_launch(ROOT / "config/stacks/sim_tabletop.yaml"))
