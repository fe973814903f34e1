#!/usr/bin/env python3
"""Measure viewpoint merging on the Husky: an object seen from several base poses is one map instance.

For each seed, ``scenarios.scene_gen.floor_scene`` builds a ``husky_base`` scene: 2-6 small objects on
the floor and 1-4 on a table ahead. The base is put at three viewpoints: its start pose, and one
on each side, turned towards the objects from an arc of 20-40 degrees around their centroid (the
base about a metre from the start). Each side viewpoint is the candidate from which most of the
objects in the start view lie wholly in the camera's view and range. The base is placed, not
driven, and frames on the way are not processed; that does not favour merging, since confirmed
map objects never expire unseen. At each viewpoint the chassis camera (640x480, 15 Hz) gives
``--frames`` frames; the geometric detector runs on every frame (camera pose from the simulated
optical frame; no self-filter, since the chassis stays out of the view, which the segmentation
checks) and every frame's detections are fused into a ``SemanticMap`` with the node's default
settings, as the semantic map node does.

At the end each map's confirmed instances are attributed to the nearest ground-truth object
within ATTRIBUTION_M. Counted are the objects that the detector matched (within the evaluation's
5 cm gate) from at least two viewpoints: the share represented by exactly one confirmed instance
(the acceptance figure, target 95%), by two or more (duplicates), by none, and the centre error
of the one instance. To explain failures, it also prints how much the detector's boxes of one
object differ between viewpoints (centre shift, colour and shape named differently, and the
overlap of boxes whose shapes differ, which the map's shape_flip_iou gates).

The map is built without the node's MiniLM text similarity: the geometric detector's categories are
coarse shapes, whose pairwise MiniLM similarities (0.25-0.49) are all below the map's
``label_merge_similarity`` (0.6), so it never changes an association here.

    .venv/bin/python benchmarks/perception_merge_eval.py [--quick] [--scenes N] [--frames K]
"""

from __future__ import annotations

import os

# Before numpy loads, as in perception_eval.py: BLAS threads stay off the shared cores.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pybullet

from modular_robot.core.camera import PinholeIntrinsics, project
from modular_robot.core.mapping.map_config import SemanticMapConfig
from modular_robot.core.mapping.objects import MapObject, box_iou
from modular_robot.core.mapping.semantic_map import SemanticMap
from modular_robot.core.perception.geometric import GeometricDetector
from modular_robot.core.perception.types import CameraFrame, Detection
from modular_robot.core.transforms import Transform, quat_from_yaw
from modular_robot.scenarios.perception_eval import MATCH_DISTANCE_M, TruthObject, match_detections
from modular_robot.scenarios.scene_gen import floor_scene
from modular_robot.sim.world import SimWorld
from report import Report, print_report, stdout_for_results

WIDTH, HEIGHT = 640, 480
FULL_SCENES = 50
QUICK_SCENES = 5
# A 15 Hz camera gives 4 frames in about a quarter of a second at each viewpoint; the map confirms
# an object after 3 (SemanticMapConfig.min_observations).
FRAMES_PER_VIEW = 4
CAMERA_PERIOD_S = 1.0 / 15.0
# Time for the chassis to come to rest on its wheels after being placed.
SETTLE_S = 0.25
# Side viewpoints: the start camera turned about the objects' centroid by an arc, at a distance
# scaled from the start camera's; the arc is tried largest first, the distance nearest first.
VIEW_ARCS_DEG = (40.0, 30.0, 20.0)
VIEW_DISTANCE_SCALES = (1.0, 1.15, 1.3)
# An object is in view when all corners of its box project this far inside the image, within
# this range along the optical axis (the detector drops clusters at the border and beyond 3 m).
VIEW_MARGIN_PX = 15
VIEW_RANGE_M = (0.6, 2.8)
# The base keeps this clear of every object and of the table (m): the Husky is 0.99 x 0.67 m.
BASE_CLEARANCE_M = 0.65
# Map instances are attributed to the nearest object within this distance: twice the match gate,
# so that a duplicate placed badly from one viewpoint still counts against its object.
ATTRIBUTION_M = 2 * MATCH_DISTANCE_M
SHOWN_NOTES = 20
TARGET_MERGE_PCT = 95.0
# The node's map (default settings) and, fed the same detections, a map with the change this
# benchmark argues for: the geometric detector names one object's coarse shape differently from
# different sides (a sphere or cube seen from one side is "irregular" from another), and the
# boxes of those views overlap less than the default shape_flip_iou of 0.5 that lets two coarse
# shapes associate (in seeds 0-49: 37 of 43 such pairs, IoU median 0.35, min 0.10). The boxes of
# distinct objects of one colour seen in one frame never overlapped (IoU 0 over 232 pairs).
MAP_CONFIGS = {"node": SemanticMapConfig()}


@dataclass(frozen=True)
class Viewpoint:
    """A base pose to look from.

    Attributes:
        name: "start", "right" or "left".
        x: Base position (m), world frame.
        y: Base position (m), world frame.
        yaw: Base heading (rad).
        in_view: Ids of the objects wholly in the camera's view and range from here.
    """

    name: str
    x: float
    y: float
    yaw: float
    in_view: frozenset[str]


@dataclass
class SceneResult:
    """What one scene showed.

    Attributes:
        name: Scenario name.
        views: The viewpoints used, in order.
        seen_from: Names of the viewpoints from which the detector matched each object.
        boxes: The first matched detection of each object from each viewpoint.
        instances: Confirmed instances at the end, of each map of MAP_CONFIGS by name.
        truths: Ground-truth objects (the table excluded).
        robot_pixels: Pixels of the robot's own body in the first frame of each viewpoint.
    """

    name: str
    views: list[Viewpoint]
    seen_from: dict[str, set[str]]
    boxes: dict[str, dict[str, Detection]]
    instances: dict[str, list[MapObject]]
    truths: list[TruthObject]
    robot_pixels: list[int]


@dataclass
class MergeTally:
    """Counts over scenes of how objects seen from several viewpoints ended up in the map.

    Attributes:
        objects: Objects (table excluded).
        in_view_twice: Objects wholly in view of at least two viewpoints (geometry).
        seen_twice: Objects the detector matched from at least two viewpoints.
        seen_by_views: How many objects were matched from 0, 1, 2, 3 viewpoints.
        one_instance: Of seen_twice, those with exactly one confirmed instance.
        duplicated: Of seen_twice, those with two or more.
        missing: Of seen_twice, those with none.
        errors_m: Centre error of the one instance of each merged object (m).
        false_instances: Confirmed instances farther than ATTRIBUTION_M from every object.
        instances: All confirmed instances.
        shifts_m: Centre distance between the boxes of one object from two viewpoints (m).
        view_pairs: Pairs of viewpoints that both matched an object.
        color_disagreements: Of those, pairs that named its colour differently.
        shape_disagreements: Of those, pairs that named its shape differently.
        shape_flip_ious: Box overlap (the map's axis-aligned IoU) of each of those pairs.
        robot_pixels_max: Most pixels of the robot's own body seen in a frame.
        views: Viewpoints used.
        view_separations_m: Base distance of each side viewpoint from the start.
        notes: Readable notes on each object not merged, and each false instance.
    """

    objects: int = 0
    in_view_twice: int = 0
    seen_twice: int = 0
    seen_by_views: Counter = field(default_factory=Counter)
    one_instance: int = 0
    duplicated: int = 0
    missing: int = 0
    errors_m: list[float] = field(default_factory=list)
    false_instances: int = 0
    instances: int = 0
    shifts_m: list[float] = field(default_factory=list)
    view_pairs: int = 0
    color_disagreements: int = 0
    shape_disagreements: int = 0
    shape_flip_ious: list[float] = field(default_factory=list)
    robot_pixels_max: int = 0
    views: int = 0
    view_separations_m: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, scene: SceneResult, map_name: str) -> None:
        """Score one scene's map `map_name` and add its counts."""
        self.views += len(scene.views)
        start = scene.views[0]
        self.view_separations_m += [math.hypot(v.x - start.x, v.y - start.y) for v in scene.views[1:]]
        self.robot_pixels_max = max(self.robot_pixels_max, *scene.robot_pixels)
        instances = scene.instances[map_name]
        attributed = attribute(instances, scene.truths)
        self.instances += len(instances)
        for instance, owner in zip(instances, attributed, strict=True):
            if owner is None:
                self.false_instances += 1
                self.notes.append(f"{scene.name}: false instance {instance.label!r} at "
                                  f"{np.round(instance.position, 3).tolist()}")
        for index, truth in enumerate(scene.truths):
            self.objects += 1
            self.in_view_twice += sum(truth.id in v.in_view for v in scene.views) >= 2
            seen = scene.seen_from.get(truth.id, set())
            self.seen_by_views[len(seen)] += 1
            self._add_box_differences(list(scene.boxes.get(truth.id, {}).values()))
            if len(seen) < 2:
                continue
            self.seen_twice += 1
            mine = [instance for instance, owner in zip(instances, attributed, strict=True) if owner == index]
            if len(mine) == 1:
                self.one_instance += 1
                self.errors_m.append(float(np.linalg.norm(mine[0].position - truth.center)))
                continue
            if mine:
                self.duplicated += 1
            else:
                self.missing += 1
            boxes = "; ".join(f"{view}: {d.label!r} at {np.round(d.position, 3).tolist()}"
                              for view, d in scene.boxes[truth.id].items())
            found = ", ".join(f"{m.id} {m.label!r} at {np.round(m.position, 3).tolist()}" for m in mine) or "none"
            self.notes.append(f"{scene.name}: {truth.id} at {np.round(truth.center, 3).tolist()} seen from "
                              f"{sorted(seen)} has {len(mine)} instances ({found}); detections {boxes}")

    def _add_box_differences(self, boxes: list[Detection]) -> None:
        """Count how one object's boxes from the viewpoints that matched it differ, pair by pair."""
        for i, first in enumerate(boxes):
            for second in boxes[i + 1:]:
                self.view_pairs += 1
                self.shifts_m.append(float(np.linalg.norm(np.asarray(first.position) - second.position)))
                self.color_disagreements += first.color != second.color
                if first.category != second.category:
                    self.shape_disagreements += 1
                    self.shape_flip_ious.append(box_iou(first.position, first.size, first.yaw,
                                                        second.position, second.size, second.yaw))


def attribute(instances: list[MapObject], truths: list[TruthObject]) -> list[int | None]:
    """Return, for each map instance, the index of the nearest object within ATTRIBUTION_M, or None."""
    if not truths:
        return [None] * len(instances)
    centres = np.array([t.center for t in truths])
    owners: list[int | None] = []
    for instance in instances:
        distances = np.linalg.norm(centres - instance.position, axis=1)
        nearest = int(np.argmin(distances))
        owners.append(nearest if distances[nearest] <= ATTRIBUTION_M else None)
    return owners


def in_view(truths: list[TruthObject], world_from_camera: Transform, intrinsics: PinholeIntrinsics) -> frozenset[str]:
    """Return the ids of the objects whose box corners all lie in the image and range of a camera pose."""
    seen = set()
    signs = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
    camera_from_world = world_from_camera.inverse()
    for truth in truths:
        corners = camera_from_world.apply(truth.center + signs * truth.size)
        u, v = project(corners, intrinsics)
        z = corners[:, 2]
        with np.errstate(invalid="ignore"):
            inside = (np.all((z >= VIEW_RANGE_M[0]) & (z <= VIEW_RANGE_M[1]))
                      and np.all((u >= VIEW_MARGIN_PX) & (u <= intrinsics.width - 1 - VIEW_MARGIN_PX))
                      and np.all((v >= VIEW_MARGIN_PX) & (v <= intrinsics.height - 1 - VIEW_MARGIN_PX)))
        if inside:
            seen.add(truth.id)
    return frozenset(seen)


def choose_viewpoints(world: SimWorld, truths: list[TruthObject], obstacles: list[TruthObject]) -> list[Viewpoint]:
    """Return the start viewpoint and, on each side, the candidate that has most objects in view.

    Candidates turn the start camera about the objects' centroid by VIEW_ARCS_DEG, at
    VIEW_DISTANCE_SCALES times its distance, facing the centroid; a base that would come within
    BASE_CLEARANCE_M of an object or the table is left out. Ties go to the larger arc, then the
    nearer camera, so the viewpoints differ as much as the view allows.
    """
    robot = world.robots[0]
    intrinsics = world.cameras[0].intrinsics
    base = _pose(robot.base_pose())
    base_from_camera = base.inverse() * _pose(robot.camera_optical_pose())
    start_yaw = robot.ground_truth_base()[1]
    start = Viewpoint("start", float(base.translation[0]), float(base.translation[1]), start_yaw,
                      in_view(truths, base * base_from_camera, intrinsics))
    centroid = np.mean([t.center[:2] for t in truths], axis=0)
    camera_xy = (base * base_from_camera).translation[:2]
    # The camera's horizontal offset from the base centre, in the base frame.
    lever = base_from_camera.translation[:2]
    views = [start]
    # Turning counter-clockwise about the centroid, which lies ahead, moves the camera to the right.
    for name, sign in (("right", 1.0), ("left", -1.0)):
        best: Viewpoint | None = None
        for arc in VIEW_ARCS_DEG:
            for scale in VIEW_DISTANCE_SCALES:
                angle = sign * math.radians(arc)
                rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
                camera = centroid + scale * rotation @ (camera_xy - centroid)
                heading = centroid - camera
                yaw = math.atan2(heading[1], heading[0])
                c, s = math.cos(yaw), math.sin(yaw)
                xy = camera - np.array([c * lever[0] - s * lever[1], s * lever[0] + c * lever[1]])
                if any(_clearance(xy, o) < BASE_CLEARANCE_M for o in obstacles):
                    continue
                placed = Transform(np.array([xy[0], xy[1], base.translation[2]]), quat_from_yaw(yaw))
                candidate = Viewpoint(name, float(xy[0]), float(xy[1]), yaw,
                                      in_view(truths, placed * base_from_camera, intrinsics))
                if best is None or len(candidate.in_view & start.in_view) > len(best.in_view & start.in_view):
                    best = candidate
        if best is not None:
            views.append(best)
    return views


def place_base(world: SimWorld, view: Viewpoint) -> None:
    """Put the base at a viewpoint at rest and let it settle on its wheels."""
    robot = world.robots[0]
    position, _ = pybullet.getBasePositionAndOrientation(robot.base_body, physicsClientId=world.client)
    # The root link's offset from base_link is vertical only, so its horizontal position is the base's.
    pybullet.resetBasePositionAndOrientation(
        robot.base_body, [view.x, view.y, position[2]], pybullet.getQuaternionFromEuler([0.0, 0.0, view.yaw]),
        physicsClientId=world.client)
    pybullet.resetBaseVelocity(robot.base_body, [0, 0, 0], [0, 0, 0], physicsClientId=world.client)
    robot.set_twist(0.0, 0.0)
    advance(world, SETTLE_S)


def advance(world: SimWorld, seconds: float) -> None:
    """Step the simulation for `seconds`."""
    for _ in range(round(seconds / world.time_step)):
        world.step()


def capture(world: SimWorld, segmentation: bool) -> tuple[CameraFrame, int]:
    """Render the chassis camera as the perception node receives it; count the robot's own pixels if asked."""
    robot = world.robots[0]
    robot_pixels = 0
    if segmentation:
        rgb, depth, ids = world.render_with_segmentation(0)
        robot_pixels = int(np.count_nonzero(ids == robot.base_body))
    else:
        rgb, depth = world.render(0)
    frame = CameraFrame(rgb=rgb, depth=depth, intrinsics=world.cameras[0].intrinsics,
                        world_from_camera=_pose(robot.camera_optical_pose()), stamp_ns=world.sim_time_ns)
    return frame, robot_pixels


def run_scene(seed: int, renderer: str, frames_per_view: int, detector: GeometricDetector) -> tuple[SceneResult, str]:
    """Look at one floor scene from its viewpoints, fusing every frame into a fresh map; return what it showed."""
    scenario = floor_scene(seed)
    world = SimWorld(scenario, width=WIDTH, height=HEIGHT, renderer=renderer)
    try:
        states = world.ground_truth().objects.values()
        truths = [TruthObject.from_state(s) for s in states if s.type != "table"]
        obstacles = [TruthObject.from_state(s) for s in states]
        views = choose_viewpoints(world, truths, obstacles)
        maps = {name: SemanticMap(config) for name, config in MAP_CONFIGS.items()}
        seen_from: dict[str, set[str]] = {}
        boxes: dict[str, dict[str, Detection]] = {}
        robot_pixels = []
        for view in views:
            place_base(world, view)
            for index in range(frames_per_view):
                advance(world, CAMERA_PERIOD_S)
                frame, pixels = capture(world, segmentation=index == 0)
                if index == 0:
                    robot_pixels.append(pixels)
                detections = detector.detect(frame)
                for semantic_map in maps.values():
                    semantic_map.update(detections, frame)
                for match in match_detections(truths, detections):
                    object_id = truths[match.truth].id
                    seen_from.setdefault(object_id, set()).add(view.name)
                    boxes.setdefault(object_id, {}).setdefault(view.name, detections[match.detection])
        instances = {name: semantic_map.objects() for name, semantic_map in maps.items()}
        result = SceneResult(scenario.name, views, seen_from, boxes, instances, truths, robot_pixels)
        return result, world.renderer
    finally:
        world.close()


def build_report(tallies: dict[str, MergeTally], renderer: str, seeds: range, frames_per_view: int, quick: bool,
                 started: float) -> Report:
    """Turn the counts of each map of MAP_CONFIGS into the table rows and the JSON figures."""
    report = Report()
    node = tallies["node"]
    report.section(f"viewpoints, husky_base chassis camera {WIDTH}x{HEIGHT}, renderer {renderer}, "
                   f"{len(seeds)} scenes (seeds {seeds.start}-{seeds.stop - 1}), "
                   f"{frames_per_view} frames per viewpoint")
    report.add("scenes", len(seeds), "scenes")
    report.add("viewpoints", node.views, "viewpoints (start, right, left)")
    separations = node.view_separations_m
    report.add("view_separation_m_min", round(min(separations), 2) if separations else None,
               "side viewpoint's base from the start, min", "m", digits=2)
    report.add("view_separation_m_p50", round(float(np.median(separations)), 2) if separations else None,
               "side viewpoint's base from the start, p50", "m", digits=2)
    report.add("view_separation_m_max", round(max(separations), 2) if separations else None,
               "side viewpoint's base from the start, max", "m", digits=2)
    report.add("robot_pixels_in_view_max", node.robot_pixels_max, "robot's own pixels in a frame, max", "px")
    report.add("objects", node.objects, "objects (table excluded)")
    report.add("objects_in_view_twice", node.in_view_twice, "wholly in view of >= 2 viewpoints")
    for count in sorted(set(range(4)) | set(node.seen_by_views)):
        report.add(None, node.seen_by_views.get(count, 0), f"detected from {count} viewpoints", "objects")
    report.add("objects_seen_twice", node.seen_twice, "detected from >= 2 viewpoints")

    node_config = MAP_CONFIGS["node"]
    report.section(f"map as the node runs it (default settings, shape_flip_iou {node_config.shape_flip_iou:g}): "
                   "objects detected from >= 2 viewpoints")
    merged_pct = _add_map_rows(report, node, "")

    report.section("one object's detections from two viewpoints (why instances would not merge)")
    shifts = node.shifts_m
    report.add("view_pairs", node.view_pairs, "object seen from both viewpoints of a pair")
    report.add("view_centre_shift_mm_p50", round(float(np.median(shifts)) * 1e3, 1) if shifts else None,
               "box centre shift, p50", "mm")
    report.add("view_centre_shift_mm_p95", round(float(np.percentile(shifts, 95)) * 1e3, 1) if shifts else None,
               "box centre shift, p95", "mm")
    report.add("view_centre_shift_mm_max", round(max(shifts) * 1e3, 1) if shifts else None, "box centre shift, max",
               "mm")
    report.add("view_color_disagree_pct", _pct(node.color_disagreements, node.view_pairs), "colour named differently",
               "%", digits=2)
    report.add("view_shape_disagree_pct", _pct(node.shape_disagreements, node.view_pairs), "shape named differently",
               "%", digits=2)
    flips = node.shape_flip_ious
    report.add("view_shape_flip_iou_p50", round(float(np.median(flips)), 3) if flips else None,
               "box IoU of those pairs, p50", digits=3)
    report.add("view_shape_flip_iou_min", round(min(flips), 3) if flips else None, "box IoU of those pairs, min",
               digits=3)
    report.add("view_shape_flip_below_node_gate_pct",
               _pct(sum(iou < node_config.shape_flip_iou for iou in flips), len(flips)),
               f"of those, IoU under shape_flip_iou {node_config.shape_flip_iou:g}", "%", digits=2)

    report.section("run")
    report.add("renderer", renderer, "renderer")
    report.add("frames_per_viewpoint", frames_per_view, "frames per viewpoint")
    report.add("pass_merge_ge_95pct", merged_pct >= TARGET_MERGE_PCT, "target merge met (node's map)")
    report.add("quick", quick, "quick mode")
    report.add("wall_s_total", round(time.perf_counter() - started, 1), "benchmark wall time", "s")
    for name, tally in tallies.items():
        report.notes.extend(f"{name} map: {note}" for note in tally.notes[:SHOWN_NOTES])
        if len(tally.notes) > SHOWN_NOTES:
            report.notes.append(f"{name} map: ... and {len(tally.notes) - SHOWN_NOTES} more")
    return report


def _add_map_rows(report: Report, tally: MergeTally, suffix: str) -> float:
    """Add the merge figures of one map, their keys ending in `suffix`; return the merged share (%)."""
    merged_pct = _pct(tally.one_instance, tally.seen_twice)
    report.add(f"merge_one_instance_pct{suffix}", merged_pct, "exactly one map instance", "%",
               (f">= {TARGET_MERGE_PCT:g}%", lambda v: v >= TARGET_MERGE_PCT), digits=2)
    report.add(f"duplicate_instances_pct{suffix}", _pct(tally.duplicated, tally.seen_twice), "two or more", "%",
               digits=2)
    report.add(f"missing_instance_pct{suffix}", _pct(tally.missing, tally.seen_twice), "none", "%", digits=2)
    errors = tally.errors_m
    report.add(f"merged_centre_error_mm_p50{suffix}", round(float(np.median(errors)) * 1e3, 1) if errors else None,
               "centre error of the one instance, p50", "mm")
    report.add(f"merged_centre_error_mm_p95{suffix}",
               round(float(np.percentile(errors, 95)) * 1e3, 1) if errors else None,
               "centre error of the one instance, p95", "mm")
    report.add(f"merged_within_2cm_pct{suffix}", _pct(sum(e <= 0.02 for e in errors), len(errors)),
               "one instance within 2 cm", "%", digits=2)
    report.add(f"map_instances{suffix}", tally.instances, "confirmed map instances (all objects)")
    report.add(f"false_instances{suffix}", tally.false_instances,
               f"instances farther than {ATTRIBUTION_M * 100:g} cm from every object")
    return merged_pct


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _pose(pose: tuple) -> Transform:
    """Return a PyBullet (position, quaternion xyzw) pair as a Transform."""
    return Transform(np.array(pose[0]), np.array(pose[1]))


def _clearance(xy: np.ndarray, obstacle: TruthObject) -> float:
    """Return the horizontal distance from a point to an object's box (0 inside it)."""
    gap = np.maximum(np.abs(xy - obstacle.center[:2]) - obstacle.size[:2] / 2, 0.0)
    return float(np.hypot(*gap))


def main(argv: list[str] | None = None) -> int:
    """Look at the seeded scenes from their viewpoints and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SCENES} scenes (smoke test)")
    parser.add_argument("--scenes", type=int, default=None, help=f"number of scenes (default {FULL_SCENES})")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first scene")
    parser.add_argument("--frames", type=int, default=FRAMES_PER_VIEW,
                        help=f"frames per viewpoint (default {FRAMES_PER_VIEW})")
    parser.add_argument("--renderer", choices=("auto", "egl", "tiny"), default="auto",
                        help="sim renderer; auto is EGL where its plugin loads, else TinyRenderer")
    args = parser.parse_args(argv)
    count = args.scenes if args.scenes is not None else (QUICK_SCENES if args.quick else FULL_SCENES)
    if count < 1 or args.frames < 1:
        parser.error("--scenes and --frames must be at least 1")
    out = stdout_for_results()
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + count)
    detector = GeometricDetector()
    tallies = {name: MergeTally() for name in MAP_CONFIGS}
    renderer = args.renderer
    for seed in seeds:
        scene, renderer = run_scene(seed, args.renderer, args.frames, detector)
        for name, tally in tallies.items():
            tally.add(scene, name)
    print_report(build_report(tallies, renderer, seeds, args.frames, args.quick, started), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
