#!/usr/bin/env python3
"""Measure open-vocabulary object queries: top-1 accuracy on generated tabletop maps, and latency.

Generates maps of 3-12 objects (cube, cylinder, sphere, duck, tray, bowl; twelve colours; some with
open-vocabulary categories such as "cup" or "rubber duck", as a detector like OWLv2 names them),
picks a target in each, and writes queries from templates with synonyms and paraphrases that single
the target out: by attributes (colour, size, noun), by a spatial relation to an anchor object, or
by a superlative. Each query is checked against an independent ground-truth description of the
map (the generator's own synonym lists and geometric margins), so a query is only kept when exactly
one object fits it. Queries naming things that are not there ("the purple elephant") must return
nothing.

Prints a readable table and then, as its last line, one JSON object whose keys carry their units
(ARCHITECTURE.md, "Figures that tools can read"):

    .venv/bin/python benchmarks/query_eval.py [--quick] [--seed N] [--queries N]

``--quick`` runs 40 positive and 10 negative queries (the model load dominates, about 5-10 s).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modular_robot.core.colors import NAMED_COLORS
from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.query import query
from modular_robot.core.mapping.text_embedding import TextEmbedder
from modular_robot.core.perception.geometry import size_class

TARGET_TOP1_PCT = 95.0
COLORS = tuple(NAMED_COLORS)
COLOR_WORDS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet"], "blue": ["blue", "navy", "azure"],
    "green": ["green", "lime", "emerald"], "purple": ["purple", "violet", "magenta"],
    "yellow": ["yellow", "golden"], "orange": ["orange", "amber"], "pink": ["pink", "rose"],
    "cyan": ["cyan", "teal", "turquoise"], "gray": ["gray", "grey", "silver"],
    "brown": ["brown", "chocolate"], "white": ["white", "ivory"], "black": ["black", "ebony"],
}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "medium": ["medium", "medium-sized"],
              "large": ["large", "big"]}
# Category a detector reports -> the nouns a person would use for it.
CATEGORY_NOUNS: dict[str, list[str]] = {
    "cube": ["cube", "block", "brick", "toy block"],
    "block": ["block", "cube", "brick"],
    "cylinder": ["cylinder", "tube", "canister", "cylindrical object"],
    "cup": ["cup", "mug", "coffee mug", "teacup"],
    "can": ["can", "tin", "soda can", "tin can"],
    "sphere": ["sphere", "ball", "orb", "globe"],
    "ball": ["ball", "sphere", "orb"],
    "duck": ["duck", "rubber duck", "toy duck", "duckie", "toy"],
    "rubber duck": ["rubber duck", "duck", "duckie", "toy"],
    "tray": ["tray", "platter"],
    "bowl": ["bowl", "dish", "basin"],
}
# Shape (what the sim spawns) -> categories detectors call it, most often the first.
SHAPE_CATEGORIES: dict[str, list[str]] = {
    "cube": ["cube", "cube", "cube", "block"], "cylinder": ["cylinder", "cylinder", "cup", "can"],
    "sphere": ["sphere", "sphere", "ball"], "duck": ["duck", "duck", "rubber duck"],
    "tray": ["tray"], "bowl": ["bowl"],
}
# Words a person would accept for an object of a category: its own nouns and its shape's. A cup is
# also "the cylinder" to some, so "the cylinder" is not generated where a cup would make it ambiguous.
SHAPE_OF = {category: shape for shape, categories in SHAPE_CATEGORIES.items() for category in categories}
ACCEPTED_NOUNS = {category: set(nouns) | set(CATEGORY_NOUNS[SHAPE_OF[category]])
                  for category, nouns in CATEGORY_NOUNS.items()}
GENERIC_NOUNS = ["one", "object", "thing"]
RELATION_WORDS: dict[str, list[str]] = {
    "left_of": ["left of", "to the left of", "on the left side of"],
    "right_of": ["right of", "to the right of", "on the right side of"],
    "in_front_of": ["in front of"],
    "behind": ["behind", "in back of"],
    "near": ["next to", "near", "beside", "close to"],
    "in": ["in", "inside"],
}
# Superlative templates; {d} is the description ("red cube").
SUPERLATIVE_TEMPLATES: dict[str, list[str]] = {
    "largest": ["largest {d}", "biggest {d}"], "smallest": ["smallest {d}", "tiniest {d}"],
    "leftmost": ["leftmost {d}", "{d} on the left", "{d} furthest to the left"],
    "rightmost": ["rightmost {d}", "{d} on the right"],
    "closest": ["closest {d}", "nearest {d}", "{d} closest to you", "{d} nearest to me"],
    "farthest": ["farthest {d}", "furthest {d}", "{d} farthest from you"],
}
# Said between the target and the relation: "the cube that is left of the tray".
RELATION_LINKS = ["", "", "", "that is ", "which is ", "sitting "]
WRAPPERS = ["{q}", "{q}", "the {q}", "find the {q}", "where is the {q}", "pick up the {q}",
            "show me the {q}", "the {q} please"]
ABSENT_NOUNS = ["elephant", "giraffe", "laptop", "hammer", "sock", "pencil", "keyboard", "shoe",
                "umbrella", "guitar", "banana", "teapot"]
CONTAINERS = ("tray", "bowl")
# Margins that make a relation or superlative clear to a person; closer calls are not generated.
SIDE_MARGIN_M = 0.05
NEAR_MARGIN_M = 0.10
DISTANCE_MARGIN_M = 0.05
VOLUME_RATIO = 1.3


@dataclass
class Item:
    """A generated object: what the map holds plus the true shape."""

    obj: MapObject
    shape: str


@dataclass
class Case:
    """One query with its intended answer (None for a query that must find nothing)."""

    text: str
    kind: str
    target: str | None
    objects: list[MapObject]
    robot_pose: tuple[float, float, float] | None


# Map generation.

def _size_of(shape: str, rng: random.Random) -> np.ndarray:
    if shape == "cube":
        edge = rng.uniform(0.03, 0.07)
        return np.array([edge, edge, edge])
    if shape == "cylinder":
        diameter = rng.uniform(0.04, 0.08)
        return np.array([diameter, diameter, rng.uniform(diameter, 0.12)])
    if shape == "sphere":
        diameter = rng.uniform(0.03, 0.07)
        return np.array([diameter] * 3)
    if shape == "duck":
        length = rng.uniform(0.06, 0.10)
        return np.array([length, 0.75 * length, 0.9 * length])
    if shape == "tray":
        return np.array([rng.uniform(0.22, 0.30), rng.uniform(0.15, 0.20), 0.03])
    diameter = rng.uniform(0.12, 0.18)
    return np.array([diameter, diameter, 0.06])


def generate_map(rng: random.Random) -> list[Item]:
    """Return 3-12 non-overlapping objects on a table, small ones sometimes inside a container."""
    count = rng.randint(3, 12)
    items: list[Item] = []
    shapes = [rng.choice(("cube", "cube", "cylinder", "sphere", "duck", "tray", "bowl")) for _ in range(count)]
    # Containers first, so that small objects can be put inside them.
    shapes.sort(key=lambda s: s not in CONTAINERS)
    counters: Counter[str] = Counter()
    for shape in shapes:
        size = _size_of(shape, rng)
        yaw = rng.uniform(-math.pi / 2, math.pi / 2) if shape in ("tray", "duck") else 0.0
        containers = [it for it in items if it.shape in CONTAINERS]
        placed = None
        if shape not in CONTAINERS and containers and rng.random() < 0.3:
            host = rng.choice(containers)
            if not any(_inside(other.obj, host.obj) for other in items):
                placed = np.array([host.obj.position[0], host.obj.position[1], 0.01 + size[2] / 2])
        for _ in range(200):
            if placed is not None:
                break
            candidate = np.array([rng.uniform(0.3, 0.8), rng.uniform(-0.45, 0.45), size[2] / 2])
            radius = 0.5 * float(np.hypot(size[0], size[1]))
            if all(np.linalg.norm(candidate[:2] - other.obj.position[:2])
                   > radius + 0.5 * float(np.hypot(*other.obj.size[:2])) + 0.02 for other in items):
                placed = candidate
        if placed is None:
            continue
        color = rng.choice(COLORS)
        category = rng.choice(SHAPE_CATEGORIES[shape])
        size_word = size_class(size)
        counters[f"{color}_{category}"] += 1
        obj = MapObject(
            id=f"{color}_{category.replace(' ', '_')}_{counters[f'{color}_{category}']}",
            label=f"{size_word} {color} {category}", category=category, attributes=(color, size_word),
            color=color, position=placed, size=size, yaw=yaw, confidence=0.9, observations=20)
        items.append(Item(obj, shape))
    return items


def _inside(obj: MapObject, host: MapObject) -> bool:
    if obj is host:
        return False
    c, s = math.cos(host.yaw), math.sin(host.yaw)
    dx, dy = obj.position[:2] - host.position[:2]
    local = (c * dx + s * dy, -s * dx + c * dy)
    return abs(local[0]) < host.size[0] / 2 and abs(local[1]) < host.size[1] / 2 and obj.position[2] < 0.1


# Ground truth.

@dataclass(frozen=True)
class Description:
    """A ground-truth description: noun (None = any), colour, size class (None = any)."""

    noun: str | None = None
    color: str | None = None
    size: str | None = None

    def fits(self, obj: MapObject) -> bool:
        return ((self.noun is None or self.noun in ACCEPTED_NOUNS[obj.category])
                and (self.color is None or obj.color == self.color)
                and (self.size is None or size_class(obj.size) == self.size))

    def words(self, rng: random.Random) -> str:
        parts = []
        if self.size:
            parts.append(rng.choice(SIZE_WORDS[self.size]))
        if self.color:
            parts.append(rng.choice(COLOR_WORDS[self.color]))
        parts.append(self.noun if self.noun else rng.choice(GENERIC_NOUNS))
        return " ".join(parts)


def _robot_xy(obj: MapObject, pose: tuple[float, float, float] | None) -> np.ndarray:
    x, y, yaw = pose or (0.0, 0.0, 0.0)
    dx, dy = obj.position[0] - x, obj.position[1] - y
    return np.array([math.cos(yaw) * dx + math.sin(yaw) * dy, -math.sin(yaw) * dx + math.cos(yaw) * dy])


def _gap(a: MapObject, b: MapObject) -> float:
    distance = float(np.linalg.norm(a.position[:2] - b.position[:2]))
    return distance - 0.5 * float(np.hypot(*a.size[:2])) * 0.75 - 0.5 * float(np.hypot(*b.size[:2])) * 0.75


def _side(relation: str, a: MapObject, b: MapObject, pose) -> float:
    """Return the signed separation of ``a <relation> b`` in the robot's view (positive: holds)."""
    pa, pb = _robot_xy(a, pose), _robot_xy(b, pose)
    return {"left_of": pa[1] - pb[1], "right_of": pb[1] - pa[1],
            "in_front_of": pb[0] - pa[0], "behind": pa[0] - pb[0]}[relation]


def _describe_uniquely(target: MapObject, objects: list[MapObject], rng: random.Random,
                       allow_generic: bool = True) -> Description | None:
    """Return a random description that fits the target and nothing else, if one exists."""
    nouns = CATEGORY_NOUNS[target.category]
    options = []
    for noun in [rng.choice(nouns)] + ([None] if allow_generic else []):
        for color in (None, target.color):
            for size in (None, size_class(target.size)):
                if noun is None and color is None:
                    continue
                description = Description(noun, color, size)
                if [o for o in objects if description.fits(o)] == [target]:
                    options.append(description)
    if not options:
        return None
    # Prefer short descriptions, as people do, but keep some variety.
    options.sort(key=lambda d: (d.size is not None) + (d.color is not None) + (d.noun is None))
    return options[0] if rng.random() < 0.6 else rng.choice(options)


def _attribute_case(target, objects, rng, pose) -> tuple[str, str] | None:
    description = _describe_uniquely(target, objects, rng)
    return None if description is None else (description.words(rng), "attribute")


def _relation_case(target, objects, rng, pose) -> tuple[str, str] | None:
    shared = Description(rng.choice(CATEGORY_NOUNS[target.category]), rng.choice((None, target.color)))
    peers = [o for o in objects if shared.fits(o)]
    relations = list(RELATION_WORDS)
    rng.shuffle(relations)
    for relation in relations:
        for anchor in rng.sample(objects, len(objects)):
            if anchor is target or shared.fits(anchor):
                continue
            others = [o for o in peers if o is not target and o is not anchor]
            if relation == "in":
                holds = anchor.category in CONTAINERS and _inside(target, anchor)
                unique = holds and not any(_inside(o, anchor) for o in others)
            elif relation == "near":
                gap = _gap(target, anchor)
                holds = gap < 0.12
                unique = holds and all(_gap(o, anchor) > gap + NEAR_MARGIN_M for o in others)
            else:
                holds = _side(relation, target, anchor, pose) > SIDE_MARGIN_M
                unique = holds and all(_side(relation, o, anchor, pose) < 0.0 for o in others)
            if not unique or _inside(target, anchor) != (relation == "in"):
                continue
            anchor_description = _describe_uniquely(anchor, [o for o in objects if o is not target], rng,
                                                    allow_generic=False)
            if anchor_description is None:
                continue
            phrase = rng.choice(RELATION_WORDS[relation])
            link = rng.choice(RELATION_LINKS)
            return f"{shared.words(rng)} {link}{phrase} the {anchor_description.words(rng)}", "relation"
    return None


def _superlative_value(superlative: str, obj: MapObject, pose) -> float:
    """Return a value whose maximum is the superlative's winner."""
    xy = _robot_xy(obj, pose)
    return {"largest": float(np.prod(obj.size)), "smallest": -float(np.prod(obj.size)),
            "leftmost": xy[1], "rightmost": -xy[1], "closest": -float(np.hypot(*xy)),
            "farthest": float(np.hypot(*xy))}[superlative]


def _superlative_case(target, objects, rng, pose) -> tuple[str, str] | None:
    for _ in range(4):
        shared = Description(rng.choice(CATEGORY_NOUNS[target.category] + [None]),
                             rng.choice((None, target.color)))
        if shared.noun is None and shared.color is None:
            continue
        peers = [o for o in objects if shared.fits(o)]
        if len(peers) < 2:
            continue
        for superlative in rng.sample(list(SUPERLATIVE_TEMPLATES), len(SUPERLATIVE_TEMPLATES)):
            values = sorted(((_superlative_value(superlative, o, pose), id(o)) for o in peers), reverse=True)
            best, second = values[0][0], values[1][0]
            if values[0][1] != id(target):
                continue
            if superlative in ("largest", "smallest"):
                clear = abs(best) >= VOLUME_RATIO * abs(second) if superlative == "largest" \
                    else abs(second) >= VOLUME_RATIO * abs(best)
            else:
                clear = best - second >= DISTANCE_MARGIN_M
            if clear:
                template = rng.choice(SUPERLATIVE_TEMPLATES[superlative])
                return template.format(d=shared.words(rng)), "superlative"
    return None


BUILDERS: dict[str, Callable] = {"attribute": _attribute_case, "relation": _relation_case,
                                 "superlative": _superlative_case}


def generate_cases(positives: int, negatives: int, seed: int) -> list[Case]:
    """Return ``positives`` unambiguous queries and ``negatives`` queries that must find nothing."""
    rng = random.Random(seed)
    cases: list[Case] = []
    kinds = list(BUILDERS)
    while len(cases) < positives:
        items = generate_map(rng)
        objects = [it.obj for it in items]
        pose = rng.choice((None, None, None, (1.3, 0.0, math.pi)))
        for _ in range(3):
            kind = kinds[len(cases) % len(kinds)]
            target = rng.choice(objects)
            made = BUILDERS[kind](target, objects, rng, pose)
            if made is None:
                continue
            text, kind = made
            kind = "open_vocabulary" if target.category not in SHAPE_CATEGORIES and kind == "attribute" else kind
            cases.append(Case(rng.choice(WRAPPERS).format(q=text).replace("the the ", "the "),
                              kind, target.id, objects, pose))
            if len(cases) >= positives:
                break
    for _ in range(negatives):
        objects = [it.obj for it in generate_map(rng)]
        present = {o.color for o in objects}
        color = rng.choice([c for c in COLORS if c not in present] or [None])
        noun = rng.choice(ABSENT_NOUNS)
        text = f"the {rng.choice(COLOR_WORDS[color]) + ' ' if color else ''}{noun}"
        cases.append(Case(text, "no_match", None, objects, None))
    return cases


# Evaluation.

def cosine_baseline(cases: list[Case], embedder: TextEmbedder) -> float:
    """Return the top-1 % of ranking objects by MiniLM cosine between query and label alone."""
    positive = [case for case in cases if case.target is not None]
    correct = 0
    for case in positive:
        scores = embedder.similarities(case.text, [o.label for o in case.objects])
        correct += case.objects[int(np.argmax(scores))].id == case.target
    return 100.0 * correct / len(positive)


def evaluate(cases: list[Case], embedder: TextEmbedder) -> dict:
    """Run every case; return accuracy per kind, latencies and failures."""
    hits: dict[str, list[bool]] = defaultdict(list)
    latencies: list[float] = []
    failures: list[str] = []
    for case in cases:
        start = time.perf_counter()
        results = query(case.objects, case.text, max_results=3, similarity=embedder.similarity,
                        robot_pose=case.robot_pose)
        latencies.append((time.perf_counter() - start) * 1000.0)
        if case.target is None:
            ok = not results
        else:
            ok = bool(results) and results[0][0].id == case.target
        hits[case.kind].append(ok)
        if not ok:
            got = ", ".join(f"{o.id}:{s:.2f}" for o, s in results) or "nothing"
            failures.append(f"[{case.kind}] {case.text!r} -> {got} (want {case.target})")
    return {"hits": hits, "latencies": np.array(latencies), "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 + 10 queries, for a smoke test")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=300, help="positive queries (>= 200 for the figure)")
    args = parser.parse_args()
    positives, negatives = (40, 10) if args.quick else (max(args.queries, 1), 50)

    cases = generate_cases(positives, negatives, args.seed)
    embedder = TextEmbedder()
    start = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - start
    outcome = evaluate(cases, embedder)
    hits, latencies = outcome["hits"], outcome["latencies"]
    baseline = cosine_baseline(cases, embedder)

    positive = [ok for kind, oks in hits.items() if kind != "no_match" for ok in oks]
    maps = len({id(case.objects) for case in cases})
    print(f"query_eval: {len(positive)} positive + {len(hits['no_match'])} no-match queries "
          f"over {maps} generated maps (seed {args.seed})")
    print(f"{'kind':<18}{'queries':>8}{'top-1 %':>10}")
    for kind in ("attribute", "open_vocabulary", "relation", "superlative", "no_match"):
        oks = hits.get(kind, [])
        rate = 100.0 * sum(oks) / len(oks) if oks else float("nan")
        print(f"{kind:<18}{len(oks):>8}{rate:>10.1f}")
    top1 = 100.0 * sum(positive) / len(positive)
    print(f"{'all positive':<18}{len(positive):>8}{top1:>10.1f}   (target >= {TARGET_TOP1_PCT:.0f})")
    print(f"{'cosine baseline':<18}{len(positive):>8}{baseline:>10.1f}   (MiniLM query vs label only)")
    print(f"latency per query: p50 {np.percentile(latencies, 50):.2f} ms, "
          f"p95 {np.percentile(latencies, 95):.2f} ms, max {latencies.max():.1f} ms "
          f"(MiniLM load {load_s:.1f} s, embeddings cached per string)")
    print("examples:")
    for case in cases[:: max(len(cases) // 8, 1)][:8]:
        print(f"  [{case.kind}] {case.text!r} -> {case.target}")
    if outcome["failures"]:
        print(f"failures ({len(outcome['failures'])}):")
        for line in outcome["failures"][:15]:
            print(f"  {line}")

    def rate(kind: str) -> float | None:
        oks = hits.get(kind, [])
        return round(100.0 * sum(oks) / len(oks), 2) if oks else None

    figures = {
        "queries_positive": len(positive),
        "queries_no_match": len(hits["no_match"]),
        "maps": maps,
        "top1_accuracy_pct": round(top1, 2),
        "top1_accuracy_attribute_pct": rate("attribute"),
        "top1_accuracy_open_vocabulary_pct": rate("open_vocabulary"),
        "top1_accuracy_relation_pct": rate("relation"),
        "top1_accuracy_superlative_pct": rate("superlative"),
        "top1_accuracy_cosine_baseline_pct": round(baseline, 2),
        "no_match_rejected_pct": rate("no_match"),
        "query_latency_ms_p50": round(float(np.percentile(latencies, 50)), 3),
        "query_latency_ms_p95": round(float(np.percentile(latencies, 95)), 3),
        "model_load_s": round(load_s, 2),
        "target_top1_pct": TARGET_TOP1_PCT,
        "seed": args.seed,
        "quick": args.quick,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
