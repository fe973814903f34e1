"""The map's record of an object, what changed in an update, and the geometry of oriented boxes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modular_robot.core.camera import project
from modular_robot.core.mapping.map_file import read_finite, read_finite_vector, read_string
from modular_robot.core.perception.types import CameraFrame


@dataclass
class MapObject:
    """One persistent object instance.

    Attributes:
        id: Stable unique id such as "red_cube_1"; tentative objects are named "tentative_<n>".
        label: Readable label, e.g. "small red cube" (the most often detected one).
        category: What it is: a coarse shape ("cube") or an open-vocabulary class ("mug").
        attributes: Qualifying words: colour name, size class.
        color: One of the twelve colour names, or None.
        position: Centre of the object's 3D box (m), world frame.
        size: Extent along the box's own x, y, z axes (m), x the longer horizontal side.
        yaw: Rotation of the box about world z (rad), in (-pi/2, pi/2].
        confidence: Belief that the object exists, in [0, 1].
        observations: Number of frames it was detected in.
        first_seen_ns: Stamp of the first detection.
        last_seen_ns: Stamp of the latest detection.
        held: Whether a gripper holds it (its position then follows the grasp point).
    """

    id: str
    label: str
    category: str
    attributes: tuple[str, ...] = ()
    color: str | None = None
    position: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    size: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    yaw: float = 0.0
    confidence: float = 1.0
    observations: int = 1
    first_seen_ns: int = 0
    last_seen_ns: int = 0
    held: bool = False

    def __post_init__(self) -> None:
        self.position = np.array(self.position, dtype=np.float64).reshape(3)
        self.size = np.array(self.size, dtype=np.float64).reshape(3)
        self.attributes = tuple(self.attributes)

    def copy(self) -> MapObject:
        """Return a deep copy (the arrays are not shared)."""
        return replace(self, position=self.position.copy(), size=self.size.copy())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field."""
        return {
            "id": self.id, "label": self.label, "category": self.category,
            "attributes": list(self.attributes), "color": self.color,
            "position": [float(v) for v in self.position], "size": [float(v) for v in self.size],
            "yaw": float(self.yaw), "confidence": float(self.confidence),
            "observations": int(self.observations),
            "first_seen_ns": int(self.first_seen_ns), "last_seen_ns": int(self.last_seen_ns),
            "held": bool(self.held),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MapObject:
        """Build an object from ``to_dict`` output.

        Raises:
            ValueError, KeyError, TypeError: if a field is missing or malformed.
        """
        position = read_finite_vector(data["position"], 3, "position")
        size = read_finite_vector(data["size"], 3, "size")
        if np.any(size < 0.0):
            raise ValueError(f"size must not be negative, got {size.tolist()}")
        color = data["color"]
        if color is not None and not isinstance(color, str):
            raise TypeError(f"color must be a string or null, got {color!r}")
        return cls(
            id=read_string(data["id"], "id"), label=read_string(data["label"], "label"),
            category=read_string(data["category"], "category"),
            attributes=tuple(read_string(word, "attribute") for word in data["attributes"]),
            color=color, position=position, size=size, yaw=read_finite(data["yaw"], "yaw"),
            confidence=read_finite(data["confidence"], "confidence"),
            observations=int(data["observations"]),
            first_seen_ns=int(data["first_seen_ns"]), last_seen_ns=int(data["last_seen_ns"]),
            held=bool(data.get("held", False)),
        )


@dataclass
class MapChange:
    """What one update changed among confirmed objects, by id; empty when nothing worth publishing."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)

# Corners of a unit box about its centre, as fractions of its extent.
_UNIT_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])


def local_xy(point: np.ndarray, centre: np.ndarray, yaw: float) -> np.ndarray:
    """Return a point's xy offset from a box centre in the box's own axes."""
    dx, dy = float(point[0] - centre[0]), float(point[1] - centre[1])
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([c * dx + s * dy, -s * dx + c * dy])


def box_distance(point: Sequence[float], position: Sequence[float], size: Sequence[float], yaw: float) -> float:
    """Return the distance from a point to an upright box (0 inside it)."""
    point, position, size = (np.asarray(v, dtype=float) for v in (point, position, size))
    local = np.append(local_xy(point, position, yaw), point[2] - position[2])
    outside = np.maximum(np.abs(local) - size / 2.0, 0.0)
    return float(np.linalg.norm(outside))


def box_corners(positions: NDArray[np.float64], sizes: NDArray[np.float64], yaws: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """Return the ``(N, 8, 3)`` corners of upright boxes turned by ``yaws`` about z."""
    local = sizes[:, None, :] * _UNIT_CORNERS[None]
    cos, sin = np.cos(yaws)[:, None], np.sin(yaws)[:, None]
    turned = np.stack([cos * local[..., 0] - sin * local[..., 1], sin * local[..., 0] + cos * local[..., 1],
                       local[..., 2]], axis=-1)
    return positions[:, None, :] + turned


def box_iou(position_a: NDArray[np.floating], size_a: NDArray[np.floating], yaw_a: float,
            position_b: NDArray[np.floating], size_b: NDArray[np.floating], yaw_b: float) -> float:
    """Return the IoU of the world-axis-aligned boxes that enclose two upright yawed boxes."""
    a = box_arrays([(position_a, size_a, yaw_a)])
    b = box_arrays([(position_b, size_b, yaw_b)])
    return float(iou_matrix(*a, *b)[0, 0])


def box_arrays(boxes: Iterable[tuple[Any, Any, float]]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Stack (position, size, yaw) triples into (N, 3), (N, 3) and (N,) arrays."""
    positions, sizes, yaws = zip(*boxes, strict=True)
    return (np.asarray(positions, dtype=np.float64).reshape(-1, 3),
            np.asarray(sizes, dtype=np.float64).reshape(-1, 3), np.asarray(yaws, dtype=np.float64))


def iou_matrix(position_a: NDArray[np.float64], size_a: NDArray[np.float64], yaw_a: NDArray[np.float64],
                position_b: NDArray[np.float64], size_b: NDArray[np.float64], yaw_b: NDArray[np.float64]
                ) -> NDArray[np.float64]:
    """Return the (Na, Nb) IoU of the axis-aligned boxes enclosing two sets of upright yawed boxes."""
    lo_a, hi_a = _aabbs(position_a, size_a, yaw_a)
    lo_b, hi_b = _aabbs(position_b, size_b, yaw_b)
    overlap = np.clip(np.minimum(hi_a[:, np.newaxis], hi_b[np.newaxis])
                      - np.maximum(lo_a[:, np.newaxis], lo_b[np.newaxis]), 0.0, None)
    intersection = overlap.prod(axis=2)
    union = (hi_a - lo_a).prod(axis=1)[:, np.newaxis] + (hi_b - lo_b).prod(axis=1)[np.newaxis] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0.0)


def _aabbs(position: NDArray[np.float64], size: NDArray[np.float64], yaw: NDArray[np.float64]
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    c, s = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))
    half = 0.5 * np.stack([c * size[:, 0] + s * size[:, 1], s * size[:, 0] + c * size[:, 1], size[:, 2]], axis=1)
    return position - half, position + half


def expected_visible(positions: NDArray[np.floating], sizes: NDArray[np.floating], frame: CameraFrame,
                     margin_px: int = 10, min_range_m: float = 0.1, max_range_m: float = 3.0,
                     occlusion_margin_m: float = 0.05, yaws: NDArray[np.floating] | None = None
                     ) -> NDArray[np.bool_]:
    """Return which objects a frame should show, so that not detecting them is evidence.

    An object counts as visible when its centre lies in front of the camera within range, every
    corner of its box projects at least ``margin_px`` inside the image, and the depth image around
    the centre's pixel is not nearer than the object's front (its bounding sphere) by more than
    ``occlusion_margin_m``. An object that the image border cuts is not evidence either way:
    detectors drop such views, whose extent is unknown (a tray at the edge of a turning mobile
    base's view was otherwise missed out of the map). Where the depth is mostly invalid, or the
    depth image does not match the intrinsics, nothing can be verified and the object does not
    count as visible.

    Args:
        positions: ``(N, 3)`` box centres in the world frame.
        sizes: ``(N, 3)`` box extents.
        frame: The camera frame.
        margin_px: Required distance of every box corner from the image border, in pixels.
        min_range_m: Nearest visible distance along the optical axis.
        max_range_m: Farthest visible distance along the optical axis.
        occlusion_margin_m: Tolerance of the occlusion test.
        yaws: ``(N,)`` box rotations about z (rad); zero if None.

    Returns:
        ``(N,)`` bool.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 3)
    yaws = np.zeros(len(positions)) if yaws is None else np.asarray(yaws, dtype=np.float64).reshape(-1)
    intrinsics = frame.intrinsics
    visible = np.zeros(len(positions), dtype=bool)
    depth = np.asarray(frame.depth)
    if len(positions) == 0 or depth.shape != (intrinsics.height, intrinsics.width):
        return visible
    to_camera = frame.world_from_camera.inverse()
    in_camera = to_camera.apply(positions)
    u, v = project(in_camera, intrinsics)
    z = in_camera[:, 2]
    corner_u, corner_v = project(to_camera.apply(box_corners(positions, sizes, yaws).reshape(-1, 3)), intrinsics)
    corner_u, corner_v = corner_u.reshape(-1, 8), corner_v.reshape(-1, 8)
    with np.errstate(invalid="ignore"):
        inside = np.all((corner_u >= margin_px) & (corner_u <= intrinsics.width - 1 - margin_px)
                        & (corner_v >= margin_px) & (corner_v <= intrinsics.height - 1 - margin_px), axis=1)
        candidate = (z >= min_range_m) & (z <= max_range_m) & inside
    radius = 0.5 * np.linalg.norm(sizes, axis=1)
    for i in np.flatnonzero(candidate):
        # A patch about half the object's apparent size: robust to a few bad depth pixels, yet
        # small enough to stay on the object (or on what hides it).
        half = int(np.clip(0.5 * intrinsics.fx * radius[i] / z[i], 1, 8))
        col, row = round(u[i]), round(v[i])
        patch = depth[max(row - half, 0):row + half + 1, max(col - half, 0):col + half + 1]
        valid = patch[np.isfinite(patch) & (patch > 0.0)]
        if valid.size < 0.3 * patch.size:
            continue
        visible[i] = float(np.median(valid)) >= z[i] - radius[i] - occlusion_margin_m
    return visible
