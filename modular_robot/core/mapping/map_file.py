"""The semantic map's file: its schema, and reading its fields defensively (a bad file never crashes a node)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

SCHEMA = "modular_robot.semantic_map"
SCHEMA_VERSION = 1


class MapLoadWarning(UserWarning):
    """A saved map could not be used; it was moved aside and a fresh map started.

    Attributes:
        path: The file that was asked for.
        moved_to: Where the unusable file now lies, or None if it could not be moved.
        reason: Why it could not be used.
    """

    def __init__(self, path: Path, reason: str, moved_to: Path | None) -> None:
        self.path = path
        self.reason = reason
        self.moved_to = moved_to
        where = f"moved aside to {moved_to}" if moved_to else "could not be moved aside"
        super().__init__(f"map file {path} unusable ({reason}); {where}; starting a fresh map")


def move_aside(path: Path) -> Path | None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.unusable-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = path.with_name(f"{path.name}.unusable-{stamp}-{suffix}")
    try:
        path.rename(target)
    except OSError:
        return None
    return target


def describe_error(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error}"
    return f"{type(error).__name__}: {error}"


def read_string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


def read_finite(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def read_finite_vector(values: Iterable[Any], length: int, name: str) -> NDArray[np.float64]:
    vector = np.array([read_finite(v, name) for v in values], dtype=np.float64)
    if vector.shape != (length,):
        raise ValueError(f"{name} must hold {length} numbers, got {vector.size}")
    return vector


def read_votes(data: dict[str, Any]) -> dict[str, float]:
    return {read_string(word, "vote key"): read_finite(weight, "vote") for word, weight in data.items()}
