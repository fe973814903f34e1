"""The shape of a cluster: a cube, cylinder, sphere, tray, bowl or flat object, from its outline and its top."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from modular_robot.core.perception.geometric_params import GeometricParams

# Spacing (m) of the points sampled along a flat object's footprint hull for its outline tests: the
# hull's corners alone lie on a circle for a rectangle too, so the tests must see its edges.
_HULL_SAMPLE_SPACING = 0.005
# Fewer side points than this (a camera straight above sees only the top) and the shape tests use
# the corners of the footprint's hull instead.
_MIN_OUTLINE_POINTS = 6
# A circle fitted to a short arc that is this much wider than the object is placed less surely
# than the object's box is.
_TRUSTED_CIRCLE_RATIO = 1.3
# A cylinder's side, seen from anywhere, is an arc that bulges off its chord (half a circle: by half
# its length). One face of a cube seen square-on is a straight line, which a circle much wider than
# the cube also fits: an outline bulging less than this fraction of its length is not an arc.
_MIN_ARC_BULGE = 0.12


def classify_shape(points: NDArray[np.floating], centre: np.ndarray, size: np.ndarray, yaw: float,
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
