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
        respawn: false       # optional: restart the node when it exits (as launch's `respawn`)
        respawn_delay: 1.0   # optional: seconds before the first restart; doubled per recent restart
        required: true       # optional: the stack stops when this node is down for good

What `modular-robot up` does when a node exits (`RestartTracker`): a node with `respawn` is
restarted after `respawn_delay`, doubled for each restart in the last RESTART_WINDOW_S (at most
MAX_RESTART_DELAY_S), and at most MAX_RESTARTS times in that window. A node that is not restarted
(no `respawn`, or its restarts spent) stays down while the rest run on, unless it is `required`:
then the whole stack stops. By default (`DEFAULT_POLICIES`) every node respawns but the driver
(`sim_bridge`): a restarted simulator would rebuild its world from the scenario under a stack that
holds a map of the old one, and a real robot's driver has its own supervisor; nothing moves
without it, so its exit stops the stack. The safety shield respawns (while it is down nothing
reaches the hardware, so the robot stands still) and is required: if it cannot be kept up, the
stack stops.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modular_robot.paths import resolve_data_path

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
_NODE_KEYS = {"name", "executable", "namespace", "parameters", "remappings", "respawn", "respawn_delay", "required"}

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
MAX_RESTART_DELAY_S = 30.0
_DEFAULT_RESPAWN_DELAY_S = 1.0


@dataclass(frozen=True)
class RestartPolicy:
    """What `up` does when a node's process exits (see the module docstring).

    Attributes:
        respawn: Restart the node.
        respawn_delay: Seconds before the first restart in a window.
        required: Stop the stack when the node is down for good.
    """

    respawn: bool = True
    respawn_delay: float = _DEFAULT_RESPAWN_DELAY_S
    required: bool = False


# The driver is not restarted and stops the stack; the shield is restarted and must stay up.
DEFAULT_POLICIES: dict[str, RestartPolicy] = {
    "sim_bridge": RestartPolicy(respawn=False, required=True),
    "safety_shield": RestartPolicy(respawn=True, required=True),
}


# Fast DDS transports for a stack on one machine: an 8 MiB shared-memory segment carries whole camera
# frames (the default 0.5 MB segment lost about 3 of 4 frames between processes).
DDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
DDS_PROFILE = "config/fastdds_localhost.xml"


def dds_environment(environ: dict[str, str]) -> dict[str, str]:
    """Return the variables to add to `environ` so that node processes use our Fast DDS profile.

    Nothing when the user has set FASTDDS_DEFAULT_PROFILES_FILE (their choice wins) or when the
    profile is not installed.
    """
    if environ.get(DDS_PROFILE_VARIABLE):
        return {}
    try:
        return {DDS_PROFILE_VARIABLE: str(resolve_data_path(DDS_PROFILE).resolve())}
    except FileNotFoundError:
        return {}


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
        policy: What `up` does when the node's process exits.
    """

    name: str
    executable: str
    namespace: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    @property
    def full_name(self) -> str:
        """Return the node's fully qualified name, e.g. `/robot1/perception`."""
        return f"{self.namespace.rstrip('/')}/{self.name}"

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


@dataclass(frozen=True)
class RestartDecision:
    """What to do about a node that exited.

    Attributes:
        action: "restart" (after `delay_s`), "give_up" (leave it down, the stack runs on) or
            "stop_stack".
        delay_s: Seconds to wait before restarting.
        reason: One line for the log.
    """

    action: str
    delay_s: float
    reason: str


class RestartTracker:
    """Decides, exit by exit, whether a node is restarted, left down, or stops the stack.

    Restarts of one node within `window_s` are counted: each doubles the delay of the next (at
    most `max_delay_s`), and after `max_restarts` of them the node is not restarted again, so a
    node that dies at start cannot become a restart storm.
    """

    def __init__(self, max_restarts: int = MAX_RESTARTS, window_s: float = RESTART_WINDOW_S,
                 max_delay_s: float = MAX_RESTART_DELAY_S) -> None:
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self._restarts: dict[str, list[float]] = {}

    def on_exit(self, spec: NodeSpec, code: int | None, now_s: float) -> RestartDecision:
        """Return the decision for `spec`'s process having exited with `code` at monotonic `now_s`."""
        recent = [t for t in self._restarts.get(spec.full_name, []) if now_s - t < self.window_s]
        exited = f"node {spec.full_name} exited with code {code}"
        if spec.policy.respawn and len(recent) < self.max_restarts:
            delay = min(spec.policy.respawn_delay * 2 ** len(recent), self.max_delay_s)
            recent.append(now_s)
            self._restarts[spec.full_name] = recent
            return RestartDecision("restart", delay, f"{exited}; restarting it in {delay:.1f} s "
                                                     f"(restart {len(recent)} of {self.max_restarts} "
                                                     f"within {self.window_s:.0f} s)")
        self._restarts[spec.full_name] = recent
        why = (f"it restarted {len(recent)} times within {self.window_s:.0f} s" if spec.policy.respawn
               else "it is not respawned")
        if spec.policy.required:
            return RestartDecision("stop_stack", 0.0, f"{exited}; {why} and the stack needs it: stopping the stack")
        return RestartDecision("give_up", 0.0, f"{exited}; {why}: leaving it down, the rest of the stack runs on")


def _join_namespace(outer: str, inner: str) -> str:
    parts = [p for p in f"{outer}/{inner}".split("/") if p]
    return "/" + "/".join(parts)


def _check_param(source: str, node: str, key: str, value: Any) -> None:
    if not isinstance(key, str) or not key:
        raise StackError(f"{source}: node '{node}': parameter names must be non-empty strings, got {key!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise StackError(f"{source}: node '{node}': parameter '{key}' is not finite")
    if key == "use_sim_time" and not isinstance(value, bool):
        raise StackError(f"{source}: node '{node}': parameter 'use_sim_time' must be true or false, got {value!r}")
    if isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value}
        if len(kinds) > 1 or (kinds and kinds.pop() not in (bool, int, float, str)):
            raise StackError(f"{source}: node '{node}': parameter '{key}' must be a list of one scalar type")
    elif not isinstance(value, (bool, int, float, str)):
        raise StackError(f"{source}: node '{node}': parameter '{key}' has unsupported type {type(value).__name__}")


def _policy(source: str, node: str, executable: str, entry: dict) -> RestartPolicy:
    default = DEFAULT_POLICIES.get(executable, RestartPolicy())
    values = {}
    for key in ("respawn", "required"):
        value = entry.get(key, getattr(default, key))
        if not isinstance(value, bool):
            raise StackError(f"{source}: node '{node}': '{key}' must be true or false, got {value!r}")
        values[key] = value
    delay = entry.get("respawn_delay", default.respawn_delay)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0.0 <= delay <= MAX_RESTART_DELAY_S:
        raise StackError(f"{source}: node '{node}': 'respawn_delay' must be a number of seconds in "
                         f"[0, {MAX_RESTART_DELAY_S:.0f}], got {delay!r}")
    return RestartPolicy(respawn_delay=float(delay), **values)


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
    if use_sim_time is not None and not isinstance(use_sim_time, bool):
        raise StackError(f"{source}: 'use_sim_time' must be true or false (unquoted), got {use_sim_time!r}")
    nodes_doc = document.get("nodes")
    if not isinstance(nodes_doc, list) or not nodes_doc:
        raise StackError(f"{source}: 'nodes' must be a non-empty list")
    overrides = overrides or {}
    names = [entry.get("name") for entry in nodes_doc if isinstance(entry, dict)]
    unknown = [node for node in overrides if node not in names]
    if unknown:
        raise StackError(f"{source}: parameters given for unknown node(s) {', '.join(map(repr, unknown))}; "
                         f"the stack's nodes are {', '.join(map(str, names))}")
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
            parameters.setdefault("use_sim_time", use_sim_time)
        parameters.update(overrides.get(node_name, {}))
        for key, value in parameters.items():
            _check_param(source, node_name, key, value)
        remappings = entry.get("remappings") or {}
        if not isinstance(remappings, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in remappings.items()):
            raise StackError(f"{source}: node '{node_name}': remappings must map topic names to topic names")
        nodes.append(NodeSpec(node_name, executable, full_ns, parameters, dict(remappings),
                              _policy(source, node_name, executable, entry)))
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
