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

import cv2
import numpy as np
from numpy.typing import NDArray

from modular_robot.core.camera import depth_to_points
from modular_robot.core.perception.clusters import interior_pixels, join_image_neighbours, steep_members, voxel_clusters
from modular_robot.core.perception.color_naming import color_confidence, rank_colors
from modular_robot.core.perception.geometric_params import GeometricParams
from modular_robot.core.perception.geometry import box_from_points, size_class
from modular_robot.core.perception.planes import SupportPlane, cover_cells, covered, find_support_planes, support_of
from modular_robot.core.perception.self_filter import inside_capsules
from modular_robot.core.perception.shapes import classify_shape
from modular_robot.core.perception.types import CameraFrame, Detection
from modular_robot.core.transforms import Transform

# The noun of each shape in a label: "small red cube", "large gray tray".
SHAPE_NOUNS = {"cube": "cube", "cylinder": "cylinder", "sphere": "sphere", "tray": "tray", "bowl": "bowl",
               "flat": "flat object", "irregular": "object"}
# Colour names a shadow or a highlight can turn into one another.
_ACHROMATIC = frozenset({"white", "gray", "black"})


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
                steep = band[steep_members(points, pixel, band, intrinsics.width, intrinsics.height, p.stride,
                                    4.0 * p.voxel)]
                level = np.setdiff1d(band, steep, assume_unique=True)
                on_plane[i, steep[~covered(cover_cells(points[level]), points[steep, :2])]] = False
        keep = ~np.any(on_plane, axis=0) & (heights[lowest] > 0.0)
        # Where each raised plane (a table top) lies, to tell what stands under it; nothing is under
        # the lowest.
        covers = [None if i == lowest else cover_cells(points[on_plane[i]]) for i in range(len(planes))]
        candidates = np.flatnonzero(keep)
        if frame.robot_capsules:
            robot = inside_capsules(points[candidates], frame.robot_capsules, p.self_filter_margin)
            candidates = candidates[~robot]
        if len(candidates) < p.min_points:
            return []
        labels, count = voxel_clusters(points[candidates], p.voxel)
        labels, count = join_image_neighbours(
            labels, count, points[candidates], camera_points[candidates, 2], pixel[candidates], intrinsics,
            p.stride, 2.0 * p.voxel, p.grazing_factor)
        sizes = np.bincount(labels, minlength=count)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate(([0], np.cumsum(sizes)))
        interior = interior_pixels(pixel[candidates], labels, intrinsics.width, intrinsics.height, p.stride)
        detections = []
        for label in np.flatnonzero(sizes >= p.min_points):
            members = order[starts[label]:starts[label + 1]]
            for part, rest_z in _split_resting(points[candidates[members]], pixel[candidates[members]], rgb, p):
                part_members = members[part]
                part_points = points[candidates[part_members]]
                if rest_z is None and support_of(part_points, planes, p) is None and _near_any(
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
        support = support_of(points, planes, p) if rest_z is None else None
        if support is None and rest_z is None:
            return None
        mean_xy = points[:, :2].mean(axis=0, dtype=np.float64)
        top = float(points[:, 2].max())
        for plane, cover in zip(planes, covers):
            if cover is not None and plane.z_at(*mean_xy) > top and covered(cover, mean_xy[None])[0]:
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
        shape, centre, size, yaw = classify_shape(points, centre, size, yaw, p)
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


