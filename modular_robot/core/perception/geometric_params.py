"""The geometric detector's parameters, with the reasons for their defaults."""

from __future__ import annotations

from dataclasses import dataclass


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
