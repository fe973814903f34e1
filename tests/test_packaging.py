"""The package as a ROS engineer installs it: what it declares, installs and imports."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def test_benchmarks_never_import_from_tests():
    tests_modules = {path.stem for path in (ROOT / "tests").rglob("*.py")} | {"tests"}
    benchmarks = sorted((ROOT / "benchmarks").glob("*.py"))
    assert benchmarks
    for path in benchmarks:
        tree = ast.parse(path.read_text(), str(path))
        assert set(_imported([path])) & tests_modules == set(), path.name
        strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
        assert "tests" not in strings, f"{path.name} names the tests folder"
