"""Stack files: which nodes run, with which parameters, remappings and namespace.

One pure description feeds three runners: `modular-robot up` (a process per node, as `ros2 launch`
would start them), `modular-robot up --in-process` (one executor, for tests), and the launch files.

A stack file looks like::

    name: sim_tabletop
    namespace: ""            # optional; every node is pushed into it
    use_sim_time: true       # optional; set on every node
    nodes:
      - name: sim
        executable: sim_bridge
        namespace: ""        # optional, relative to the stack's namespace
        parameters: {scenario: sim/scenarios/spine_tabletop.yaml, mode: realtime}
        remappings: {cmd_vel: cmd_vel_safe}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Executables the stack can start: name -> (module with main() and the node class, class name).
EXECUTABLES: dict[str, tuple[str, str]] = {
    "sim_bridge": ("modular_robot.sim.bridge_node", "SimBridgeNode"),
    "perception": ("modular_robot.nodes.perception_node", "PerceptionNode"),
    "semantic_map": ("modular_robot.nodes.semantic_map_node", "SemanticMapNode"),
    "safety_shield": ("modular_robot.nodes.safety_shield_node", "SafetyShieldNode"),
    "critic": ("modular_robot.nodes.critic_node", "CriticNode"),
    "skill_server": ("modular_robot.nodes.skill_server_node", "SkillServerNode"),
    "planner": ("modular_robot.nodes.planner_node", "PlannerNode"),
}

_STACK_KEYS = {"name", "namespace", "use_sim_time", "nodes"}
_NODE_KEYS = {"name", "executable", "namespace", "parameters", "remappings"}


class StackError(ValueError):
    """A stack file that cannot be run; the message names the file and the reason."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of a stack, fully resolved.

    Attributes:
        name: Node name.
        executable: Key of EXECUTABLES (also the console script `ros2 run modular_robot` knows).
        namespace: Absolute namespace ("/" for the root).
        parameters: Parameter values, use_sim_time included.
        remappings: Topic remappings from -> to.
    """

    name: str
    executable: str
    namespace: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)

    def ros_arguments(self) -> list[str]:
        """Return the `--ros-args ...` command-line arguments that configure this node."""
        args = ["--ros-args", "-r", f"__node:={self.name}", "-r", f"__ns:={self.namespace}"]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={_param_literal(value)}"]
        for source, target in self.remappings.items():
            args += ["-r", f"{source}:={target}"]
        return args


@dataclass(frozen=True)
class Stack:
    """A named set of nodes."""

    name: str
    nodes: tuple[NodeSpec, ...]
    source: str = "<string>"


def _param_literal(value: Any) -> str:
    """Format a parameter value as a YAML literal that `-p name:=value` parses to the same type."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param_literal(v) for v in value) + "]"
    return str(value)


def _join_namespace(outer: str, inner: str) -> str:
    parts = [p for p in f"{outer}/{inner}".split("/") if p]
    return "/" + "/".join(parts)


def _check_param(source: str, node: str, key: str, value: Any) -> None:
    if not isinstance(key, str) or not key:
        raise StackError(f"{source}: node '{node}': parameter names must be non-empty strings, got {key!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise StackError(f"{source}: node '{node}': parameter '{key}' is not finite")
    if isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value}
        if len(kinds) > 1 or (kinds and kinds.pop() not in (bool, int, float, str)):
            raise StackError(f"{source}: node '{node}': parameter '{key}' must be a list of one scalar type")
    elif not isinstance(value, (bool, int, float, str)):
        raise StackError(f"{source}: node '{node}': parameter '{key}' has unsupported type {type(value).__name__}")


def parse_stack(document: Any, source: str = "<string>", overrides: dict[str, dict[str, Any]] | None = None,
                namespace: str | None = None) -> Stack:
    """Resolve a stack document into node specs.

    Args:
        document: The parsed YAML mapping.
        source: File name for error messages.
        overrides: Extra parameters by node name, applied over the file's values.
        namespace: Replaces the stack's own namespace when given.

    Raises:
        StackError: on unknown keys or executables, duplicate node names, or bad parameter values.
    """
    if not isinstance(document, dict):
        raise StackError(f"{source}: a stack file must be a mapping with 'name' and 'nodes'")
    unknown = set(document) - _STACK_KEYS
    if unknown:
        raise StackError(f"{source}: unknown keys {sorted(map(str, unknown))}; allowed: {sorted(_STACK_KEYS)}")
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise StackError(f"{source}: 'name' must be a non-empty string")
    stack_ns = namespace if namespace is not None else document.get("namespace", "") or ""
    use_sim_time = document.get("use_sim_time")
    nodes_doc = document.get("nodes")
    if not isinstance(nodes_doc, list) or not nodes_doc:
        raise StackError(f"{source}: 'nodes' must be a non-empty list")
    overrides = overrides or {}
    nodes: list[NodeSpec] = []
    for entry in nodes_doc:
        if not isinstance(entry, dict):
            raise StackError(f"{source}: every node must be a mapping, got {entry!r}")
        unknown = set(entry) - _NODE_KEYS
        if unknown:
            raise StackError(f"{source}: node {entry.get('name')!r}: unknown keys {sorted(map(str, unknown))}")
        node_name, executable = entry.get("name"), entry.get("executable")
        if not isinstance(node_name, str) or not node_name.isidentifier():
            raise StackError(f"{source}: node name {node_name!r} must be a valid ROS name")
        if executable not in EXECUTABLES:
            raise StackError(f"{source}: node '{node_name}': unknown executable {executable!r}; "
                             f"known: {sorted(EXECUTABLES)}")
        full_ns = _join_namespace(stack_ns, entry.get("namespace", "") or "")
        if (full_ns, node_name) in {(n.namespace, n.name) for n in nodes}:
            raise StackError(f"{source}: node '{node_name}' appears twice in namespace {full_ns}")
        parameters = dict(entry.get("parameters") or {})
        if use_sim_time is not None:
            parameters.setdefault("use_sim_time", bool(use_sim_time))
        parameters.update(overrides.get(node_name, {}))
        for key, value in parameters.items():
            _check_param(source, node_name, key, value)
        remappings = entry.get("remappings") or {}
        if not isinstance(remappings, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in remappings.items()):
            raise StackError(f"{source}: node '{node_name}': remappings must map topic names to topic names")
        nodes.append(NodeSpec(node_name, executable, full_ns, parameters, dict(remappings)))
    return Stack(name, tuple(nodes), source)


def load_stack(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None,
               namespace: str | None = None) -> Stack:
    """Read and resolve a stack YAML file (see parse_stack)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise StackError(f"{path}: cannot read stack file: {error}") from error
    return parse_stack(document, str(path), overrides, namespace)
