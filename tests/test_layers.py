"""Layers only point down: each package of modular_robot imports only from the packages below it.

The robot's side (core, motion, skills, planning, critic, ros, nodes) never imports the simulator,
the scenario checks or the harness, so a real robot's bring-up loads none of them. Every import is
counted, those inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "modular_robot"

# What each layer (a subpackage, or a module at the package root) may import besides itself.
ROBOT_SIDE = ("paths", "core", "motion", "skills", "planning", "critic", "ros", "nodes")
ALLOWED: dict[str, set[str]] = {
    "paths": set(),
    "core": {"paths"},
    "motion": {"paths", "core"},
    "skills": {"paths", "core", "motion"},
    "planning": {"paths", "core", "motion", "skills"},
    "critic": {"paths", "core", "motion", "skills"},
    "ros": {"paths", "core", "motion", "skills"},
    "nodes": {"paths", "core", "motion", "skills", "planning", "critic", "ros"},
    "scenarios": {"paths", "core"},
    "sim": {"paths", "core", "ros", "scenarios"},
    "harness": {"paths", "core", "motion", "skills", "planning", "critic", "ros", "nodes", "scenarios", "sim"},
    "launch_description": {"paths", "core"},
    "cli": set(ROBOT_SIDE) | {"scenarios", "sim", "harness", "launch_description"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str) -> list[tuple[int, str]]:
    """Return (line, module) for every absolute import of a modular_robot module in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "modular_robot":
                found += [(node.lineno, f"modular_robot.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.startswith("modular_robot.")]


def wrong_way_imports(package: Path = PACKAGE) -> list[str]:
    """Return "file:line: layer imports module" for every import outside its layer's allowance."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        layer = _layer(_module_name(path, package))
        for line, imported in _imports(path.read_text()):
            target = _layer(imported)
            if target != layer and target not in ALLOWED.get(layer, set()):
                problems.append(f"{path.relative_to(package.parent)}:{line}: {layer} imports {imported}")
    return problems


def test_every_layer_of_the_package_is_known():
    layers = {_layer(_module_name(path)) for path in PACKAGE.rglob("*.py")} - {""}
    assert layers == set(ALLOWED), "add a new package to ALLOWED, with the layers it may import"


def test_imports_only_point_down():
    assert wrong_way_imports() == []


def test_the_robot_side_never_imports_the_simulator_scenarios_or_harness():
    for layer in ROBOT_SIDE:
        assert not ALLOWED[layer] & {"sim", "scenarios", "harness", "cli"}, layer


@pytest.mark.parametrize("source, layer, expected", [
    ("from modular_robot.sim.robots import SimRobot\n", "nodes", "nodes imports modular_robot.sim.robots"),
    ("def f():\n    import modular_robot.harness.lockstep\n", "core",
     "core imports modular_robot.harness.lockstep"),
    ("from modular_robot import critic\n", "skills", "skills imports modular_robot.critic"),
    ("from modular_robot.core.transforms import Transform\n", "nodes", None),
])
def test_a_wrong_way_import_is_found_with_its_place(tmp_path, source, layer, expected):
    package = tmp_path / "modular_robot"
    (package / layer).mkdir(parents=True)
    (package / layer / "module.py").write_text(source)
    problems = wrong_way_imports(package)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].endswith(expected)
        assert problems[0].startswith(f"modular_robot/{layer}/module.py:")
