"""The geometric detector: objects as clusters of depth points standing on horizontal surfaces.

The offline CPU default: no model, no GPU, and no training, so it works on any tabletop. For one
RGB-D frame it

1. back-projects every ``stride``-th pixel's depth into the world frame (z up);
2. finds the horizontal support planes (table top, floor, a raised table) by voting point heights
   into a histogram and refining each peak with RANSAC and a least-squares fit, and removes their
   points;
3. drops the points inside the robot's link capsules (the self-filter);
4. groups the remaining points by connected 1 cm voxels, and joins groups that are neighbours in
   the image and close in 3D for the spacing of samples there (a face seen nearly edge-on);
5. keeps the clusters that rest on a support plane and have the size of a graspable object, and
   for each lifts a 3D box, names its colour from its pixels, and classifies its coarse shape.

Why these choices (measured at 640x480 on one core of this 2-vCPU machine, sim tabletop frames):

- Planes: the world frame's z is up (REP-103), so a support is a peak of the point-height
  histogram; a short RANSAC within the peak's band then allows a tilt of a few degrees (a real
  table, an imperfect camera calibration). On 67k points (stride 2) this finds the table in
  2.6-3.6 ms, where open3d's ``segment_plane`` (same 6 mm threshold, 200 or 1000 iterations)
  took 15-18 ms, and, being blind to gravity, can return a wall or the side of a big box.
  Candidate peaks are visited by size, so that a raised table seen by a mobile robot becomes a
  second support above the floor; each cluster then rests on the nearest plane below it.
- Clusters: connected components of occupied voxels (scipy's csgraph) took 1.0-1.3 ms for the
  4-6k points left after plane removal and the self-filter; open3d's DBSCAN (eps 1.5 cm) took
  12-19 ms on the same points and found the same clusters.

Shapes: low wide objects (height under ``flat_ratio`` times the shorter footprint side) are "bowl"
when their footprint's outline lies on a circle, "tray" when it lies on the edges of a rectangle,
and "flat" otherwise (a footprint cut short by the view); "sphere" for objects whose points fit a
sphere of their own size, "cylinder" and "cube" for objects whose sides, seen from above, lie on a
circle or on the edges of a rectangle (upright boxes of any proportion are "cube"), "irregular" for
the rest (the duck, a mug on its side).

Rejected clusters: fewer than ``min_points`` points or smaller than ``min_size`` (noise, a sliver
of an edge); thinner than ``min_thickness`` (a face seen edge-on, split from its object); longer
than ``max_footprint`` or taller than ``max_height`` (walls, furniture, the legs and rim of a
table); clusters with no support plane within ``max_support_gap`` below them (things held in the
air, the hanging rim of a table); clusters under a raised support plane (the legs of a table, and
what stands under it, which the camera sees only in part); clusters that touch the image border
or reach the range limit, whose extent, hence position, is unknown from this view (the next view
or the map supplies them).

Limits: one view sees only the near side of an object. From a low camera (the Husky's, 0.55 m
up) the tops of objects on a table are nearly edge-on, and their boxes fall short of their far
side by up to half their depth. Objects closer together than about two voxels (2 cm), and objects
inside a container, join one cluster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from modular_robot.core.camera import PinholeIntrinsics, depth_to_points
from modular_robot.core.perception.color_naming import color_confidence, rank_colors
from modular_robot.core.perception.geometry import box_from_points, size_class
from modular_robot.core.perception.self_filter import inside_capsules
from modular_robot.core.perception.types import CameraFrame, Detection
from modular_robot.core.transforms import Transform

# The noun of each shape in a label: "small red cube", "large gray tray".
SHAPE_NOUNS = {"cube": "cube", "cylinder": "cylinder", "sphere": "sphere", "tray": "tray", "bowl": "bowl",
               "flat": "flat object", "irregular": "object"}
# Cells (m) of the map of where a raised support plane lies: coarse enough that its inliers, a few
# millimetres apart, leave no holes; fine enough that a leg under its edge is under it.
_COVER_CELL = 0.05
_COVER_OFFSET = 1 << 20
_COVER_RADIX = 1 << 22
# Spacing (m) of the points sampled along a flat object's footprint hull for its outline tests: the
# hull's corners alone lie on a circle for a rectangle too, so the tests must see its edges.
_HULL_SAMPLE_SPACING = 0.005
# Fewer side points than this (a camera straight above sees only the top) and the shape tests use
# the corners of the footprint's hull instead.
_MIN_OUTLINE_POINTS = 6
# Colour names a shadow or a highlight can turn into one another.
_ACHROMATIC = frozenset({"white", "gray", "black"})
# A circle fitted to a short arc that is this much wider than the object is placed less surely
# than the object's box is.
_TRUSTED_CIRCLE_RATIO = 1.3
# A cylinder's side, seen from anywhere, is an arc that bulges off its chord (half a circle: by half
# its length). One face of a cube seen square-on is a straight line, which a circle much wider than
# the cube also fits: an outline bulging less than this fraction of its length is not an arc.
_MIN_ARC_BULGE = 0.12
# Half of the 26-neighbourhood: each pair of touching voxels is found once.
_HALF_NEIGHBOURHOOD = np.array(
    [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1) if (dx, dy, dz) > (0, 0, 0)],
    dtype=np.int64)


@dataclass(frozen=True)
class GeometricParams:
    """Settings of the geometric detector; the defaults suit a 640x480 RGB-D camera 0.5-3 m away.

    Attributes:
        stride: Use every stride-th row and column of the depth image (2: a quarter of the pixels).
        max_range: Ignore depth beyond this (m): far points are sparse and noisy.
        plane_threshold: Points within this distance of a support plane belong to it (m); also
            the height below which an object's bottom is lost in the plane.
        plane_bin: Bin width of the point-height histogram that proposes planes (m).
        plane_band: Points within this height of a histogram peak take part in its RANSAC (m).
        max_plane_tilt_deg: Largest tilt of a support plane from horizontal.
        max_planes: Most support planes per frame.
        min_plane_fraction: A support plane holds at least this fraction of the frame's points.
        min_plane_extent: A support plane spans at least this much along x and along y (m), so
            that the floor of a tray or the top of a box is not taken for a table.
        min_plane_separation: Height between two support planes (m), at least.
        ransac_samples: Points of a peak's band that RANSAC scores hypotheses on.
        ransac_hypotheses: Plane hypotheses RANSAC draws per peak.
        self_filter_margin: Grows the robot's capsules by this much (m).
        voxel: Edge of the clustering voxels (m); points in touching voxels join one cluster, so
            objects closer than two voxels may merge.
        grazing_factor: Neighbouring pixels also join clusters when their 3D distance is within
            this many times the sample spacing of a surface facing the camera: surfaces seen at
            down to asin(1 / grazing_factor) (14 degrees) from edge-on stay whole.
        min_points: Fewest points (at the stride) of an object.
        min_size: Smallest largest extent of an object (m).
        min_thickness: Smallest shorter horizontal side of an object (m). A face seen almost
            edge-on is sampled so sparsely at the stride that part of it can split from its
            object into a cluster of no thickness, which this rejects.
        max_footprint: Longest horizontal side of an object (m).
        max_height: Tallest object (m).
        max_support_gap: Highest that an object's lowest seen point may float above its support
            plane's inliers (m).
        held_radius: A cluster that rests on no support but comes this close (m) to one of the
            frame's grasp points is an object held by the robot.
        border_margin_px: Clusters with a pixel this close to the image border are cut off by it.
        flat_ratio: Height over shorter footprint side below which an object is low and wide: a
            "bowl", a "tray" or "flat".
        top_slab: Points this close below the highest point (m) form the top; the rest, the
            sides, make the outline that the cylinder and cube tests fit.
        sphere_residual: Largest RMS distance of the points from their best-fit sphere, as a
            fraction of its radius, for a sphere (sim renders: spheres 0.01-0.02, cubes and
            cylinders 0.04 and up, ducks 0.13 and up).
        sphere_size_tolerance: Largest relative difference between the fitted sphere's diameter
            and the object's height and footprint.
        cylinder_residual: Largest RMS distance of the outline from its best-fit circle, as a
            fraction of its radius, for a cylinder (sim renders: cylinders 0.01, cubes 0.09 and
            up, ducks 0.10 and up); also of the footprint hull, for a bowl (bowls 0.01, trays 0.11).
        circle_diameter_range: Bounds of the fitted circle's diameter over the longer horizontal
            extent, for a cylinder or a bowl; a flat face fits a huge circle, and a far cylinder's
            short arc a circle up to twice too large.
        cube_edge_fraction: Least fraction of the outline on the edges of a rectangle, for a cube
            (sim renders: cubes 1.0, cylinders and spheres up to 0.93, ducks up to 0.89); also of
            the footprint hull, for a tray (trays 1.0, bowls up to 0.76).
        edge_tolerance: Outline points within this distance (m) of a rectangle's edge are on it,
            or within edge_tolerance_ratio times its shorter side where that is more.
        edge_tolerance_ratio: See edge_tolerance.
        masks: Whether detections carry a full-resolution pixel mask.
        seed: Seed of the RANSAC sampler, so that results are repeatable.
        split_cell: Grid cell (m) of the footprint raster that tells a cluster's inside from its rim.
        split_container_side: Clusters with a shorter horizontal side at least this long (m) are
            searched for contents; smaller ones for a stack.
        split_inset_ratio: Points farther inside the footprint than this fraction of its shorter
            side (at most split_max_inset) are inside: a container's walls are not.
        split_max_inset: See split_inset_ratio (m).
        split_floor_fraction: The lowest height band holding this fraction of the inside points is
            the container's floor.
        split_clearance: Inside points this far above the floor (m) belong to contents.
        split_floor_height: A floor at most this high above the cluster's lowest point (m) is a
            container's, whose contents split off whatever their colour; contents of a higher
            floor must differ from it in colour.
        split_min_width: Contents are at least this wide (m); thinner pieces are wall faces.
        split_max_elongation: Contents are at most this many times longer than wide.
        split_min_fill: Contents' points cover at least this fraction of their footprint rectangle.
        split_slice: Height of the colour slices that find a stack (m).
        split_min_layer: Least height (m) of each object of a stack.
        split_layer_agreement: Least fraction of slices that must agree with a split: one colour
            below, another above.
    """

    stride: int = 2
    max_range: float = 3.0
    plane_threshold: float = 0.006
    plane_bin: float = 0.02
    plane_band: float = 0.05
    max_plane_tilt_deg: float = 5.0
    max_planes: int = 3
    min_plane_fraction: float = 0.02
    min_plane_extent: float = 0.25
    min_plane_separation: float = 0.1
    ransac_samples: int = 1024
    ransac_hypotheses: int = 64
    self_filter_margin: float = 0.01
    voxel: float = 0.01
    grazing_factor: float = 4.0
    min_points: int = 10
    min_size: float = 0.015
    min_thickness: float = 0.005
    max_footprint: float = 0.4
    max_height: float = 0.25
    max_support_gap: float = 0.02
    held_radius: float = 0.03
    border_margin_px: int = 2
    flat_ratio: float = 0.6
    top_slab: float = 0.003
    sphere_residual: float = 0.03
    sphere_size_tolerance: float = 0.3
    cylinder_residual: float = 0.04
    circle_diameter_range: tuple[float, float] = (0.7, 3.0)
    cube_edge_fraction: float = 0.95
    edge_tolerance: float = 0.003
    edge_tolerance_ratio: float = 0.08
    masks: bool = True
    seed: int = 0
    split_cell: float = 0.004
    split_container_side: float = 0.1
    split_inset_ratio: float = 0.12
    split_max_inset: float = 0.015
    split_floor_fraction: float = 0.08
    split_clearance: float = 0.012
    split_floor_height: float = 0.02
    split_min_width: float = 0.015
    split_max_elongation: float = 3.0
    split_min_fill: float = 0.4
    split_slice: float = 0.005
    split_min_layer: float = 0.015
    split_layer_agreement: float = 0.85

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        for name in ("max_range", "plane_threshold", "plane_bin", "plane_band", "voxel", "min_plane_extent"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class SupportPlane:
    """A near-horizontal plane that objects stand on: points p with normal . p + offset = 0.

    Attributes:
        normal: Unit normal (3,), pointing up.
        offset: Plane offset (m).
        inliers: Number of the frame's sampled points on the plane.
    """

    normal: np.ndarray
    offset: float
    inliers: int

    def height(self, points: NDArray[np.floating]) -> NDArray[np.floating]:
        """Return the signed distance of (N, 3) points above the plane (m)."""
        return points @ self.normal.astype(points.dtype) + points.dtype.type(self.offset)

    def z_at(self, x: float, y: float) -> float:
        """Return the height of the plane at a horizontal position (m)."""
        return -(self.normal[0] * x + self.normal[1] * y + self.offset) / self.normal[2]


class GeometricDetector:
    """Detector "geometric": objects standing on support planes, from depth and colour alone.

    Prompts are ignored: it reports every object it finds, and text matching happens downstream.
    """

    name = "geometric"

    def __init__(self, params: GeometricParams | None = None) -> None:
        self.params = params or GeometricParams()

    def detect(self, frame: CameraFrame, prompts: Sequence[str] = ()) -> list[Detection]:
        """Return the objects standing on support planes in one frame, in the world frame.

        Args:
            frame: RGB-D frame with its camera pose and the robot's capsules.
            prompts: Ignored.

        Returns:
            Detections, largest first; none for an empty or all-invalid depth image or a frame
            without a support plane.

        Raises:
            ValueError: if the colour and depth images differ in size, or disagree with the
                intrinsics.
        """
        p = self.params
        rgb, depth = _checked_images(frame)
        if depth.size == 0:
            return []
        intrinsics = frame.intrinsics
        camera_points, pixel = depth_to_points(depth, intrinsics, p.stride, return_index=True)
        near = np.flatnonzero(camera_points[:, 2] <= p.max_range)
        camera_points, pixel = camera_points.take(near, axis=0), pixel.take(near)
        if len(camera_points) < p.min_points:
            return []
        points = _to_world(camera_points, frame.world_from_camera)
        planes = find_support_planes(points, p)
        if not planes:
            return []
        heights = np.stack([plane.height(points) for plane in planes])
        on_plane = np.abs(heights) <= p.plane_threshold
        lowest = int(np.argmin([plane.z_at(0.0, 0.0) for plane in planes]))
        # A raised plane's height band also crosses the upright faces of objects on a lower one (a
        # box on the floor seen beyond a crate whose top is the raised plane): away from the plane's
        # own extent, those points are the object's. At its extent they stay the plane's (the edge of
        # a table top). On the lowest plane the band only meets objects at their feet.
        for i in range(len(planes)):
            if i != lowest:
                band = np.flatnonzero(on_plane[i])
                steep = band[_steep(points, pixel, band, intrinsics.width, intrinsics.height, p.stride,
                                    4.0 * p.voxel)]
                level = np.setdiff1d(band, steep, assume_unique=True)
                on_plane[i, steep[~_covered(_cover_cells(points[level]), points[steep, :2])]] = False
        keep = ~np.any(on_plane, axis=0) & (heights[lowest] > 0.0)
        # Where each raised plane (a table top) lies, to tell what stands under it; nothing is under
        # the lowest.
        covers = [None if i == lowest else _cover_cells(points[on_plane[i]]) for i in range(len(planes))]
        candidates = np.flatnonzero(keep)
        if frame.robot_capsules:
            robot = inside_capsules(points[candidates], frame.robot_capsules, p.self_filter_margin)
            candidates = candidates[~robot]
        if len(candidates) < p.min_points:
            return []
        labels, count = voxel_clusters(points[candidates], p.voxel)
        labels, count = _join_image_neighbours(
            labels, count, points[candidates], camera_points[candidates, 2], pixel[candidates], intrinsics,
            p.stride, 2.0 * p.voxel, p.grazing_factor)
        sizes = np.bincount(labels, minlength=count)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate(([0], np.cumsum(sizes)))
        interior = _interior_pixels(pixel[candidates], labels, intrinsics.width, intrinsics.height, p.stride)
        detections = []
        for label in np.flatnonzero(sizes >= p.min_points):
            members = order[starts[label]:starts[label + 1]]
            for part, rest_z in _split_resting(points[candidates[members]], pixel[candidates[members]], rgb, p):
                part_members = members[part]
                part_points = points[candidates[part_members]]
                if rest_z is None and _support_of(part_points, planes, p) is None and _near_any(
                        part_points, frame.grasp_points, p.held_radius):
                    # Held: the box is what is seen, not stretched down to a support.
                    rest_z = float(part_points[:, 2].min())
                detection = self._describe(
                    part_points, camera_points[candidates[part_members], 2],
                    pixel[candidates[part_members]], interior[part_members], planes, covers, rgb,
                    intrinsics.width, intrinsics.height, rest_z)
                if detection is not None:
                    detections.append(detection)
        detections.sort(key=lambda d: -float(np.prod(d.size)))
        return detections

    def _describe(self, points: NDArray[np.float32], ranges: NDArray[np.float32], pixel: NDArray[np.intp],
                  interior: NDArray[np.bool_], planes: list[SupportPlane], covers: list[NDArray[np.int64] | None],
                  rgb: NDArray[np.uint8], width: int, height: int, rest_z: float | None = None) -> Detection | None:
        """Return the detection of one cluster, or None when it is not an object seen whole.

        `rest_z` is the height of the object's bottom when it rests on another object, not a plane.
        """
        p = self.params
        support = _support_of(points, planes, p) if rest_z is None else None
        if support is None and rest_z is None:
            return None
        mean_xy = points[:, :2].mean(axis=0, dtype=np.float64)
        top = float(points[:, 2].max())
        for plane, cover in zip(planes, covers):
            if cover is not None and plane.z_at(*mean_xy) > top and _covered(cover, mean_xy[None])[0]:
                return None
        u, v = pixel % width, pixel // width
        margin = max(p.border_margin_px, p.stride)
        if (u.min() < margin or v.min() < margin or u.max() >= width - margin or v.max() >= height - margin
                or ranges.max() > p.max_range - 2 * p.voxel):
            return None
        support_z = support.z_at(*mean_xy) if rest_z is None else rest_z
        centre, size, yaw = box_from_points(points, support_z)
        if (size.max() < p.min_size or size[1] < p.min_thickness or size[0] > p.max_footprint
                or size[2] > p.max_height):
            return None
        shape, centre, size, yaw = _classify_shape(points, centre, size, yaw, p)
        ranking = rank_colors(rgb.reshape(-1, 3)[pixel[interior] if interior.sum() >= 5 else pixel])
        color = ranking[0][0]
        sized = size_class(size)
        x0, y0 = int(u.min()), int(v.min())
        x1, y1 = min(int(u.max()) + p.stride, width), min(int(v.max()) + p.stride, height)
        mask = None
        if p.masks:
            mask = np.zeros((height, width), dtype=bool)
            for dv in range(p.stride):
                for du in range(p.stride):
                    mask.reshape(-1)[np.minimum(v + dv, height - 1) * width + np.minimum(u + du, width - 1)] = True
        # Evidence saturates with the number of points; an unclear colour lowers the score a little.
        score = (1.0 - math.exp(-len(points) / (4.0 * p.min_points))) * (0.8 + 0.2 * color_confidence(ranking))
        return Detection(
            label=f"{sized} {color} {SHAPE_NOUNS[shape]}", category=shape, attributes=(color, sized),
            score=float(score), bbox=(x0, y0, x1 - x0, y1 - y0), position=centre, size=size, yaw=float(yaw),
            color=color, mask=mask)


def _split_resting(points: NDArray[np.floating], pixel: NDArray[np.intp], rgb: NDArray[np.uint8],
                   p: GeometricParams) -> list[tuple[NDArray[np.intp], float | None]]:
    """Split off what rests in or on a cluster: the contents of a container, a block stacked on another.

    Touching bodies fall into one cluster. A split needs a colour change, so that a one-colour object
    is never cut in two, except for the contents of a container, told by its floor near the bottom.

    - Container-sized clusters (shorter side at least `split_container_side`): inside the footprint,
      away from the rim where the walls are, the lowest well-populated height band is the floor;
      inside points clearly above it belong to contents, one object per voxel cluster.
    - Smaller clusters: horizontal slices are named by colour; a change from one colour below to
      another above marks the top face of a support with something on it.

    Returns:
        (member indices, resting height or None) per part: the cluster itself with None when
        nothing rests on it, else the remainder (None) and each resting object with the height of
        what it rests on.
    """
    whole = [(np.arange(len(points)), None)]
    if len(points) < 3 * p.min_points:
        return whole
    xy = points[:, :2].astype(np.float64)
    short_side = float(min(cv2.minAreaRect(xy.astype(np.float32))[1]))
    if short_side >= p.split_container_side:
        return _split_contents(points, pixel, rgb, p, short_side) or whole
    return _split_layers(points, pixel, rgb, p) or whole


def _near_any(points: NDArray[np.floating], centres: Sequence[np.ndarray], radius: float) -> bool:
    """Return whether any point lies within `radius` of any of the centres."""
    return any(float(np.min(np.linalg.norm(points - np.asarray(c, dtype=points.dtype), axis=1))) <= radius
               for c in centres)


def _dominant_color(rgb: NDArray[np.uint8], pixel: NDArray[np.intp]) -> str:
    return rank_colors(rgb.reshape(-1, 3)[pixel])[0][0]


def _distinct_colors(a: str, b: str) -> bool:
    """Return whether two colour names tell two objects apart; achromatic names differ by shading alone."""
    return a != b and not (a in _ACHROMATIC and b in _ACHROMATIC)


def _split_contents(points: NDArray[np.floating], pixel: NDArray[np.intp], rgb: NDArray[np.uint8],
                    p: GeometricParams, short_side: float) -> list[tuple[NDArray[np.intp], float | None]] | None:
    """Split the contents from a container-sized cluster (see `_split_resting`); None: nothing in it."""
    xy = points[:, :2].astype(np.float64)
    cells = np.floor((xy - xy.min(axis=0)) / p.split_cell).astype(np.int32) + 1
    footprint = np.zeros((int(cells[:, 1].max()) + 2, int(cells[:, 0].max()) + 2), dtype=np.uint8)
    cv2.fillConvexPoly(footprint, cv2.convexHull(cells.reshape(-1, 1, 2)), 1)
    depth_inside = cv2.distanceTransform(footprint, cv2.DIST_L2, 3)[cells[:, 1], cells[:, 0]] * p.split_cell
    inside = depth_inside >= min(p.split_inset_ratio * short_side, p.split_max_inset)
    if inside.sum() < 2 * p.min_points:
        return None
    z = points[:, 2]
    band = 2.0 * p.plane_threshold
    counts, edges = np.histogram(z[inside], bins=np.arange(z[inside].min(), z[inside].max() + band, band))
    populated = np.flatnonzero(counts >= max(p.min_points / 2, p.split_floor_fraction * inside.sum()))
    if len(populated) == 0:
        return None
    in_band = inside & (z >= edges[populated[0]]) & (z < edges[populated[0] + 1])
    floor_top = float(np.median(z[in_band])) + p.plane_threshold
    resting = inside & (z > floor_top + p.split_clearance)
    floor = inside & (z <= floor_top)
    if resting.sum() < p.min_points or floor.sum() < p.min_points:
        return None
    # A floor near the cluster's bottom is a container's: what stands on it is contents whatever its
    # colour. A floor higher up (the top of a large block, or a dome's flank) needs a colour change.
    low_floor = floor_top - float(z.min()) <= p.split_floor_height
    if not low_floor and not _distinct_colors(_dominant_color(rgb, pixel[resting]), _dominant_color(rgb, pixel[floor])):
        return None
    # The contents' lower parts stand below the clearance: above the floor and over their footprint.
    over = np.zeros_like(footprint)
    cv2.fillConvexPoly(over, cv2.convexHull(cells[resting].reshape(-1, 1, 2)), 1)
    resting |= (z > floor_top) & (cv2.dilate(over, np.ones((3, 3), np.uint8))[cells[:, 1], cells[:, 0]] > 0)
    rest_z = float(np.percentile(z[floor], 90))
    upper = np.flatnonzero(resting)
    labels, count = voxel_clusters(points[upper], p.voxel)
    pieces = [upper[labels == label] for label in range(count)]
    # A thin strip along the rim is the inner face of a wall, not something standing inside.
    pieces = [piece for piece in pieces if len(piece) >= p.min_points and _compact(points[piece], p)]
    if not pieces:
        return None
    inside_objects = np.concatenate(pieces)
    remainder = np.setdiff1d(np.arange(len(points)), inside_objects)
    return [(remainder, None)] + [(piece, rest_z) for piece in pieces]


def _compact(points: NDArray[np.floating], p: GeometricParams) -> bool:
    """Return whether points have an object's footprint: wide enough, not a strip, filling its rectangle.

    Inner faces of a container's walls seen near a corner make L-shaped pieces whose rectangle they
    barely fill; an object seen from above fills most of its own.
    """
    (_, _), (a, b), _ = cv2.minAreaRect(points[:, :2].astype(np.float32))
    short, long_ = min(a, b), max(a, b)
    if short < p.split_min_width or long_ > p.split_max_elongation * short:
        return False
    cells = np.unique(np.floor(points[:, :2] / p.split_cell).astype(np.int64), axis=0)
    return len(cells) * p.split_cell ** 2 >= p.split_min_fill * a * b


def _split_layers(points: NDArray[np.floating], pixel: NDArray[np.intp], rgb: NDArray[np.uint8],
                  p: GeometricParams) -> list[tuple[NDArray[np.intp], float | None]] | None:
    """Split a stack of two differently coloured objects at the height where the colour changes."""
    z = points[:, 2]
    bottom = float(z.min())
    if float(z.max()) - bottom < 2 * p.split_min_layer:
        return None
    index = np.floor((z - bottom) / p.split_slice).astype(np.int64)
    slices = [(k, _dominant_color(rgb, pixel[index == k])) for k in range(int(index.max()) + 1)
              if (index == k).sum() >= p.min_points / 2]
    names = [name for _, name in slices]
    best = None
    for cut in range(1, len(slices)):
        below, above = names[:cut], names[cut:]
        lower, upper = max(set(below), key=below.count), max(set(above), key=above.count)
        agreement = (below.count(lower) + above.count(upper)) / len(names)
        height_below, height_above = slices[cut][0] * p.split_slice, (index.max() + 1 - slices[cut][0]) * p.split_slice
        if (_distinct_colors(lower, upper) and agreement >= p.split_layer_agreement and min(height_below, height_above)
                >= p.split_min_layer and (best is None or agreement > best[0])):
            best = (agreement, slices[cut][0])
    if best is None:
        return None
    rest_z = bottom + best[1] * p.split_slice
    above = index >= best[1]
    return [(np.flatnonzero(~above), None), (np.flatnonzero(above), rest_z)]


def _checked_images(frame: CameraFrame) -> tuple[NDArray[np.uint8], NDArray[np.floating]]:
    """Return the frame's colour and depth arrays after checking that their sizes agree."""
    rgb = np.asarray(frame.rgb)
    depth = np.asarray(frame.depth)
    if depth.size == 0:
        return rgb, depth
    if depth.ndim != 2:
        raise ValueError(f"depth must be (height, width), got shape {depth.shape}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[:2] != depth.shape:
        raise ValueError(f"rgb shape {rgb.shape} does not match depth shape {depth.shape}: expected "
                         f"{depth.shape + (3,)}")
    intrinsics = frame.intrinsics
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"image size {depth.shape[1]}x{depth.shape[0]} does not match the camera's "
                         f"{intrinsics.width}x{intrinsics.height}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8, got {rgb.dtype}")
    return rgb, depth


def _to_world(points: NDArray[np.float32], world_from_camera: Transform) -> NDArray[np.float32]:
    """Map (N, 3) float32 points into the world frame, one output column at a time.

    numpy's (N, 3) @ (3, 3) product takes 23 ms for 75k float32 points here; three matrix-vector
    products take 0.15 ms.
    """
    matrix = world_from_camera.as_matrix().astype(np.float32)
    world = np.empty_like(points)
    for axis in range(3):
        world[:, axis] = points @ matrix[axis, :3] + matrix[axis, 3]
    return world


def find_support_planes(points: NDArray[np.floating], params: GeometricParams = GeometricParams()
                        ) -> list[SupportPlane]:
    """Find the near-horizontal planes that objects may stand on, most supported first.

    Heights of the points are voted into a histogram; each peak, largest first, proposes a plane:
    RANSAC among the points near the peak's height (hypotheses tilted more than
    ``max_plane_tilt_deg`` are discarded), refined by least squares on its inliers. A plane is
    kept when it holds enough points spread widely enough; peaks near a kept plane are skipped.

    Args:
        points: (N, 3) world-frame points, z up.
        params: Thresholds (see GeometricParams).

    Returns:
        Up to ``max_planes`` planes.
    """
    p = params
    z = points[:, 2]
    if len(z) == 0:
        return []
    low = float(z.min())
    bins = ((z - low) / p.plane_bin).astype(np.int64)
    counts = np.bincount(bins).astype(np.int64)
    # A plane that lies across a bin edge, or tilts a little, spreads over neighbouring bins.
    window = counts.copy()
    window[1:] += counts[:-1]
    window[:-1] += counts[1:]
    min_count = p.min_plane_fraction * len(z)
    rng = np.random.default_rng(p.seed)
    planes: list[SupportPlane] = []
    for _ in range(2 * p.max_planes + 2):
        peak = int(np.argmax(window))
        if window[peak] < min_count or len(planes) == p.max_planes:
            break
        peak_z = low + (peak + 0.5) * p.plane_bin
        plane = _fit_plane(points, np.flatnonzero(np.abs(z - peak_z) <= p.plane_band), p, rng)
        if plane is None:
            window[max(peak - 1, 0):peak + 2] = 0
            continue
        planes.append(plane)
        plane_z = plane.z_at(*points[:, :2].mean(axis=0))
        first = max(int((plane_z - p.min_plane_separation - low) / p.plane_bin), 0)
        last = int((plane_z + p.min_plane_separation - low) / p.plane_bin) + 1
        window[first:last + 1] = 0
    return planes


def _fit_plane(points: NDArray[np.floating], band: NDArray[np.intp], p: GeometricParams,
               rng: np.random.Generator) -> SupportPlane | None:
    """Return the plane RANSAC finds among the `band` points, or None if it is too small or steep.

    Hypotheses are scored, and the winner refined, on a random sample of the band: a thousand points
    pin a plane down as well as the tens of thousands a table holds, at a fraction of the cost.
    """
    if len(band) < 3:
        return None
    sample = points[band[rng.integers(0, len(band), min(p.ransac_samples, len(band)))]].astype(np.float64)
    triples = sample[rng.integers(0, len(sample), (p.ransac_hypotheses, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    valid = lengths > 1e-12
    normals = normals[valid] / lengths[valid, np.newaxis]
    normals *= np.sign(normals[:, 2:3] + 1e-12)
    anchors = triples[valid, 0]
    level_enough = normals[:, 2] >= math.cos(math.radians(p.max_plane_tilt_deg))
    normals, anchors = normals[level_enough], anchors[level_enough]
    # The level plane through the sample's median height is always a candidate, so that a sample
    # without a good triple still yields its plane.
    normals = np.vstack([normals, [0.0, 0.0, 1.0]])
    offsets = np.concatenate([-np.einsum("ij,ij->i", normals[:-1], anchors), [-float(np.median(sample[:, 2]))]])
    scores = (np.abs(sample @ normals.T + offsets) <= p.plane_threshold).sum(axis=0)
    best = int(np.argmax(scores))
    normal, offset = normals[best], float(offsets[best])
    fit = sample[np.abs(sample @ normal + offset) <= p.plane_threshold]
    if len(fit) >= 3:
        # Least squares z = a x + b y + c on the inliers removes RANSAC's jitter.
        design = np.column_stack([fit[:, 0], fit[:, 1], np.ones(len(fit))])
        (a, b, c), *_ = np.linalg.lstsq(design, fit[:, 2], rcond=None)
        refined = np.array([-a, -b, 1.0]) / math.sqrt(a * a + b * b + 1.0)
        if refined[2] >= math.cos(math.radians(p.max_plane_tilt_deg)):
            normal, offset = refined, -c * refined[2]
            fit = sample[np.abs(sample @ normal + offset) <= p.plane_threshold]
    if len(fit) < 3:
        return None
    inliers = int(np.count_nonzero(np.abs(points @ normal.astype(points.dtype) + offset) <= p.plane_threshold))
    spread = np.percentile(fit[:, :2], 95, axis=0) - np.percentile(fit[:, :2], 5, axis=0)
    if inliers < p.min_plane_fraction * len(points) or spread.min() < p.min_plane_extent:
        return None
    return SupportPlane(normal=normal, offset=offset, inliers=inliers)


def voxel_clusters(points: NDArray[np.floating], voxel: float) -> tuple[NDArray[np.intp], int]:
    """Group points whose voxels touch (26-neighbourhood) into clusters.

    Args:
        points: (N, 3) points, N >= 1.
        voxel: Voxel edge (m).

    Returns:
        (N,) cluster label of each point in 0..count-1, and count.
    """
    cells = np.floor(points / voxel).astype(np.int64)
    # Shifting the cells to start at 1 and sizing the grid with a spare layer on each side makes the
    # mixed-radix key of every neighbour unique, so a key lookup finds exactly the touching voxels.
    cells -= cells.min(axis=0) - 1
    dims = cells.max(axis=0) + 2
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    occupied, voxel_of_point = np.unique(keys, return_inverse=True)
    rows, cols = [], []
    for dx, dy, dz in _HALF_NEIGHBOURHOOD:
        wanted = occupied + (dx * dims[1] + dy) * dims[2] + dz
        at = np.minimum(np.searchsorted(occupied, wanted), len(occupied) - 1)
        hit = np.flatnonzero(occupied[at] == wanted)
        rows.append(hit)
        cols.append(at[hit])
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows_all), dtype=np.int8), (rows_all, cols_all)),
                       shape=(len(occupied), len(occupied)))
    count, voxel_labels = connected_components(graph, directed=False)
    return voxel_labels[voxel_of_point.reshape(-1)], int(count)


def _join_image_neighbours(labels: NDArray[np.intp], count: int, points: NDArray[np.floating],
                           ranges: NDArray[np.floating], pixel: NDArray[np.intp], intrinsics: PinholeIntrinsics,
                           stride: int, min_link: float, grazing_factor: float) -> tuple[NDArray[np.intp], int]:
    """Join clusters that hold neighbouring pixels of one surface seen at a grazing angle.

    Samples of a surface seen nearly edge-on lie far apart (their spacing grows as one over the sine
    of the viewing angle), so touching voxels can miss the link between a cube's front face and its
    top. Pixels next to each other on the sampled grid are linked when their 3D distance is within
    `grazing_factor` times the sample spacing of a surface facing the camera (range * stride / f),
    or within `min_link`: a surface seen at down to asin(1 / grazing_factor) from edge-on stays
    whole, and a gap wider than that between two objects keeps them apart.
    """
    width = intrinsics.width
    grid_h, grid_w = -(-intrinsics.height // stride), -(-width // stride)
    grid = np.full((grid_h + 1, grid_w + 1), -1, dtype=np.int64)  # a spare row and column: no bounds checks
    row, col = pixel // width // stride, (pixel % width) // stride
    grid[row, col] = np.arange(len(pixel))
    spacing = ranges * (stride / intrinsics.fx)
    reach_sq = np.maximum(grazing_factor * spacing, min_link) ** 2
    pairs = []
    for dr, dc in ((0, 1), (1, 0)):
        other = grid[row + dr, col + dc]
        mine = np.flatnonzero(other >= 0)
        other = other[mine]
        apart = labels[mine] != labels[other]
        mine, other = mine[apart], other[apart]
        gap = points[mine] - points[other]
        close = np.einsum("ij,ij->i", gap, gap) <= reach_sq[mine]
        pairs.append((labels[mine[close]], labels[other[close]]))
    first = np.concatenate([a for a, _ in pairs])
    if len(first) == 0:
        return labels, count
    second = np.concatenate([b for _, b in pairs])
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(count, count))
    joined, cluster_of = connected_components(graph, directed=False)
    return cluster_of[labels], int(joined)


def _sample_grid(pixel: NDArray[np.intp], width: int, height: int, stride: int, fill: int
                 ) -> tuple[NDArray[np.int64], NDArray[np.intp], NDArray[np.intp]]:
    """Return a grid of the sampled pixels filled with `fill`, and each pixel's (row, column) in it.

    A spare ring of cells lets the border samples look at neighbours without bounds checks.
    """
    grid = np.full((-(-height // stride) + 2, -(-width // stride) + 2), fill, dtype=np.int64)
    return grid, pixel // width // stride + 1, (pixel % width) // stride + 1


def _interior_pixels(pixel: NDArray[np.intp], labels: NDArray[np.intp], width: int, height: int,
                     stride: int) -> NDArray[np.bool_]:
    """Return which points' pixels have all four sampled neighbours in the same cluster.

    Silhouette pixels blend the object's colour with the background's; colour naming skips them.
    """
    grid, row, col = _sample_grid(pixel, width, height, stride, 0)
    own = labels + 1
    grid[row, col] = own
    return ((grid[row - 1, col] == own) & (grid[row + 1, col] == own)
            & (grid[row, col - 1] == own) & (grid[row, col + 1] == own))


def _steep(points: NDArray[np.floating], pixel: NDArray[np.intp], members: NDArray[np.intp], width: int,
           height: int, stride: int, reach: float) -> NDArray[np.bool_]:
    """Return which of the `members` points lie on a steep surface, such as an object's upright face.

    A point is on one when it has a sampled neighbour in its image column (the sample above or
    below) within `reach` in 3D, and every such neighbour is further above or below it than beside
    it. Along a horizontal surface the samples of a column step away from the camera, even at a
    grazing angle; down an upright face they step down.
    """
    grid, rows, cols = _sample_grid(pixel, width, height, stride, -1)
    grid[rows, cols] = np.arange(len(pixel))
    row, col = rows[members], cols[members]
    steep = np.ones(len(members), dtype=bool)
    seen = np.zeros(len(members), dtype=bool)
    for step in (-1, 1):
        other = grid[row + step, col]
        has = np.flatnonzero(other >= 0)
        delta = points[other[has]] - points[members[has]]
        beside = np.hypot(delta[:, 0], delta[:, 1])
        rise = np.abs(delta[:, 2])
        near = beside ** 2 + rise ** 2 <= reach ** 2
        seen[has[near]] = True
        steep[has[near & (rise <= beside)]] = False
    return steep & seen


def _cover_cells(points: NDArray[np.floating]) -> NDArray[np.int64]:
    """Return the sorted keys of the horizontal grid cells that a plane's inlier points fall in."""
    cells = np.floor(points[:, :2] / _COVER_CELL).astype(np.int64) + _COVER_OFFSET
    return np.unique(cells[:, 0] * _COVER_RADIX + cells[:, 1])


def _covered(cover: NDArray[np.int64], xy: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Return, for each (N, 2) horizontal position, whether a plane's cells include its cell or a neighbour."""
    if len(cover) == 0:
        return np.zeros(len(xy), dtype=bool)
    cells = np.floor(np.asarray(xy, dtype=np.float64) / _COVER_CELL).astype(np.int64) + _COVER_OFFSET
    covered = np.zeros(len(xy), dtype=bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            keys = (cells[:, 0] + dx) * _COVER_RADIX + cells[:, 1] + dy
            at = np.minimum(np.searchsorted(cover, keys), len(cover) - 1)
            covered |= cover[at] == keys
    return covered


def _support_of(points: NDArray[np.floating], planes: list[SupportPlane], p: GeometricParams) -> SupportPlane | None:
    """Return the plane a cluster rests on: the nearest one below its lowest point, within reach."""
    best, best_gap = None, math.inf
    for plane in planes:
        gap = float(plane.height(points).min())
        if 0.0 <= gap <= p.max_support_gap + p.plane_threshold and gap < best_gap:
            best, best_gap = plane, gap
    return best


def _classify_shape(points: NDArray[np.floating], centre: np.ndarray, size: np.ndarray, yaw: float,
                    p: GeometricParams) -> tuple[str, np.ndarray, np.ndarray, float]:
    """Return the coarse shape of a cluster and its box, refined for the shape.

    The tests, in order: low and wide is a "bowl", a "tray" or "flat" (see `_classify_flat`);
    points on a sphere of the object's own size make a "sphere"; an outline (the sides seen from
    above, projected on the ground) on a circle makes a "cylinder", and one on the edges of a
    rectangle a "cube"; anything else is "irregular". The outline is the points below the top face,
    or the footprint's hull corners when the camera sees only the top; it works from any side and
    from a grazing view, where a footprint's area does not (the near faces of a cube seen corner-on
    project to an L, half its rectangle).

    A fitted model also places the object better than the box of what the camera sees: spheres and
    cylinders take their fitted centre (the camera sees only the near side), cubes the rectangle
    their outline lies on (the principal axes of a square, which the box uses, are arbitrary).
    """
    local = points.astype(np.float64) - centre
    if size[2] < p.flat_ratio * size[1]:
        return _classify_flat(local[:, :2], size, p), centre, size, yaw
    sphere = _fit_sphere(local)
    if sphere is not None:
        sphere_centre, radius, residual = sphere
        diameter = 2.0 * radius
        if (residual <= p.sphere_residual * radius
                and abs(diameter - size[2]) <= p.sphere_size_tolerance * size[2]
                and abs(diameter - size[0]) <= p.sphere_size_tolerance * size[0]):
            position = centre + [sphere_centre[0], sphere_centre[1], 0.0]
            return "sphere", position, np.array([diameter, diameter, size[2]]), yaw
    xy = local[:, :2]
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    outline = xy[local[:, 2] < local[:, 2].max() - p.top_slab]
    if len(outline) < _MIN_OUTLINE_POINTS:
        outline = hull
    if len(outline) < 3:
        return "irregular", centre, size, yaw
    circle = _fit_sphere(outline)
    if circle is not None:
        circle_centre, radius, residual = circle
        ratio = 2.0 * radius / size[0]
        low, high = p.circle_diameter_range
        if residual <= p.cylinder_residual * radius and low <= ratio <= high and _bulge(outline) >= _MIN_ARC_BULGE:
            if ratio > _TRUSTED_CIRCLE_RATIO:
                return "cylinder", centre, size, yaw  # a short arc: its centre is less sure than the box's
            position = centre + [circle_centre[0], circle_centre[1], 0.0]
            return "cylinder", position, np.array([2.0 * radius, 2.0 * radius, size[2]]), yaw
    on_edges, rect_centre, rect_size, rect_yaw = _best_rectangle(xy, outline, hull, p)
    if on_edges >= p.cube_edge_fraction:
        return "cube", centre + [rect_centre[0], rect_centre[1], 0.0], np.array([*rect_size, size[2]]), rect_yaw
    return "irregular", centre, size, yaw


def _classify_flat(xy: NDArray[np.float64], size: np.ndarray, p: GeometricParams) -> str:
    """Return the shape of a low wide cluster from its footprint: "bowl", "tray" or "flat".

    The outline is the footprint's convex hull, sampled along its edges: a container's walls, seen
    from above, make the hull whichever side the camera sees, while the points below its rim
    include its floor, which lies on no outline. A round hull is a "bowl", a rectangular one a
    "tray" (by the cylinder and cube tests' thresholds); a hull that is neither, such as one cut
    short by a grazing view, leaves the object "flat".
    """
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return "flat"
    outline = _sample_polygon(hull, _HULL_SAMPLE_SPACING)
    circle = _fit_sphere(outline)
    if circle is not None:
        _, radius, residual = circle
        low, high = p.circle_diameter_range
        if residual <= p.cylinder_residual * radius and low <= 2.0 * radius / size[0] <= high:
            return "bowl"
    if _best_rectangle(xy, outline, hull, p)[0] >= p.cube_edge_fraction:
        return "tray"
    return "flat"


def _sample_polygon(vertices: NDArray[np.float64], spacing: float) -> NDArray[np.float64]:
    """Return points along the edges of a closed polygon, at most `spacing` apart, its vertices included."""
    ends = np.roll(vertices, -1, axis=0)
    counts = np.maximum(np.ceil(np.linalg.norm(ends - vertices, axis=1) / spacing).astype(np.intp), 1)
    edge = np.repeat(np.arange(len(vertices)), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    t = (np.arange(len(edge)) - starts[edge]) / counts[edge]
    return vertices[edge] + t[:, np.newaxis] * (ends[edge] - vertices[edge])


def _best_rectangle(xy: NDArray[np.float64], outline: NDArray[np.float64], hull: NDArray[np.float64],
                    p: GeometricParams) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Return the rectangle, aligned with a hull edge, whose edges hold most of the outline.

    A box's visible faces lie along edges of its footprint's hull, so trying each hull edge's
    direction finds the box's yaw whichever faces are seen.

    Returns:
        Fraction of outline points within tolerance of the rectangle's edges, its centre (2,) and
        size (long side first, 2,), and its yaw (direction of the long side) in (-pi/2, pi/2].
    """
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.linalg.norm(edges, axis=1)
    directions = edges[lengths > 1e-6] / lengths[lengths > 1e-6, np.newaxis]
    if len(directions) == 0:
        return 0.0, np.zeros(2), np.zeros(2), 0.0
    normals = directions @ np.array([[0.0, 1.0], [-1.0, 0.0]])  # each direction turned a quarter left
    along, across = xy @ directions.T, xy @ normals.T  # (points, directions)
    lo_a, hi_a, lo_c, hi_c = along.min(axis=0), along.max(axis=0), across.min(axis=0), across.max(axis=0)
    o_along, o_across = outline @ directions.T, outline @ normals.T
    to_edge = np.minimum(np.minimum(o_along - lo_a, hi_a - o_along), np.minimum(o_across - lo_c, hi_c - o_across))
    tolerance = np.maximum(p.edge_tolerance, p.edge_tolerance_ratio * np.minimum(hi_a - lo_a, hi_c - lo_c))
    fraction = (to_edge <= tolerance).mean(axis=0)
    area = (hi_a - lo_a) * (hi_c - lo_c)
    best = int(np.lexsort((area, -fraction))[0])  # most outline on the edges, then the tightest
    u, n = directions[best], normals[best]
    mid_a, mid_c = (lo_a[best] + hi_a[best]) / 2, (lo_c[best] + hi_c[best]) / 2
    centre = mid_a * u + mid_c * n
    sides = np.array([hi_a[best] - lo_a[best], hi_c[best] - lo_c[best]])
    long_axis = u if sides[0] >= sides[1] else n
    rect_yaw = math.remainder(math.atan2(long_axis[1], long_axis[0]), math.pi)
    if rect_yaw <= -math.pi / 2:
        rect_yaw += math.pi
    return float(fraction[best]), centre, np.sort(sides)[::-1], rect_yaw


def _bulge(xy: NDArray[np.float64]) -> float:
    """Return how far 2D points spread across their principal axis, as a fraction of their length."""
    local = xy - xy.mean(axis=0)
    _, _, axes = np.linalg.svd(local, full_matrices=False)
    along, across = local @ axes[0], local @ axes[1]
    length = float(np.ptp(along))
    return float(np.ptp(across)) / length if length > 0.0 else 0.0


def _fit_sphere(points: NDArray[np.float64]) -> tuple[np.ndarray, float, float] | None:
    """Return the least-squares sphere (circle, for 2D points): centre, radius and RMS distance from it."""
    dims = points.shape[1]
    if len(points) <= dims:
        return None
    mean = points.mean(axis=0)
    local = points - mean
    # |p|^2 = 2 c . p + (r^2 - |c|^2) is linear in c and the constant.
    design = np.column_stack([2.0 * local, np.ones(len(local))])
    solution, *_ = np.linalg.lstsq(design, np.einsum("ij,ij->i", local, local), rcond=None)
    centre = solution[:dims]
    radius_sq = solution[dims] + centre @ centre
    if radius_sq <= 0.0:
        return None
    radius = math.sqrt(radius_sq)
    residual = float(np.sqrt(np.mean((np.linalg.norm(local - centre, axis=1) - radius) ** 2)))
    return centre + mean, radius, residual
