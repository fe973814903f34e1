"""Smoke tests of benchmarks/perception_merge_eval.py and benchmarks/perception_bench.py.

Each runs with --quick as a subprocess; its last line must be the JSON figures tools read, with
sane values. Targets (95% merged, 50 ms) are not asserted: latency depends on the machine and its
load, and five scenes are too few to judge a rate.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run_quick(script: str) -> tuple[dict, list[str]]:
    """Run a benchmark with --quick; return its JSON figures and the table lines before them."""
    # PYTHONPATH and LD_LIBRARY_PATH (into install/) are inherited from `make test`.
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick"], check=False, cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_merge_eval_quick_prints_merge_figures_as_last_line():
    figures, table = _run_quick("perception_merge_eval.py")
    assert figures["scenes"] == 5 and figures["quick"] is True and figures["renderer"] in ("egl", "tiny")
    assert figures["viewpoints"] == 15 and figures["view_separation_m_min"] >= 0.5
    assert figures["robot_pixels_in_view_max"] == 0
    assert 0 < figures["objects_seen_twice"] <= figures["objects"]
    shares = [figures[key] for key in ("merge_one_instance_pct", "duplicate_instances_pct", "missing_instance_pct")]
    assert all(_finite(share) and 0.0 <= share <= 100.0 for share in shares), shares
    assert sum(shares) == pytest.approx(100.0, abs=0.05)
    assert 0.0 <= figures["merged_centre_error_mm_p50"] <= figures["merged_centre_error_mm_p95"]
    assert isinstance(figures["pass_merge_ge_95pct"], bool)
    assert figures["view_pairs"] > 0 and 0.0 <= figures["view_shape_disagree_pct"] <= 100.0
    assert any("PASS" in line or "FAIL" in line for line in table)


def test_perception_bench_quick_prints_latency_figures_as_last_line():
    figures, table = _run_quick("perception_bench.py")
    assert figures["frames"] == 20 and figures["scenes"] == 1 and figures["quick"] is True
    assert figures["threads"] == 1 and figures["detections_per_frame_p50"] > 0
    for prefix in ("", "naive_"):
        for stage in ("convert", "detect", "map_update"):
            value = figures[f"{prefix}{stage}_ms_p50_640x480"]
            assert _finite(value) and value > 0.0, (prefix, stage, value)
    for low, high in (("perception_map_ms_p50_640x480", "perception_map_ms_p95_640x480"),
                      ("naive_ms_p50_640x480", "naive_ms_p95_640x480")):
        assert _finite(figures[low]) and 0.0 < figures[low] <= figures[high], (low, figures[low], figures[high])
    # The baseline back-projects and clusters four times the points of the same frames.
    assert figures["speedup_vs_naive"] > 1.0
    assert isinstance(figures["pass_le_50ms_p50"], bool)
    assert any("PASS" in line or "FAIL" in line for line in table)
