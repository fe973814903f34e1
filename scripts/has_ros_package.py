"""Exit 0 when a ROS package with Python messages is importable outside our own build, else 1."""

import os
import sys
from pathlib import Path

name = sys.argv[1]
own_install = Path(__file__).resolve().parents[1] / "install"
prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
for prefix in prefixes:
    if Path(prefix).resolve() == own_install.resolve():
        continue
    if (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / name).exists():
        sys.exit(0)
sys.exit(1)
