"""Seeded scene generation: determinism, and the placement constraints that evaluation relies on."""

import itertools
import math

import pytest
import yaml

from modular_robot.core.colors import NAMED_COLORS
from modular_robot.scenarios.scenario import object_extent, parse_scenario
from modular_robot.scenarios.scene_gen import (
    DEFAULT_GAP_M,
    FLOOR_REGION,
    MAX_OBJECT_SIZE_M,
    MIN_OBJECT_SIZE_M,
    SMALL_OBJECT_TYPES,
    TABLETOP_REGION,
    floor_scene,
    footprint_radius,
    navigation_trial_scene,
    skill_trial_scene,
    tabletop_scene,
)

SEEDS = range(200)


def _as_yaml(scenario) -> str:
    """Write a generated scenario in the file format, to check that the loader accepts it."""
    objects = []
    for o in scenario.objects:
        entry = {"id": o.id, "type": o.type, "color": o.color, "size": list(o.size) if isinstance(o.size, tuple)
                 else o.size, "pose": list(o.pose)}
        if o.height is not None:
            entry["height"] = o.height
        if o.static:
            entry["static"] = True
        objects.append(entry)
    return yaml.safe_dump({"name": scenario.name, "category": scenario.category, "robot": scenario.robot,
                           "seed": scenario.seed, "objects": objects, "commands": [], "expect": scenario.expect})


def _assert_apart(objects, gap):
    for a, b in itertools.combinations(objects, 2):
        distance = math.hypot(a.pose.x - b.pose.x, a.pose.y - b.pose.y)
        assert distance >= footprint_radius(a) + footprint_radius(b) + gap - 1e-3, (a.id, b.id)


def test_same_seed_same_scene_and_other_seeds_differ():
    assert tabletop_scene(7) == tabletop_scene(7)
    assert floor_scene(7) == floor_scene(7)
    assert tabletop_scene(7) != tabletop_scene(8)
    assert floor_scene(7) != floor_scene(8)


@pytest.mark.parametrize("seed", SEEDS)
def test_tabletop_objects_are_in_reach_in_view_and_apart(seed):
    scenario = tabletop_scene(seed)
    assert scenario.robot == "panda_tabletop" and scenario.camera == "fixed"
    small = [o for o in scenario.objects if o.type in SMALL_OBJECT_TYPES]
    assert 3 <= len(small) <= 12
    assert len(scenario.objects) - len(small) <= 1
    for o in scenario.objects:
        assert o.color in NAMED_COLORS
        assert o.pose.z == 0.0
        assert TABLETOP_REGION.contains(o.pose.x, o.pose.y, footprint_radius(o) - 1e-3), o
    for o in small:
        assert MIN_OBJECT_SIZE_M <= max(object_extent(o)) <= max(MAX_OBJECT_SIZE_M, 0.1)
        assert MIN_OBJECT_SIZE_M <= o.size <= MAX_OBJECT_SIZE_M
        if o.type == "cylinder":
            assert o.height >= 0.6 * o.size  # never a low disc that reads as "flat"
    _assert_apart(scenario.objects, DEFAULT_GAP_M)
    assert len({o.id for o in scenario.objects}) == len(scenario.objects)


def test_generated_scenes_cover_every_type_and_colour():
    objects = [o for seed in range(50) for o in tabletop_scene(seed).objects]
    assert {o.type for o in objects} == {*SMALL_OBJECT_TYPES, "tray", "bowl"}
    assert {o.color for o in objects} == set(NAMED_COLORS)


def test_object_count_and_containers_can_be_fixed():
    scenario = tabletop_scene(3, n_objects=12, containers=True)
    assert len(scenario.objects) == 13
    assert scenario.objects[0].type in ("tray", "bowl")
    assert len(tabletop_scene(3, n_objects=4, containers=False).objects) == 4
    with pytest.raises(ValueError):
        tabletop_scene(0, n_objects=0)
    with pytest.raises(ValueError):
        tabletop_scene(0, n_objects=12, gap=0.3)


@pytest.mark.parametrize("seed", range(100))
def test_floor_scene_puts_objects_on_the_floor_and_on_the_table(seed):
    scenario = floor_scene(seed)
    assert scenario.robot == "husky_base"
    table = scenario.objects[0]
    assert table.type == "table" and table.static
    sx, sy, sz = table.size
    on_table = [o for o in scenario.objects[1:] if o.pose.z > 0.0]
    on_floor = [o for o in scenario.objects[1:] if o.pose.z == 0.0]
    assert 1 <= len(on_table) <= 4 and 2 <= len(on_floor) <= 6
    for o in on_table:
        assert o.pose.z == sz
        assert abs(o.pose.x - table.pose.x) + footprint_radius(o) <= sx / 2
        assert abs(o.pose.y - table.pose.y) + footprint_radius(o) <= sy / 2
    for o in on_floor:
        assert FLOOR_REGION.contains(o.pose.x, o.pose.y, footprint_radius(o) - 1e-3)
        clearance = math.hypot(o.pose.x - table.pose.x, o.pose.y - table.pose.y)
        assert clearance >= math.hypot(sx, sy) / 2 + footprint_radius(o)
    _assert_apart(on_table, DEFAULT_GAP_M)
    _assert_apart(on_floor, DEFAULT_GAP_M)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("target_type", SMALL_OBJECT_TYPES)
def test_skill_trial_scenes_name_roles_and_fit_the_gripper(seed, target_type):
    place = skill_trial_scene(seed, target_type, "place")
    roles = {o.id: o for o in place.objects}
    assert roles["target"].type == target_type and 0.035 <= roles["target"].size <= 0.06
    assert roles["container"].type == ("tray", "bowl")[seed % 2]
    assert set(roles) - {"target", "container"} <= {"other_1", "other_2"}
    for o in place.objects:
        assert TABLETOP_REGION.contains(o.pose.x, o.pose.y, footprint_radius(o))
    _assert_apart(place.objects, DEFAULT_GAP_M)
    stack = {o.id: o for o in skill_trial_scene(seed, target_type, "stack").objects}
    assert stack["target"].type == stack["support"].type == "cube" and stack["target"].size < stack["support"].size
    assert skill_trial_scene(seed, target_type, "place") == place


def test_skill_trial_scene_rejects_unknown_type_or_task():
    with pytest.raises(ValueError, match="target_type"):
        skill_trial_scene(0, "tray", "place")
    with pytest.raises(ValueError, match="task"):
        skill_trial_scene(0, "cube", "juggle")


@pytest.mark.parametrize("seed", range(40))
def test_navigation_trial_puts_the_target_across_the_room_behind_obstacles(seed):
    scene = navigation_trial_scene(seed)
    objects = {o.id: o for o in scene.objects}
    target = objects.pop("target")
    assert 3.0 <= math.hypot(target.pose.x, target.pose.y) <= 5.0
    assert abs(math.atan2(target.pose.y, target.pose.x)) <= 0.3
    assert 1 <= len(objects) <= 3
    for obstacle in objects.values():
        assert obstacle.static and 1.3 <= obstacle.pose.x < target.pose.x
        assert math.hypot(obstacle.pose.x - target.pose.x, obstacle.pose.y - target.pose.y) >= 0.6


@pytest.mark.parametrize("scene", [tabletop_scene(11), tabletop_scene(5, 12, containers=True), floor_scene(11),
                                   skill_trial_scene(3, "duck", "place"), navigation_trial_scene(4)])
def test_generated_scenarios_pass_the_scenario_loader(scene):
    loaded = parse_scenario(_as_yaml(scene))
    assert loaded.expect == scene.expect
    assert [(o.id, o.type, o.color, o.pose) for o in loaded.objects] == [
        (o.id, o.type, o.color, o.pose) for o in scene.objects]
