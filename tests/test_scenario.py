"""Unit tests of the scenario loader: good files, defaults, and one test per kind of error."""

from __future__ import annotations

import pytest

from modular_robot.scenarios.predicates import PREDICATE_NAMES
from modular_robot.scenarios.scenario import (
    BasePose,
    Disturbance,
    ObjectPose,
    ObjectSpec,
    RobotSpec,
    ScenarioError,
    default_size,
    load_scenario,
    object_extent,
    parse_scenario,
)

SOURCE = "sim/scenarios/bad.yaml"
MARK = "# <-"

# The example of ARCHITECTURE.md, with the `on` key quoted as the format asks.
EXAMPLE = """\
name: red_cube_in_tray
category: pick_place           # free text; the report groups by it
robot: panda_tabletop
seed: 3
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.0]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
commands:
  - "put the red cube in the tray"
disturbances:
  - {at: after_step, step: 1, action: move, object: red_cube, pose: [0.6, 0.2, 0.0, 0.0]}
expect:
  - {in: [red_cube, tray]}
timeout_s: 120
"""

BASE = """\
name: base
category: test
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, pose: [0.5, 0.1, 0.0, 0.0]}
  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}
commands:
  - put the red cube in the tray
  - is it in the tray?
expect:
  - {in: [red_cube, tray]}
"""


def objects_plus(extra: str) -> str:
    """Return BASE with ``extra`` appended to its objects list."""
    anchor = "  - {id: tray, type: tray, color: gray, pose: [0.45, -0.25, 0.0, 0.0]}\n"
    return BASE.replace(anchor, anchor + extra)


def expect_plus(extra: str) -> str:
    """Return BASE with ``extra`` appended to its expect list."""
    return BASE + extra


def marked_line(text: str) -> int:
    """Return the 1-based line that carries the marker comment."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if MARK in line)


class TestGoodFiles:
    def test_architecture_example(self):
        scenario = parse_scenario(EXAMPLE, "example.yaml")
        assert scenario.name == "red_cube_in_tray"
        assert scenario.category == "pick_place"
        assert scenario.robot == "panda_tabletop"
        assert scenario.robots == [RobotSpec("", "panda_tabletop", BasePose(0.0, 0.0, 0.0))]
        assert scenario.seed == 3
        assert scenario.objects == [
            ObjectSpec("red_cube", "cube", "red", 0.04, None, ObjectPose(0.55, 0.10, 0.0, 0.0)),
            ObjectSpec("tray", "tray", "gray", (0.24, 0.24, 0.05), None, ObjectPose(0.45, -0.25, 0.0, 0.0)),
        ]
        assert scenario.commands == ["put the red cube in the tray"]
        assert scenario.disturbances == [
            Disturbance("after_step", 1, "move", "red_cube", ObjectPose(0.6, 0.2, 0.0, 0.0), None)
        ]
        assert scenario.expect == [{"in": ["red_cube", "tray"]}]
        assert scenario.timeout_s == 120.0
        assert scenario.camera == "fixed"
        assert scenario.source == "example.yaml"

    def test_load_from_file(self, tmp_path):
        path = tmp_path / "red_cube_in_tray.yaml"
        path.write_text(EXAMPLE, encoding="utf-8")
        scenario = load_scenario(path)
        assert scenario.name == "red_cube_in_tray"
        assert scenario.source == str(path)

    def test_defaults(self):
        text = (
            "name: minimal\nrobot: husky_base\ncommands: [go to the door]\n"
            "expect:\n  - at: [robot, [2, 0], 0.3]\n"
        )
        scenario = parse_scenario(text)
        assert scenario.category == "uncategorized"
        assert scenario.seed == 0
        assert scenario.objects == []
        assert scenario.disturbances == []
        assert scenario.timeout_s == 120.0
        assert scenario.camera == "fixed"
        assert scenario.expect == [{"at": ["robot", [2.0, 0.0], 0.3]}]

    def test_every_predicate_is_normalised(self):
        text = expect_plus(
            "  - {'on': [red_cube, tray]}\n"
            "  - {near: [robot, red_cube, 0.5]}\n"
            "  - {left_of: [red_cube, tray]}\n"
            "  - {right_of: [red_cube, tray]}\n"
            "  - {in_front_of: [red_cube, tray]}\n"
            "  - {behind: [red_cube, tray]}\n"
            "  - {at: [red_cube, [0.5, 0.1], 0.02]}\n"
            "  - {holding: red_cube}\n"
            "  - {unmoved: tray}\n"
            "  - {upright: [red_cube]}\n"
            "  - {count: {in: tray, color: red, n: 1}}\n"
            "  - {reply: {contains_any: 'yes'}}\n"
            "  - {not: {holding: red_cube}}\n"
        )
        expect = parse_scenario(text).expect
        assert expect[1:] == [
            {"on": ["red_cube", "tray"]},
            {"near": ["robot", "red_cube", 0.5]},
            {"left_of": ["red_cube", "tray"]},
            {"right_of": ["red_cube", "tray"]},
            {"in_front_of": ["red_cube", "tray"]},
            {"behind": ["red_cube", "tray"]},
            {"at": ["red_cube", [0.5, 0.1], 0.02]},
            {"holding": "red_cube"},
            {"unmoved": ["tray"]},
            {"upright": "red_cube"},
            {"count": {"in": "tray", "type": None, "color": "red", "n": 1}},
            # The default command, the last, is made explicit: the second of two.
            {"reply": {"contains_any": ["yes"], "command": 2}},
            {"not": {"holding": "red_cube"}},
        ]
        assert {name for predicate in expect for name in predicate} == PREDICATE_NAMES

    def test_several_robots(self):
        text = BASE.replace(
            "robot: panda_tabletop\n",
            "robots:\n"
            "  - {name: arm, type: panda_tabletop, pose: [0, 0, 0]}\n"
            "  - {name: rover, type: husky_base, pose: [2.0, -1.0, 1.57]}\n",
        )
        scenario = parse_scenario(text)
        assert scenario.robots == [
            RobotSpec("arm", "panda_tabletop", BasePose(0.0, 0.0, 0.0)),
            RobotSpec("rover", "husky_base", BasePose(2.0, -1.0, 1.57)),
        ]
        assert scenario.robot == "panda_tabletop"

    def test_time_and_remove_disturbance(self):
        text = BASE + "disturbances:\n  - {at: time, time_s: 4.5, action: remove, object: tray}\n"
        assert parse_scenario(text).disturbances == [Disturbance("time", None, "remove", "tray", None, 4.5)]

    def test_object_options(self):
        text = objects_plus(
            "  - {id: can, type: cylinder, color: blue, size: 0.06, height: 0.12, mass: 0.2,\n"
            "     pose: [0, 0, 0, 0]}\n"
            "  - {id: desk, type: table, pose: [1, 0, 0, 0]}\n"
            "  - {id: lego, type: lego/lego.urdf, size: [0.03, 0.02, 0.02], static: true,\n"
            "     pose: [0, 1, 0, 0]}\n"
        )
        objects = {spec.id: spec for spec in parse_scenario(text).objects}
        assert (objects["can"].height, objects["can"].mass) == (0.12, 0.2)
        assert objects["desk"].static and objects["desk"].color is None
        assert objects["lego"].static and objects["lego"].size == (0.03, 0.02, 0.02)
        assert not objects["red_cube"].static


class TestSizes:
    @pytest.mark.parametrize(
        ("object_type", "size"),
        [
            ("cube", 0.04), ("cylinder", 0.04), ("sphere", 0.04), ("duck", 0.06),
            ("tray", (0.24, 0.24, 0.05)), ("bowl", (0.16, 0.16, 0.06)), ("table", (0.6, 0.6, 0.4)),
        ],
    )
    def test_default_size(self, object_type, size):
        assert default_size(object_type) == size

    def test_default_size_of_unknown_type_raises(self):
        with pytest.raises(ValueError):
            default_size("teapot")

    @pytest.mark.parametrize(
        ("object_type", "size", "height", "extent"),
        [
            ("cube", 0.05, None, (0.05, 0.05, 0.05)),
            ("cube", (0.1, 0.05, 0.02), None, (0.1, 0.05, 0.02)),
            ("cylinder", 0.04, None, (0.04, 0.04, 0.04)),
            ("cylinder", 0.04, 0.1, (0.04, 0.04, 0.1)),
            ("sphere", 0.03, None, (0.03, 0.03, 0.03)),
            ("tray", 0.3, None, (0.3, 0.3, 0.05)),
            ("table", (1.0, 0.5, 0.7), None, (1.0, 0.5, 0.7)),
            ("lego/lego.urdf", 0.1, None, (0.1, 0.1, 0.1)),
        ],
    )
    def test_object_extent(self, object_type, size, height, extent):
        spec = ObjectSpec("x", object_type, None, size, height, ObjectPose(0.0, 0.0, 0.0, 0.0))
        assert object_extent(spec) == pytest.approx(extent)

    def test_duck_extent_is_as_long_as_its_size(self):
        spec = ObjectSpec("duck", "duck", "yellow", 0.06, None, ObjectPose(0.0, 0.0, 0.0, 0.0))
        extent = object_extent(spec)
        assert max(extent) == pytest.approx(0.06)
        assert extent[1] < extent[0]


def with_disturbance(entry: str) -> str:
    """Return BASE with a disturbances list holding ``entry``."""
    return BASE + "disturbances:\n  - " + entry + "\n"


def with_robots(*entries: str) -> str:
    """Return BASE with ``robot:`` replaced by a robots list of ``entries``."""
    listed = "".join(f"\n  - {entry}" for entry in entries)
    return BASE.replace("robot: panda_tabletop", "robots:" + listed)


# (id, YAML text with the faulty line marked, expected reason fragment).
ERROR_CASES: list[tuple[str, str, str]] = [
    ("top_level_key", BASE + "timeout: 30  # <-\n", "unknown top-level key 'timeout'"),
    ("object_key",
     objects_plus("  - {id: b, type: cube, colour: blue, pose: [0, 0, 0, 0]}  # <-\n"),
     "unknown object key 'colour'"),
    ("object_type",
     objects_plus("  - {id: pot, type: teapot, pose: [0, 0, 0, 0]}  # <-\n"),
     "unknown object type 'teapot'"),
    ("colour_in_block_mapping",
     objects_plus("  - id: b\n    type: cube\n    color: blu  # <-\n    pose: [0, 0, 0, 0]\n"),
     "unknown colour 'blu'"),
    ("duplicate_id",
     objects_plus("  - {id: red_cube, type: cube, pose: [0, 0, 0, 0]}  # <-\n"),
     "duplicate object id 'red_cube'"),
    ("reserved_id",
     objects_plus("  - {id: robot, type: cube, pose: [0, 0, 0, 0]}  # <-\n"),
     "reserved for the robot"),
    ("unknown_predicate",
     expect_plus("  - {inside: [red_cube, tray]}  # <-\n"),
     "unknown predicate 'inside'"),
    ("predicate_object",
     expect_plus("  - {near: [red_cube, blue_cube, 0.1]}  # <-\n"),
     "near names unknown object 'blue_cube'"),
    ("robot_not_an_object_in_in",
     expect_plus("  - {in: [robot, tray]}  # <-\n"),
     "in names unknown object 'robot'"),
    ("nested_predicate_object",
     expect_plus("  - not:\n      holding: ghost  # <-\n"),
     "holding names unknown object 'ghost'"),
    ("arity",
     expect_plus("  - {in: [red_cube, tray, 0.1]}  # <-\n"),
     "in takes [obj, obj] (2 arguments), got 3"),
    ("near_arity", expect_plus("  - {near: [red_cube, tray]}  # <-\n"), "near takes [a, b, dist_m]"),
    ("two_keys",
     expect_plus("  - {holding: red_cube, upright: red_cube}  # <-\n"),
     "a predicate has exactly one key"),
    ("nan",
     objects_plus("  - {id: b, type: cube, pose: [.nan, 0, 0, 0]}  # <-\n"),
     "pose must be finite"),
    ("negative_size",
     objects_plus("  - {id: b, type: cube, size: -0.04, pose: [0, 0, 0, 0]}  # <-\n"),
     "size must be within (0, 2] m, got -0.04"),
    ("huge_size",
     objects_plus("  - {id: b, type: cube, size: 1.0e+308, pose: [0, 0, 0, 0]}  # <-\n"),
     "size must be within (0, 2] m, got 1e+308"),
    ("fifty_metre_cube",
     objects_plus("  - {id: b, type: cube, size: 50.0, pose: [0, 0, 0, 0]}  # <-\n"),
     "size must be within (0, 2] m, got 50"),
    ("huge_box_side",
     objects_plus("  - {id: b, type: table, size: [0.6, 30.0, 0.4], pose: [0, 0, 0, 0]}  # <-\n"),
     "size must be within (0, 2] m, got 30"),
    ("tall_cylinder",
     objects_plus("  - {id: b, type: cylinder, height: 3.0, pose: [0, 0, 0, 0]}  # <-\n"),
     "height must be within (0, 2] m, got 3"),
    ("exponent_as_text",
     objects_plus("  - {id: b, type: cube, size: 1e308, pose: [0, 0, 0, 0]}  # <-\n"),
     "size must be a number, got the text '1e308': YAML reads an exponent without a dot as text; write 1.0e+308"),
    ("far_object",
     objects_plus("  - {id: b, type: cube, pose: [0.5, 1.0e+6, 0, 0]}  # <-\n"),
     "pose y must be within [-10, 10] m, got 1e+06"),
    ("buried_object",
     objects_plus("  - {id: b, type: cube, pose: [0.5, 0, -1.0, 0]}  # <-\n"),
     "pose z (the height of its bottom) must be within [0, 2] m, got -1"),
    ("far_disturbance",
     BASE + "disturbances:\n  - {at: time, time_s: 1.0, action: move, object: red_cube, pose: [50.0, 0, 0, 0]}  # <-\n",
     "pose x must be within [-10, 10] m, got 50"),
    ("string_number", BASE + "timeout_s: soon  # <-\n", "timeout_s must be a number"),
    ("pose_arity",
     objects_plus("  - {id: b, type: cube, pose: [0, 0, 0]}  # <-\n"),
     "pose must be [x, y, z, yaw]"),
    ("sphere_box_size",
     objects_plus("  - {id: b, type: sphere, size: [0.1, 0.1, 0.1], pose: [0, 0, 0, 0]}  # <-\n"),
     "the size of a sphere is one number"),
    ("height_on_cube",
     objects_plus("  - {id: b, type: cube, height: 0.1, pose: [0, 0, 0, 0]}  # <-\n"),
     "height applies to cylinders only"),
    ("boolean_key", expect_plus("  - on: [red_cube, tray]  # <-\n"), "write 'on':"),
    ("boolean_reply_word",
     expect_plus("  - reply: {contains_any: [yes, sure]}  # <-\n"),
     "quote the words"),
    ("empty_name", BASE.replace("name: base", "name: ''  # <-"), "name must be a non-empty string"),
    ("absent_name",
     BASE.replace("name: base\n", "").replace("category: test", "category: test  # <-"),
     "name must be a non-empty string"),
    ("robot_and_robots",
     BASE + "robots:  # <-\n  - {name: a, type: husky_base}\n",
     "not both"),
    ("robot_type", BASE.replace("robot: panda_tabletop", "robot: ur5  # <-"), "unknown robot type 'ur5'"),
    ("robot_name",
     with_robots("{name: my-arm, type: husky_base}  # <-"),
     "not a valid ROS namespace token"),
    ("duplicate_robot",
     with_robots("{name: a, type: husky_base}", "{name: a, type: husky_base}  # <-"),
     "duplicate robot name 'a'"),
    ("disturbance_object",
     with_disturbance("{at: time, time_s: 1, action: remove, object: x}  # <-"),
     "disturbance names unknown object 'x'"),
    ("disturbance_needs_step",
     with_disturbance("{at: after_step, action: remove, object: tray}  # <-"),
     "needs step"),
    ("disturbance_wrong_parameter",
     with_disturbance("{at: time, step: 1, time_s: 2, action: remove, object: tray}  # <-"),
     "takes time_s, not step"),
    ("remove_with_pose",
     with_disturbance("{at: time, time_s: 2, action: remove, object: tray, pose: [0, 0, 0, 0]}  # <-"),
     "takes no pose"),
    ("reply_command_range",
     expect_plus("  - reply: {contains_any: [done], command: 3}  # <-\n"),
     "past the last of 2 commands"),
    ("count_color",
     expect_plus("  - count: {in: tray, color: mauve, n: 1}  # <-\n"),
     "unknown colour 'mauve'"),
    ("camera", BASE + "camera: overhead  # <-\n", "unknown camera 'overhead'"),
    ("duplicate_key", BASE + "name: again  # <-\n", "duplicate key 'name'"),
    ("empty_expect",
     BASE.replace("  - {in: [red_cube, tray]}\n", "").replace("expect:", "expect:  # <-"),
     "at least one predicate"),
    ("no_robot",
     BASE.replace("robot: panda_tabletop\n", "").replace("name: base", "name: base  # <-"),
     "missing robot:"),
    ("syntax", BASE + "timeout_s: 1: 2  # <-\n", "invalid YAML"),
]


@pytest.mark.parametrize(
    ("text", "reason"), [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_error_names_file_line_and_reason(text, reason):
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text, SOURCE)
    message = str(raised.value)
    line = marked_line(text)
    assert message.startswith(f"{SOURCE}:{line}: "), message
    assert reason in message
    assert raised.value.line == line


def test_scenario_error_is_a_value_error():
    assert issubclass(ScenarioError, ValueError)


def test_missing_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ScenarioError, match="absent.yaml: cannot read the file"):
        load_scenario(path)


def test_empty_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="empty.yaml: the file is empty"):
        load_scenario(path)


def test_error_from_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(EXAMPLE.replace("color: gray", "color: grey"), encoding="utf-8")
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(raised.value).startswith(f"{path}:7: unknown colour 'grey'")


def test_scenario_without_commands_checks_the_world_alone():
    scenario = parse_scenario(
        "name: quiet\nrobot: panda_tabletop\nobjects:\n  - {id: a, type: cube, pose: [0.5, 0, 0, 0]}\n"
        "expect:\n  - {unmoved: [a]}\n")
    assert scenario.commands == []


def test_reply_predicate_needs_a_command():
    with pytest.raises(ScenarioError, match="needs at least one command") as error:
        parse_scenario("name: quiet\nrobot: panda_tabletop\nexpect:\n  - {reply: {contains_any: [hi]}}\n", "q.yaml")
    assert "q.yaml:4" in str(error.value)
