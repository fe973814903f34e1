"""Turn a stack YAML into the arguments of launch_ros Node actions, for `ros2 launch`.

Kept free of launch imports so it is tested where launch is not installed; the launch files only
wrap each entry in `launch_ros.actions.Node(**entry)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modular_robot.core.stack import load_stack

PACKAGE = "modular_robot"


def nodes_for_launch(stack_path: str | Path, namespace: str | None = None, use_sim_time: bool | None = None,
                     overrides: dict[str, dict[str, Any]] | None = None,
                     skip_executables: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Return one launch_ros.actions.Node keyword dictionary per node of the stack.

    Args:
        stack_path: Stack YAML file.
        namespace: Robot namespace that replaces the stack's own.
        use_sim_time: When given, set on every node.
        overrides: Extra parameters by node name.
        skip_executables: Executables to leave out (bringup on hardware leaves out the simulator).
    """
    stack = load_stack(stack_path, overrides, namespace)
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
        })
    return entries
