"""Find the package's data files (scenarios, stacks) from any working directory."""

from __future__ import annotations

from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def resolve_data_path(path: str | Path) -> Path:
    """Return an existing file for a path given as is, relative to the source tree, or to share/.

    Stack files name scenarios relative to the repository (`sim/scenarios/x.yaml`); under
    `ros2 launch` the working directory is arbitrary and the files live in the package's share
    directory instead.

    Raises:
        FileNotFoundError: naming every place that was tried.
    """
    path = Path(path)
    candidates = [path]
    if not path.is_absolute():
        candidates.append(_SOURCE_ROOT / path)
        try:
            from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

            try:
                candidates.append(Path(get_package_share_directory("modular_robot")) / path)
            except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH (pip route)
                pass
        except ImportError:
            pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path} not found; tried {', '.join(str(c) for c in candidates)}")
