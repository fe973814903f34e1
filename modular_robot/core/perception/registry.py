"""Detector factory: the perception node builds the detector its `detector` parameter names."""

from __future__ import annotations

import importlib
from typing import Any

from modular_robot.core.perception.types import Detector

# Name -> (module, class). Modules are imported on demand: a node running the geometric detector
# never pays for importing torch and transformers, and a missing optional module only breaks the
# detector that needs it.
_DETECTORS: dict[str, tuple[str, str]] = {
    "geometric": ("modular_robot.core.perception.geometric", "GeometricDetector"),
    "owlv2": ("modular_robot.core.perception.open_vocab", "Owlv2Detector"),
    "grounding_dino": ("modular_robot.core.perception.open_vocab", "GroundingDinoDetector"),
    # Ground-truth segmentation from the simulator: for ablations only.
    "sim_truth": ("modular_robot.core.perception.sim_truth", "SimTruthDetector"),
}

DETECTOR_NAMES: tuple[str, ...] = tuple(_DETECTORS)


def create_detector(name: str, **params: Any) -> Detector:
    """Build the detector called `name` with keyword parameters for its constructor.

    Args:
        name: One of DETECTOR_NAMES.
        **params: Constructor arguments, e.g. ``model_dir`` for the open-vocabulary detectors.

    Returns:
        The detector.

    Raises:
        ValueError: if `name` is not a known detector.
    """
    try:
        module_name, class_name = _DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known detectors: {', '.join(DETECTOR_NAMES)}") from None
    return getattr(importlib.import_module(module_name), class_name)(**params)
