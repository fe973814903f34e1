"""Open-vocabulary queries over map objects, with the real MiniLM model (loaded once per session)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.query import (
    ObjectDescription,
    ParsedQuery,
    parse_query,
    query,
)
from modular_robot.core.mapping.text_embedding import default_embedder
from modular_robot.core.perception.geometry import size_class
from modular_robot.planning.rules_scene import best_group

REPO = Path(__file__).resolve().parents[1]


def obj(object_id, category, color, position, size, yaw=0.0, label=None):
    size = [size] * 3 if isinstance(size, float) else size
    size_word = size_class(size)
    return MapObject(object_id, label or f"{size_word} {color} {category}", category, (color, size_word), color,
                     position, size, yaw)


# A tabletop in front of the robot (x forward, y left); z is the box centre, the table at z = 0.
TRAY = obj("gray_tray_1", "tray", "gray", (0.45, -0.25, 0.015), [0.28, 0.18, 0.03])
BOWL = obj("white_bowl_1", "bowl", "white", (0.70, 0.05, 0.03), [0.15, 0.15, 0.06])
RED_SMALL = obj("red_cube_1", "cube", "red", (0.50, 0.10, 0.015), 0.03)
RED_LARGE = obj("red_cube_2", "cube", "red", (0.45, 0.30, 0.04), 0.08)
BLUE = obj("blue_cube_1", "cube", "blue", (0.35, -0.05, 0.02), 0.04)
IN_TRAY = obj("green_sphere_1", "sphere", "green", (0.47, -0.27, 0.035), 0.04)
DUCK = obj("yellow_duck_1", "duck", "yellow", (0.62, 0.25, 0.04), [0.09, 0.07, 0.08], yaw=0.4)
CYLINDER = obj("orange_cylinder_1", "cylinder", "orange", (0.30, 0.20, 0.05), [0.05, 0.05, 0.10])
SCENE = [TRAY, BOWL, RED_SMALL, RED_LARGE, BLUE, IN_TRAY, DUCK, CYLINDER]


@pytest.fixture(scope="module")
def similarity():
    embedder = default_embedder()
    embedder.load()
    return embedder.similarity


def top(text, similarity, objects=SCENE, **kwargs):
    results = query(objects, text, similarity=similarity, **kwargs)
    return results[0][0].id if results else None


@pytest.mark.parametrize("text, expected", [
    ("the duck", "yellow_duck_1"),
    ("the rubber duck", "yellow_duck_1"),
    ("the toy", "yellow_duck_1"),
    ("the bowl", "white_bowl_1"),
    ("the dish", "white_bowl_1"),
    ("the platter", "gray_tray_1"),
    ("the ball", "green_sphere_1"),
    ("the orb", "green_sphere_1"),
    ("the emerald ball", "green_sphere_1"),
    ("the lime sphere", "green_sphere_1"),
    ("the can", "orange_cylinder_1"),
    ("the tube", "orange_cylinder_1"),
    ("the amber cylinder", "orange_cylinder_1"),
    ("the navy block", "blue_cube_1"),
    ("the azure brick", "blue_cube_1"),
    ("the blue one", "blue_cube_1"),
    ("Find the NAVY cube, please!", "blue_cube_1"),
    ("the silver tray", "gray_tray_1"),
    ("the grey container", "gray_tray_1"),
])
def test_synonyms_and_colours(similarity, text, expected):
    assert top(text, similarity) == expected


@pytest.mark.parametrize("text, expected", [
    ("the small red cube", "red_cube_1"),
    ("the little crimson block", "red_cube_1"),
    ("the tiny scarlet cube", "red_cube_1"),
    ("the large red cube", "red_cube_2"),
    ("the big crimson block", "red_cube_2"),
])
def test_size_words(similarity, text, expected):
    assert top(text, similarity) == expected


@pytest.mark.parametrize("text, expected", [
    ("the cube left of the tray", "blue_cube_1"),
    ("the red cube to the left of the duck", "red_cube_2"),
    ("the cube right of the small red cube", "blue_cube_1"),
    ("the red cube on the right side of the big red cube", "red_cube_1"),
    ("the cube in front of the tray", "blue_cube_1"),
    ("the cube behind the blue cube", "red_cube_1"),
    ("the cube next to the bowl", "red_cube_1"),
    ("the red block near the duck", "red_cube_2"),
    ("the ball in the tray", "green_sphere_1"),
    ("the sphere on the tray", "green_sphere_1"),
    ("the thing inside the tray", "green_sphere_1"),
    ("the cube that is left of the tray", "blue_cube_1"),
])
def test_spatial_relations(similarity, text, expected):
    assert top(text, similarity) == expected


@pytest.mark.parametrize("text, expected", [
    ("the largest object", "gray_tray_1"),
    ("the biggest cube", "red_cube_2"),
    ("the smallest cube", "red_cube_1"),
    ("the leftmost cube", "red_cube_2"),
    ("the rightmost cube", "blue_cube_1"),
    ("the cube on the left", "red_cube_2"),
    ("the cube furthest to the right", "blue_cube_1"),
    ("the closest cube", "blue_cube_1"),
    ("the nearest cube to the robot", "blue_cube_1"),
    ("the farthest cube", "red_cube_2"),
    ("the cube closest to the bowl", "red_cube_1"),
    ("the cube farthest from the bowl", "blue_cube_1"),
    ("the tallest object", "orange_cylinder_1"),
])
def test_superlatives(similarity, text, expected):
    assert top(text, similarity) == expected


def test_robot_pose_defines_left_and_right(similarity):
    # Standing across the table, facing the robot's start: left and right swap, front and back too.
    across = (1.2, 0.0, math.pi)
    assert top("the leftmost cube", similarity, robot_pose=across) == "blue_cube_1"
    assert top("the cube left of the tray", similarity, robot_pose=across) is None
    assert top("the closest cube", similarity, robot_pose=across) == "red_cube_1"
    assert top("the cube behind the tray", similarity, robot_pose=across) == "blue_cube_1"


@pytest.mark.parametrize("text", [
    "the purple elephant",
    "the giraffe",
    "the green cube",
    "the pink duck",
    "the laptop",
    "the cube left of the giraffe",
    "the duck in the bowl",
    "",
])
def test_nothing_like_it_returns_nothing(similarity, text):
    assert query(SCENE, text, similarity=similarity) == []


def test_a_tray_in_view_is_the_tray_and_a_flat_object_only_stands_in_for_a_missing_one(similarity):
    flat = obj("red_flat_1", "flat", "red", (2.3, 0.7, 0.42), [0.2, 0.15, 0.03], label="large red flat object")
    # The planner asks "which one?" when several objects fit as well as the best (best_group).
    assert [o.id for o, _ in best_group(query([TRAY, flat], "the tray", similarity=similarity))] == ["gray_tray_1"]
    assert [o.id for o, _ in best_group(query([flat, BLUE], "the tray", similarity=similarity))] == ["red_flat_1"]


def test_the_only_duck_matches_even_in_a_sparse_map(similarity):
    assert top("the duck", similarity, objects=[DUCK]) == "yellow_duck_1"
    assert top("a duck", similarity, objects=[TRAY, DUCK]) == "yellow_duck_1"
    assert query([], "the duck", similarity=similarity) == []


def test_open_vocabulary_categories_match_through_the_embedding(similarity):
    cup = obj("cup_1", "cup", "white", (0.5, 0.0, 0.04), [0.07, 0.07, 0.08], label="cup")
    stapler = obj("stapler_1", "stapler", "black", (0.5, 0.2, 0.02), [0.15, 0.04, 0.04], label="stapler")
    objects = [cup, stapler, RED_SMALL]
    assert top("the mug", similarity, objects=objects) == "cup_1"
    assert top("the coffee mug", similarity, objects=objects) == "cup_1"
    assert top("the teacup", similarity, objects=objects) == "cup_1"
    assert top("the black stapler", similarity, objects=objects) == "stapler_1"
    assert top("the banana", similarity, objects=objects) is None


def test_scores_are_sorted_bounded_and_limited(similarity):
    results = query(SCENE, "the cube", max_results=10, similarity=similarity)
    assert [o.id for o, _ in results][:1] and {o.id for o, _ in results} == {
        "red_cube_1", "red_cube_2", "blue_cube_1"}
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert len(query(SCENE, "the cube", max_results=2, similarity=similarity)) == 2
    assert len(query(SCENE, "the cube", max_results=0, similarity=similarity)) == 3


def test_default_similarity_is_the_shared_minilm(similarity):
    assert top("the crimson block", None) == "red_cube_1"


def test_parse_query():
    assert parse_query("the small crimson block to the left of the tray") == ParsedQuery(
        ObjectDescription("block", ("red",), "small"), "left_of", ObjectDescription("tray"))
    assert parse_query("the cube on the left") == ParsedQuery(ObjectDescription("cube", superlative="leftmost"))
    assert parse_query("the cube on the left of the bowl").relation == "left_of"
    assert parse_query("the cube in front").target.superlative == "frontmost"
    assert parse_query("the ball in front of the bowl").relation == "in_front_of"
    assert parse_query("the ball nearest the bowl") == ParsedQuery(
        ObjectDescription("ball", superlative="closest"), None, ObjectDescription("bowl"))
    assert parse_query("the cube on the table") == ParsedQuery(ObjectDescription("cube"))
    closest_to_me = parse_query("the cube closest to me")
    assert closest_to_me.anchor_is_robot and closest_to_me.target.superlative == "closest"
    assert parse_query("red cubes").target == ObjectDescription("cubes", ("red",))
    assert parse_query("the dark blue rubber duck").target == ObjectDescription("rubber duck", ("blue",))
    assert parse_query("the cube right next to the tray").relation == "near"
    assert parse_query("the cube furthest to the left").target == ObjectDescription("cube", superlative="leftmost")
    # In front of the robot is ahead of it: measured from the robot, that is "behind".
    ahead = parse_query("the cube in front of you")
    assert ahead.anchor_is_robot and ahead.relation == "behind"


def test_benchmark_quick_prints_figures_as_last_line():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "query_eval.py"), "--quick"],
                            cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) > 5
    figures = json.loads(lines[-1])
    for key in ("top1_accuracy_pct", "top1_accuracy_attribute_pct", "top1_accuracy_relation_pct",
                "top1_accuracy_superlative_pct", "top1_accuracy_cosine_baseline_pct", "no_match_rejected_pct",
                "query_latency_ms_p50",
                "query_latency_ms_p95", "model_load_s"):
        assert isinstance(figures[key], (int, float)) and figures[key] >= 0.0, key
    assert figures["queries_positive"] == 40 and figures["queries_no_match"] == 10
    assert 3 <= figures["maps"] <= 50
    assert figures["quick"] is True
    assert 0.0 <= figures["top1_accuracy_pct"] <= 100.0
