"""`modular-robot eval`: input validated before any run, the report's figures, a real two-scenario suite."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modular_robot.core.robot_model import ROBOT_KINDS
from modular_robot.harness import evaluation
from modular_robot.scenarios.eval_report import build_html, build_markdown, summarize, write_reports
from modular_robot.scenarios.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
EVAL = [sys.executable, "-m", "modular_robot.cli", "eval"]

UNMOVED = """
name: a_unmoved
category: spine
robot: panda_tabletop
seed: 1
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.0]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
commands: []
expect:
  - {unmoved: [red_cube, tray]}
  - {not: {in: [red_cube, tray]}}
timeout_s: 3
"""

QUESTION = """
name: b_question
category: dialogue
robot: panda_tabletop
seed: 2
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.0]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
commands: ["what do you see?"]
expect:
  - {reply: {contains_any: [see, cube]}}
  - {unmoved: [red_cube]}
timeout_s: 20
"""

# Line 4 holds the unknown object type.
BROKEN = "name: broken\nrobot: panda_tabletop\nobjects:\n  - {id: a, type: teapot}\nexpect:\n  - {unmoved: [a]}\n"


def _scenario(name, category, passed, false_success=False, **extra):
    entry = {"name": name, "category": category, "passed": passed, "false_success": false_success,
             "predicates": [{"predicate": "in(red_cube, tray)", "passed": passed,
                             "detail": "red_cube centre 0.20 m from tray"}],
             "wall_s": 10.0, "sim_s": 20.0, "transcript": []}
    entry.update(extra)
    return entry


def _synthetic() -> dict:
    scenarios = [
        _scenario("pick_red", "pick_place", True),
        _scenario("pick_blue", "pick_place", False, false_success=True,
                  transcript=[{"sim_s": 1.0, "role": "user", "text": "put the blue cube in the tray"},
                              {"sim_s": 1.5, "role": "planner", "text": "step 1 pre-check ok (0.90): reachable"},
                              {"sim_s": 9.0, "role": "robot", "text": "Done: the blue cube is in the tray."}],
                  images={"before": "pick_blue/before.png", "after": "pick_blue/after.png"}),
        _scenario("pick_green", "pick_place", False),
        _scenario("ask", "dialogue", True),
    ]
    return {"summary": summarize(scenarios), "scenarios": scenarios}


def test_summary_counts_by_category():
    summary = _synthetic()["summary"]
    assert (summary["total"], summary["passed"], summary["failed"], summary["false_success"]) == (4, 2, 2, 1)
    assert summary["pass_rate"] == 0.5
    assert summary["by_category"] == {"dialogue": {"total": 1, "passed": 1, "false_success": 0},
                                      "pick_place": {"total": 3, "passed": 1, "false_success": 1}}
    assert list(summary["by_category"]) == ["dialogue", "pick_place"]


def test_markdown_report_shows_rates_false_success_failures_and_dialogue():
    text = build_markdown(_synthetic())
    assert "**Passed: 2/4 (50.0 %)**" in text
    # The false success is in the headline, before any table, with the scenario that claimed it.
    false_line = next(line for line in text.splitlines() if "False successes" in line)
    assert "False successes: 1" in false_line and "pick_blue" in false_line and "⚠" in false_line
    assert text.index("False successes") < text.index("## Success by category")
    assert "| pick_place | 3 | 1 | 2 | 1 | 33.3 % |" in text
    assert "| dialogue | 1 | 1 | 0 | 0 | 100.0 % |" in text
    assert "| **all** | 4 | 2 | 2 | 1 | 50.0 % |" in text
    section = text[text.index("### pick_blue"):text.index("### pick_green")]
    assert "FAIL (false success)" in section
    assert "`in(red_cube, tray)`: red_cube centre 0.20 m from tray" in section
    assert "- **user:** put the blue cube in the tray" in section
    assert "- **robot:** Done: the blue cube is in the tray." in section
    assert "pre-check" not in section  # planner notes are not dialogue
    assert "![pick_blue before](pick_blue/before.png)" in section
    passing = text[text.index("### pick_red"):text.index("### pick_blue")]
    assert "PASS" in passing and "Failing predicates" not in passing


def test_html_report_escapes_text_and_flags_false_success(tmp_path):
    results = _synthetic()
    hostile = results["scenarios"][1]
    hostile["transcript"].append({"sim_s": 9.5, "role": "user", "text": "<script>alert('x')</script> & more"})
    hostile["predicates"][0]["detail"] = "distance < 0.05 m | <b>not</b>"
    page = build_html(results)
    assert "<script>" not in page and "<b>not</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "distance &lt; 0.05 m | &lt;b&gt;not&lt;/b&gt;" in page
    assert '<p class="false-success bad">False successes: 1' in page
    assert "<tr><td>pick_place</td><td>3</td><td>1</td><td>2</td><td>1</td><td>33.3 %</td></tr>" in page
    assert '<img src="pick_blue/after.png"' in page
    markdown = build_markdown(results)
    assert "<script>" not in markdown and "distance &lt; 0.05 m \\| &lt;b&gt;not&lt;/b&gt;" in markdown
    written = write_reports(results, tmp_path)
    assert [p.name for p in written] == ["report.md", "report.html"]
    assert written[1].read_text(encoding="utf-8") == page


def test_report_without_false_success_says_so():
    scenarios = [_scenario("ask", "dialogue", True)]
    results = {"summary": summarize(scenarios), "scenarios": scenarios}
    assert '<p class="false-success good">False successes: 0' in build_html(results)
    assert "⚠" not in build_markdown(results)


def test_scenario_files_sorted_per_directory_then_files_as_given(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("b.yaml", "a.yaml", "notes.txt"):
        (suite / name).write_text("")
    extra = tmp_path / "extra.yaml"
    extra.write_text("")
    assert evaluation.scenario_files([extra, suite]) == [extra, suite / "a.yaml", suite / "b.yaml"]
    with pytest.raises(evaluation.EvalInputError, match="missing.yaml: no such file"):
        evaluation.scenario_files([tmp_path / "missing.yaml"])


def test_stack_follows_the_robot_unless_overridden():
    husky = load_scenario(ROOT / "sim/scenarios/spine_husky.yaml")
    panda = parse_scenario(UNMOVED)
    assert evaluation.stack_for(husky) == "config/stacks/sim_husky.yaml"
    assert evaluation.stack_for(panda) == "config/stacks/sim_tabletop.yaml"
    assert evaluation.stack_for(husky, "mine.yaml") == "mine.yaml"
    for kind in ROBOT_KINDS.values():
        assert (ROOT / kind.stack).is_file()
    mobile = parse_scenario(UNMOVED.replace("panda_tabletop", "mobile_manipulator"), "mobile.yaml")
    assert evaluation.stack_for(mobile) == "config/stacks/sim_mobile_manipulator.yaml"
    assert evaluation.stack_for(mobile, "mine.yaml") == "mine.yaml"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_prints_a_line_per_scenario_and_a_bar_only_on_a_terminal():
    piped = io.StringIO()
    progress = evaluation._Progress(40, 10, piped)
    for _ in range(2):
        progress.finished({"name": "warm_up", "passed": True, "false_success": False, "wall_s": 1.0})
    progress.finished({"name": "pick_red", "passed": False, "false_success": True, "wall_s": 12.34})
    progress.close()
    assert piped.getvalue().splitlines()[-1] == "[ 3/40] pick_red    FAIL (false success)  12.3 s"
    assert "#" not in piped.getvalue() and "\r" not in piped.getvalue()
    terminal = _Terminal()
    progress = evaluation._Progress(2, 4, terminal)
    progress.finished({"name": "ask", "passed": True, "false_success": False, "wall_s": 2.0})
    assert terminal.getvalue().endswith("\r\033[K[1/2] ask   PASS  2.0 s\n\r[" + "#" * 15 + "-" * 15 + "] 1/2")


def test_bad_scenario_aborts_naming_file_and_line_before_anything_runs(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a_good.yaml").write_text(UNMOVED)
    (suite / "b_broken.yaml").write_text(BROKEN)
    (suite / "c_on.yaml").write_text(UNMOVED.replace("name: a_unmoved", "name: c_on").replace(
        "{not: {in: [red_cube, tray]}}", "{on: [red_cube, tray]}"))
    out = tmp_path / "out"
    result = subprocess.run([*EVAL, str(suite), "--out", str(out), "--no-record"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    # Every bad file is named, with its line, and the good one never ran.
    assert "b_broken.yaml:4" in result.stderr and "teapot" in result.stderr
    assert "c_on.yaml:12" in result.stderr
    assert "no scenario was run" in result.stderr
    assert not out.exists()


def test_duplicate_names_and_empty_selection_are_bad_input(tmp_path, capsys):
    for name in ("one.yaml", "two.yaml"):
        (tmp_path / name).write_text(UNMOVED)
    assert evaluation.run_eval([str(tmp_path)], tmp_path / "out", record=False) == 2
    assert "two.yaml: scenario name 'a_unmoved' is also used by" in capsys.readouterr().err
    (tmp_path / "two.yaml").unlink()
    assert evaluation.run_eval([str(tmp_path)], tmp_path / "out", record=False, category="nothing") == 2
    assert "none of the 1 scenarios matches" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_recording_needs_a_runner_that_can_record(tmp_path, monkeypatch, capsys):
    from modular_robot.harness import runner

    def without_record(scenario, out_dir, stack=None, renderer="auto", verbose=True):
        raise AssertionError("must not run")

    def with_record(scenario, out_dir, stack=None, renderer="auto", verbose=True, record=False):
        raise AssertionError("must not run")

    (tmp_path / "a.yaml").write_text(UNMOVED)
    monkeypatch.setattr(runner, "run_scenario", without_record)
    assert evaluation.run_eval([str(tmp_path)], tmp_path / "out") == 2
    assert "pass --no-record" in capsys.readouterr().err
    monkeypatch.setattr(runner, "run_scenario", with_record)
    evaluation.check_recording()


def test_eval_runs_scenarios_in_parallel_and_writes_the_report(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a_unmoved.yaml").write_text(UNMOVED)
    (suite / "b_question.yaml").write_text(QUESTION)
    # Nothing moves the cube, so this one fails: the suite must say so in its exit code and report.
    (suite / "c_fails.yaml").write_text(UNMOVED.replace("name: a_unmoved", "name: c_fails").replace(
        "{unmoved: [red_cube, tray]}", "{not: {unmoved: [red_cube]}}").replace("timeout_s: 3", "timeout_s: 1"))
    out = tmp_path / "out"
    result = subprocess.run([*EVAL, str(suite), "--out", str(out), "--jobs", "2", "--no-record",
                             "--renderer", "tiny"], cwd=ROOT, capture_output=True, text=True,
                            timeout=150, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line[:5] for line in lines if line.startswith("[")] == ["[1/3]", "[2/3]", "[3/3]"]
    assert any("c_fails" in line and "FAIL" in line for line in lines)
    assert lines[-1] == "FAIL"
    results = json.loads((out / "results.json").read_text())
    summary = results["summary"]
    assert (summary["total"], summary["passed"], summary["false_success"]) == (3, 2, 0)
    assert summary["by_category"] == {"dialogue": {"total": 1, "passed": 1, "false_success": 0},
                                      "spine": {"total": 2, "passed": 1, "false_success": 0}}
    unmoved, question, failing = results["scenarios"]
    assert [e["name"] for e in results["scenarios"]] == ["a_unmoved", "b_question", "c_fails"]
    assert unmoved["passed"] and question["passed"] and not failing["passed"]
    assert unmoved["stack"] == "config/stacks/sim_tabletop.yaml"
    replies = [e["text"] for e in question["transcript"] if e["role"] == "robot"]
    assert len(replies) == 1 and "see" in replies[0].lower()
    assert question["sim_s"] > 0 and question["wall_s"] > 0 and "mcap" not in question
    for entry in (unmoved, question, failing):
        assert entry["images"] == {"before": f"{entry['name']}/before.png", "after": f"{entry['name']}/after.png"}
        for image in entry["images"].values():
            assert (out / image).stat().st_size > 1000
        assert (out / entry["log"]).is_file()
    markdown = (out / "report.md").read_text()
    assert "**Passed: 2/3 (66.7 %)**" in markdown and "- **user:** what do you see?" in markdown
    assert "### c_fails — FAIL" in markdown and "`not(unmoved(red_cube))`" in markdown
    assert '<img src="b_question/after.png"' in (out / "report.html").read_text()


def test_workers_claim_domains_no_other_process_holds(tmp_path):
    first, first_lock = evaluation.claim_domain(150, 3, tmp_path)
    second, second_lock = evaluation.claim_domain(150, 3, tmp_path)
    claim = ("import sys; from pathlib import Path; from modular_robot.harness.evaluation import claim_domain; "
             "print(claim_domain(150, 3, Path(sys.argv[1]))[0])")
    other = subprocess.run([sys.executable, "-c", claim, str(tmp_path)], capture_output=True, text=True, check=True)
    assert len({first, second, int(other.stdout)}) == 3 and {first, second} <= {150, 151, 152}
    third, third_lock = evaluation.claim_domain(150, 3, tmp_path)
    with pytest.raises(RuntimeError, match=r"every ROS domain in \[150, 153\) is taken"):
        evaluation.claim_domain(150, 3, tmp_path)
    # A worker that ends gives its domain back.
    second_lock.close()
    assert evaluation.claim_domain(150, 3, tmp_path)[0] == second
    first_lock.close()
    third_lock.close()


def test_workers_rasterise_only_on_the_cores_left_to_them(monkeypatch):
    assert [evaluation.rasterizer_threads(2, workers) for workers in (1, 2, 3)] == [1, 0, 0]
    assert evaluation.rasterizer_threads(16, 2) == 7
    monkeypatch.setattr(evaluation, "claim_domain", lambda: (150, None))
    monkeypatch.setenv("ROS_DOMAIN_ID", "0")
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    evaluation._init_worker(0)
    assert os.environ["LP_NUM_THREADS"] == "0" and os.environ["ROS_DOMAIN_ID"] == "150"
    # A user's own setting wins.
    monkeypatch.setenv("LP_NUM_THREADS", "4")
    evaluation._init_worker(0)
    assert os.environ["LP_NUM_THREADS"] == "4"
