"""The rules planner on a robot with an arm on a mobile base: drives up to objects out of the arm's reach."""

import pytest

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.text_embedding import default_embedder
from modular_robot.core.perception.geometry import size_class
from modular_robot.planning.dialogue import Dialogue
from modular_robot.planning.plan import Call, PlanRequest, validate_plan
from modular_robot.planning.rules import RulesPlanner
from modular_robot.skills.library import SKILLS


def obj(object_id, category, color, position, size):
    size = [size] * 3 if isinstance(size, float) else size
    return MapObject(object_id, f"{size_class(size)} {color} {category}", category, (color, size_class(size)), color,
                     position, size)


# Two tables out of reach of the robot at the origin: the cubes on one, the tray on the other.
TRAY = obj("gray_tray_1", "tray", "gray", (1.30, -0.40, 0.42), [0.24, 0.24, 0.05])
RED = obj("red_cube_1", "cube", "red", (2.06, 0.60, 0.425), 0.05)
BLUE = obj("blue_cylinder_1", "cylinder", "blue", (2.30, 0.75, 0.425), 0.05)
# Within the arm's reach from the origin.
NEAR_GREEN = obj("green_cube_1", "cube", "green", (0.65, 0.10, 0.025), 0.05)
SCENE = [TRAY, RED, BLUE, NEAR_GREEN]
MOBILE = tuple(SKILLS)
ARM_ONLY = tuple(s for s in SKILLS if s not in ("navigate_to", "search"))
HOME = Call("move_arm_home", {})


@pytest.fixture(scope="module")
def planner():
    embedder = default_embedder()
    embedder.load()
    return RulesPlanner(embedder.similarity)


def plan(planner, text, skills=MOBILE, **kwargs):
    request = PlanRequest(text, SCENE, Dialogue(), skills, **kwargs)
    result = planner.plan(request)
    if result.kind == "execute":
        assert validate_plan(result, SCENE, skills) == []
    return result


def drive(object_id):
    return Call("navigate_to", {"object": object_id})


def pick(object_id):
    return Call("pick", {"object": object_id})


def place(object_id, target):
    return Call("place", {"object": object_id, "relation": "in", "target": target})


@pytest.mark.parametrize("text, mover", [
    ("put the red cube in the tray", "red_cube_1"),
    ("bring the red cube from the table to the tray", "red_cube_1"),
    ("fetch the blue cylinder into the tray", "blue_cylinder_1"),
])
def test_a_fetch_drives_to_the_object_then_to_the_tray_with_the_arm_home(planner, text, mover):
    result = plan(planner, text)
    assert result.kind == "execute"
    assert result.steps == (HOME, drive(mover), pick(mover), HOME, drive("gray_tray_1"), place(mover, "gray_tray_1"))
    assert "drive to the large gray tray" in result.reply


def test_two_fetches_drive_back_to_each_object(planner):
    result = plan(planner, "put the red cube in the tray, then put the blue cylinder in the tray")
    assert result.steps == (HOME, drive("red_cube_1"), pick("red_cube_1"), HOME, drive("gray_tray_1"),
                            place("red_cube_1", "gray_tray_1"), HOME, drive("blue_cylinder_1"),
                            pick("blue_cylinder_1"), HOME, drive("gray_tray_1"),
                            place("blue_cylinder_1", "gray_tray_1"))


def test_an_object_in_reach_of_the_start_needs_no_drive(planner):
    assert plan(planner, "pick up the green cube").steps == (pick("green_cube_1"),)
    # Once the base has driven off, the start's reach no longer counts.
    result = plan(planner, "pick up the red cube and then put it in the tray")
    assert result.steps[:3] == (HOME, drive("red_cube_1"), pick("red_cube_1"))


def test_reach_is_measured_from_the_robot_pose(planner):
    result = plan(planner, "pick up the red cube", robot_pose=(1.5, 0.6, 0.0))
    assert result.steps == (pick("red_cube_1"),)
    result = plan(planner, "pick up the green cube", robot_pose=(1.5, 0.6, 0.0))
    assert result.steps == (HOME, drive("green_cube_1"), pick("green_cube_1"))


def test_a_robot_without_a_base_never_drives(planner):
    assert plan(planner, "put the red cube in the tray", skills=ARM_ONLY).steps == (
        pick("red_cube_1"), place("red_cube_1", "gray_tray_1"))


def test_an_explicit_drive_counts_as_being_at_the_object(planner):
    result = plan(planner, "go to the red cube and then pick it up")
    assert result.steps == (drive("red_cube_1"), pick("red_cube_1"))


def test_fetch_without_a_destination_picks(planner):
    result = plan(planner, "fetch the red cube")
    assert result.steps == (HOME, drive("red_cube_1"), pick("red_cube_1"))


def test_the_held_object_is_carried_to_a_far_destination_and_put_down_where_the_robot_is(planner):
    result = plan(planner, "put what you are holding in the tray", held="red_cube_1", robot_pose=(1.6, 0.6, 0.0))
    assert result.steps == (HOME, drive("gray_tray_1"), place("red_cube_1", "gray_tray_1"))
    # The held object is where the gripper is: it goes down there, with no drive.
    result = plan(planner, "put it down", held="red_cube_1", robot_pose=(1.6, 0.6, 0.0))
    assert result.steps == (Call("place_at", {"object": "red_cube_1", "position": [2.06, 0.6]}),)
    refused = plan(planner, "put it down", robot_pose=(1.6, 0.6, 0.0))
    assert (refused.kind, refused.reply) == ("refuse", "I am not holding anything, so I cannot put it down.")
