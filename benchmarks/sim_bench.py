#!/usr/bin/env python3
"""Measure the simulator: physics rate, camera frame rates, lockstep real-time factor, image latency.

Prints a readable table and then, as its last line, one JSON object whose keys carry their units
(ARCHITECTURE.md, "Figures that tools can read"). Run it with the venv's python and with
PYTHONPATH/LD_LIBRARY_PATH pointing into ``install/`` (``make bench`` does both):

    .venv/bin/python benchmarks/sim_bench.py [--quick]

``--quick`` shortens every measurement for a smoke test (about 30 s). The script starts a copy of
itself with ``--child-publisher`` to measure the cross-process image hop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_CHILD_FLAG = "--child-publisher"

# Before rclpy loads: a private DDS domain and localhost-only discovery, so runs never cross-talk.
# The cross-process child inherits its parent's domain through the environment.
if _CHILD_FLAG not in sys.argv:
    os.environ["ROS_DOMAIN_ID"] = str(150 + os.getpid() % 80)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from modular_robot.core.robot_model import PANDA_HOME
from modular_robot.ros import qos
from modular_robot.ros.conversions import ns_to_stamp, numpy_to_image, stamp_to_ns
from modular_robot.scenarios.scenario import Scenario, load_scenario
from modular_robot.sim import camera as camera_module
from modular_robot.sim.bridge_node import SimBridgeNode
from modular_robot.sim.world import SimWorld
from report import Report, print_report, stdout_for_results

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "sim" / "scenarios" / "spine_tabletop.yaml"
RENDERERS = ("egl", "tiny")
RESOLUTIONS = ((640, 480), (320, 240))
HOP_TOPIC = "bench/image"
HOP_WARMUP = 5

TARGET_PHYSICS_RTF = 30.0
TARGET_LOCKSTEP_RTF = 1.5
TARGET_HOP_P50_MS = 2.0


@dataclass(frozen=True)
class Budget:
    """How long each measurement runs; `--quick` shrinks all of them."""

    physics_s: float
    camera_s: float
    camera_min_frames: int
    lockstep_warmup_sim_s: float
    lockstep_s: float
    hop_samples: int
    hop_rate_hz: float


FULL = Budget(physics_s=8.0, camera_s=3.0, camera_min_frames=10, lockstep_warmup_sim_s=0.5, lockstep_s=10.0,
              hop_samples=200, hop_rate_hz=20.0)
QUICK = Budget(physics_s=1.0, camera_s=0.4, camera_min_frames=3, lockstep_warmup_sim_s=0.1, lockstep_s=1.5,
               hop_samples=20, hop_rate_hz=20.0)


# --- physics ---------------------------------------------------------------------------------------

def bench_physics(report: Report, scenario: Scenario, budget: Budget) -> None:
    """Step the tabletop world, the Panda holding its home pose under its controllers."""
    world = SimWorld(scenario, renderer="tiny")
    try:
        for _ in range(240):
            world.step()
        chunk = 600
        rates = []
        steps_before = world.steps
        start = time.perf_counter()
        while time.perf_counter() - start < budget.physics_s or len(rates) < 3:
            t0 = time.perf_counter()
            for _ in range(chunk):
                world.step()
            rates.append(chunk / (time.perf_counter() - t0))
        sim_s = (world.steps - steps_before) * world.time_step
        drift = float(np.max(np.abs(world.robots[0].arm_positions() - np.array(PANDA_HOME))))
        median = float(np.median(rates))
        report.section(f"physics ({SCENARIO.name}, dt {world.time_step * 1e3:.3f} ms, {len(world.bodies)} objects)")
        report.add("physics_steps_per_s", median, "physics steps/s (median of 0.6k-step chunks)", "steps/s", digits=0)
        report.add("physics_steps_per_s_best", float(np.max(rates)), "physics steps/s (best chunk)", "steps/s",
                   digits=0)
        report.add("physics_rtf", median * world.time_step, "physics-only real-time factor", "x",
                   (f">= {TARGET_PHYSICS_RTF:g}x", lambda v: v >= TARGET_PHYSICS_RTF))
        report.add("physics_sim_s", sim_s, "sim time measured", "s")
        report.add("physics_arm_drift_rad", drift, "arm max |q - home| after the run", "rad", digits=4)
    finally:
        world.close()


# --- camera ----------------------------------------------------------------------------------------

class _TimedPybullet:
    """Stands in for the pybullet module inside camera.py and times getCameraImage."""

    def __init__(self, module) -> None:
        self._module = module
        self.seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self._module, name)

    def getCameraImage(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._module.getCameraImage(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def _measure_render(world: SimWorld, budget: Budget) -> tuple[float, float, float, float]:
    """Return fps, ms in getCameraImage, ms in the rest of world.render(0), and % of pixels with depth."""
    timed = _TimedPybullet(camera_module.pybullet)
    camera_module.pybullet = timed
    try:
        for _ in range(3):  # the first EGL frames compile shaders and upload meshes
            world.render(0)
        timed.seconds = 0.0
        frames = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < budget.camera_s or frames < budget.camera_min_frames:
            _, depth = world.render(0)
            frames += 1
        elapsed = time.perf_counter() - t0
    finally:
        camera_module.pybullet = timed._module
    gl_ms = timed.seconds / frames * 1e3
    return frames / elapsed, gl_ms, elapsed / frames * 1e3 - gl_ms, 100.0 * float(np.isfinite(depth).mean())


def bench_camera(report: Report, scenario: Scenario, budget: Budget) -> bool:
    """Render through world.render(0) (pose lookup, GL call, RGB and metric-depth conversion).

    Returns:
        Whether the EGL renderer loaded.
    """
    egl_ok = True
    coverage: dict[str, float] = {}
    report.section("camera, world.render(0): fps and ms/frame split into getCameraImage + the rest")
    for renderer in RENDERERS:
        for width, height in RESOLUTIONS:
            tag = f"{width}x{height}_{renderer}"
            fps = gl_ms = rest_ms = depth_pct = None
            world = None
            if egl_ok or renderer != "egl":
                try:
                    world = SimWorld(scenario, width=width, height=height, renderer=renderer)
                except RuntimeError as error:
                    egl_ok = False
                    report.notes.append(f"{renderer} renderer unavailable, its figures are null: {error}")
            if world is not None:
                try:
                    fps, gl_ms, rest_ms, depth_pct = _measure_render(world, budget)
                finally:
                    world.close()
                coverage[tag] = depth_pct
            report.add(f"camera_fps_{tag}", fps, f"camera {width}x{height} {renderer}", "fps")
            report.add(f"camera_ms_{tag}_getcameraimage", gl_ms, "  of which getCameraImage", "ms/frame", digits=2)
            report.add(f"camera_ms_{tag}_rest", rest_ms, "  of which pose + rgb/depth conversion", "ms/frame",
                       digits=2)
            # A renderer that draws nothing is fast: the share of pixels with depth shows it drew the scene.
            report.add(f"camera_valid_depth_pct_{tag}", depth_pct, "  pixels with valid depth", "%")
    for width, height in RESOLUTIONS:
        egl, tiny = coverage.get(f"{width}x{height}_egl"), coverage.get(f"{width}x{height}_tiny")
        if egl is not None and tiny is not None and abs(egl - tiny) > 5.0:
            report.notes.append(f"{width}x{height}: EGL and TinyRenderer disagree on which pixels have depth "
                                f"({egl:.1f}% vs {tiny:.1f}%): one misses bodies or marks background differently")
    report.figures["egl_available"] = egl_ok
    return egl_ok


# --- lockstep through the bridge node ----------------------------------------------------------------

class _SectionTimer:
    """Wraps a bound method on an instance and accumulates the wall time spent in it."""

    def __init__(self, obj, name: str) -> None:
        self.seconds = 0.0
        self.calls = 0
        inner = getattr(obj, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        setattr(obj, name, timed)

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def bench_lockstep(report: Report, renderer: str, budget: Budget, physics_rtf: float | None) -> float | None:
    """Run the real SimBridgeNode in lockstep on an executor with an image subscriber; return its RTF."""
    context = rclpy.Context()
    rclpy.init(context=context)
    sim = sink = executor = None
    try:
        overrides = [
            Parameter("scenario", value=str(SCENARIO)), Parameter("renderer", value=renderer),
            Parameter("mode", value="lockstep"), Parameter("camera_width", value=640),
            Parameter("camera_height", value=480), Parameter("camera_rate_hz", value=15.0),
            Parameter("joint_states_rate_hz", value=100.0), Parameter("tf_rate_hz", value=50.0),
            Parameter("clock_rate_hz", value=100.0), Parameter("autostart", value=True),
        ]
        try:
            sim = SimBridgeNode(context=context, parameter_overrides=overrides)
        except RuntimeError as error:
            report.notes.append(f"lockstep with renderer {renderer} unavailable: {error}")
            report.add(f"lockstep_rtf_camera15hz_640x480_{renderer}", None, f"lockstep RTF, renderer {renderer}", "x",
                       (f">= {TARGET_LOCKSTEP_RTF:g}x", lambda v: v >= TARGET_LOCKSTEP_RTF))
            return None
        world = sim.world
        step_timer = _SectionTimer(world, "step")
        render_timer = _SectionTimer(world, "render")
        sink = rclpy.create_node("bench_sink", context=context)
        received = [0]

        def on_image(msg: Image) -> None:
            received[0] += 1

        sink.create_subscription(Image, "camera/color/image_raw", on_image, qos.SENSOR_DATA)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(sim)
        executor.add_node(sink)
        deadline = time.perf_counter() + 30.0
        while world.sim_time < budget.lockstep_warmup_sim_s and time.perf_counter() < deadline:
            executor.spin_once(timeout_sec=0.1)
        step_timer.reset()
        render_timer.reset()
        received[0] = 0
        sim0, t0 = world.sim_time, time.perf_counter()
        while time.perf_counter() - t0 < budget.lockstep_s:
            executor.spin_once(timeout_sec=0.1)
        wall = time.perf_counter() - t0
        sim_s = world.sim_time - sim0
        rtf = sim_s / wall
        key = f"lockstep_rtf_camera15hz_640x480_{renderer}"
        label = f"lockstep RTF, renderer {renderer}" + (f" (picked {world.renderer})" if renderer == "auto" else "")
        report.add(key, rtf, label, "x", (f">= {TARGET_LOCKSTEP_RTF:g}x", lambda v: v >= TARGET_LOCKSTEP_RTF),
                   digits=2)
        if renderer == "auto":
            report.add("lockstep_renderer_auto", world.renderer, "  renderer picked by 'auto'")
        if physics_rtf:
            report.add(f"lockstep_to_physics_rtf_ratio_{renderer}", rtf / physics_rtf,
                       "  lockstep RTF / physics-only RTF", "", digits=3)
        shares = {"physics": step_timer.seconds, "render": render_timer.seconds}
        shares["other"] = wall - sum(shares.values())
        for part, seconds in shares.items():
            report.add(f"lockstep_wall_pct_{part}_{renderer}", 100.0 * seconds / wall,
                       f"  wall time in {part}" + (" (publish, convert, executor)" if part == "other" else ""), "%")
        frames = render_timer.calls
        report.add(f"lockstep_images_received_{renderer}", received[0],
                   f"  color images received / rendered ({frames})", "msgs")
        return rtf
    finally:
        if executor is not None:
            executor.shutdown()
        if sink is not None:
            sink.destroy_node()
        if sim is not None:
            sim.destroy_node()
        rclpy.shutdown(context=context)


# --- image hop latency -----------------------------------------------------------------------------

def _test_image() -> Image:
    rng = np.random.default_rng(0)
    return numpy_to_image(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), "rgb8", frame_id="camera")


class _Talker:
    """Publishes the test image, numbered in frame_id, stamped with the system clock just before publish."""

    def __init__(self, publisher) -> None:
        self.publisher = publisher
        self.image = _test_image()
        self.sent = 0

    def tick(self) -> None:
        self.image.header.frame_id = str(self.sent)
        self.image.header.stamp = ns_to_stamp(time.time_ns())
        self.publisher.publish(self.image)
        self.sent += 1


class _Hops:
    """Collects stamp-to-callback latencies of numbered images, skipping the first HOP_WARMUP."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.last_seq = -1

    def on_image(self, msg: Image) -> None:
        latency_ms = (time.time_ns() - stamp_to_ns(msg.header.stamp)) / 1e6
        seq = int(msg.header.frame_id)
        if seq >= HOP_WARMUP:
            self.latencies_ms.append(latency_ms)
            self.last_seq = max(self.last_seq, seq)

    @property
    def lost(self) -> int:
        """Images numbered up to the last one received that never arrived (after the warm-up)."""
        return max(0, self.last_seq + 1 - HOP_WARMUP - len(self.latencies_ms))


def _percentiles(latencies_ms: list[float]) -> tuple[float | None, float | None]:
    if not latencies_ms:
        return None, None
    p50, p95 = np.percentile(latencies_ms, [50, 95])
    return float(p50), float(p95)


def _hop_qos(reliable: bool):
    return qos.RELIABLE if reliable else qos.SENSOR_DATA


def _make_executor(kind: str, context):
    if kind == "events":
        from rclpy.experimental import EventsExecutor
        return EventsExecutor(context=context)
    return SingleThreadedExecutor(context=context)


def _hop_inprocess(kind: str, budget: Budget) -> _Hops:
    """Publish a 640x480 rgb8 image from a timer in one node to a subscriber node on the same executor."""
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []
    executor = None
    try:
        talker = rclpy.create_node("bench_talker", context=context)
        nodes.append(talker)
        listener = rclpy.create_node("bench_listener", context=context)
        nodes.append(listener)
        hops = _Hops()
        listener.create_subscription(Image, HOP_TOPIC, hops.on_image, qos.SENSOR_DATA)
        publisher = talker.create_publisher(Image, HOP_TOPIC, qos.SENSOR_DATA)
        talker.create_timer(1.0 / budget.hop_rate_hz, _Talker(publisher).tick)
        executor = _make_executor(kind, context)
        executor.add_node(talker)
        executor.add_node(listener)
        deadline = time.perf_counter() + 2.0 * (budget.hop_samples + HOP_WARMUP) / budget.hop_rate_hz + 5.0
        while len(hops.latencies_ms) < budget.hop_samples and time.perf_counter() < deadline:
            executor.spin_once(timeout_sec=0.1)
        return hops
    finally:
        if executor is not None:
            executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)


def _hop_crossprocess(budget: Budget, reliable: bool) -> _Hops:
    """Receive images from a child process (this script with --child-publisher) over Fast DDS."""
    context = rclpy.Context()
    rclpy.init(context=context)
    listener = executor = child = None
    try:
        listener = rclpy.create_node("bench_listener", context=context)
        hops = _Hops()
        listener.create_subscription(Image, HOP_TOPIC, hops.on_image, _hop_qos(reliable))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(listener)
        wanted = budget.hop_samples + HOP_WARMUP
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), _CHILD_FLAG, "--samples", str(wanted),
             "--rate", str(budget.hop_rate_hz), *(["--reliable"] if reliable else [])], stdin=subprocess.DEVNULL)
        deadline = time.perf_counter() + wanted / budget.hop_rate_hz + 40.0
        while child.poll() is None and time.perf_counter() < deadline:
            executor.spin_once(timeout_sec=0.05)
        drain = time.perf_counter() + 0.3
        while time.perf_counter() < drain:
            executor.spin_once(timeout_sec=0.05)
        if child.poll() != 0:
            raise RuntimeError(f"the publisher child process ended with {child.poll()} (its log is on stderr)")
        return hops
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        if executor is not None:
            executor.shutdown()
        if listener is not None:
            listener.destroy_node()
        rclpy.shutdown(context=context)


def child_publisher(samples: int, rate_hz: float, reliable: bool) -> int:
    """Publish `samples` images at `rate_hz` once a subscriber has matched (the cross-process side)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_remote_talker", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        publisher = node.create_publisher(Image, HOP_TOPIC, _hop_qos(reliable))
        deadline = time.perf_counter() + 30.0
        while publisher.get_subscription_count() == 0 and time.perf_counter() < deadline:
            executor.spin_once(timeout_sec=0.05)
        if publisher.get_subscription_count() == 0:
            node.get_logger().error("no subscriber matched within 30 s")
            return 1
        # Matching is seen by each side on its own; give the subscriber side a moment too.
        settle = time.perf_counter() + 0.3
        while time.perf_counter() < settle:
            executor.spin_once(timeout_sec=0.05)
        talker = _Talker(publisher)
        timer = node.create_timer(1.0 / rate_hz, talker.tick)
        while talker.sent < samples:
            executor.spin_once(timeout_sec=0.1)
        timer.cancel()
        linger = time.perf_counter() + 0.2
        while time.perf_counter() < linger:
            executor.spin_once(timeout_sec=0.05)
        return 0
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def bench_hops(report: Report, budget: Budget) -> None:
    """Measure the publish-to-callback latency of a 640x480 rgb8 image, stamped with the system clock."""
    report.section(f"image hop, 640x480 rgb8, sensor-data QoS unless named, {budget.hop_rate_hz:g} Hz, "
                   "system-clock stamp -> callback")
    target = (f"<= {TARGET_HOP_P50_MS:g} ms", lambda v: v <= TARGET_HOP_P50_MS)
    cases = (("inprocess", "in-process, SingleThreadedExecutor", lambda: _hop_inprocess("single", budget)),
             ("inprocess_events", "in-process, EventsExecutor", lambda: _hop_inprocess("events", budget)),
             ("crossprocess", "cross-process (child process)", lambda: _hop_crossprocess(budget, False)),
             ("crossprocess_reliable", "cross-process, reliable QoS", lambda: _hop_crossprocess(budget, True)))
    for suffix, label, measure in cases:
        try:
            hops = measure()
        except (ImportError, RuntimeError, OSError, ValueError) as error:
            # An executor or transport that does not work here is a figure (null) with a note, not a crash.
            report.notes.append(f"image hop {suffix} failed: {type(error).__name__}: {error}")
            hops = _Hops()
        p50, p95 = _percentiles(hops.latencies_ms)
        report.add(f"image_hop_ms_p50_{suffix}", p50, f"{label} p50", "ms",
                   target if suffix.startswith("inprocess") else None, digits=2)
        report.add(f"image_hop_ms_p95_{suffix}", p95, f"{label} p95", "ms", digits=2)
        report.add(f"image_hop_samples_{suffix}", len(hops.latencies_ms), "  samples", "msgs")
        report.add(f"image_hop_lost_{suffix}", hops.lost, "  lost in between", "msgs")


# --- output ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorten every measurement (smoke test, ~30 s)")
    parser.add_argument(_CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=FULL.hop_samples, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=FULL.hop_rate_hz, help=argparse.SUPPRESS)
    parser.add_argument("--reliable", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_publisher:
        return child_publisher(args.samples, args.rate, args.reliable)

    out = stdout_for_results()
    budget = QUICK if args.quick else FULL
    started = time.perf_counter()
    report = Report()
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "none (built-in transports)")
    report.notes.append(f"Fast DDS profile: {profile}")
    scenario = load_scenario(SCENARIO)

    bench_physics(report, scenario, budget)
    physics_rtf = report.figures["physics_rtf"]
    bench_camera(report, scenario, budget)
    report.section("lockstep: SimBridgeNode, 640x480 camera at 15 Hz sim, joint_states 100 Hz, tf 50 Hz, "
                   "clock 100 Hz, image subscriber, SingleThreadedExecutor")
    for renderer in ("auto", *RENDERERS):
        bench_lockstep(report, renderer, budget, physics_rtf)
    bench_hops(report, budget)

    report.section("run")
    report.add("pass_physics_rtf_ge_30x", bool(physics_rtf >= TARGET_PHYSICS_RTF), "target physics >= 30x met")
    lockstep = report.figures.get("lockstep_rtf_camera15hz_640x480_auto")
    report.add("pass_lockstep_rtf_ge_1_5x", lockstep is not None and lockstep >= TARGET_LOCKSTEP_RTF,
               "target lockstep (auto) >= 1.5x met")
    hop = report.figures.get("image_hop_ms_p50_inprocess")
    report.add("pass_image_hop_p50_le_2ms", hop is not None and hop <= TARGET_HOP_P50_MS,
               "target in-process hop p50 <= 2 ms met")
    report.add("quick", args.quick, "quick mode")
    report.add("load_avg_1min", round(os.getloadavg()[0], 2), "load average (1 min) at the end", digits=2)
    report.add("cpu_count", os.cpu_count(), "CPUs")
    report.add("wall_s_total", round(time.perf_counter() - started, 1), "benchmark wall time", "s")
    report.figures["notes"] = report.notes
    print_report(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
