"""Stack files resolve into node specs; launch entries and command lines come from the same specs."""

from pathlib import Path

import pytest
import yaml

from modular_robot.core.stack import StackError, load_stack, parse_stack
from modular_robot.launch_description import nodes_for_launch
from modular_robot.paths import resolve_data_path
from modular_robot.stack_runner import node_command

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
    assert entry["parameters"] == [spec.parameters]
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
