#!/usr/bin/env python3
"""Time perception + map update per 640x480 frame on one core, against a naive full-resolution baseline.

Frames come from generated tabletop scenes (``scenarios.scene_gen.tabletop_scene``, 8-12 objects) for
``panda_tabletop``, whose fixed camera sees the arm: while the arm sweeps over the table, the sim
renders the camera at 15 Hz and each frame is packed into sensor_msgs Image and CameraInfo
messages, as the sim bridge publishes them. All frames are rendered first; then the process is
pinned to one CPU, with every thread pool (OpenMP, BLAS, OpenCV, torch) at one thread, and each
frame goes through the node's path, timed by stage:

- ``convert``: colour and depth messages to arrays (``image_to_numpy``, ``depth_image_to_metres``),
  intrinsics from CameraInfo, and the arm's self-filter capsules placed from its link poses (the
  link poses are what the node's TF lookups return; the lookups are not timed);
- ``detect``: ``GeometricDetector.detect`` with the self-filter on;
- ``map_update``: ``SemanticMap.update`` of a map that has seen every earlier frame of the scene,
  with the MiniLM text similarity the semantic map node gives it.

Not timed: the TF lookups, and what the split into two nodes adds (the detections travel as an
ObjectObservationArray, and the semantic map node converts the depth image again).

The naive baseline runs the same path on the same frames, interleaved frame by frame so that both
see the same machine load, with the detector at full resolution (``GeometricParams(stride=1)``, the
optimised default is 2) and its own map. The script prints a readable table and, as its last
line, one JSON object whose keys carry their units (ARCHITECTURE.md, "Figures that tools can read"):

    .venv/bin/python benchmarks/perception_bench.py [--quick] [--scenes N] [--frames K]

``--quick`` times 20 frames of one scene (a smoke test).
"""

from __future__ import annotations

import os

# Before numpy, OpenCV and torch load: their thread pools size themselves from these, and the
# budget is for one core.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from modular_robot.core.mapping.semantic_map import SemanticMap
from modular_robot.core.mapping.text_embedding import TextEmbedder
from modular_robot.core.perception.geometric import GeometricDetector
from modular_robot.core.perception.geometric_params import GeometricParams
from modular_robot.core.perception.self_filter import panda_capsules
from modular_robot.core.perception.types import CameraFrame
from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_HOME
from modular_robot.core.trajectory import validate_trajectory
from modular_robot.core.transforms import Transform
from modular_robot.ros.conversions import (
    camera_info_from_intrinsics,
    depth_image_to_metres,
    image_to_numpy,
    intrinsics_from_camera_info,
    ns_to_stamp,
    numpy_to_image,
)
from modular_robot.scenarios.scene_gen import tabletop_scene
from modular_robot.sim.world import SimWorld
from report import Report, print_report, stdout_for_results

WIDTH, HEIGHT = 640, 480
CAMERA_PERIOD_S = 1.0 / 15.0
FULL_SCENES = 4
FULL_FRAMES = 25
QUICK_SCENES = 1
QUICK_FRAMES = 20
# Objects per scene, cycled over the scenes: the 8-12.
OBJECT_COUNTS = (8, 10, 12, 9, 11)
# The arm swings left and right over the table, bending forward, so the self-filter has work to do
# and frames differ; (time s, joint positions), reached from PANDA_HOME.
ARM_SWEEP = ((0.8, (0.5, 0.3, 0.0, -1.9, 0.0, 2.2, 0.785)),
             (2.0, (-0.5, 0.3, 0.0, -1.9, 0.0, 2.2, 0.785)),
             (2.8, PANDA_HOME))
NAIVE_STRIDE = 1
STAGES = ("convert", "detect", "map_update")
TARGET_MS_P50 = 50.0


@dataclass
class Messages:
    """One frame as the perception node receives it.

    Attributes:
        color: rgb8 colour image.
        depth: 32FC1 depth image (metres, NaN invalid).
        info: Camera calibration.
        world_from_camera: The optical frame's pose (what the node's TF lookup returns).
        link_poses: The arm's link poses by frame name (what the node's TF lookups return).
        stamp_ns: Acquisition time.
    """

    color: Image
    depth: Image
    info: CameraInfo
    world_from_camera: Transform
    link_poses: dict[str, Transform]
    stamp_ns: int


@dataclass
class Pipeline:
    """A detector and its map, with the time each stage took on each frame (ms)."""

    detector: GeometricDetector
    semantic_map: SemanticMap
    times_ms: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in (*STAGES, "total")})
    detections: list[int] = field(default_factory=list)

    def run(self, messages: Messages, timed: bool = True) -> None:
        """Process one frame as the nodes do; record the stage times when `timed`."""
        start = time.perf_counter()
        frame = CameraFrame(
            rgb=image_to_numpy(messages.color)[:, :, :3], depth=depth_image_to_metres(messages.depth),
            intrinsics=intrinsics_from_camera_info(messages.info), world_from_camera=messages.world_from_camera,
            stamp_ns=messages.stamp_ns, robot_capsules=panda_capsules(messages.link_poses))
        converted = time.perf_counter()
        detections = self.detector.detect(frame)
        detected = time.perf_counter()
        self.semantic_map.update(detections, frame)
        updated = time.perf_counter()
        if not timed:
            return
        spans = ((start, converted), (converted, detected), (detected, updated), (start, updated))
        for stage, (begin, end) in zip((*STAGES, "total"), spans, strict=True):
            self.times_ms[stage].append((end - begin) * 1e3)
        self.detections.append(len(detections))


def record_scene(seed: int, n_objects: int, frames: int, renderer: str) -> tuple[list[Messages], str]:
    """Render `frames` camera frames of one tabletop scene at 15 Hz while the arm sweeps; return them as messages."""
    world = SimWorld(tabletop_scene(seed, n_objects), width=WIDTH, height=HEIGHT, renderer=renderer)
    try:
        robot = world.robots[0]
        times, positions = zip(*ARM_SWEEP, strict=True)
        robot.start_trajectory(validate_trajectory(list(PANDA_ARM_JOINTS), list(times), [list(q) for q in positions],
                                                   [], robot.arm_limits), world.sim_time)
        recorded = []
        for _ in range(frames):
            for _ in range(round(CAMERA_PERIOD_S / world.time_step)):
                world.step()
            rgb, depth = world.render(0)
            stamp = world.sim_time_ns
            header = Header(stamp=ns_to_stamp(stamp), frame_id="camera_color_optical_frame")
            position, orientation = robot.camera_optical_pose()
            recorded.append(Messages(
                color=numpy_to_image(rgb, "rgb8", header=header), depth=numpy_to_image(depth, "32FC1", header=header),
                info=camera_info_from_intrinsics(world.cameras[0].intrinsics, header),
                world_from_camera=Transform(np.array(position), np.array(orientation)),
                link_poses={name: Transform(np.array(p), np.array(q)) for name, (p, q) in robot.link_poses().items()},
                stamp_ns=stamp))
        return recorded, world.renderer
    finally:
        world.close()


def pin_to_one_cpu() -> int:
    """Restrict this process to one of its allowed CPUs and OpenCV to one thread; return the CPU."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    return cpu


def build_report(optimised: Pipeline, naive: Pipeline, object_counts: list[int], cpu: int, renderer: str,
                 quick: bool, started: float) -> Report:
    """Turn the stage times into the table rows and the JSON figures."""
    report = Report()

    def ms(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    total_p50 = ms(optimised.times_ms["total"], 50)
    naive_p50 = ms(naive.times_ms["total"], 50)
    frame_count = len(optimised.times_ms["total"])
    report.section(f"perception + map update, {WIDTH}x{HEIGHT}, one core (CPU {cpu}), {frame_count} frames of "
                   f"{len(object_counts)} tabletop scenes ({min(object_counts)}-{max(object_counts)} objects), "
                   "arm in view, self-filter on")
    report.add("frames", frame_count, "frames timed")
    report.add("scenes", len(object_counts), "scenes")
    report.add("detections_per_frame_p50", float(np.median(optimised.detections)), "detections per frame, p50")
    for stage in STAGES:
        report.add(f"{stage}_ms_p50_640x480", ms(optimised.times_ms[stage], 50), f"{stage}, p50", "ms", digits=2)
        report.add(f"{stage}_ms_p95_640x480", ms(optimised.times_ms[stage], 95), f"{stage}, p95", "ms", digits=2)
    report.add("perception_map_ms_p50_640x480", total_p50, "perception + map update, p50", "ms",
               (f"<= {TARGET_MS_P50:g} ms", lambda v: v <= TARGET_MS_P50), digits=2)
    report.add("perception_map_ms_p95_640x480", ms(optimised.times_ms["total"], 95), "perception + map update, p95",
               "ms", digits=2)

    report.section(f"naive baseline: the same path, detector at full resolution (stride {NAIVE_STRIDE} instead of "
                   f"{optimised.detector.params.stride})")
    report.add("naive_detections_per_frame_p50", float(np.median(naive.detections)), "detections per frame, p50")
    for stage in STAGES:
        report.add(f"naive_{stage}_ms_p50_640x480", ms(naive.times_ms[stage], 50), f"{stage}, p50", "ms", digits=2)
    report.add("naive_ms_p50_640x480", naive_p50, "perception + map update, p50", "ms", digits=2)
    report.add("naive_ms_p95_640x480", ms(naive.times_ms["total"], 95), "perception + map update, p95", "ms", digits=2)
    report.add("speedup_vs_naive", round(naive_p50 / total_p50, 2), "naive p50 / optimised p50", "x", digits=2)

    report.section("run")
    report.add("cpu", cpu, "pinned CPU")
    report.add("threads", 1, "threads per pool (OpenMP, BLAS, OpenCV, torch)")
    report.add("renderer", renderer, "renderer")
    report.add("pass_le_50ms_p50", total_p50 <= TARGET_MS_P50, "target met")
    report.add("quick", quick, "quick mode")
    report.add("load_avg_1min", round(os.getloadavg()[0], 2), "load average (1 min) at the end", digits=2)
    report.add("wall_s_total", round(time.perf_counter() - started, 1), "benchmark wall time", "s")
    return report


def main(argv: list[str] | None = None) -> int:
    """Record the frames, time both pipelines on one core and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FRAMES} frames of {QUICK_SCENES} scene")
    parser.add_argument("--scenes", type=int, default=None, help=f"number of scenes (default {FULL_SCENES})")
    parser.add_argument("--frames", type=int, default=None, help=f"frames per scene (default {FULL_FRAMES})")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first scene")
    parser.add_argument("--renderer", choices=("auto", "egl", "tiny"), default="auto",
                        help="sim renderer; auto is EGL where its plugin loads, else TinyRenderer")
    args = parser.parse_args(argv)
    n_scenes = args.scenes if args.scenes is not None else (QUICK_SCENES if args.quick else FULL_SCENES)
    n_frames = args.frames if args.frames is not None else (QUICK_FRAMES if args.quick else FULL_FRAMES)
    if n_scenes < 1 or n_frames < 2:
        parser.error("--scenes must be at least 1 and --frames at least 2")
    out = stdout_for_results()
    started = time.perf_counter()
    recordings = []
    renderer = args.renderer
    object_counts = [OBJECT_COUNTS[i % len(OBJECT_COUNTS)] for i in range(n_scenes)]
    for index, n_objects in enumerate(object_counts):
        messages, renderer = record_scene(args.first_seed + index, n_objects, n_frames, args.renderer)
        recordings.append(messages)
    # Loaded before timing, as the node loads it at start-up; it sets torch to one thread.
    embedder = TextEmbedder(torch_threads=1)
    embedder.load()
    cpu = pin_to_one_cpu()
    optimised = Pipeline(GeometricDetector(), SemanticMap(text_similarity=embedder.similarity))
    naive = Pipeline(GeometricDetector(GeometricParams(stride=NAIVE_STRIDE)),
                     SemanticMap(text_similarity=embedder.similarity))
    for pipeline in (optimised, naive):
        # Warms per-camera caches (pixel rays), as a running node has them; the map starts afresh below.
        pipeline.run(recordings[0][0], timed=False)
    for messages in recordings:
        optimised.semantic_map.clear()
        naive.semantic_map.clear()
        for frame in messages:
            optimised.run(frame)
            naive.run(frame)
    print_report(build_report(optimised, naive, object_counts, cpu, renderer, args.quick, started), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
