"""Smoke test of benchmarks/planner_eval.py: it runs, prints its figures last, and the rules planner scores high."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "planner_eval.py"

KEYS = ("cases", "turns", "plan_accuracy_pct", "plan_accuracy_question_pct", "plan_accuracy_follow_up_pct",
        "answer_accuracy_pct", "clarify_accuracy_pct", "refuse_accuracy_pct", "not_understood_accuracy_pct",
        "clarify_refuse_not_understood_accuracy_pct", "plan_latency_ms_p50", "plan_latency_ms_p95")


def test_planner_eval_small_run_prints_figures_as_last_line():
    result = subprocess.run([sys.executable, str(BENCH), "--commands", "60", "--seed", "3"], check=False, cwd=REPO,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(key in figures for key in KEYS)
    assert figures["cases"] == 60 and figures["turns"] >= 60
    # Every template category is generated, so a category the planner breaks shows here.
    assert all(figures[key] is not None for key in figures if key.startswith("plan_accuracy_"))
    assert figures["plan_accuracy_pct"] >= 95.0
    assert figures["answer_accuracy_pct"] >= 90.0
    assert 0.0 < figures["plan_latency_ms_p50"] <= figures["plan_latency_ms_p95"]


def test_expected_plans_come_from_the_generator_not_the_planner():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import planner_eval
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    cases = planner_eval.generate_cases(40, seed=5)
    assert {case.category for case in cases} == set(planner_eval.TEMPLATES)
    # Every expected execute turn names only ids of its scene, and a wrong plan is judged wrong.
    for case in cases:
        ids = {o.id for o in case.scene.objects}
        for turn in case.turns:
            assert all(call.args.get("object", next(iter(ids))) in ids for call in turn.steps)
    turn = next(t for c in cases for t in c.turns if t.kind == "execute" and t.steps)
    wrong = planner_eval.Plan("execute", turn.steps[:-1] + (planner_eval.Call("move_arm_home", {}),))
    assert not planner_eval.turn_correct(turn, wrong)
    assert planner_eval.turn_correct(turn, planner_eval.Plan("execute", turn.steps))
