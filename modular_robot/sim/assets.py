"""Assets derived from pybullet_data (simpler meshes, untextured copies), written once to a temp dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pybullet_data


def data_path(*parts: str) -> str:
    """Return the path of a file shipped in pybullet_data."""
    return os.path.join(pybullet_data.getDataPath(), *parts)


def derived_asset(name: str, text: str) -> str:
    """Write `text` to a per-user temp file called `name` (unless it already holds it); return its path.

    The write goes through a temp file and a rename, so concurrent simulators never read half a file.
    """
    target = Path(tempfile.gettempdir()) / f"modular_robot_{os.getuid()}" / name
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{name}.{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(target)
    return str(target)


def untextured_duck_urdf() -> str:
    """Return pybullet_data's duck with its material removed, so that a colour is all it shows.

    changeVisualShape(textureUniqueId=-1) strips the texture under TinyRenderer but not under EGL,
    where a gray duck came out olive; dropping the OBJ's material makes both draw the colour.
    """
    obj = Path(data_path("duck.obj")).read_text()
    plain = "".join(line for line in obj.splitlines(keepends=True)
                    if not line.startswith(("mtllib", "usemtl")))
    plain_obj = derived_asset("duck_plain.obj", plain)
    urdf = Path(data_path("duck_vhacd.urdf")).read_text()
    urdf = urdf.replace('filename="duck.obj"', f'filename="{plain_obj}"')
    urdf = urdf.replace('filename="duck_vhacd.obj"', f'filename="{data_path("duck_vhacd.obj")}"')
    return derived_asset("duck_plain.urdf", urdf)
