"""Smoke test of benchmarks/sim_bench.py: it runs and its last line is the JSON figures tools read.

Timing targets are not asserted here: they depend on the machine and its load.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "sim_bench.py"

POSITIVE_KEYS = (
    "physics_steps_per_s",
    "physics_rtf",
    "camera_fps_640x480_tiny",
    "camera_fps_320x240_tiny",
    "lockstep_rtf_camera15hz_640x480_auto",
    "lockstep_rtf_camera15hz_640x480_tiny",
    "lockstep_to_physics_rtf_ratio_auto",
    "image_hop_ms_p50_inprocess",
    "image_hop_ms_p95_inprocess",
    "image_hop_ms_p50_crossprocess",
    "image_hop_ms_p50_crossprocess_reliable",
)
EGL_KEYS = ("camera_fps_640x480_egl", "camera_fps_320x240_egl", "lockstep_rtf_camera15hz_640x480_egl")
# EventsExecutor is experimental: the script reports null with a note where it does not work.
OPTIONAL_KEYS = ("image_hop_ms_p50_inprocess_events", "image_hop_ms_p95_inprocess_events")


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def test_sim_bench_quick_prints_figures_as_last_line():
    # PYTHONPATH and LD_LIBRARY_PATH (into install/) are inherited from `make test`; the script picks
    # its own ROS domain.
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], check=False, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) > 10, result.stdout
    figures = json.loads(lines[-1])

    for key in POSITIVE_KEYS:
        assert _positive(figures[key]), (key, figures[key], figures.get("notes"))
    assert figures["lockstep_renderer_auto"] in ("egl", "tiny")
    assert isinstance(figures["egl_available"], bool)
    for key in EGL_KEYS:
        if figures["egl_available"]:
            assert _positive(figures[key]), (key, figures[key])
        else:
            assert figures[key] is None
    for key in OPTIONAL_KEYS:
        assert figures[key] is None or _positive(figures[key]), (key, figures[key])
    assert figures["lockstep_images_received_auto"] > 0
    assert figures["image_hop_samples_inprocess"] > 0
    assert figures["quick"] is True
    for key in ("pass_physics_rtf_ge_30x", "pass_lockstep_rtf_ge_1_5x", "pass_image_hop_p50_le_2ms"):
        assert isinstance(figures[key], bool)
    # The table comes first and shows the targets' verdicts.
    assert any("PASS" in line or "FAIL" in line for line in lines[:-1])
