"""Turn a stack YAML and the launch arguments into launch_ros Node actions, for `ros2 launch`.

The launch arguments are the ones every ROS engineer passes: `use_sim_time`, `namespace`, `robot`
(which picks the stack), `params_file` (a `ros__parameters` file over the stack's values), and
`stack` to name a stack file outright. launch is imported only inside `generate`, so everything
else here is tested where launch is not installed; the launch files are two lines that call it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modular_robot.core.robot_model import ROBOT_KINDS, robot_kind
from modular_robot.core.stack import dds_environment, load_stack
from modular_robot.paths import resolve_data_path

PACKAGE = "modular_robot"
DEFAULT_ROBOT = "panda_tabletop"
# How launch spells booleans in argument values (`use_sim_time:=True` works as in launch_ros).
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def nodes_for_launch(stack_path: str | Path, namespace: str | None = None, use_sim_time: bool | None = None,
                     overrides: dict[str, dict[str, Any]] | None = None,
                     skip_executables: tuple[str, ...] = (),
                     params_file: str | Path | None = None) -> list[dict[str, Any]]:
    """Return one launch_ros.actions.Node keyword dictionary per node of the stack.

    Each carries the node's restart policy (`respawn`, `respawn_delay`; `required` is for
    `generate`, which turns it into a shutdown of the launch when the node exits for good) and,
    unless FASTDDS_DEFAULT_PROFILES_FILE is set, our Fast DDS profile in `additional_env`. Its
    `parameters` list holds, later entries winning as in launch_ros: the stack's values, then
    `params_file`, then `use_sim_time`.

    Args:
        stack_path: Stack YAML file.
        namespace: Robot namespace that replaces the stack's own.
        use_sim_time: When given, set on every node.
        overrides: Extra parameters by node name.
        skip_executables: Executables to leave out (bringup on hardware leaves out the simulator).
        params_file: A `ros__parameters` YAML file given to every node.

    Raises:
        FileNotFoundError: When params_file does not exist.
    """
    stack = load_stack(stack_path, overrides, namespace)
    layers: list[Any] = []
    if params_file:
        layers.append(str(resolve_data_path(params_file)))
    if use_sim_time is not None:
        layers.append({"use_sim_time": use_sim_time})
    environment = dds_environment(dict(os.environ))
    entries = []
    for spec in stack.nodes:
        if spec.executable in skip_executables:
            continue
        entries.append({
            "package": PACKAGE,
            "executable": spec.executable,
            "name": spec.name,
            "namespace": spec.namespace,
            "parameters": [dict(spec.parameters), *layers],
            # Namespaced robots keep their transforms in <ns>/tf, as navigation2 does.
            "remappings": [*spec.remappings.items(), ("/tf", "tf"), ("/tf_static", "tf_static")],
            "output": "screen",
            "additional_env": environment,
            "respawn": spec.policy.respawn,
            "respawn_delay": spec.policy.respawn_delay,
            "required": spec.policy.required,
        })
    return entries


def launch_arguments(use_sim_time: bool) -> dict[str, tuple[str, str]]:
    """Return the launch arguments by name, each with its default value and description.

    Args:
        use_sim_time: Default of the `use_sim_time` argument (true in simulation).
    """
    return {
        "use_sim_time": ("true" if use_sim_time else "false",
                         "Use the /clock topic (simulation) instead of the wall clock: true or false."),
        "namespace": ("", "Robot namespace for every node; replaces the stack's own."),
        "robot": (DEFAULT_ROBOT, f"Robot type, which picks the stack: {', '.join(ROBOT_KINDS)}."),
        "stack": ("", "Stack YAML (which nodes run with which parameters); empty means the robot's stack."),
        "params_file": ("", "ros__parameters YAML given to every node, over the stack's values; empty for none."),
    }


def nodes_for_arguments(values: Mapping[str, str],
                        skip_executables: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Return nodes_for_launch's entries for launch argument values (strings, as launch gives them).

    Raises:
        ValueError: For a `use_sim_time` that is not a boolean or a `robot` with no stack.
        FileNotFoundError: For a stack or params file that does not exist.
    """
    use_sim_time = _BOOLEANS.get(values["use_sim_time"].strip().lower())
    if use_sim_time is None:
        raise ValueError(f"launch argument use_sim_time must be true or false, got {values['use_sim_time']!r}")
    stack = values["stack"]
    if not stack:
        stack = robot_kind(values["robot"]).stack
    return nodes_for_launch(resolve_data_path(stack), namespace=values["namespace"] or None,
                            use_sim_time=use_sim_time, skip_executables=skip_executables,
                            params_file=values["params_file"] or None)


def generate(use_sim_time: bool, skip_executables: tuple[str, ...] = ()):
    """Return the LaunchDescription of sim.launch.py and bringup.launch.py.

    It declares the arguments of `launch_arguments` and starts one launch_ros Node per entry of
    nodes_for_arguments. launch is imported here only, so the rest of this module works where
    launch is not installed.

    Args:
        use_sim_time: Default of the `use_sim_time` argument.
        skip_executables: Executables to leave out.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    arguments = launch_arguments(use_sim_time)

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        # launch restarts a respawned node without limit; one that is required and not respawned
        # (the driver) ends the launch when it exits, as `modular-robot up` stops the stack.
        actions = []
        for entry in nodes_for_arguments(values, skip_executables):
            required = entry.pop("required")
            actions.append(Node(**entry, on_exit=Shutdown() if required and not entry["respawn"] else None))
        return actions

    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in arguments.items()),
        OpaqueFunction(function=nodes),
    ])
