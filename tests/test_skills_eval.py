"""benchmarks/skills_eval.py: trials run through the whole stack and end with the JSON figures line.

A pick-and-place trial, an injected failure and a navigation trial; targets are not asserted (a
handful of trials says nothing about rates), only that every trial ran and was judged.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import skills_eval

REPO = Path(__file__).resolve().parents[1]


def test_a_few_trials_print_judged_figures_as_last_line():
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "skills_eval.py"), "--picks", "1", "--stacks", "0",
         "--injected", "1", "--navigations", "1", "--others", "0"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("pick_success_pct", "place_success_pct", "navigate_success_pct", "critic_agreement_pct"):
        assert 0.0 <= figures[key] <= 100.0, (key, figures)
    assert figures["critic_false_success"] == 0
    assert figures["pick_median_s"] > 0 and figures["navigate_to_median_s"] > 0
    assert figures["trial_errors"] == 0, result.stdout


def test_footprint_gap_between_the_husky_and_a_box():
    class Box:
        aabb_min, aabb_max = (2.0, -0.1, 0.0), (2.2, 0.1, 0.2)

    # Facing the box with the bumper (0.504 m ahead of base_link) 0.2 m short of it.
    assert math.isclose(skills_eval.footprint_gap((1.296, 0.0, 0.0), 0.0, Box()), 0.2, abs_tol=1e-6)
    # Side on, 0.5 m left of it: the half width (0.342 m) faces it.
    assert math.isclose(skills_eval.footprint_gap((2.1, 0.942, 0.0), 0.0, Box()), 0.5, abs_tol=1e-6)
    assert skills_eval.footprint_gap((2.1, 0.0, 0.0), 0.0, Box()) == 0.0
