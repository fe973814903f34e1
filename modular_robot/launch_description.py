"""Turn a stack YAML into the arguments of launch_ros Node actions, for `ros2 launch`.

launch is imported only inside `generate`, so nodes_for_launch is tested where launch is not
installed; the launch files are two lines that call `generate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modular_robot.core.stack import dds_environment, load_stack

PACKAGE = "modular_robot"


def nodes_for_launch(stack_path: str | Path, namespace: str | None = None, use_sim_time: bool | None = None,
                     overrides: dict[str, dict[str, Any]] | None = None,
                     skip_executables: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Return one launch_ros.actions.Node keyword dictionary per node of the stack.

    Each carries the node's restart policy (`respawn`, `respawn_delay`; `required` is for
    `generate`, which turns it into a shutdown of the launch when the node exits for good) and,
    unless FASTDDS_DEFAULT_PROFILES_FILE is set, our Fast DDS profile in `additional_env`.

    Args:
        stack_path: Stack YAML file.
        namespace: Robot namespace that replaces the stack's own.
        use_sim_time: When given, set on every node.
        overrides: Extra parameters by node name.
        skip_executables: Executables to leave out (bringup on hardware leaves out the simulator).
    """
    stack = load_stack(stack_path, overrides, namespace)
    environment = dds_environment(dict(os.environ))
    entries = []
    for spec in stack.nodes:
        if spec.executable in skip_executables:
            continue
        parameters = dict(spec.parameters)
        if use_sim_time is not None:
            parameters["use_sim_time"] = use_sim_time
        entries.append({
            "package": PACKAGE,
            "executable": spec.executable,
            "name": spec.name,
            "namespace": spec.namespace,
            "parameters": [parameters],
            # Namespaced robots keep their transforms in <ns>/tf, as navigation2 does.
            "remappings": [*spec.remappings.items(), ("/tf", "tf"), ("/tf_static", "tf_static")],
            "output": "screen",
            "additional_env": environment,
            "respawn": spec.policy.respawn,
            "respawn_delay": spec.policy.respawn_delay,
            "required": spec.policy.required,
        })
    return entries


def generate(use_sim_time: bool, skip_executables: tuple[str, ...] = ()):
    """Return the LaunchDescription of sim.launch.py and bringup.launch.py.

    It declares `stack` (default: the installed config/stacks/sim_tabletop.yaml) and `namespace`,
    and starts one launch_ros Node per entry of nodes_for_launch. launch is imported here only,
    so the rest of this module works where launch is not installed.
    """
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        stack = LaunchConfiguration("stack").perform(context)
        namespace = LaunchConfiguration("namespace").perform(context) or None
        entries = nodes_for_launch(stack, namespace=namespace, use_sim_time=use_sim_time,
                                   skip_executables=skip_executables)
        # launch restarts a respawned node without limit; one that is required and not respawned
        # (the driver) ends the launch when it exits, as `modular-robot up` stops the stack.
        actions = []
        for entry in entries:
            required = entry.pop("required")
            actions.append(Node(**entry, on_exit=Shutdown() if required and not entry["respawn"] else None))
        return actions

    default_stack = os.path.join(get_package_share_directory(PACKAGE), "config", "stacks", "sim_tabletop.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("stack", default_value=default_stack,
                              description="Stack YAML: which nodes run with which parameters."),
        DeclareLaunchArgument("namespace", default_value="", description="Robot namespace for every node."),
        OpaqueFunction(function=nodes),
    ])
