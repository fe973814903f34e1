#!/usr/bin/env python3
"""Measure the geometric detector on generated tabletop scenes: objects found, colours, shapes, latency.

For each seed, ``scenarios.scene_gen.tabletop_scene`` builds a scene of 3-12 objects (cubes, cylinders,
spheres, ducks, sometimes a tray or bowl; twelve colours; 3-8 cm) for ``panda_tabletop``. The sim
builds and settles it, renders the fixed 640x480 camera once, and the detector runs on that frame
with the robot self-filter (capsules placed from the simulated link poses, as the perception node
places them from /tf). Detections are matched to the ground-truth bounding boxes one-to-one by
centre distance (core.perception.evaluation), and the script prints a readable table and, as its
last line, one JSON object whose keys carry their units (ARCHITECTURE.md, "Figures that tools can
read"). Run it with the venv's python and PYTHONPATH/LD_LIBRARY_PATH pointing into ``install/``:

    .venv/bin/python benchmarks/perception_eval.py [--quick] [--renderer auto|egl|tiny] [--scenes N]

``--quick`` runs 5 scenes (a smoke test, about 20 s). detect() latency is timed on one core: BLAS
threads are limited to one before numpy loads, and the calling thread is pinned to one CPU while
detect() runs.
"""

from __future__ import annotations

import os

# Before numpy loads: the latency budget is for one core.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from modular_robot.core.perception.geometric import GeometricDetector
from modular_robot.core.perception.self_filter import PANDA_GRASP_FRAME, panda_capsules
from modular_robot.core.perception.types import CameraFrame, Detection
from modular_robot.core.transforms import Transform
from modular_robot.scenarios.perception_eval import ObjectOutcome, Tally, TruthObject
from modular_robot.scenarios.scene_gen import tabletop_scene
from modular_robot.sim.world import SimWorld
from report import Report, print_report, stdout_for_results

WIDTH, HEIGHT = 640, 480
FULL_SCENES = 50
QUICK_SCENES = 5
TIMING_REPEATS = 3
SHOWN_ERRORS = 20

TARGET_FOUND_PCT = 95.0
TARGET_COLOR_PCT = 98.0
TARGET_SHAPE_PCT = 90.0
TARGET_FALSE_PCT = 2.0


def capture(world: SimWorld) -> CameraFrame:
    """Render the robot's camera and package it as the perception node would, capsules included."""
    rgb, depth = world.render(0)
    robot = world.robots[0]
    position, orientation = robot.camera_optical_pose()
    links = {name: Transform(np.array(p), np.array(q)) for name, (p, q) in robot.link_poses().items()}
    return CameraFrame(rgb=rgb, depth=depth, intrinsics=world.cameras[0].intrinsics,
                       world_from_camera=Transform(np.array(position), np.array(orientation)),
                       stamp_ns=world.sim_time_ns, robot_capsules=panda_capsules(links),
                       grasp_points=(links[PANDA_GRASP_FRAME].translation,))


def timed_detect(detector: GeometricDetector, frame: CameraFrame, repeats: int) -> tuple[list[Detection], float]:
    """Run detect() `repeats` times on one CPU; return the detections and the median time (ms)."""
    pinned = hasattr(os, "sched_setaffinity")
    if pinned:
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(allowed)})
    try:
        times = []
        detections: list[Detection] = []
        for _ in range(repeats):
            start = time.perf_counter()
            detections = detector.detect(frame)
            times.append((time.perf_counter() - start) * 1e3)
    finally:
        if pinned:
            os.sched_setaffinity(0, allowed)
    return detections, float(np.median(times))


def evaluate(seeds: range, renderer: str, repeats: int) -> tuple[Tally, list[float], str]:
    """Detect objects in one frame of each seeded scene; return the counts, latencies (ms) and renderer used."""
    detector = GeometricDetector()
    tally = Tally()
    latencies = []
    used = renderer
    for index, seed in enumerate(seeds):
        scenario = tabletop_scene(seed)
        world = SimWorld(scenario, width=WIDTH, height=HEIGHT, renderer=renderer)
        try:
            used = world.renderer
            frame = capture(world)
            if index == 0:
                detector.detect(frame)  # warm the per-camera caches, as a running node has them
            detections, latency = timed_detect(detector, frame, repeats)
            truths = [TruthObject.from_state(state) for state in world.ground_truth().objects.values()]
        finally:
            world.close()
        tally.add(truths, detections, scenario.name)
        latencies.append(latency)
    return tally, latencies, used


def _by_type(outcomes: list[ObjectOutcome]) -> dict[str, dict[str, float]]:
    """Return per object type: count, found %, colour % and shape % (of the matched)."""
    groups: dict[str, list[ObjectOutcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.type].append(outcome)
    table = {}
    for kind, items in sorted(groups.items()):
        matched = [o for o in items if o.matched]
        shaped = [o for o in matched if o.shape_correct is not None]
        table[kind] = {
            "n": len(items),
            "found": 100.0 * sum(o.found for o in items) / len(items),
            "color": 100.0 * sum(o.color_correct for o in matched) / len(matched) if matched else 0.0,
            "shape": 100.0 * sum(bool(o.shape_correct) for o in shaped) / len(shaped) if shaped else 0.0,
        }
    return table


def build_report(tally: Tally, latencies: list[float], renderer: str, seeds: range, quick: bool,
                 started: float) -> Report:
    """Turn the counts into the table rows and the JSON figures."""
    report = Report()
    figures = tally.figures()
    report.section(f"geometric detector, panda_tabletop fixed camera {WIDTH}x{HEIGHT}, renderer {renderer}, "
                   f"{len(seeds)} scenes (seeds {seeds.start}-{seeds.stop - 1})")
    report.add("scenes", len(seeds), "scenes")
    report.add("objects", tally.objects, "objects >= 3 cm")
    report.add("detections", tally.detections, "detections")
    report.add("found_within_2cm_pct", figures["found_within_2cm_pct"], "found, centre within 2 cm", "%",
               (f">= {TARGET_FOUND_PCT:g}%", lambda v: v >= TARGET_FOUND_PCT), digits=2)
    report.add("color_correct_pct", figures["color_correct_pct"], "colour named right (of matched)", "%",
               (f">= {TARGET_COLOR_PCT:g}%", lambda v: v >= TARGET_COLOR_PCT), digits=2)
    report.add("shape_correct_pct", figures["shape_correct_pct"], "shape named right (of matched)", "%",
               (f">= {TARGET_SHAPE_PCT:g}%", lambda v: v >= TARGET_SHAPE_PCT), digits=2)
    report.add("false_detections_pct", figures["false_detections_pct"], "false detections (of detections)", "%",
               (f"<= {TARGET_FALSE_PCT:g}%", lambda v: v <= TARGET_FALSE_PCT), digits=2)
    distances = [o.distance for o in tally.outcomes if o.distance is not None]
    report.add("centre_error_mm_p50", round(float(np.median(distances)) * 1e3, 1) if distances else None,
               "centre error of matched objects, p50", "mm")
    report.add("centre_error_mm_p95", round(float(np.percentile(distances, 95)) * 1e3, 1) if distances else None,
               "centre error of matched objects, p95", "mm")

    report.section("by object type: n, found within 2 cm %, colour %, shape %")
    for kind, row in _by_type(tally.outcomes).items():
        report.add(None, f"{row['n']:3d}  {row['found']:6.1f}  {row['color']:6.1f}  {row['shape']:6.1f}", kind)

    report.section(f"detect() latency, one core, median of {TIMING_REPEATS} runs per frame")
    report.add("detect_ms_p50_640x480", round(float(np.median(latencies)), 2), "p50", "ms", digits=2)
    report.add("detect_ms_p95_640x480", round(float(np.percentile(latencies, 95)), 2), "p95", "ms", digits=2)

    report.section("run")
    report.add("renderer", renderer, "renderer")
    report.add("pass_found_ge_95pct", figures["found_within_2cm_pct"] >= TARGET_FOUND_PCT, "target found met")
    report.add("pass_color_ge_98pct", figures["color_correct_pct"] >= TARGET_COLOR_PCT, "target colour met")
    report.add("pass_shape_ge_90pct", figures["shape_correct_pct"] >= TARGET_SHAPE_PCT, "target shape met")
    report.add("pass_false_le_2pct", figures["false_detections_pct"] <= TARGET_FALSE_PCT, "target false met")
    report.add("quick", quick, "quick mode")
    report.add("load_avg_1min", round(os.getloadavg()[0], 2), "load average (1 min) at the end", digits=2)
    report.add("wall_s_total", round(time.perf_counter() - started, 1), "benchmark wall time", "s")
    report.notes.extend(tally.errors[:SHOWN_ERRORS])
    if len(tally.errors) > SHOWN_ERRORS:
        report.notes.append(f"... and {len(tally.errors) - SHOWN_ERRORS} more")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SCENES} scenes (smoke test)")
    parser.add_argument("--scenes", type=int, default=None, help=f"number of scenes (default {FULL_SCENES})")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first scene")
    parser.add_argument("--renderer", choices=("auto", "egl", "tiny"), default="auto",
                        help="sim renderer; auto is EGL where its plugin loads, else TinyRenderer")
    args = parser.parse_args(argv)
    count = args.scenes if args.scenes is not None else (QUICK_SCENES if args.quick else FULL_SCENES)
    if count < 1:
        parser.error("--scenes must be at least 1")
    out = stdout_for_results()
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + count)
    tally, latencies, renderer = evaluate(seeds, args.renderer, TIMING_REPEATS)
    print_report(build_report(tally, latencies, renderer, seeds, args.quick, started), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
