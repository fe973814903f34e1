"""Data passed between the perception node, detectors and the semantic map (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.transforms import Transform

# Coarse shapes the geometric detector names (ARCHITECTURE: cube / cylinder / sphere / flat / irregular;
# low wide objects are "tray" or "bowl" when their footprint is rectangular or round).
SHAPES = ("cube", "cylinder", "sphere", "tray", "bowl", "flat", "irregular")
SIZE_CLASSES = ("small", "medium", "large")


@dataclass(frozen=True)
class Capsule:
    """A segment with a radius, in the world frame: a robot link to cut out of the view."""

    start: np.ndarray
    end: np.ndarray
    radius: float


@dataclass
class CameraFrame:
    """One synchronised RGB-D frame with its pose.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 metres along the optical axis, NaN where invalid.
        intrinsics: Pinhole model of both images (depth is registered to colour).
        world_from_camera: Maps points in the optical frame into the world (map) frame.
        stamp_ns: Acquisition time.
        world_frame: Name of the world frame (usually "map").
        robot_capsules: The robot's own links in the world frame; their points are not objects.
        grasp_points: World positions of the robot's grasp centres (between the fingers): an
            object held there floats above every support and is reported all the same.
        segmentation: (H, W) int32 segment id per pixel, from the simulator (sim_truth only).
        segment_labels: Segment id -> {"id", "type", "color"} of simulated objects (sim_truth only).
    """

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: PinholeIntrinsics
    world_from_camera: Transform
    stamp_ns: int = 0
    world_frame: str = "map"
    robot_capsules: Sequence[Capsule] = ()
    grasp_points: Sequence[np.ndarray] = ()
    segmentation: np.ndarray | None = field(default=None, repr=False)
    segment_labels: dict[int, dict] = field(default_factory=dict)


@dataclass
class Detection:
    """One object found in one frame, in the world frame.

    Attributes:
        label: Readable label, e.g. "small red cube".
        category: What it is: a shape of SHAPES for the geometric detector, the class text for
            open-vocabulary detectors.
        attributes: Words that qualify it: colour name, size class.
        score: Detector confidence in [0, 1].
        bbox: (x_offset, y_offset, width, height) in pixels, as sensor_msgs/RegionOfInterest.
        position: Centre of the object's 3D box (m), world frame.
        size: Extent along the box's own x, y, z axes (m); x is the longer horizontal side.
        yaw: Rotation of the box about world z (rad).
        color: Colour name (one of the twelve), or None.
        mask: Optional (H, W) bool mask of the object's pixels.
    """

    label: str
    category: str
    attributes: tuple[str, ...]
    score: float
    bbox: tuple[int, int, int, int]
    position: np.ndarray
    size: np.ndarray
    yaw: float = 0.0
    color: str | None = None
    mask: np.ndarray | None = field(default=None, repr=False)


class Detector(Protocol):
    """Anything that turns a frame into detections (geometric, owlv2, grounding_dino, sim_truth)."""

    name: str

    def detect(self, frame: CameraFrame, prompts: Sequence[str] = ()) -> list[Detection]:
        """Return the objects found in `frame`; open-vocabulary detectors look for `prompts`."""
        ...
