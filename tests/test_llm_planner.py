"""What the LLM backends share: plan schema, scene elimination, prompt, reply checks; and the benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.text_embedding import TextEmbedder
from modular_robot.planning.dialogue import Clarification, Dialogue
from modular_robot.planning.llm import (
    MAX_STEPS,
    MAX_TEXT_CHARS,
    InvalidPlan,
    build_prompt,
    max_plan_bytes,
    parse_plan,
    plan_schema,
    relevant_objects,
)
from modular_robot.planning.plan import PlanRequest
from modular_robot.skills.library import SKILLS

REPO = Path(__file__).resolve().parents[1]
SCENE = [
    MapObject("red_cube_1", "small red cube", "cube", color="red", position=[0.5, 0.1, 0.025], size=[0.05] * 3),
    MapObject("crimson_ball_1", "red sphere", "sphere", color="red", position=[0.62, 0.0, 0.025], size=[0.05] * 3),
    MapObject("blue_tray_1", "large blue tray", "tray", color="blue", position=[0.45, -0.2, 0.01],
              size=[0.3, 0.2, 0.02]),
    MapObject("green_cylinder_1", "green cylinder", "cylinder", color="green", position=[0.4, 0.3, 0.05],
              size=[0.05, 0.05, 0.1]),
    MapObject("yellow_duck_1", "yellow rubber duck", "rubber duck", color="yellow", position=[0.7, 0.2, 0.04],
              size=[0.08, 0.06, 0.08]),
]


@pytest.fixture(scope="module")
def similarity():
    embedder = TextEmbedder()
    embedder.load()
    return embedder.similarity


def ids(objects) -> set[str]:
    return {o.id for o in objects}


def test_scene_keeps_named_objects_and_containers_only(similarity):
    scene, filtered = relevant_objects(PlanRequest("put the crimson block in the tray", SCENE, Dialogue()), similarity)
    # "crimson" is red and "block" a cube (query's synonyms); the tray is named and a container.
    assert filtered and ids(scene) == {"red_cube_1", "crimson_ball_1", "blue_tray_1"}

    scene, _ = relevant_objects(PlanRequest("grab the rubber duckie", SCENE, Dialogue()), similarity)
    assert ids(scene) == {"yellow_duck_1"}


def test_scene_adds_dialogue_referents_and_held_object_and_falls_back_to_the_map(similarity):
    dialogue = Dialogue(referents=("green_cylinder_1",),
                        pending=Clarification("pick the red one", ("red_cube_1", "crimson_ball_1")))
    scene, _ = relevant_objects(PlanRequest("the left one", SCENE, dialogue, held="yellow_duck_1"), similarity)
    assert ids(scene) == {"green_cylinder_1", "red_cube_1", "crimson_ball_1", "yellow_duck_1"}

    scene, filtered = relevant_objects(PlanRequest("hello there", SCENE, Dialogue()), similarity)
    assert not filtered and ids(scene) == ids(SCENE)


def test_prompt_lists_scene_with_rounded_positions_and_only_the_robots_skills(similarity):
    request = PlanRequest("push the green cylinder", SCENE, Dialogue(), skills=("push", "say"))
    prompt = build_prompt(request, similarity=similarity)
    system, user = (m["content"] for m in prompt.messages)
    assert "- push:" in system and "- say:" in system and "- pick:" not in system
    assert "- green_cylinder_1: green cylinder (cylinder, green) at (0.40, 0.30, 0.05) m, size 0.05 x 0.05 x 0.10 m" \
        in user
    assert "red_cube_1" not in user and "(4 other objects in the map are unrelated" in user
    assert prompt.object_ids == ("green_cylinder_1",)


def test_decoding_schema_admits_only_valid_bounded_plans():
    schema = plan_schema(SKILLS, ["red_cube_1", "blue_tray_1"])
    validator = jsonschema.Draft202012Validator(schema)
    good = {"kind": "execute", "reply": "ok", "candidates": [],
            "steps": [{"skill": "push", "args": {"object": "red_cube_1", "direction": "left", "distance": 0.15}},
                      {"skill": "navigate_to", "args": {"pose": [1.0, -0.5, 3.1]}}]}
    assert validator.is_valid(good)
    bad_steps = [
        {"skill": "pick", "args": {"object": "green_cylinder_1"}},  # not in the scene
        {"skill": "push", "args": {"object": "red_cube_1", "direction": "left", "distance": 0.5}},  # out of range
        {"skill": "navigate_to", "args": {"object": "red_cube_1", "pose": [1.0, 0.0]}},  # both goals
        {"skill": "fly", "args": {}},
    ]
    for step in bad_steps:
        assert not validator.is_valid(dict(good, steps=[step])), step
    assert not validator.is_valid(dict(good, steps=[]))  # execute needs a step
    assert not validator.is_valid(dict(good, kind="answer"))  # answers have none
    assert not validator.is_valid(dict(good, steps=[good["steps"][0]] * (MAX_STEPS + 1)))

    # The longest plan the schema admits fits the computed budget.
    say = {"skill": "say", "args": {"text": "\u00e9" * MAX_TEXT_CHARS}}
    longest = {"kind": "not_understood", "steps": [], "reply": "\u00e9" * MAX_TEXT_CHARS,
               "candidates": ["blue_tray_1"] * 5}
    long_execute = dict(longest, kind="execute", steps=[say] * MAX_STEPS)
    for plan in (longest, long_execute):
        assert validator.is_valid(plan)
        assert len(json.dumps(plan, separators=(",", ":")).encode()) <= max_plan_bytes(schema)


def test_schema_without_objects_offers_only_skills_that_need_none():
    schema = plan_schema(SKILLS, [])
    variants = schema["anyOf"][0]["properties"]["steps"]["items"]["anyOf"]
    step_skills = {v["properties"]["skill"]["enum"][0] for v in variants}
    # pick, place, place_at and push name objects; navigate_to keeps its pose goal.
    assert step_skills == {"move_arm_home", "open_gripper", "close_gripper", "say", "navigate_to", "search"}
    assert schema["anyOf"][1]["properties"]["candidates"]["maxItems"] == 0


def test_parse_plan_rejects_what_validate_plan_or_the_schema_reject(similarity):
    request = PlanRequest("pick up the red cube", SCENE, Dialogue(), skills=("pick", "place", "say"))
    schema = plan_schema(request.skills, ["red_cube_1"], form="api")
    plan = parse_plan('{"kind": "execute", "steps": [{"skill": "pick", "args": {"object": "red_cube_1"}}], '
                      '"reply": "", "candidates": []}', schema, request)
    assert plan.steps[0].args == {"object": "red_cube_1"}
    cases = {
        '{"kind": "execute", "steps": [': "not valid JSON",
        '{"kind": "execute", "steps": [], "reply": "", "candidates": []}': "needs at least one step",
        '{"kind": "execute", "steps": [{"skill": "push", "args": {"object": "red_cube_1", "direction": "left", '
        '"distance": 0.1}}], "reply": "", "candidates": []}': "schema",
        '{"kind": "answer", "steps": [], "reply": "", "candidates": ["blue_tray_1"]}': "schema",
    }
    for reply, why in cases.items():
        with pytest.raises(InvalidPlan, match=why):
            parse_plan(reply, schema, request)


def test_benchmark_runs_and_prints_figures_as_last_line():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "llm_planner_eval.py"), "--generations", "5",
                             "--sampled", "5"],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["generations"] == 5
    assert figures["valid_plans_pct"] == 100.0
    assert figures["sampled_generations"] == 5 and figures["sampled_valid_plans_pct"] == 100.0
    assert figures["tokens_per_s_constrained"] > 0 and figures["tokens_per_s_unconstrained"] > 0
    assert figures["prompt_tokens_median_eliminated"] <= figures["prompt_tokens_median_whole_map"]
    assert "schema-valid plans %" in result.stdout
