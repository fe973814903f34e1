"""Replanning under disturbance: a task still succeeds when the world changes after a step.

Each run is a generated tabletop scene (`scene_gen.skill_trial_scene`, task "place") and the
command "put the <colour> <kind> in the <container>", sent through the whole simulated stack with
the offline defaults (`config/stacks/sim_tabletop.yaml`: perception, map, critic, skill server,
safety shield, rules planner) by `modular-robot run`'s scenario runner. Right after step 1 (the
verified pick) the simulator moves the object out of the gripper to another free spot on the
table. The planner only learns of it from the critic; it must replan from the current map (pick
it again where it now is, then place) and finish. A run succeeds when ground truth has the object
in the container at the end. Scenes whose target shares its colour and kind with another object
are skipped (the command would be a clarifying question, not a task).

Usage:
    .venv/bin/python benchmarks/replan_eval.py [--runs 30] [--jobs 2] [--first-seed 0]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from report import Report, print_report, stdout_for_results

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "config" / "stacks" / "sim_tabletop.yaml"
KINDS = ("cube", "cylinder", "sphere", "duck")
# Where the disturbance may drop the object: clear of every other object by this much (m).
DROP_CLEARANCE_M = 0.06
# And at least this far from where the object started, so that the map must notice the move.
DROP_MIN_SHIFT_M = 0.12


def scenario_text(seed: int) -> str | None:
    """Return the YAML of run `seed`'s scenario, or None when its command would be ambiguous."""
    from modular_robot.scenarios.scene_gen import TABLETOP_REGION, footprint_radius, skill_trial_scene

    kind = KINDS[seed % len(KINDS)]
    base = skill_trial_scene(seed, kind, "place")
    target = next(o for o in base.objects if o.id == "target")
    container = next(o for o in base.objects if o.id == "container")
    if any(o.type == target.type and o.color == target.color for o in base.objects if o.id != "target"):
        return None
    rng = random.Random(f"replan:{seed}")
    radius = footprint_radius(target)
    for _ in range(500):
        x = rng.uniform(TABLETOP_REGION.x_min + radius, TABLETOP_REGION.x_max - radius)
        y = rng.uniform(TABLETOP_REGION.y_min + radius, TABLETOP_REGION.y_max - radius)
        clear = all(math.dist((x, y), (o.pose.x, o.pose.y)) > radius + footprint_radius(o) + DROP_CLEARANCE_M
                    for o in base.objects if o.id != "target")
        if clear and math.dist((x, y), (target.pose.x, target.pose.y)) >= DROP_MIN_SHIFT_M:
            break
    else:
        return None
    objects = []
    for o in base.objects:
        entry = {"id": o.id, "type": o.type, "color": o.color, "size": o.size,
                 "pose": [o.pose.x, o.pose.y, o.pose.z, o.pose.yaw]}
        if o.height is not None:
            entry["height"] = o.height
        objects.append(entry)
    noun = {"sphere": "ball"}.get(target.type, target.type)
    document = {
        "name": f"replan_{seed}", "category": "replan", "robot": "panda_tabletop", "seed": seed,
        "objects": objects,
        "commands": [f"put the {target.color} {noun} in the {container.type}"],
        "disturbances": [{"at": "after_step", "step": 1, "action": "move", "object": "target",
                          "pose": [round(x, 3), round(y, 3), 0.0, round(rng.uniform(-1.0, 1.0), 2)]}],
        "expect": [{"in": ["target", "container"]}],
        "timeout_s": 150,
    }
    return yaml.safe_dump(document, sort_keys=False)


def _init_worker(domain_ids) -> None:
    os.environ["ROS_DOMAIN_ID"] = str(domain_ids.get())


def run_one(job: tuple[int, str]) -> dict:
    """Run one scenario; return what the report needs."""
    from modular_robot.core.stack import load_stack
    from modular_robot.harness.runner import run_scenario
    from modular_robot.scenarios.scenario import parse_scenario

    seed, text = job
    scenario = parse_scenario(text, f"<replan {seed}>")
    try:
        with tempfile.TemporaryDirectory() as out:
            result = run_scenario(scenario, Path(out), load_stack(STACK), verbose=False)
    except Exception as error:  # noqa: BLE001 - one broken run is a failed run, not a lost benchmark
        return {"seed": seed, "command": scenario.commands[0], "passed": False, "false_success": False,
                "replans": 0, "cause": f"run crashed: {error!r}", "wall_s": None, "sim_s": None}
    statuses = [e["text"] for e in result.transcript if e["role"] == "planner"]
    replans = [i for i, text in enumerate(statuses) if text.startswith("replanning")]
    cause = ""
    if replans:
        failed = [t for t in statuses[:replans[0]] if "FAILED" in t or " failed: " in t]
        cause = failed[-1] if failed else statuses[replans[0]]
    return {"seed": seed, "command": scenario.commands[0], "passed": result.passed,
            "false_success": result.false_success, "replans": len(replans), "cause": cause,
            "wall_s": result.wall_s, "sim_s": result.sim_s,
            "reply": next((e["text"] for e in reversed(result.transcript) if e["role"] == "robot"), "")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="runs in this many processes")
    args = parser.parse_args(argv)
    out = stdout_for_results()
    started = time.monotonic()
    work: list[tuple[int, str]] = []
    seed = args.first_seed
    while len(work) < args.runs:
        text = scenario_text(seed)
        if text is not None:
            work.append((seed, text))
        seed += 1
    base_domain = 150 + os.getpid() % 50
    context = multiprocessing.get_context("spawn")
    domains = context.Manager().Queue()
    for index in range(args.jobs):
        domains.put(base_domain + index)
    rows = []
    with context.Pool(args.jobs, initializer=_init_worker, initargs=(domains,)) as pool:
        for row in pool.imap(run_one, work):
            rows.append(row)
            print(f"  seed {row['seed']:>3} {'PASS' if row['passed'] else 'FAIL'} replans {row['replans']} "
                  f"'{row['command']}': {row['cause'] or row.get('reply', '')}", file=sys.stderr)
    report = Report()
    n = len(rows)
    succeeded = sum(r["passed"] for r in rows)
    replanned = sum(r["replans"] > 0 for r in rows)
    report.section(f"{n} disturbed tasks (object moved out of the gripper after step 1)")
    report.add("task_success_pct", round(100.0 * succeeded / n, 1), "task succeeded on ground truth", "%",
               ("≥ 90", lambda v: v >= 90.0))
    report.add("replanned_pct", round(100.0 * replanned / n, 1), "runs whose transcript shows a replan", "%")
    report.add("false_success", sum(r["false_success"] for r in rows), "reported success, ground truth failed", "",
               ("0", lambda v: v == 0))
    sims = [r["sim_s"] for r in rows if r["sim_s"] is not None]
    walls = [r["wall_s"] for r in rows if r["wall_s"] is not None]
    if sims:
        report.add("sim_s_median", round(statistics.median(sims), 1), "median task length (sim time)", "s")
        report.add("wall_s_median", round(statistics.median(walls), 1), "median run (wall time)", "s")
    report.add("runs", n, "runs")
    report.add("wall_s_total", round(time.monotonic() - started, 1), "benchmark wall time", "s")
    for row in rows:
        if row["replans"]:
            report.notes.append(f"seed {row['seed']}: replanned because {row['cause']}")
            break
    for row in rows:
        if not row["passed"]:
            report.notes.append(f"seed {row['seed']} failed: {row.get('reply') or row['cause']}")
    print_report(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
