"""navigate_to near a table: the base reverses out before it turns (never into something) and squares up to objects."""

import math

from modular_robot.core.navigation.geometry import HUSKY_FOOTPRINT, ObjectBox, footprint_gap, wrap_angle
from modular_robot.skills.driving import SQUARE_UP_RAD, _square_up
from modular_robot.skills.navigation import NavigateParams, navigate_to
from test_navigation import (
    SHIELD_ANGULAR_ACCEL,
    SHIELD_LINEAR_ACCEL,
    FakeBase,
    _assert_ramped,
    _context,
    _grid,
    _with_boxes,
)

# A table whose near edge is 12 cm from the bumper of a base at the origin facing +x, as after an approach.
TABLE = (0.62, 1.2, -0.3, 0.3)


def _open_grid(obstacles):
    return _with_boxes(_with_boxes(_grid(fill=-1), [(-3.5, 5.0, -4.0, 4.0)], value=0), obstacles)


def test_a_base_at_a_table_backs_out_then_drives_behind_itself_without_touching_it():
    base = FakeBase((0.0, 0.0, 0.0), _open_grid([TABLE]))
    ctx, _ = _context(base, [])
    phases = []
    ctx.progress = lambda phase, fraction: phases.append(phase)
    result = navigate_to(NavigateParams(pose=[-1.5, -1.5]), ctx)
    assert result.success, result.reason
    assert math.dist((base.x, base.y), (-1.5, -1.5)) < 0.2
    first_moves = [c for c in base.commands if c != (0.0, 0.0)][:3]
    assert all(linear < 0.0 and angular == 0.0 for linear, angular in first_moves)
    assert "backing out to turn" in phases
    assert not base.collided
    _assert_ramped(base.commands, SHIELD_LINEAR_ACCEL, SHIELD_ANGULAR_ACCEL)
    assert result.effects["observed"]["distance_m"] >= 0.05


def test_a_base_with_room_to_turn_does_not_back_out():
    base = FakeBase((0.0, 0.0, 0.0), _open_grid([(1.5, 2.0, -0.3, 0.3)]))
    ctx, _ = _context(base, [])
    result = navigate_to(NavigateParams(pose=[-1.5, -1.5]), ctx)
    assert result.success, result.reason
    assert all(linear >= 0.0 for linear, _ in base.commands)


def test_a_base_boxed_in_front_and_behind_never_reverses_into_the_wall():
    wall = (-0.75, -0.7, -1.0, 1.0)
    base = FakeBase((0.0, 0.0, 0.0), _open_grid([TABLE, wall]))
    ctx, _ = _context(base, [])
    phases = []
    ctx.progress = lambda phase, fraction: phases.append(phase)
    navigate_to(NavigateParams(pose=[-1.5, -1.5]), ctx)
    assert not base.collided
    assert "backing out to turn" not in phases
    assert all(linear >= 0.0 for linear, _ in base.commands[:3])


def test_a_base_stopped_short_at_an_angle_squares_up_to_face_the_object():
    # Stopped at an angle in front of a table with the object on it: the table's edge is inside the
    # turning circle, so the base backs out, turns to face the object and creeps up to the edge.
    table = (0.7, 1.2, -0.4, 0.4)
    base = FakeBase((0.0, 0.3, -0.7), _open_grid([table]))
    ctx, _ = _context(base, [])
    mug = ObjectBox((0.85, 0.0), (0.05, 0.05))
    driven, squared = _square_up(ctx, mug)
    bearing = math.atan2(mug.center[1] - base.y, mug.center[0] - base.x)
    assert abs(wrap_angle(bearing - base.yaw)) < SQUARE_UP_RAD
    assert squared and driven > 0.0 and not base.collided
    front = footprint_gap((base.x, base.y, base.yaw), HUSKY_FOOTPRINT, ObjectBox((0.95, 0.0), (0.5, 0.8)))
    assert front < 0.15
    assert base.commands[-1] == (0.0, 0.0)
    _assert_ramped(base.commands, SHIELD_LINEAR_ACCEL, SHIELD_ANGULAR_ACCEL)


def test_a_base_facing_the_object_does_not_square_up():
    base = FakeBase((0.0, 0.0, 0.0), _open_grid([TABLE]))
    ctx, _ = _context(base, [])
    assert _square_up(ctx, ObjectBox((0.8, 0.0), (0.05, 0.05))) == (0.0, False)
    assert not base.commands
