"""Critic rules on synthetic evidence: every skill's pre and post verdicts, and the ways effects fail."""

import math

import numpy as np
import pytest

from modular_robot.core.mapping.objects import MapObject, box_distance
from modular_robot.core.perception.types import Detection
from modular_robot.core.robot_model import PANDA_HOME
from modular_robot.critic.evidence import ObservedBox, PerceptionFrame, Proprioception, holds, same_kind
from modular_robot.critic.post import KNOWN_SKILLS, MAP_FALLBACK_WEIGHT, needs_perception, post_verdict, uses_perception
from modular_robot.critic.pre import pre_verdict

GRASP_LIFTED = np.array([0.55, 0.10, 0.12])


def cube(object_id="red_cube_1", color="red", xy=(0.55, 0.10), edge=0.04, z=0.0):
    return MapObject(object_id, f"small {color} cube", "cube", (color, "small"), color,
                     [xy[0], xy[1], z + edge / 2], [edge, edge, edge], 0.0)


def tray(xy=(0.45, -0.25)):
    return MapObject("tray_1", "large gray tray", "tray", ("gray", "large"), "gray",
                     [xy[0], xy[1], 0.025], [0.24, 0.24, 0.05], 0.0)


def seen(obj_or_color, position, size, category=None, yaw=0.0):
    """An observation; `obj_or_color` is a MapObject (its look) or a colour name."""
    if isinstance(obj_or_color, MapObject):
        color, category = obj_or_color.color, category or obj_or_color.category
    else:
        color, category = obj_or_color, category or "cube"
    return ObservedBox(f"{color} {category}", category, color, position, size, yaw)


def held_box(position=GRASP_LIFTED + [0.004, 0.0, 0.0], obj=None):
    # What a perception that reports floating clusters sees: the part the fingers leave in view.
    return seen(obj or cube(), position, [0.034, 0.015, 0.03])


def robot(opening=0.04, grasp=GRASP_LIFTED, **kwargs):
    return Proprioception(stamp_ns=1, gripper_opening=opening, grasp_point=np.array(grasp), **kwargs)


def frames(*boxes, n=3, **robot_kwargs):
    return [PerceptionFrame(100 + i, tuple(boxes), robot(**robot_kwargs) if robot_kwargs else None) for i in range(n)]


def by_id(*objects):
    return {o.id: o for o in objects}


# --- helpers --------------------------------------------------------------------------------------


def test_holding_follows_the_grasp_geometry():
    cube_4cm = cube()
    for opening, held in ((0.0, False), (0.019, False), (0.021, True), (0.04, True), (0.05, True), (0.051, False)):
        assert holds(opening, cube_4cm) == held, opening
    # A duck's box can be narrower than what the fingers close on: only an open gripper is not holding it.
    duck = MapObject("duck_1", "small yellow object", "irregular", ("yellow",), "yellow", [0.5, 0.0, 0.02],
                     [0.04, 0.022, 0.04], 0.0)
    assert holds(0.034, duck) and not holds(0.08, duck) and not holds(0.002, duck)


def test_box_and_footprint_distances():
    assert box_distance([0, 0, 0], [0, 0, 0], [0.1, 0.1, 0.1], 0.0) == 0.0
    assert box_distance([0.15, 0, 0], [0, 0, 0], [0.1, 0.1, 0.1], 0.0) == pytest.approx(0.1)
    # Turned 45 degrees, the box's corner reaches along x to 0.0707.
    assert box_distance([0.1, 0, 0], [0, 0, 0], [0.1, 0.1, 0.1], math.pi / 4) == pytest.approx(0.1 - 0.0707, abs=1e-3)


def test_identity_needs_colour_and_a_compatible_category():
    red = cube()
    assert same_kind(red, seen("red", [0, 0, 0], [0.04] * 3))
    assert same_kind(red, seen("red", [0, 0, 0], [0.04] * 3, category="cylinder")), "coarse shapes flip"
    assert not same_kind(red, seen("blue", [0, 0, 0], [0.04] * 3))
    assert not same_kind(red, ObservedBox("mug", "mug", None, [0, 0, 0], [0.04] * 3))
    mug = MapObject("mug_1", "mug", "mug", (), None, [0, 0, 0], [0.08] * 3)
    assert same_kind(mug, ObservedBox("mug", "mug", "white", [0, 0, 0], [0.08] * 3))
    detection = Detection("small red cube", "cube", ("red", "small"), 0.9, (0, 0, 1, 1), np.zeros(3),
                          np.full(3, 0.04), 0.1, "red")
    box = ObservedBox.from_detection(detection, 7)
    assert box.color == "red" and box.stamp_ns == 7 and box.top == pytest.approx(0.02)


def test_which_skills_need_perception():
    assert needs_perception("pick") and needs_perception("place") and needs_perception("push")
    assert needs_perception("place_at") and "place_at" in KNOWN_SKILLS
    assert not needs_perception("navigate_to", {"object": "chair_1"})
    assert uses_perception("navigate_to", {"object": "chair_1"})
    assert not uses_perception("navigate_to", {"pose": [1, 2]})
    assert not needs_perception("move_arm_home") and not needs_perception("say")


# --- pre verdicts ---------------------------------------------------------------------------------


def test_pick_pre_ok_and_its_failures():
    red = cube()
    empty = robot(opening=0.08, gripper_command=0.08)
    verdict = pre_verdict("pick", {"object": "red_cube_1"}, [red], empty, lambda obj: None)
    assert verdict.ok and "graspable" in verdict.reason and "reachable" in verdict.reason, verdict

    removed = pre_verdict("pick", {"object": "red_cube_1"}, [], empty, lambda obj: None)
    assert not removed.ok and "not in the semantic map" in removed.reason

    wide = pre_verdict("pick", {"object": "box_1"}, [cube("box_1", edge=0.09)], empty, lambda obj: None)
    assert not wide.ok and "not graspable" in wide.reason and "narrow side" in wide.reason

    far = pre_verdict("pick", {"object": "red_cube_1"}, [red], empty, lambda obj: "no IK solution at 1.50 m")
    assert not far.ok and "unreachable: no IK solution" in far.reason

    holding = robot(opening=0.04, gripper_command=0.0)
    full = pre_verdict("pick", {"object": "red_cube_1"}, [red], holding, lambda obj: None)
    assert not full.ok and "not empty" in full.reason and "4.0 cm" in full.reason

    unknown_state = pre_verdict("pick", {"object": "red_cube_1"}, [red], None, lambda obj: None)
    assert not unknown_state.ok and "unknown" in unknown_state.reason

    half_open = robot(opening=0.05, gripper_command=0.05)
    blue_held = pre_verdict("pick", {"object": "red_cube_1"}, [red], half_open, lambda obj: None,
                            frames=frames(held_box(obj=cube("b", "blue"))))
    assert not blue_held.ok and "not empty" in blue_held.reason


def test_wide_open_fingers_hold_nothing_whatever_is_seen_at_the_grasp_point():
    # The arm at home, gripper open, and a sphere a failed pick dragged next to the grasp point.
    sphere = seen("green", GRASP_LIFTED + [0.01, 0.0, 0.0], [0.04, 0.04, 0.04], category="sphere")
    verdict = pre_verdict("pick", {"object": "red_cube_1"}, [cube()], robot(opening=0.0799, gripper_command=0.08),
                          lambda obj: None, frames=frames(sphere))
    assert verdict.ok, verdict


def test_place_pre_needs_the_object_held_and_the_target_known():
    red, box = cube(), tray()
    params = {"object": "red_cube_1", "relation": "in", "target": "tray_1"}
    # The map dropped the held cube once its place was seen empty; memory keeps its identity and size.
    ok = pre_verdict("place", params, [box], robot(opening=0.0395), lambda obj: None, remembered=[red])
    assert ok.ok and ok.confidence < 1.0 and "held" in ok.reason, ok
    seen_held = pre_verdict("place", params, [box], robot(opening=0.0395), lambda obj: None, remembered=[red],
                            frames=frames(held_box()))
    assert seen_held.ok and seen_held.confidence == 1.0 and "seen at the gripper" in seen_held.reason

    not_held = pre_verdict("place", params, [box], robot(opening=0.001), lambda obj: None, remembered=[red])
    assert not not_held.ok and "not held" in not_held.reason and "0.1 cm" in not_held.reason
    on_table = pre_verdict("place", params, [red, box], robot(opening=0.04), lambda obj: None,
                           frames=frames(seen(red, red.position, red.size)))
    assert not on_table.ok and "resting where it was" in on_table.reason
    no_target = pre_verdict("place", {**params, "target": "bowl_1"}, [box], robot(), None, remembered=[red])
    assert not no_target.ok and "unknown target 'bowl_1'" in no_target.reason
    never = pre_verdict("place", params, [box], robot(), None)
    assert not never.ok and "never held it" in never.reason
    unreachable = pre_verdict("place", params, [box], robot(), lambda obj: "too far", remembered=[red])
    assert not unreachable.ok and "'tray_1' is unreachable: too far" in unreachable.reason


def test_place_at_pre_needs_the_object_held_and_the_spot_free():
    red, box = cube(), tray()
    params = {"object": "red_cube_1", "position": [0.45, 0.15]}
    asked = []

    def reachable(obj):
        asked.append(obj)  # and returns None: reachable

    ok = pre_verdict("place_at", params, [box], robot(opening=0.0395), reachable, remembered=[red])
    assert ok.ok and ok.confidence == pytest.approx(0.6), ok
    assert "is held" in ok.reason and "the spot (0.450, 0.150) is free" in ok.reason and "reachable" in ok.reason
    # Reach is asked of the cube as it would stand there, on the table.
    assert asked[0].id == "red_cube_1" and asked[0].position == pytest.approx([0.45, 0.15, 0.02])
    seen_held = pre_verdict("place_at", params, [box], robot(opening=0.0395), reachable, remembered=[red],
                            frames=frames(held_box()))
    assert seen_held.ok and seen_held.confidence == 1.0 and "seen at the gripper" in seen_held.reason
    unchecked = pre_verdict("place_at", params, [box], robot(), None, remembered=[red])
    assert unchecked.ok and "reachability not checked" in unchecked.reason
    # Put back where it stood: the map's stale record of the cube itself does not take the spot.
    back = pre_verdict("place_at", {**params, "position": [0.55, 0.10]}, [red, box], robot(), reachable)
    assert back.ok, back

    taken = pre_verdict("place_at", {**params, "position": [0.50, -0.18]}, [box], robot(), reachable,
                        remembered=[red])
    assert not taken.ok and "the spot (0.500, -0.180) is not free: 'tray_1'" in taken.reason, taken
    # Two 4 cm cubes 5 cm apart: their bounding circles (2.8 cm each) overlap.
    blue = cube("blue_cube_1", "blue", xy=(0.45, 0.20))
    assert not pre_verdict("place_at", params, [blue], robot(), reachable, remembered=[red]).ok
    assert pre_verdict("place_at", {**params, "position": [0.45, 0.13]}, [blue], robot(), reachable,
                       remembered=[red]).ok
    not_held = pre_verdict("place_at", params, [box], robot(opening=0.001), reachable, remembered=[red])
    assert not not_held.ok and "not held" in not_held.reason
    far = pre_verdict("place_at", {**params, "position": [1.5, 0.0]}, [box], robot(), lambda obj: "no IK solution",
                      remembered=[red])
    assert not far.ok and "the spot (1.500, 0.000) is unreachable: no IK solution" in far.reason
    never = pre_verdict("place_at", params, [box], robot(), reachable)
    assert not never.ok and "never held it" in never.reason
    malformed = pre_verdict("place_at", {**params, "position": [0.45]}, [box], robot(), reachable, remembered=[red])
    assert not malformed.ok and "two finite numbers" in malformed.reason


def test_other_pre_verdicts():
    red = cube()
    push = {"object": "red_cube_1", "direction": "left", "distance": 0.1}
    assert pre_verdict("push", push, [red], robot(opening=0.0, gripper_command=0.0), lambda obj: None).ok
    holding = pre_verdict("push", push, [red], robot(opening=0.04, gripper_command=0.0), lambda obj: None)
    assert not holding.ok and "not empty" in holding.reason
    assert not pre_verdict("push", {"object": "gone", "direction": "left", "distance": 0.1}, [red], None, None).ok
    localised = Proprioception(base_pose=(0.0, 0.0, 0.0))
    assert pre_verdict("navigate_to", {"object": "red_cube_1"}, [red], localised).ok
    assert pre_verdict("navigate_to", {"pose": [1.0, 2.0]}, [], localised).ok
    lost = pre_verdict("navigate_to", {"object": "red_cube_1"}, [red], Proprioception())
    assert not lost.ok and "not localised" in lost.reason
    assert not pre_verdict("navigate_to", {"object": "chair_9"}, [red], localised).ok
    for skill in ("search", "say", "move_arm_home", "open_gripper", "close_gripper"):
        verdict = pre_verdict(skill, {}, [], None)
        assert verdict.ok and "no preconditions" in verdict.reason
    assert not pre_verdict("fly", {}, [], None).ok


# --- pick -----------------------------------------------------------------------------------------


def test_pick_post_ok_when_the_object_is_seen_lifted_at_the_gripper():
    red, blue = cube(), cube("blue_cube_1", "blue", xy=(0.40, 0.20))
    evidence = frames(held_box(), seen(blue, blue.position, blue.size), opening=0.0395)
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red, blue], evidence, None)
    assert verdict.ok and verdict.confidence == 1.0, verdict
    assert "holding(red_cube_1) observed in 3 of 3" in verdict.reason and "above its rest" in verdict.reason
    assert verdict.observed


def test_pick_post_accepts_a_box_reaching_down_to_the_table():
    # The geometric detector, were it to keep floating clusters, extends their box down to the plane
    # below: measured after a real pick, centre z 0.071, height 0.140, top at the cube's top.
    extended = seen(cube(), [0.562, 0.103, 0.071], [0.034, 0.015, 0.140])
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [cube()], frames(extended, opening=0.0396), None)
    assert verdict.ok, verdict


def test_object_knocked_out_of_the_gripper_is_not_held():
    red = cube()
    # Knocked back onto the table 21 cm away; the fingers closed on nothing.
    on_table = seen(red, [0.55, -0.11, 0.02], red.size)
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red], frames(on_table, opening=0.0), None)
    assert not verdict.ok and verdict.confidence == 0.0
    assert "closed on nothing" in verdict.reason
    # Even were the fingers still apart, the cube seen on the table is not held.
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red], frames(on_table, opening=0.04), None)
    assert not verdict.ok and "red_cube_1 seen 0.21 m from the gripper at z=0.02: resting" in verdict.reason, verdict


def test_pick_post_with_the_object_hidden_in_the_gripper():
    red = cube()
    # The fingers hold something 4 cm wide and the cube is nowhere in view, nor where it stood: it is
    # hidden between the fingers. Ok, with less confidence than seeing it.
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red], frames(opening=0.04), None)
    assert verdict.ok and verdict.confidence == pytest.approx(0.6) and "hidden in the gripper" in verdict.reason
    # Inferred from the fingers and an empty place, never reported as seen.
    assert not verdict.observed and "inferred, not seen" in verdict.reason and " observed" not in verdict.reason
    # Still where it stood: the fingers hold something else, or nothing that is the cube.
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red],
                           frames(seen(red, red.position, red.size), opening=0.04), None)
    assert not verdict.ok and "resting" in verdict.reason, verdict
    assert not post_verdict("pick", {"object": "red_cube_1"}, [red], [], robot()).ok
    assert "no fresh perception" in post_verdict("pick", {"object": "red_cube_1"}, [red], [], robot()).reason
    never = post_verdict("pick", {"object": "ghost"}, [red], frames(held_box(), opening=0.04), None)
    assert not never.ok and "never in the semantic map" in never.reason


def test_wrong_identity_at_the_gripper_does_not_count():
    red, blue = cube(), cube("blue_cube_1", "blue", xy=(0.4, 0.2))
    # A blue cube at the gripper does not show the red one held.
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red, blue],
                           frames(held_box(obj=blue), opening=0.04), None)
    assert not verdict.ok and "no red cube is seen; a blue cube is at the gripper" in verdict.reason, verdict
    # Nor does another red cube resting where the map knows it, near the gripper.
    other = cube("red_cube_2", xy=(0.55, 0.13))
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red, other],
                           frames(seen(other, other.position, other.size), opening=0.04), None)
    assert not verdict.ok, verdict


def test_pick_post_needs_a_majority_of_frames():
    red = cube()
    resting = seen(red, red.position, red.size)
    mixed = [PerceptionFrame(1, (held_box(),), robot()), PerceptionFrame(2, (resting,), robot()),
             PerceptionFrame(3, (resting,), robot())]
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red], mixed, None)
    assert not verdict.ok and verdict.confidence == pytest.approx(1 / 3)
    mixed[1] = PerceptionFrame(2, (held_box(),), robot())
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red], mixed, None)
    assert verdict.ok and verdict.confidence == pytest.approx(2 / 3)


def test_seen_at_the_gripper_but_not_lifted_is_not_held():
    red = cube()
    verdict = post_verdict("pick", {"object": "red_cube_1"}, [red],
                           frames(seen(red, red.position, red.size), grasp=[0.55, 0.10, 0.02]), None)
    assert not verdict.ok and "not lifted" in verdict.reason


# --- place ----------------------------------------------------------------------------------------

AFTER_PLACE = {"opening": 0.06, "grasp": [0.45, -0.25, 0.18]}


def test_place_in_tray_ok_and_moved_afterwards_not_ok():
    red, box = cube(), tray()
    params = {"object": "red_cube_1", "relation": "in", "target": "tray_1"}
    inside = seen(red, [0.451, -0.247, 0.028], red.size)
    tray_seen = seen(box, box.position, box.size)
    verdict = post_verdict("place", params, [red, box], frames(inside, tray_seen, **AFTER_PLACE), None)
    assert verdict.ok and verdict.confidence == 1.0 and "in(red_cube_1, tray_1) observed" in verdict.reason, verdict
    # Moved out of the tray after placing.
    outside = seen(red, [0.62, 0.05, 0.02], red.size)
    verdict = post_verdict("place", params, [red, box], frames(outside, tray_seen, **AFTER_PLACE), None)
    assert not verdict.ok and "not over tray_1's footprint" in verdict.reason, verdict
    # Removed: nothing red is seen.
    verdict = post_verdict("place", params, [red, box], frames(tray_seen, **AFTER_PLACE), None)
    assert not verdict.ok and "no red cube is seen" in verdict.reason


def test_place_in_a_container_of_the_same_colour():
    gray, box = cube("gray_cube_1", "gray", xy=(0.62, 0.05)), tray()
    params = {"object": "gray_cube_1", "relation": "in", "target": "tray_1"}
    # A small gray cube seen inside the large gray tray is the cube, not a view of the tray.
    inside = seen(gray, [0.45, -0.24, 0.028], gray.size)
    verdict = post_verdict("place", params, [gray, box],
                           frames(inside, seen(box, box.position, box.size), **AFTER_PLACE), None)
    assert verdict.ok, verdict


def test_stacked_on_a_support_of_its_colour():
    top, base = cube("gray_cube_2", "gray", xy=(0.62, 0.05)), cube("gray_cube_1", "gray", xy=(0.5, 0.1), edge=0.055)
    params = {"object": "gray_cube_2", "relation": "on", "target": "gray_cube_1"}
    # One gray box where the support stands, as tall as both: the cube is on it.
    merged = seen(base, [0.5, 0.1, 0.0475], [0.055, 0.055, 0.095])
    verdict = post_verdict("place", params, [top, base], frames(merged, **AFTER_PLACE), None)
    assert verdict.ok and verdict.confidence == pytest.approx(0.8) and "stacked on it" in verdict.reason, verdict
    # The support alone, no taller than before: the cube is not on it (and not seen anywhere).
    alone = seen(base, base.position, base.size)
    verdict = post_verdict("place", params, [top, base], frames(alone, **AFTER_PLACE), None)
    assert not verdict.ok and "not on it" in verdict.reason, verdict


def test_place_judges_the_target_from_the_map_where_it_is_not_seen():
    red, box = cube(), tray()
    params = {"object": "red_cube_1", "relation": "in", "target": "tray_1"}
    inside = seen(red, [0.451, -0.247, 0.028], red.size)
    verdict = post_verdict("place", params, [red, box], frames(inside, **AFTER_PLACE), None)
    assert verdict.ok and verdict.confidence == pytest.approx(MAP_FALLBACK_WEIGHT)
    assert "its map box stands in" in verdict.reason


def test_place_where_the_target_was_is_not_ok_once_it_is_seen_elsewhere():
    red, box = cube(), tray()
    params = {"object": "red_cube_1", "relation": "in", "target": "tray_1"}
    # The tray was moved while the arm carried the cube: the cube went down where the map had it.
    at_old_spot = seen(red, [0.451, -0.247, 0.028], red.size)
    moved_tray = seen(box, [0.60, 0.20, 0.025], box.size)
    verdict = post_verdict("place", params, [red, box], frames(at_old_spot, moved_tray, **AFTER_PLACE), None)
    assert not verdict.ok and "not over tray_1's footprint" in verdict.reason, verdict
    assert "map box stands in" not in verdict.reason
    # Two trays of that look elsewhere: which one it is cannot be told, and the map box stands in.
    other_tray = seen(box, [0.30, 0.30, 0.025], box.size)
    verdict = post_verdict("place", params, [red, box],
                           frames(at_old_spot, moved_tray, other_tray, **AFTER_PLACE), None)
    assert verdict.ok and "its map box stands in" in verdict.reason, verdict


def test_place_not_ok_while_still_held_or_gripper_closed():
    red, box = cube(), tray()
    params = {"object": "red_cube_1", "relation": "in", "target": "tray_1"}
    inside = seen(red, [0.451, -0.247, 0.028], red.size)
    closed = post_verdict("place", params, [red, box], frames(inside, opening=0.04, grasp=[0.45, -0.25, 0.18]), None)
    assert not closed.ok and "not open" in closed.reason
    at_gripper = seen(red, [0.45, -0.25, 0.065], red.size)
    held = post_verdict("place", params, [red, box], frames(at_gripper, opening=0.06, grasp=[0.45, -0.25, 0.07]), None)
    assert not held.ok and "not released" in held.reason
    assert "no fresh perception" in post_verdict("place", params, [red, box], [], robot(**AFTER_PLACE)).reason


def test_stacked_cubes_merged_into_one_cluster_still_show_on():
    # Measured: the geometric detector sees a red cube on a blue one as one red box from the table up.
    red, blue = cube(), cube("blue_cube_1", "blue", xy=(0.40, 0.20), edge=0.05)
    merged = seen("red", [0.400, 0.202, 0.046], [0.050, 0.047, 0.090], category="irregular")
    params = {"object": "red_cube_1", "relation": "on", "target": "blue_cube_1"}
    verdict = post_verdict("place", params, [red, blue], frames(merged, opening=0.06, grasp=[0.4, 0.2, 0.18]), None)
    assert verdict.ok and "blue_cube_1 not visible" in verdict.reason, verdict
    # Fallen off beside the blue cube instead.
    beside = seen(red, [0.47, 0.20, 0.02], red.size)
    verdict = post_verdict("place", params, [red, blue],
                           frames(beside, seen(blue, blue.position, blue.size), opening=0.06, grasp=[0.4, 0.2, 0.18]),
                           None)
    assert not verdict.ok and "not over" in verdict.reason


def test_place_at_post_needs_the_object_resting_at_the_position():
    red = cube()
    params = {"object": "red_cube_1", "position": [0.45, 0.15]}
    released = {"opening": 0.06, "grasp": [0.45, 0.15, 0.13]}
    at_spot = seen(red, [0.462, 0.147, 0.021], red.size)
    verdict = post_verdict("place_at", params, [red], frames(at_spot, **released), None)
    assert verdict.ok and verdict.confidence == 1.0, verdict
    assert "at(red_cube_1, (0.450, 0.150)) observed in 3 of 3" in verdict.reason and "0.012 m" in verdict.reason
    # Came to rest 8 cm from the position.
    off = seen(red, [0.53, 0.15, 0.02], red.size)
    verdict = post_verdict("place_at", params, [red], frames(off, **released), None)
    assert not verdict.ok and verdict.confidence == 0.0
    assert "0.080 m from the position > 0.030" in verdict.reason, verdict
    # Over the position but on something 4 cm tall, not on the table.
    raised = seen(red, [0.45, 0.15, 0.06], red.size)
    verdict = post_verdict("place_at", params, [red], frames(raised, **released), None)
    assert not verdict.ok and "not on it" in verdict.reason and "+0.040" in verdict.reason, verdict


def test_place_at_post_not_ok_while_held_unseen_or_without_fresh_frames():
    red = cube()
    params = {"object": "red_cube_1", "position": [0.45, 0.15]}
    at_spot = seen(red, [0.45, 0.15, 0.02], red.size)
    closed = post_verdict("place_at", params, [red], frames(at_spot, opening=0.04, grasp=[0.45, 0.15, 0.02]), None)
    assert not closed.ok and "not open" in closed.reason
    at_gripper = seen(red, [0.45, 0.15, 0.06], red.size)
    held = post_verdict("place_at", params, [red], frames(at_gripper, opening=0.06, grasp=[0.45, 0.15, 0.06]), None)
    assert not held.ok and "not released" in held.reason
    unseen = post_verdict("place_at", params, [red], frames(opening=0.06, grasp=[0.45, 0.15, 0.13]), None)
    assert not unseen.ok and "no red cube is seen" in unseen.reason
    # A blue cube at the position is not the red one.
    blue = seen("blue", [0.45, 0.15, 0.02], red.size)
    assert not post_verdict("place_at", params, [red], frames(blue, opening=0.06, grasp=[0.45, 0.15, 0.13]), None).ok
    stale = post_verdict("place_at", params, [red], [], robot(opening=0.06))
    assert not stale.ok and stale.confidence == 0.0 and "no fresh perception" in stale.reason
    assert "never in the semantic map" in post_verdict("place_at", params, [], frames(at_spot), robot()).reason


@pytest.mark.parametrize("relation, offset, ok", [
    ("left_of", (0.0, 0.2), True), ("left_of", (0.0, -0.2), False), ("right_of", (0.0, -0.2), True),
    ("in_front_of", (-0.2, 0.0), True), ("behind", (0.2, 0.0), True), ("behind", (-0.2, 0.0), False),
    ("near", (0.12, 0.0), True), ("near", (0.0, 0.3), False),
])
def test_place_beside_relations_in_the_robots_view(relation, offset, ok):
    red, landmark = cube(), cube("blue_cube_1", "blue", xy=(0.5, 0.0))
    spot = seen(red, [0.5 + offset[0], offset[1], 0.02], red.size)
    params = {"object": "red_cube_1", "relation": relation, "target": "blue_cube_1"}
    evidence = frames(spot, seen(landmark, landmark.position, landmark.size), opening=0.06, grasp=[0.5, 0.0, 0.2])
    verdict = post_verdict("place", params, [red, landmark], evidence, None)
    assert verdict.ok == ok, verdict


def test_beside_relation_turns_with_the_robot():
    red, landmark = cube(), cube("blue_cube_1", "blue", xy=(0.5, 0.0))
    spot = seen(red, [0.5, 0.2, 0.02], red.size)  # world +y
    params = {"object": "red_cube_1", "relation": "left_of", "target": "blue_cube_1"}
    facing_back = frames(spot, seen(landmark, landmark.position, landmark.size), opening=0.06,
                         grasp=[0.5, 0.0, 0.2], base_pose=(1.0, 0.0, math.pi))
    assert not post_verdict("place", params, [red, landmark], facing_back, None).ok


def test_other_red_cube_already_in_the_tray_is_not_the_placed_one():
    red, box, other = cube(), tray(), cube("red_cube_2", xy=(0.45, -0.25), z=0.008)
    params = {"object": "red_cube_1", "relation": "in", "target": "tray_1"}
    # Only red_cube_2, where the map knew it, is seen in the tray; red_cube_1 fell outside, unseen.
    evidence = frames(seen(other, other.position, other.size), seen(box, box.position, box.size), **AFTER_PLACE)
    verdict = post_verdict("place", params, [red, box, other], evidence, None)
    assert not verdict.ok, verdict


# --- push, navigate, search, say, arm -------------------------------------------------------------


@pytest.mark.parametrize("moved_to, ok", [((0.55, 0.20), True), ((0.55, 0.16), True), ((0.55, 0.14), False),
                                          ((0.55, 0.30), False), ((0.65, 0.10), False)])
def test_push_left_needs_half_the_distance_and_not_much_more(moved_to, ok):
    red = cube()
    params = {"object": "red_cube_1", "direction": "left", "distance": 0.1}
    verdict = post_verdict("push", params, [red], frames(seen(red, [*moved_to, 0.02], red.size), opening=0.0), None)
    assert verdict.ok == ok, verdict
    assert "moved" in verdict.reason


def test_push_forward_is_world_x_and_unmoved_is_not_ok():
    red = cube()
    params = {"object": "red_cube_1", "direction": "forward", "distance": 0.1}
    assert post_verdict("push", params, [red], frames(seen(red, [0.65, 0.10, 0.02], red.size)), robot()).ok
    unmoved = post_verdict("push", params, [red], frames(seen(red, red.position, red.size)), robot())
    assert not unmoved.ok and "+0.000 m forward" in unmoved.reason
    assert not post_verdict("push", params, [red], [], robot()).ok
    assert not post_verdict("push", {**params, "direction": "up"}, [red], frames(), robot()).ok


def test_navigate_to_pose_and_object():
    at = Proprioception(base_pose=(1.02, 1.97, 0.05))
    assert post_verdict("navigate_to", {"pose": [1.0, 2.0]}, [], [], at).ok
    assert not post_verdict("navigate_to", {"pose": [1.0, 2.0, math.pi]}, [], [], at).ok
    assert not post_verdict("navigate_to", {"pose": [3.0, 2.0]}, [], [], at).ok
    assert not post_verdict("navigate_to", {"pose": [1.0, 2.0]}, [], [], Proprioception()).ok

    chair = MapObject("chair_1", "chair", "chair", (), "brown", [2.0, 0.0, 0.4], [0.5, 0.5, 0.8], 0.0)
    # Front bumper at x = 0.504 + 1.0 = 1.504; the chair's near side at 1.75: a 0.246 m gap.
    near = Proprioception(base_pose=(1.0, 0.0, 0.0))
    seen_chair = frames(seen(chair, chair.position, chair.size))
    verdict = post_verdict("navigate_to", {"object": "chair_1"}, [chair], seen_chair, near)
    assert verdict.ok and verdict.confidence == 1.0 and "0.246 m" in verdict.reason, verdict
    unseen = post_verdict("navigate_to", {"object": "chair_1"}, [chair], frames(), near)
    assert unseen.ok and unseen.confidence == pytest.approx(MAP_FALLBACK_WEIGHT)
    far = post_verdict("navigate_to", {"object": "chair_1"}, [chair], seen_chair, Proprioception(base_pose=(0.5, 0, 0)))
    assert not far.ok and "0.746 m" in far.reason


def test_search_uses_the_map_lookup():
    red = cube()

    def find(text):
        return [(red, 0.83)] if "red" in text else []

    verdict = post_verdict("search", {"query": "red block"}, [], [], None, map_objects=[red], find=find)
    assert verdict.ok and "red_cube_1" in verdict.reason and verdict.confidence == pytest.approx(0.83)
    assert not post_verdict("search", {"query": "green ball"}, [], [], None, map_objects=[red], find=find).ok
    assert not post_verdict("search", {"query": "red"}, [], [], None).ok


def test_say_is_confirmed_from_chat():
    assert post_verdict("say", {"text": "done"}, [], [], None, said=["hello", "done"]).ok
    verdict = post_verdict("say", {"text": "done"}, [], [], None, said=["hello"])
    assert not verdict.ok and "'hello'" in verdict.reason


def test_arm_and_gripper_post_verdicts():
    home = Proprioception(arm_joints=PANDA_HOME)
    assert post_verdict("move_arm_home", {}, [], [], home).ok
    off = Proprioception(arm_joints=np.array(PANDA_HOME) + [0, 0, 0, 0.2, 0, 0, 0])
    verdict = post_verdict("move_arm_home", {}, [], [], off)
    assert not verdict.ok and "joint 4" in verdict.reason
    assert not post_verdict("move_arm_home", {}, [], [], None).ok

    assert post_verdict("open_gripper", {"opening": 0.05}, [], [], Proprioception(gripper_opening=0.047)).ok
    short = post_verdict("open_gripper", {"opening": 0.05}, [], [], Proprioception(gripper_opening=0.04))
    assert not short.ok and "4.0 cm" in short.reason
    assert post_verdict("open_gripper", {}, [], [], Proprioception(gripper_opening=0.0785)).ok

    closed = post_verdict("close_gripper", {}, [], [], Proprioception(gripper_opening=0.001, gripper_speed=0.0,
                                                                      gripper_command=0.0))
    assert closed.ok and "nothing is between" in closed.reason
    on_object = post_verdict("close_gripper", {}, [], [], Proprioception(gripper_opening=0.04, gripper_speed=0.0))
    assert on_object.ok and "something holds them apart" in on_object.reason
    moving = post_verdict("close_gripper", {}, [], [], Proprioception(gripper_opening=0.03, gripper_speed=0.05))
    assert not moving.ok and "still moving" in moving.reason
    assert not post_verdict("close_gripper", {}, [], [], None).ok
    assert not post_verdict("fly", {}, [], [], None).ok
