"""Unit tests of scenario predicate evaluation on hand-built ground truth."""

from __future__ import annotations

import math

import pytest

from modular_robot.scenarios.predicates import (
    PREDICATE_NAMES,
    PredicateResult,
    evaluate,
    evaluate_all,
    format_predicate,
)
from modular_robot.scenarios.world_state import ObjectState, RobotState, WorldState

UPRIGHT = (0.0, 0.0, 0.0, 1.0)


def box(
    object_id: str,
    center: tuple[float, float, float],
    size: tuple[float, float, float],
    *,
    type_: str = "cube",
    color: str | None = "red",
    orientation: tuple[float, float, float, float] = UPRIGHT,
) -> ObjectState:
    """Return an object whose AABB is ``size`` around ``center``."""
    half = [s / 2.0 for s in size]
    return ObjectState(
        id=object_id,
        type=type_,
        color=color,
        position=center,
        orientation=orientation,
        aabb_min=tuple(c - h for c, h in zip(center, half)),
        aabb_max=tuple(c + h for c, h in zip(center, half)),
    )


def cube(object_id: str, x: float, y: float, bottom: float = 0.0, **kwargs) -> ObjectState:
    """Return a 4 cm cube whose bottom is at ``bottom``."""
    return box(object_id, (x, y, bottom + 0.02), (0.04, 0.04, 0.04), **kwargs)


def tray(x: float = 0.5, y: float = -0.2) -> ObjectState:
    """Return a 24 x 24 x 5 cm tray resting on z = 0."""
    return box("tray", (x, y, 0.025), (0.24, 0.24, 0.05), type_="tray", color="gray")


def world(
    *objects: ObjectState,
    robot_xy: tuple[float, float] = (0.0, 0.0),
    yaw: float = 0.0,
    holding: str | None = None,
    replies: list[list[str]] | None = None,
) -> WorldState:
    """Return a world holding ``objects`` and a robot at ``robot_xy`` facing ``yaw``."""
    return WorldState(
        objects={state.id: state for state in objects},
        robot=RobotState(position=(robot_xy[0], robot_xy[1], 0.0), yaw=yaw, holding=holding),
        replies=replies or [],
    )


def check(predicate: dict, final: WorldState, initial: WorldState | None = None) -> PredicateResult:
    """Evaluate with ``final`` also serving as the initial world unless one is given."""
    return evaluate(predicate, final, final if initial is None else initial)


class TestIn:
    def test_cube_resting_in_tray_passes(self):
        result = check({"in": ["red_cube", "tray"]}, world(cube("red_cube", 0.52, -0.18, 0.005), tray()))
        assert result.passed
        assert result.predicate == "in(red_cube, tray)"

    def test_cube_beside_tray_fails_naming_the_xy_box(self):
        result = check({"in": ["red_cube", "tray"]}, world(cube("red_cube", 0.70, -0.2), tray()))
        assert not result.passed
        assert "centre (0.700, -0.200) not inside tray x [0.385, 0.615]" in result.detail

    def test_centre_on_the_rim_fails_because_of_the_margin(self):
        # The tray spans x up to 0.62; 3 mm inside the edge is within the 5 mm margin.
        result = check({"in": ["red_cube", "tray"]}, world(cube("red_cube", 0.617, -0.2), tray()))
        assert not result.passed

    def test_cube_hovering_above_tray_fails_naming_heights(self):
        result = check({"in": ["red_cube", "tray"]}, world(cube("red_cube", 0.5, -0.2, 0.1), tray()))
        assert not result.passed
        assert result.detail == "red_cube bottom z=0.100 not within tray [0.000, 0.070]"

    def test_cube_sticking_out_of_tray_top_within_slack_passes(self):
        result = check({"in": ["red_cube", "tray"]}, world(cube("red_cube", 0.5, -0.2, 0.06), tray()))
        assert result.passed


class TestOn:
    def test_cube_on_box_passes(self):
        support = box("big_box", (0.5, 0.0, 0.05), (0.2, 0.2, 0.1), color="blue")
        result = check({"on": ["red_cube", "big_box"]}, world(cube("red_cube", 0.55, 0.05, 0.101), support))
        assert result.passed

    def test_cube_floating_above_box_fails_with_gap(self):
        support = box("big_box", (0.5, 0.0, 0.05), (0.2, 0.2, 0.1), color="blue")
        result = check({"on": ["red_cube", "big_box"]}, world(cube("red_cube", 0.5, 0.0, 0.13), support))
        assert not result.passed
        assert "bottom z=0.130 is +0.030 m from big_box top z=0.100" in result.detail

    def test_cube_beside_box_at_same_height_fails(self):
        support = box("big_box", (0.5, 0.0, 0.05), (0.2, 0.2, 0.1), color="blue")
        result = check({"on": ["red_cube", "big_box"]}, world(cube("red_cube", 0.75, 0.0, 0.1), support))
        assert not result.passed
        assert "not over big_box" in result.detail


class TestNear:
    def test_within_distance_passes(self):
        result = check({"near": ["a", "b", 0.1]}, world(cube("a", 0.5, 0.0), cube("b", 0.5, 0.08, 0.3)))
        # Height does not count: near is horizontal.
        assert result.passed
        assert "0.080 m <= 0.100" in result.detail

    def test_beyond_distance_fails(self):
        result = check({"near": ["a", "b", 0.1]}, world(cube("a", 0.5, 0.0), cube("b", 0.5, 0.15)))
        assert not result.passed
        assert "0.150 m > 0.100" in result.detail

    def test_robot_id_uses_the_base_position(self):
        state = world(cube("a", 1.0, 2.0), robot_xy=(1.2, 2.0))
        assert check({"near": ["robot", "a", 0.3]}, state).passed
        assert not check({"near": ["robot", "a", 0.1]}, state).passed


class TestRelations:
    @pytest.mark.parametrize(
        ("relation", "expected"),
        [("left_of", True), ("right_of", False), ("in_front_of", False), ("behind", False)],
    )
    def test_lateral_relations_with_robot_facing_x(self, relation, expected):
        # a is 10 cm to the robot's left of b, at the same depth.
        state = world(cube("a", 0.5, 0.1), cube("b", 0.5, 0.0))
        assert check({relation: ["a", "b"]}, state).passed is expected

    @pytest.mark.parametrize(
        ("relation", "expected"),
        [("in_front_of", True), ("behind", False), ("left_of", False), ("right_of", False)],
    )
    def test_depth_relations_with_robot_facing_x(self, relation, expected):
        # a is nearer the robot than b along its forward axis.
        state = world(cube("a", 0.4, 0.0), cube("b", 0.6, 0.0))
        assert check({relation: ["a", "b"]}, state).passed is expected

    def test_relations_follow_the_robot_heading(self):
        # Facing +y, the world's +x side is the robot's right.
        state = world(cube("a", 0.6, 1.0), cube("b", 0.4, 1.0), robot_xy=(0.5, 0.0), yaw=math.pi / 2)
        assert check({"right_of": ["a", "b"]}, state).passed
        assert not check({"left_of": ["a", "b"]}, state).passed

    def test_mobile_robot_behind_objects_flips_depth(self):
        # A robot beyond the objects, looking back at them (yaw pi), sees b as nearer.
        state = world(cube("a", 0.4, 0.0), cube("b", 0.6, 0.0), robot_xy=(1.0, 0.0), yaw=math.pi)
        assert check({"behind": ["a", "b"]}, state).passed
        assert not check({"in_front_of": ["a", "b"]}, state).passed

    def test_side_by_side_within_margin_is_neither_left_nor_right(self):
        state = world(cube("a", 0.5, 0.01), cube("b", 0.5, 0.0))
        left = check({"left_of": ["a", "b"]}, state)
        assert not left.passed
        assert not check({"right_of": ["a", "b"]}, state).passed
        assert "a.y - b.y = 0.010 <= 0.020" in left.detail


class TestAt:
    def test_robot_within_tolerance_passes(self):
        result = check({"at": ["robot", [1.0, 2.0], 0.1]}, world(robot_xy=(1.05, 2.0)))
        assert result.passed
        assert result.predicate == "at(robot, [1.000, 2.000], 0.100)"

    def test_robot_outside_tolerance_fails(self):
        result = check({"at": ["robot", [1.0, 2.0], 0.1]}, world(robot_xy=(1.3, 2.0)))
        assert not result.passed
        assert "0.300 m from (1.000, 2.000) > 0.100" in result.detail

    def test_object_position(self):
        state = world(cube("a", 0.5, 0.5))
        assert check({"at": ["a", [0.5, 0.52], 0.05]}, state).passed
        assert not check({"at": ["a", [0.0, 0.0], 0.05]}, state).passed


class TestHolding:
    def test_held_object_passes(self):
        assert check({"holding": "a"}, world(cube("a", 0.5, 0.0, 0.2), holding="a")).passed

    def test_empty_gripper_fails(self):
        result = check({"holding": "a"}, world(cube("a", 0.5, 0.0)))
        assert not result.passed
        assert result.detail == "robot holds nothing, expected a"

    def test_other_object_fails(self):
        result = check({"holding": "a"}, world(cube("a", 0.5, 0.0), cube("b", 0.5, 0.2), holding="b"))
        assert not result.passed
        assert result.detail == "robot holds b, not a"


class TestUnmoved:
    def test_small_drift_passes(self):
        before = world(cube("a", 0.5, 0.0), cube("b", 0.6, 0.0))
        after = world(cube("a", 0.505, 0.0), cube("b", 0.6, 0.0))
        assert check({"unmoved": ["a", "b"]}, after, before).passed

    def test_moved_object_fails_and_is_named(self):
        before = world(cube("a", 0.5, 0.0), cube("b", 0.6, 0.0))
        after = world(cube("a", 0.5, 0.0), cube("b", 0.6, 0.02))
        result = check({"unmoved": ["a", "b"]}, after, before)
        assert not result.passed
        assert result.detail == "b moved 0.020 m (>= 0.010)"

    def test_lifted_object_counts_as_moved(self):
        before = world(cube("a", 0.5, 0.0))
        after = world(cube("a", 0.5, 0.0, 0.05))
        assert not check({"unmoved": ["a"]}, after, before).passed


class TestUpright:
    def test_level_object_passes(self):
        assert check({"upright": "a"}, world(cube("a", 0.5, 0.0))).passed

    def test_small_tilt_passes(self):
        half = math.radians(10.0) / 2.0
        tilted = cube("a", 0.5, 0.0, orientation=(math.sin(half), 0.0, 0.0, math.cos(half)))
        assert check({"upright": "a"}, world(tilted)).passed

    def test_toppled_object_fails_with_tilt(self):
        half = math.radians(30.0) / 2.0
        tilted = cube("a", 0.5, 0.0, orientation=(0.0, math.sin(half), 0.0, math.cos(half)))
        result = check({"upright": "a"}, world(tilted))
        assert not result.passed
        assert "tilt 30.0 deg" in result.detail


class TestCount:
    def scene(self) -> WorldState:
        return world(
            tray(),
            cube("red_1", 0.45, -0.2),
            cube("red_2", 0.55, -0.15),
            cube("blue_1", 0.5, -0.25, color="blue"),
            cube("red_out", 0.9, 0.3),
            box("red_ball", (0.5, -0.1, 0.02), (0.04, 0.04, 0.04), type_="sphere"),
        )

    def test_type_and_color_filters(self):
        result = check({"count": {"in": "tray", "type": "cube", "color": "red", "n": 2}}, self.scene())
        assert result.passed
        assert result.detail == "2 red cube(s) in tray (red_1, red_2), expected 2"

    def test_wrong_number_fails(self):
        result = check({"count": {"in": "tray", "type": "cube", "color": "red", "n": 3}}, self.scene())
        assert not result.passed

    def test_without_filters_counts_everything_inside(self):
        result = check({"count": {"in": "tray", "type": None, "color": None, "n": 4}}, self.scene())
        assert result.passed, result.detail

    def test_zero_expected(self):
        assert check({"count": {"in": "tray", "color": "green", "n": 0}}, self.scene()).passed


class TestReply:
    replies = [["I put the red cube in the tray."], ["Which cube do you mean: the red one or the blue one?"]]

    def test_case_insensitive_match_in_last_command_by_default(self):
        result = check({"reply": {"contains_any": ["WHICH"]}}, world(replies=self.replies))
        assert result.passed
        assert result.predicate == "reply(contains_any=[WHICH], command=last)"

    def test_named_command(self):
        state = world(replies=self.replies)
        assert check({"reply": {"contains_any": ["tray"], "command": 1}}, state).passed
        assert not check({"reply": {"contains_any": ["tray"], "command": 2}}, state).passed

    def test_whole_words_only(self):
        # "no" ends inside "know" and "not" ends "cannot": neither is the word itself.
        state = world(replies=[["I know where it is, but I cannot reach it."]])
        result = check({"reply": {"contains_any": ["no", "not"], "command": 1}}, state)
        assert not result.passed
        assert "none of no, not" in result.detail

    def test_phrase_matches(self):
        state = world(replies=self.replies)
        assert check({"reply": {"contains_any": ["red one"], "command": 2}}, state).passed

    def test_unanswered_command_fails(self):
        result = check({"reply": {"contains_any": ["done"], "command": 3}}, world(replies=self.replies))
        assert not result.passed
        assert "no replies recorded for command 3" in result.detail


class TestNot:
    def test_negation_of_failing_predicate_passes(self):
        result = check({"not": {"in": ["red_cube", "tray"]}}, world(cube("red_cube", 0.9, 0.0), tray()))
        assert result.passed
        assert result.predicate == "not(in(red_cube, tray))"
        assert result.detail.startswith("negated: ")

    def test_negation_of_passing_predicate_fails(self):
        result = check({"not": {"in": ["red_cube", "tray"]}}, world(cube("red_cube", 0.5, -0.2), tray()))
        assert not result.passed


class TestMissingObjects:
    @pytest.mark.parametrize(
        "predicate",
        [
            {"in": ["red_cube", "tray"]},
            {"on": ["red_cube", "tray"]},
            {"near": ["red_cube", "robot", 1.0]},
            {"left_of": ["red_cube", "tray"]},
            {"at": ["red_cube", [0.0, 0.0], 1.0]},
            {"holding": "red_cube"},
            {"upright": "red_cube"},
            {"unmoved": ["red_cube"]},
        ],
    )
    def test_removed_object_fails_without_raising(self, predicate):
        before = world(cube("red_cube", 0.5, 0.0), tray())
        after = world(tray(), holding="red_cube")
        result = evaluate(predicate, after, before)
        assert not result.passed
        assert result.detail == "red_cube is not in the world"

    def test_missing_container_fails_count(self):
        result = check({"count": {"in": "tray", "n": 0}}, world(cube("a", 0.5, 0.0)))
        assert not result.passed
        assert "tray is not in the world" in result.detail

    def test_missing_object_is_not_excused_by_negation(self):
        result = check({"not": {"in": ["red_cube", "tray"]}}, world(tray()))
        assert not result.passed
        assert result.detail == "red_cube is not in the world"


def test_evaluate_all_keeps_order():
    state = world(cube("red_cube", 0.5, -0.2), tray(), holding=None)
    results = evaluate_all([{"in": ["red_cube", "tray"]}, {"holding": "red_cube"}], state, state)
    assert [(r.predicate, r.passed) for r in results] == [
        ("in(red_cube, tray)", True),
        ("holding(red_cube)", False),
    ]


def test_format_of_remaining_predicates():
    assert format_predicate({"near": ["a", "robot", 0.25]}) == "near(a, robot, 0.250)"
    assert format_predicate({"unmoved": ["a", "b"]}) == "unmoved(a, b)"
    assert format_predicate({"count": {"in": "tray", "type": "cube", "color": None, "n": 2}}) == (
        "count(in=tray, type=cube, n=2)"
    )
    assert format_predicate({"reply": {"contains_any": ["yes", "ok"], "command": 2}}) == (
        "reply(contains_any=[yes, ok], command=2)"
    )


@pytest.mark.parametrize("predicate", [{"inside": ["a", "b"]}, {"in": ["a", "b"], "on": ["a", "b"]}, {}])
def test_malformed_predicate_is_a_programming_error(predicate):
    with pytest.raises(ValueError):
        check(predicate, world())


def test_every_documented_predicate_is_known():
    documented = {
        "in", "on", "near", "left_of", "right_of", "in_front_of", "behind", "at", "holding",
        "unmoved", "upright", "count", "reply", "not",
    }
    assert PREDICATE_NAMES == documented
