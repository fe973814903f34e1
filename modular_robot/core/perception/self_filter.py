"""Robot self-filter: capsules around the robot's links, and which points fall inside them.

A camera that sees the robot's own arm would report it as objects. Each link is wrapped in a
capsule (a segment with a radius) fixed in the link's frame; given the links' world poses (from
the simulator, or from /tf on a real robot) the capsules move with the arm, and points within
them are dropped before segmentation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modular_robot.core.perception.types import Capsule
from modular_robot.core.transforms import Transform

# One capsule per link of the Franka Panda in its URDF link frame: (start, end, radius), metres.
# Measured from pybullet_data's franka_panda collision meshes (which the simulator also draws at
# mesh_detail "low"): the smallest capsule along the best of the mesh's principal and coordinate axes
# that holds every vertex and 4000 points sampled on its triangles, radius rounded up to the mm.
# Splitting the L-shaped links into two capsules shrank the total volume by under 10%: one is enough.
PANDA_LINK_CAPSULES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    "panda_link0": ((0.0, 0.0, 0.05), (-0.059, -0.002, 0.027), 0.107),
    "panda_link1": ((0.0, -0.055, 0.006), (0.001, 0.002, -0.142), 0.077),
    "panda_link2": ((0.0, -0.144, -0.002), (0.0, 0.008, 0.056), 0.077),
    "panda_link3": ((0.084, 0.045, 0.001), (0.001, -0.002, -0.08), 0.072),
    "panda_link4": ((0.001, -0.001, 0.049), (-0.082, 0.079, -0.002), 0.074),
    "panda_link5": ((0.0, 0.074, 0.0), (-0.003, 0.003, -0.213), 0.076),
    "panda_link6": ((0.02, 0.009, 0.0), (0.089, 0.009, 0.0), 0.076),
    "panda_link7": ((-0.005, -0.005, 0.074), (0.034, 0.034, 0.077), 0.05),
    "panda_hand": ((0.001, 0.07, 0.026), (0.0, -0.09, 0.02), 0.049),
    "panda_leftfinger": ((0.0, 0.015, 0.004), (0.0, 0.008, 0.04), 0.018),
    # The right finger's mesh is the left one turned half a turn about z.
    "panda_rightfinger": ((0.0, -0.015, 0.004), (0.0, -0.008, 0.04), 0.018),
}


# The Panda's grasp centre between the fingertips (a link of the URDF): where a held object is.
PANDA_GRASP_FRAME = "panda_grasptarget"


def capsules_from_links(
    link_poses: Mapping[str, Transform],
    link_capsules: Mapping[str, tuple[ArrayLike, ArrayLike, float]],
    prefix: str = "",
) -> list[Capsule]:
    """Place link-frame capsules in the world.

    Args:
        link_poses: World pose of each link frame (world_from_link), by frame name.
        link_capsules: (start, end, radius) of each link's capsule in its own frame, by link name
            without prefix.
        prefix: Frame-name prefix of this robot's links (e.g. "robot1/" for a namespaced TF tree).

    Returns:
        One world-frame capsule per link that has a pose; links without one are skipped, so that
        a partial TF tree still filters what it can.
    """
    capsules = []
    for link, (start, end, radius) in link_capsules.items():
        pose = link_poses.get(prefix + link)
        if pose is None:
            continue
        world = pose.apply(np.array([start, end], dtype=np.float64))
        capsules.append(Capsule(start=world[0], end=world[1], radius=float(radius)))
    return capsules


def panda_capsules(link_poses: Mapping[str, Transform], prefix: str = "") -> list[Capsule]:
    """Return the world-frame capsules of a Franka Panda from its link poses (see capsules_from_links)."""
    return capsules_from_links(link_poses, PANDA_LINK_CAPSULES, prefix)


def segment_distance(points: ArrayLike, start: ArrayLike, end: ArrayLike) -> NDArray[np.floating]:
    """Return the distance from each point to the segment from `start` to `end`.

    Args:
        points: (N, 3) points.
        start: (3,) one end of the segment.
        end: (3,) the other end; equal to `start` for a sphere.

    Returns:
        (N,) distances, in the points' dtype when it is float32 or float64.
    """
    pts = np.asarray(points)
    dtype = pts.dtype if pts.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    pts = pts.astype(dtype, copy=False)
    a = np.asarray(start, dtype=dtype)
    ab = np.asarray(end, dtype=dtype) - a
    rel = pts - a
    length_sq = float(ab @ ab)
    if length_sq == 0.0:
        return np.sqrt(np.einsum("ij,ij->i", rel, rel))
    t = np.clip(rel @ ab / dtype.type(length_sq), 0.0, 1.0)
    off = rel - t[:, np.newaxis] * ab
    return np.sqrt(np.einsum("ij,ij->i", off, off))


def inside_capsules(points: ArrayLike, capsules: Sequence[Capsule], margin: float = 0.0) -> NDArray[np.bool_]:
    """Return which points lie within any capsule, its radius grown by `margin`.

    Each capsule first culls the points outside its axis-aligned bounding box, so that the exact
    distance is computed only for the few points near a link.

    Args:
        points: (N, 3) world-frame points.
        capsules: World-frame capsules.
        margin: Extra radius (m): depth noise and mesh detail the capsules do not cover.

    Returns:
        (N,) bool mask.
    """
    pts = np.asarray(points)
    inside = np.zeros(len(pts), dtype=bool)
    # Column by column: reducing an (N, 3) comparison along its rows is ten times slower.
    columns = [pts[:, axis] for axis in range(3)]
    for capsule in capsules:
        reach = capsule.radius + margin
        lo = np.minimum(capsule.start, capsule.end) - reach
        hi = np.maximum(capsule.start, capsule.end) + reach
        in_box = (columns[0] >= lo[0]) & (columns[0] <= hi[0])
        for axis in (1, 2):
            in_box &= (columns[axis] >= lo[axis]) & (columns[axis] <= hi[axis])
        near = np.flatnonzero(in_box)
        if near.size == 0:
            continue
        close = segment_distance(pts[near], capsule.start, capsule.end) <= reach
        inside[near[close]] = True
    return inside
