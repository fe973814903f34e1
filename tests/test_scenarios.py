"""The scenario suite (`sim/scenarios/`): every file loads, every category is covered, and a cheap subset
passes through the whole tabletop stack in lockstep.

The full suite runs with `modular-robot eval sim/scenarios --jobs 2`; here only the scenarios that need
at most one pick run (questions, a refusal, a clarification and a pick), so that CI stays within a few
minutes.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from modular_robot.core.stack import load_stack
from modular_robot.harness.runner import run_scenario
from modular_robot.scenarios.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "sim" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))

# The categories of the suite; each needs at least MIN_PER_CATEGORY scenarios.
CATEGORIES = ("pick_place", "stacking", "sorting", "quantifiers_negation", "counting", "spatial", "follow_up_undo",
              "chain", "disturbance", "infeasible_unsafe", "ambiguous", "questions", "navigation",
              "mobile_manipulation")
MIN_PER_CATEGORY = 4
# Files outside the categories above: the spine checks and the demo.
OTHER_FILES = {"spine_tabletop", "spine_husky", "demo_tabletop"}

# The cheapest scenarios of the suite: answers and refusals without motion, one clarification
# answered by a pick, and one pick.
FAST = ("questions_05_what_colour", "questions_01_what_is_in_the_tray", "infeasible_unsafe_01_disable_safety",
        "ambiguous_01_which_cube_pick", "pick_place_05_pick_up")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_scenario_file_loads(path):
    scenario = load_scenario(path)
    assert scenario.expect
    assert scenario.timeout_s <= 600.0
    if path.stem not in OTHER_FILES:
        # Suite files are named <category>_<nn>_<short>.yaml after their name and category.
        assert scenario.name == path.stem
        assert path.stem.startswith(scenario.category + "_"), (path.stem, scenario.category)
        assert scenario.commands


def test_every_category_has_enough_scenarios():
    counts = collections.Counter(load_scenario(path).category for path in FILES)
    assert {category: counts[category] for category in CATEGORIES if counts[category] < MIN_PER_CATEGORY} == {}
    assert sum(counts[category] for category in CATEGORIES) >= 48


def test_scenario_names_are_unique():
    names = [load_scenario(path).name for path in FILES]
    assert len(names) == len(set(names))


@pytest.fixture(scope="module")
def tabletop_stack():
    return load_stack(ROOT / "config" / "stacks" / "sim_tabletop.yaml")


@pytest.mark.parametrize("name", FAST)
def test_fast_subset_passes_through_the_whole_stack(name, tabletop_stack, tmp_path):
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    assert scenario.robot == "panda_tabletop"
    result = run_scenario(scenario, tmp_path, tabletop_stack, renderer="tiny", verbose=False)
    failed = [p for p in result.predicates if not p["passed"]]
    assert result.passed, (failed, [e for e in result.transcript if e["role"] == "robot"])
    assert not result.false_success
