#!/usr/bin/env python3
"""Measure the transformers planner's constrained decoding with a tiny random-weight model.

Builds the tiny Llama and byte-level BPE tokenizer of benchmarks/tiny_lm.py in a temporary directory
(no model hub is reachable), generates tabletop scenes of 4-14 objects and instructions about
them (pick, put in/on, push, questions, follow-ups), and plans each greedily. Random weights are
the hard case for constrained decoding: nothing but the schema keeps the output valid.

Reports:

* the share of generations that parse into plans passing the plan schema and `validate_plan`
  (must be 100%);
* decoding speed, constrained (the planner's `plan_prompt` with its schema index already compiled)
  and unconstrained (the same model and prompt, greedy, forced to generate exactly as many tokens
  as the constrained run did for that prompt, so both decode the same lengths), and the constraint
  overhead per token; schema compile time is reported apart, since compiled schemas are cached;
* prompt token counts (median, mean) with the "eliminate" scene filtering and with the whole map.

Prints a readable table and then, as its last line, one JSON object whose keys carry their units:

    .venv/bin/python benchmarks/llm_planner_eval.py [--generations N] [--sampled N] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time

import numpy as np

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.text_embedding import TextEmbedder
from modular_robot.planning.dialogue import Dialogue, Turn
from modular_robot.planning.llm import (
    INVALID_PLAN_REPLY,
    InvalidPlan,
    build_prompt,
    count_tokens,
    max_plan_bytes,
    parse_plan,
    plan_schema,
    render_prompt,
)
from modular_robot.planning.plan import PlanRequest
from modular_robot.planning.transformers_backend import TransformersPlanner
from tiny_lm import build_tiny_lm

TARGET_VALID_PCT = 100.0
COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black", "pink", "cyan")
# Shape -> (size in m, graspable): small things to move, containers to move them into.
THINGS = {"cube": (0.05, 0.05, 0.05), "cylinder": (0.05, 0.05, 0.1), "sphere": (0.05, 0.05, 0.05),
          "duck": (0.08, 0.06, 0.08)}
CONTAINERS = {"tray": (0.3, 0.2, 0.02), "bowl": (0.15, 0.15, 0.06)}
SKILL_SETS = (("pick", "place", "push", "move_arm_home", "open_gripper", "close_gripper", "say"),
              ("pick", "place", "push", "say", "navigate_to", "search"),
              ("pick", "place", "say"))


def make_scene(rng: random.Random) -> list[MapObject]:
    """Return a random tabletop map: 3-11 small objects and 1-3 containers."""
    objects, counts = [], {}
    kinds = [(rng.choice(list(THINGS)), False) for _ in range(rng.randint(3, 11))]
    kinds += [(rng.choice(list(CONTAINERS)), True) for _ in range(rng.randint(1, 3))]
    for shape, container in kinds:
        color = rng.choice(COLORS)
        counts[(color, shape)] = counts.get((color, shape), 0) + 1
        size = (CONTAINERS if container else THINGS)[shape]
        objects.append(MapObject(f"{color}_{shape}_{counts[(color, shape)]}", f"{color} {shape}", shape, color=color,
                                 position=[round(rng.uniform(0.3, 0.8), 3), round(rng.uniform(-0.4, 0.4), 3),
                                           size[2] / 2], size=list(size)))
    return objects


def make_request(rng: random.Random, objects: list[MapObject]) -> PlanRequest:
    """Return an instruction about the scene, sometimes with a dialogue turn before it."""
    things = [o for o in objects if o.category in THINGS]
    containers = [o for o in objects if o.category in CONTAINERS]
    thing, container = rng.choice(things), rng.choice(containers)
    templates = [f"put the {thing.label} in the {container.label}", f"pick up the {thing.label}",
                 f"push the {thing.label} to the {rng.choice(['left', 'right'])}",
                 f"what is in the {container.label}?", f"how many {thing.category}s are there?",
                 f"place the {thing.color} one on the {container.category}", "move it back", "say hello"]
    dialogue = Dialogue()
    if rng.random() < 0.3:
        dialogue.add_turn(Turn(f"pick up the {thing.label}", f"I picked up the {thing.label}.", "execute",
                               (f"pick(object={thing.id})",), True))
        dialogue.referents = (thing.id,)
    return PlanRequest(rng.choice(templates), objects, dialogue, skills=rng.choice(SKILL_SETS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=100, help="plans to generate (default 100)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sampled", type=int, default=100,
                        help="further plans sampled (temperature 0.7, seeded): random weights decoded greedily "
                             "mostly answer, sampling reaches execute plans (default 100)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    embedder = TextEmbedder()
    embedder.load()

    with tempfile.TemporaryDirectory(prefix="tiny_lm_") as directory:
        start = time.perf_counter()
        planner = TransformersPlanner(build_tiny_lm(directory), similarity=embedder.similarity)
        load_s = time.perf_counter() - start
        # The first constrained generation pays a one-off warm-up; it is not what a plan costs.
        warm = PlanRequest("say hello", make_scene(random.Random(0)), Dialogue())
        planner.plan(warm)

        valid, failures, kinds = 0, [], {}
        constrained_tokens = constrained_s = free_tokens = free_s = 0.0
        compile_s, budgets, eliminated, whole = [], [], [], []
        for _ in range(max(args.generations, 1)):
            request = make_request(rng, make_scene(rng))
            prompt = build_prompt(request, similarity=embedder.similarity)
            text, templated = render_prompt(planner.tokenizer, prompt.messages)
            eliminated.append(count_tokens(planner.tokenizer, text, templated))
            full_text, _ = render_prompt(planner.tokenizer, build_prompt(request, eliminate=False).messages)
            whole.append(count_tokens(planner.tokenizer, full_text, templated))
            schema = plan_schema(request.skills, prompt.object_ids)
            budgets.append(max_plan_bytes(schema) + 1)
            start = time.perf_counter()
            planner.compiled(schema)
            compile_s.append(time.perf_counter() - start)

            start = time.perf_counter()
            plan = planner.plan_prompt(request, prompt)
            constrained_s += time.perf_counter() - start
            generated = plan.tokens["completion"]
            constrained_tokens += generated
            # A plan the planner passed is re-checked here against the schema and the map.
            problem = plan.reply if plan.reply.startswith(INVALID_PLAN_REPLY) else None
            if problem is None:
                try:
                    parse_plan(json.dumps(plan.to_dict()), schema, request)
                except InvalidPlan as error:
                    problem = str(error)
            valid += problem is None
            kinds[plan.kind] = kinds.get(plan.kind, 0) + 1
            if problem is not None:
                failures.append(f"{request.instruction!r}: {problem}")

            start = time.perf_counter()
            free, _ = planner.generate(text, templated, None, max_new_tokens=generated, min_new_tokens=generated)
            free_s += time.perf_counter() - start
            free_tokens += len(free)

        # Sampling explores what greedy decoding of random weights never picks (plans with steps).
        sampler = TransformersPlanner(build_tiny_lm(directory), similarity=embedder.similarity, seed=args.seed)
        sampled_valid, sampled_kinds, steps_total = 0, {}, 0
        for _ in range(args.sampled):
            request = make_request(rng, make_scene(rng))
            prompt = build_prompt(request, similarity=embedder.similarity)
            plan = sampler.plan_prompt(request, prompt)
            problem = plan.reply if plan.reply.startswith(INVALID_PLAN_REPLY) else None
            if problem is None:
                try:
                    parse_plan(json.dumps(plan.to_dict()), plan_schema(request.skills, prompt.object_ids), request)
                except InvalidPlan as error:
                    problem = str(error)
            sampled_valid += problem is None
            sampled_kinds[plan.kind] = sampled_kinds.get(plan.kind, 0) + 1
            steps_total += len(plan.steps)
            if problem is not None:
                failures.append(f"sampled {request.instruction!r}: {problem}")

    count = max(args.generations, 1)
    valid_pct = 100.0 * valid / count
    constrained_rate = constrained_tokens / constrained_s
    free_rate = free_tokens / free_s
    overhead_pct = 100.0 * (free_rate / constrained_rate - 1.0)
    print(f"llm_planner_eval: {count} greedy generations with a random-weight 2-layer Llama "
          f"(vocab {len(planner.tokenizer)}), seed {args.seed}, model built and loaded in {load_s:.1f} s")
    print(f"{'figure':<44}{'value':>12}")
    print(f"{'schema-valid plans %':<44}{valid_pct:>12.1f}   (target {TARGET_VALID_PCT:.0f})")
    print(f"{'plan kinds':<44}{', '.join(f'{k} {v}' for k, v in sorted(kinds.items())):>12}")
    if args.sampled:
        print(f"{'sampled: schema-valid plans %':<44}{100.0 * sampled_valid / args.sampled:>12.1f}")
        print(f"{'sampled: plan kinds':<44}{', '.join(f'{k} {v}' for k, v in sorted(sampled_kinds.items())):>12}"
              f"   ({steps_total} skill calls)")
    print(f"{'tokens/s constrained':<44}{constrained_rate:>12.1f}   ({constrained_tokens:.0f} tokens)")
    print(f"{'tokens/s unconstrained':<44}{free_rate:>12.1f}   ({free_tokens:.0f} tokens)")
    print(f"{'constraint overhead per token %':<44}{overhead_pct:>12.1f}")
    print(f"{'schema compile ms (median, cached after)':<44}{1000 * statistics.median(compile_s):>12.1f}")
    print(f"{'token budget (median worst-case plan)':<44}{statistics.median(budgets):>12.0f}")
    print(f"{'prompt tokens, eliminated scene: median':<44}{statistics.median(eliminated):>12.0f}"
          f"   mean {np.mean(eliminated):.0f}")
    print(f"{'prompt tokens, whole map: median':<44}{statistics.median(whole):>12.0f}   mean {np.mean(whole):.0f}")
    for line in failures[:10]:
        print(f"  invalid: {line}")
    figures = {
        "generations": count,
        "valid_plans_pct": round(valid_pct, 2),
        "tokens_per_s_constrained": round(constrained_rate, 1),
        "tokens_per_s_unconstrained": round(free_rate, 1),
        "constraint_overhead_per_token_pct": round(overhead_pct, 1),
        "tokens_generated_constrained": int(constrained_tokens),
        "schema_compile_ms_median": round(1000 * statistics.median(compile_s), 1),
        "token_budget_median": int(statistics.median(budgets)),
        "prompt_tokens_median_eliminated": float(statistics.median(eliminated)),
        "prompt_tokens_mean_eliminated": round(float(np.mean(eliminated)), 1),
        "prompt_tokens_median_whole_map": float(statistics.median(whole)),
        "prompt_tokens_mean_whole_map": round(float(np.mean(whole)), 1),
        "model_build_load_s": round(load_s, 2),
        "sampled_generations": args.sampled,
        "sampled_valid_plans_pct": round(100.0 * sampled_valid / args.sampled, 2) if args.sampled else None,
        "sampled_execute_plans": sampled_kinds.get("execute", 0),
        "sampled_skill_calls": steps_total,
        "target_valid_pct": TARGET_VALID_PCT,
        "seed": args.seed,
    }
    print(json.dumps(figures))
    return 0 if valid == count and sampled_valid == args.sampled else 1


if __name__ == "__main__":
    sys.exit(main())
