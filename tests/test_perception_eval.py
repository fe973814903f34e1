"""Detection scoring (matching and figures) and a smoke test of benchmarks/perception_eval.py."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modular_robot.core.perception.types import Detection
from modular_robot.scenarios.perception_eval import Tally, TruthObject, match_detections, tally
from modular_robot.scenarios.world_state import ObjectState

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "perception_eval.py"
KEYS = ("found_within_2cm_pct", "color_correct_pct", "shape_correct_pct", "false_detections_pct",
        "detect_ms_p50_640x480")


def _truth(object_id, kind, color, centre, size=0.04):
    return TruthObject(object_id, kind, color, np.asarray(centre, float), np.full(3, size))


def _detection(position, color="red", category="cube"):
    return Detection(label=f"small {color} {category}", category=category, attributes=(color, "small"), score=1.0,
                     bbox=(0, 0, 1, 1), position=np.asarray(position, float), size=np.full(3, 0.04), color=color)


def test_truth_from_state_uses_the_bounding_box_centre():
    state = ObjectState("duck", "duck", "yellow", (0.0, 0.0, 0.0), (0, 0, 0, 1), (0.1, 0.2, 0.0), (0.2, 0.3, 0.06))
    truth = TruthObject.from_state(state)
    assert np.allclose(truth.center, (0.15, 0.25, 0.03)) and np.allclose(truth.size, (0.1, 0.1, 0.06))
    assert truth.shape == "irregular"


def test_matching_is_one_to_one_minimising_total_distance_within_the_gate():
    truths = [_truth("a", "cube", "red", (0.0, 0.0, 0.02)), _truth("b", "cube", "red", (0.03, 0.0, 0.02))]
    # Greedy would give the middle detection to b (1.5 cm) and leave a's only candidate too far.
    detections = [_detection((0.045, 0.0, 0.02)), _detection((0.015, 0.0, 0.02)), _detection((0.5, 0.0, 0.02))]
    matches = match_detections(truths, detections)
    assert [(m.truth, m.detection) for m in matches] == [(0, 1), (1, 0)]
    assert matches[0].distance == pytest.approx(0.015)
    assert match_detections(truths, []) == [] and match_detections([], detections) == []


def test_tally_counts_found_colour_shape_and_false_detections():
    truths = [_truth("red_cube", "cube", "red", (0.5, 0.0, 0.02)),
              _truth("blue_sphere", "sphere", "blue", (0.6, 0.1, 0.02)),
              _truth("green_duck", "duck", "green", (0.4, -0.1, 0.03)),
              _truth("tiny", "cube", "red", (0.3, 0.3, 0.01), size=0.02)]
    detections = [_detection((0.505, 0.0, 0.02)),                                    # right
                  _detection((0.6, 0.13, 0.02), color="blue", category="cylinder"),  # 3 cm off, wrong shape
                  _detection((0.4, -0.1, 0.03), color="yellow", category="irregular"),  # wrong colour
                  _detection((0.9, 0.0, 0.02))]                                      # nothing there
    counts = tally([(truths, detections)])
    assert (counts.objects, counts.found, counts.matched) == (3, 2, 3)
    assert (counts.color_correct, counts.shape_scored, counts.shape_correct) == (2, 3, 2)
    assert (counts.detections, counts.false_detections) == (4, 1)
    assert counts.figures() == {"found_within_2cm_pct": 66.67, "color_correct_pct": 66.67,
                                "shape_correct_pct": 66.67, "false_detections_pct": 25.0}
    assert len(counts.outcomes) == 4 and not counts.outcomes[3].required and not counts.outcomes[3].matched
    assert any("false detection" in e for e in counts.errors) and any("off by 3.0 cm" in e for e in counts.errors)


def test_containers_must_be_named_tray_or_bowl_not_just_flat():
    truths = [_truth("tray", "tray", "gray", (0.4, 0.2, 0.025), size=0.2),
              _truth("bowl", "bowl", "white", (0.6, -0.2, 0.03), size=0.15),
              _truth("plate", "bowl", "red", (0.8, 0.0, 0.03), size=0.15)]
    detections = [_detection((0.4, 0.2, 0.025), color="gray", category="tray"),
                  _detection((0.6, -0.2, 0.03), color="white", category="flat"),   # too coarse for a bowl
                  _detection((0.8, 0.0, 0.03), color="red", category="tray")]      # the wrong container
    counts = tally([(truths, detections)])
    assert (counts.shape_scored, counts.shape_correct) == (3, 1)


def test_empty_tally_reports_zeros():
    assert set(Tally().figures().values()) == {0.0}


def test_benchmark_quick_prints_the_figures_as_last_line():
    # PYTHONPATH and LD_LIBRARY_PATH (into install/) are inherited from `make test`.
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], check=False, cwd=REPO, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    for key in KEYS:
        value = figures[key]
        assert isinstance(value, float) and math.isfinite(value) and value >= 0.0, (key, value)
    assert figures["scenes"] == 5 and figures["quick"] is True and figures["objects"] > 0
    assert figures["renderer"] in ("egl", "tiny")
    assert any("PASS" in line or "FAIL" in line for line in lines[:-1])
