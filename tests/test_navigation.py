"""Navigation: costmap, A* planner, standoff poses, path follower, obstacle stop, and the navigate_to/search skills.

Skills run against a kinematic fake base that integrates each velocity command over `wait` with
the simulator's acceleration limits, and records every command and whether its footprint ever
covered an obstacle cell of the true grid.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.navigation.following import DriveLimits, PathFollower, path_blockage
from modular_robot.core.navigation.geometry import (
    HUSKY_FOOTPRINT,
    ObjectBox,
    OccupancyMap,
    footprint_gap,
    polygon_gap,
    wrap_angle,
)
from modular_robot.core.navigation.path_planning import (
    APPROACH_GAP_M,
    build_costmap,
    path_is_free,
    plan_path,
    plan_to_object,
    standoff_poses,
)
from modular_robot.skills.driving import CONTROL_PERIOD_S
from modular_robot.skills.interfaces import SkillContext
from modular_robot.skills.navigation import NAVIGATE_TO, NavigateParams, navigate_to
from modular_robot.skills.search import MATCH_SCORE, SEARCH, SearchParams, search

RESOLUTION = 0.05
LIMITS = DriveLimits(0.5, 1.0, 0.75, 1.5)
# What the safety shield enforces between consecutive twists (config/safety/husky_base.yaml).
SHIELD_LINEAR_ACCEL = 1.5
SHIELD_ANGULAR_ACCEL = 3.0


def _grid(size_m=12.0, fill=0, origin=(-4.0, -6.0)):
    cells = round(size_m / RESOLUTION)
    return OccupancyMap(np.full((cells, cells), fill, dtype=np.int8), RESOLUTION, origin)


def _with_boxes(grid, boxes, value=100):
    """Return a copy of a grid with axis-aligned boxes (x0, x1, y0, y1) set to a value."""
    data = grid.data.copy()
    for x0, x1, y0, y1 in boxes:
        c0, c1 = (math.floor((v - grid.origin[0]) / RESOLUTION) for v in (x0, x1))
        r0, r1 = (math.floor((v - grid.origin[1]) / RESOLUTION) for v in (y0, y1))
        data[max(r0, 0):max(r1, 0) + 1, max(c0, 0):max(c1, 0) + 1] = value
    return OccupancyMap(data, grid.resolution, grid.origin)


def _box_cells(box: ObjectBox):
    corners = box.corners()
    return (corners[:, 0].min(), corners[:, 0].max(), corners[:, 1].min(), corners[:, 1].max())


def _drive(follower, pose, seconds=60.0, accel=(1.5, 3.0)):
    """Integrate a follower's commands kinematically; return the final pose and the commands."""
    x, y, yaw = pose
    v = w = 0.0
    commands = []
    for _ in range(round(seconds / CONTROL_PERIOD_S)):
        command = follower.step((x, y, yaw))
        commands.append(command)
        if command.done:
            break
        for _ in range(10):
            dt = CONTROL_PERIOD_S / 10
            v += np.clip(command.linear - v, -accel[0] * dt, accel[0] * dt)
            w += np.clip(command.angular - w, -accel[1] * dt, accel[1] * dt)
            x += v * math.cos(yaw) * dt
            y += v * math.sin(yaw) * dt
            yaw = wrap_angle(yaw + w * dt)
    return (x, y, yaw), commands


def _assert_ramped(commands, linear_accel, angular_accel, period=CONTROL_PERIOD_S):
    previous = (0.0, 0.0)
    for command in commands:
        v, w = command if isinstance(command, tuple) else (command.linear, command.angular)
        assert abs(v - previous[0]) <= linear_accel * period + 1e-9, (previous, v)
        assert abs(w - previous[1]) <= angular_accel * period + 1e-9, (previous, w)
        previous = (v, w)


# --- costmap and planner ----------------------------------------------------------------------


def test_costmap_inflates_obstacles_and_prices_unknown_cells():
    grid = _with_boxes(_grid(fill=-1), [(2.0, 2.05, 0.0, 0.05)])
    costmap = build_costmap(grid, 0.5)
    assert costmap.is_free(0.0, 0.0) and not costmap.is_free(2.0, 0.4) and costmap.is_free(2.0, 0.65)
    assert costmap.cost[grid.cell(0.0, 0.0)] > 1.0  # unknown: passable, but dearer than known-free
    known = build_costmap(_grid(fill=0), 0.5)
    assert known.cost[grid.cell(0.0, 0.0)] == 1.0


def test_plan_in_open_space_is_a_straight_line_from_exact_start_to_exact_goal():
    plan = plan_path(build_costmap(_grid(), 0.55), (0.013, -0.02), (5.0, 1.234))
    assert plan.ok, plan.reason
    assert plan.path[0] == (0.013, -0.02) and plan.path[-1] == (5.0, 1.234)
    assert len(plan.path) == 2
    assert plan.length == pytest.approx(math.dist((0.013, -0.02), (5.0, 1.234)))


def test_plan_goes_around_a_wall_and_keeps_the_radius():
    grid = _with_boxes(_grid(), [(2.0, 2.3, -2.0, 2.0)])
    costmap = build_costmap(grid, 0.55)
    plan = plan_path(costmap, (0.0, 0.0), (4.5, 0.0))
    assert plan.ok, plan.reason
    assert path_is_free(costmap, plan.path)
    assert 4.5 < plan.length < 9.0
    assert max(abs(y) for _, y in plan.path) > 2.0


def test_plan_through_unknown_space_when_that_is_all_there_is():
    plan = plan_path(build_costmap(_grid(fill=-1), 0.55), (0.0, 0.0), (3.0, 2.0))
    assert plan.ok and len(plan.path) == 2


@pytest.mark.parametrize("start, goal, words", [
    ((-9.0, 0.0), (2.0, 0.0), ["start", "outside"]),
    ((0.0, 0.0), (20.0, 0.0), ["goal", "outside"]),
    ((0.0, 0.0), (3.0, 0.1), ["goal", "inside an obstacle"]),
    ((0.0, 0.0), (3.0, 0.7), ["goal", "closer than 0.55"]),
    ((0.0, 0.0), (6.0, 0.0), ["no path"]),
    ((0.0, 0.0), (float("nan"), 0.0), ["goal", "outside"]),
])
def test_planner_says_why_there_is_no_path(start, goal, words):
    grid = _with_boxes(_grid(), [(2.9, 3.1, -0.1, 0.3),
                                 # a closed ring around (6, 0)
                                 (5.0, 7.0, -1.05, -1.0), (5.0, 7.0, 1.0, 1.05), (5.0, 5.05, -1.0, 1.0),
                                 (6.95, 7.0, -1.0, 1.0)])
    plan = plan_path(build_costmap(grid, 0.55), start, goal)
    assert not plan.ok and plan.path == ()
    for word in words:
        assert word in plan.reason


def test_start_next_to_an_obstacle_escapes_to_the_nearest_free_cell():
    grid = _with_boxes(_grid(), [(0.3, 0.5, -1.0, 1.0)])
    costmap = build_costmap(grid, 0.55)
    assert not costmap.is_free(0.0, 0.0)
    plan = plan_path(costmap, (0.0, 0.0), (-3.0, 0.0))
    assert plan.ok, plan.reason
    # The wall is 0.3 m ahead: the nearest free cell is 0.55 + half a cell from it, straight back.
    assert costmap.is_free(*plan.path[1]) and plan.path[1][0] == pytest.approx(-0.325) and abs(plan.path[1][1]) < 0.05
    assert path_is_free(costmap, plan.path[1:])


def test_start_inside_a_solid_block_is_enclosed():
    grid = _with_boxes(_grid(), [(-2.0, 2.0, -2.0, 2.0)])
    plan = plan_path(build_costmap(grid, 0.55), (0.0, 0.0), (5.0, 4.0))
    assert not plan.ok and "enclosed" in plan.reason


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boxes=st.lists(st.tuples(st.floats(0.5, 6.5), st.floats(-4.0, 4.0), st.floats(0.1, 1.5), st.floats(0.1, 1.5)),
                      max_size=6),
       goal=st.tuples(st.floats(-3.0, 7.5), st.floats(-5.0, 5.0)))
def test_every_planned_path_stays_clear_and_ends_at_the_goal(boxes, goal):
    grid = _with_boxes(_grid(), [(x, x + w, y, y + h) for x, y, w, h in boxes])
    costmap = build_costmap(grid, 0.55)
    plan = plan_path(costmap, (-1.0, 0.0), goal)
    if plan.ok:
        assert plan.path[-1] == goal
        assert path_is_free(costmap, plan.path, skip=0.3)
    else:
        assert plan.reason


# --- standoff -----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(size=st.tuples(st.floats(0.03, 1.2), st.floats(0.03, 1.2)), yaw=st.floats(-math.pi, math.pi))
def test_standoff_poses_face_the_object_at_the_approach_gap(size, yaw):
    box = ObjectBox((1.0, -2.0), size, yaw)
    poses = standoff_poses(box, HUSKY_FOOTPRINT)
    assert len(poses) >= 4
    for pose in poses:
        assert footprint_gap(pose, HUSKY_FOOTPRINT, box) == pytest.approx(APPROACH_GAP_M, abs=1e-6)
        # Facing: the object's centre lies ahead, within the bumper's width.
        ahead = (box.center[0] - pose[0]) * math.cos(pose[2]) + (box.center[1] - pose[1]) * math.sin(pose[2])
        side = -(box.center[0] - pose[0]) * math.sin(pose[2]) + (box.center[1] - pose[1]) * math.cos(pose[2])
        assert ahead > HUSKY_FOOTPRINT.front and abs(side) < max(size) / 2 + 1e-6


def test_standoff_is_on_the_robots_side_and_avoids_a_blocked_face():
    box = ObjectBox((4.0, 0.0), (0.3, 0.3), 0.0)
    grid = _with_boxes(_grid(), [_box_cells(box)])
    approach = plan_to_object(build_costmap(grid, 0.55, box, 0.45), (0.0, 0.0), box, HUSKY_FOOTPRINT)
    assert approach.pose is not None, approach.plan.reason
    assert approach.pose[0] == pytest.approx(4.0 - 0.15 - APPROACH_GAP_M - HUSKY_FOOTPRINT.front)
    assert approach.pose[1] == pytest.approx(0.0) and approach.pose[2] == pytest.approx(0.0)
    # A crate just in front of that face: the base goes round to another side.
    blocked = _with_boxes(grid, [(2.8, 3.4, -0.4, 0.4)])
    approach = plan_to_object(build_costmap(blocked, 0.55, box, 0.45), (0.0, 0.0), box, HUSKY_FOOTPRINT)
    assert approach.pose is not None, approach.plan.reason
    assert abs(approach.pose[1]) > 0.5 or approach.pose[0] > 4.0
    assert footprint_gap(approach.pose, HUSKY_FOOTPRINT, box) == pytest.approx(APPROACH_GAP_M, abs=1e-6)


def test_approach_ends_with_a_straight_leg_facing_the_object_unless_already_there():
    box = ObjectBox((4.0, 1.0), (0.2, 0.2), 0.0)
    costmap = build_costmap(_with_boxes(_grid(), [_box_cells(box)]), 0.55, box, 0.45)
    approach = plan_to_object(costmap, (0.0, -2.0), box, HUSKY_FOOTPRINT)
    (x0, y0), (x1, y1) = approach.plan.path[-2:]
    assert math.dist((x0, y0), (x1, y1)) == pytest.approx(0.4)
    assert math.atan2(y1 - y0, x1 - x0) == pytest.approx(approach.pose[2])
    again = plan_to_object(costmap, approach.pose[:2], box, HUSKY_FOOTPRINT)
    assert again.pose == approach.pose and again.plan.length < 0.01


def test_object_seen_larger_in_the_grid_than_in_the_map_still_has_a_free_standoff():
    box = ObjectBox((4.0, 0.0), (0.1, 0.1), 0.0)
    grid = _with_boxes(_grid(), [(3.85, 4.15, -0.15, 0.15)])
    approach = plan_to_object(build_costmap(grid, 0.55, box, 0.45), (0.0, 0.0), box, HUSKY_FOOTPRINT)
    assert approach.pose is not None and approach.pose[0] < 3.4, approach


def test_object_walled_in_has_no_reachable_standoff():
    box = ObjectBox((4.0, 0.0), (0.1, 0.1), 0.0)
    grid = _with_boxes(_grid(), [(2.5, 5.5, -1.55, -1.5), (2.5, 5.5, 1.5, 1.55), (2.5, 2.55, -1.5, 1.5),
                                 (5.45, 5.5, -1.5, 1.5)])
    approach = plan_to_object(build_costmap(grid, 0.55, box, 0.45), (0.0, 0.0), box, HUSKY_FOOTPRINT)
    assert approach.pose is None and "reachable" in approach.plan.reason
    assert plan_to_object(build_costmap(grid, 0.55, box, 0.45), (4.0, 0.8), box, HUSKY_FOOTPRINT).pose is not None


def test_polygon_gap():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    assert polygon_gap(square, square + [2.0, 0.0]) == pytest.approx(1.0)
    assert polygon_gap(square, square + [0.5, 0.5]) == 0.0
    assert polygon_gap(square, square + [2.0, 2.0]) == pytest.approx(math.sqrt(2.0))


# --- follower -----------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(start=st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0), st.floats(-math.pi, math.pi)),
       goal=st.tuples(st.floats(-4.0, 4.0), st.floats(-4.0, 4.0)), goal_yaw=st.floats(-math.pi, math.pi))
def test_follower_reaches_goal_and_heading_within_limits(start, goal, goal_yaw):
    follower = PathFollower([start[:2], goal], LIMITS, CONTROL_PERIOD_S, goal_yaw)
    final, commands = _drive(follower, start)
    assert commands[-1].done
    assert math.dist(final[:2], goal) <= 0.05 + 0.02
    assert abs(wrap_angle(final[2] - goal_yaw)) <= 0.05 + 0.02
    assert all(abs(c.linear) <= LIMITS.linear + 1e-9 and abs(c.angular) <= LIMITS.angular + 1e-9 for c in commands)
    _assert_ramped(commands, LIMITS.linear_accel, LIMITS.angular_accel)


def test_follower_turns_in_place_first_then_slows_down_at_the_goal():
    follower = PathFollower([(0.0, 0.0), (-3.0, 0.0)], LIMITS, CONTROL_PERIOD_S)
    final, commands = _drive(follower, (0.0, 0.0, 0.0))
    turning = [c for c in commands[:10]]
    assert all(c.linear == 0.0 and c.phase == "turn" for c in turning) and turning[-1].angular != 0.0
    speeds = [c.linear for c in commands if c.phase == "track"]
    assert max(speeds) == pytest.approx(LIMITS.linear)
    assert speeds[-1] < 0.1
    assert math.dist(final[:2], (-3.0, 0.0)) <= 0.07
    assert commands[-1].done and commands[-1].linear == 0.0 and commands[-1].angular == 0.0


def test_follower_follows_a_corner_path():
    path = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
    follower = PathFollower(path, LIMITS, CONTROL_PERIOD_S, math.pi)
    final, commands = _drive(follower, (0.0, 0.0, 0.0))
    assert commands[-1].done and math.dist(final[:2], (0.0, 2.0)) <= 0.07
    assert abs(wrap_angle(final[2] - math.pi)) <= 0.07


def test_follower_rejects_bad_input():
    with pytest.raises(ValueError):
        PathFollower([], LIMITS, 0.1)
    with pytest.raises(ValueError):
        PathFollower([(0.0, float("nan"))], LIMITS, 0.1)
    with pytest.raises(ValueError):
        PathFollower([(0.0, 0.0)], DriveLimits(0.5, 1.0, 0.0, 1.0), 0.1)
    follower = PathFollower([(0.0, 0.0), (1.0, 0.0)], LIMITS, 0.1)
    command = follower.step((float("nan"), 0.0, 0.0))
    assert command.linear == 0.0 and command.angular == 0.0 and not command.done


# --- obstacle stop ------------------------------------------------------------------------------


def test_obstacle_on_the_path_ahead_blocks_and_unknown_does_not():
    pose = (0.0, 0.0, 0.0)
    path = [(0.0, 0.0), (4.0, 0.0)]
    clear = _with_boxes(_grid(fill=0), [(0.8, 3.0, -1.0, 1.0)], value=-1)
    assert path_blockage(clear, pose, path, HUSKY_FOOTPRINT) is None
    blocked = _with_boxes(clear, [(0.9, 0.95, 0.3, 0.35)])
    blockage = path_blockage(blocked, pose, path, HUSKY_FOOTPRINT)
    assert blockage is not None and 0.3 < blockage.distance < 0.45
    assert np.allclose(blockage.points.mean(axis=0), [0.925, 0.325], atol=0.03)
    # Farther than the lookahead, or beside the swept footprint: not a blockage (yet).
    assert path_blockage(_with_boxes(clear, [(2.0, 2.05, 0.0, 0.05)]), pose, path, HUSKY_FOOTPRINT) is None
    assert path_blockage(_with_boxes(clear, [(1.0, 1.05, 0.5, 0.55)]), pose, path, HUSKY_FOOTPRINT) is None


def test_a_goal_all_but_reached_leaves_nothing_to_check():
    # 2 cm to go, sideways: the heading of that last bit would swing the footprint onto the crate.
    grid = _with_boxes(_grid(), [(0.3, 0.35, -0.65, -0.6)])
    assert path_blockage(grid, (0.0, 0.0, 0.0), [(0.0, 0.0), (0.0, -0.02)], HUSKY_FOOTPRINT) is None
    assert path_blockage(grid, (0.0, 0.0, 0.0), [(0.0, 0.0), (0.0, -0.3)], HUSKY_FOOTPRINT) is not None


def test_cells_already_under_the_base_do_not_block():
    grid = _with_boxes(_grid(), [(0.2, 0.25, 0.2, 0.25)])
    assert path_blockage(grid, (0.0, 0.0, 0.0), [(0.0, 0.0), (-3.0, 0.0)], HUSKY_FOOTPRINT) is None


# --- skills with a kinematic fake base ----------------------------------------------------------


class FakeBase:
    """A kinematic differential drive. `grid` may be a function of the time (s) for a changing map."""

    def __init__(self, pose, grid, truth=None, cancel_after_s=None, stuck=False):
        self.x, self.y, self.yaw = pose
        self._grid = grid
        self.truth = truth if truth is not None else (grid if isinstance(grid, OccupancyMap) else None)
        self.time = 0.0
        self.cancel_after_s = cancel_after_s
        self.stuck = stuck
        self.command = (0.0, 0.0)
        self.velocity = [0.0, 0.0]
        self.commands = []
        self.collided = False
        self.localised = True

    def pose(self):
        return (self.x, self.y, self.yaw) if self.localised else None

    def send_velocity(self, linear, angular):
        self.commands.append((linear, angular))
        self.command = (linear, angular)

    def stop(self):
        self.send_velocity(0.0, 0.0)

    def occupancy(self):
        return self._grid(self.time) if callable(self._grid) else self._grid

    def wait(self, seconds):
        if self.cancel_after_s is not None and self.time >= self.cancel_after_s:
            return False
        steps = max(1, round(seconds / 0.01))
        for _ in range(steps):
            dt = seconds / steps
            for i, (target, accel) in enumerate(zip(self.command, (SHIELD_LINEAR_ACCEL, SHIELD_ANGULAR_ACCEL))):
                self.velocity[i] += float(np.clip(target - self.velocity[i], -accel * dt, accel * dt))
            if not self.stuck:
                self.x += self.velocity[0] * math.cos(self.yaw) * dt
                self.y += self.velocity[0] * math.sin(self.yaw) * dt
                self.yaw = wrap_angle(self.yaw + self.velocity[1] * dt)
            self._check_collision()
        self.time += seconds
        return True

    def moved(self):
        return any(v != 0.0 or w != 0.0 for v, w in self.commands)

    def _check_collision(self):
        if self.truth is None:
            return
        rows, cols = np.nonzero(self.truth.occupied())
        centres = np.stack([self.truth.origin[0] + (cols + 0.5) * RESOLUTION,
                            self.truth.origin[1] + (rows + 0.5) * RESOLUTION], axis=1)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        d = centres - [self.x, self.y]
        local = np.stack([d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c], axis=1)
        inside = ((local[:, 0] <= HUSKY_FOOTPRINT.front) & (local[:, 0] >= -HUSKY_FOOTPRINT.rear)
                  & (np.abs(local[:, 1]) <= HUSKY_FOOTPRINT.half_width))
        self.collided |= bool(inside.any())


class FakeWorld:
    """A semantic map whose objects become findable once `visible(base)` says so."""

    def __init__(self, objects, visible=None, base=None):
        self._objects = {o.id: o for o in objects}
        self.visible = visible or (lambda obj, base: True)
        self.base = base
        self.refreshes = 0

    def lookup(self, object_id):
        return self._objects.get(object_id)

    def objects(self):
        return list(self._objects.values())

    def refresh(self, timeout_s):
        self.refreshes += 1
        return True

    def find(self, text, max_results):
        words = set(text.lower().split())
        scored = [(o, len(words & set(o.label.split())) / len(o.label.split())) for o in self._objects.values()
                  if self.visible(o, self.base)]
        return sorted([m for m in scored if m[1] > 0], key=lambda m: -m[1])[:max_results]


class FakeSpeech:
    def say(self, text):
        pass


def _crate(object_id, xy, size=(0.4, 0.4), label="brown crate"):
    return MapObject(object_id, label, "crate", (), None, [xy[0], xy[1], 0.2], [size[0], size[1], 0.4], 0.0)


def _context(base, objects, **kwargs):
    world = FakeWorld(objects, base=base, **kwargs)
    return SkillContext(None, world, FakeSpeech(), None, base=base), world


def _scene():
    """A cube 4.5 m ahead, two crates between; the grid knows all three."""
    cube = MapObject("red_cube", "red cube", "cube", ("red",), "red", [4.5, 0.2, 0.03], [0.06, 0.06, 0.06], 0.3)
    crates = [_crate("crate_1", (2.0, 0.1)), _crate("crate_2", (3.0, -1.0))]
    grid = _with_boxes(_grid(fill=-1), [(-1.0, 6.0, -2.0, 2.0)], value=0)
    grid = _with_boxes(grid, [_box_cells(ObjectBox(tuple(o.position[:2]), tuple(o.size[:2]), o.yaw))
                              for o in [cube, *crates]])
    return cube, crates, grid


def test_navigate_to_object_arrives_facing_it_without_touching_anything():
    cube, crates, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, [cube, *crates])
    phases = []
    ctx.progress = lambda phase, fraction: phases.append((phase, fraction))
    result = navigate_to(NavigateParams(object="red_cube"), ctx)
    assert result.success, result.reason
    box = ObjectBox(tuple(cube.position[:2]), tuple(cube.size[:2]), cube.yaw)
    pose = (base.x, base.y, base.yaw)
    assert footprint_gap(pose, HUSKY_FOOTPRINT, box) <= 0.3
    bearing = math.atan2(box.center[1] - base.y, box.center[0] - base.x)
    assert abs(wrap_angle(bearing - base.yaw)) < 0.2
    assert not base.collided
    assert base.commands[-1] == (0.0, 0.0)
    _assert_ramped(base.commands, SHIELD_LINEAR_ACCEL, SHIELD_ANGULAR_ACCEL)
    assert result.effects["moved"] and result.effects["unverified"] == ["robot_near(red_cube)"]
    assert result.effects["observed"]["gap_m"] <= 0.3 and len(result.effects["observed"]["pose"]) == 3
    assert phases and phases[-1][1] > 0.9


def test_object_on_a_table_is_approached_at_the_nearest_table_edge():
    _, crates, grid = _scene()
    mug = MapObject("mug", "white mug", "cup", (), "white", [3.5, -0.5, 0.45], [0.08, 0.08, 0.1], 0.0)
    table = (3.2, 4.1, -0.9, -0.2)
    grid = _with_boxes(grid, [table])
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, [mug, *crates])
    result = navigate_to(NavigateParams(object="mug"), ctx)
    assert result.success, result.reason
    assert "stands on or next to something" in result.reason
    table_box = ObjectBox(((table[0] + table[1]) / 2, (table[2] + table[3]) / 2), (0.9, 0.7), 0.0)
    pose = (base.x, base.y, base.yaw)
    assert footprint_gap(pose, HUSKY_FOOTPRINT, table_box) < 0.2
    assert footprint_gap(pose, HUSKY_FOOTPRINT, ObjectBox((3.5, -0.5), (0.08, 0.08))) < 0.5
    bearing = math.atan2(-0.5 - base.y, 3.5 - base.x)
    assert abs(wrap_angle(bearing - base.yaw)) < 0.1 and not base.collided


def test_object_larger_than_mapped_is_approached_until_just_before_it():
    _, crates, grid = _scene()
    # The map says a 10 cm box at (4.5, 1.5); the grid sees 30 cm, reaching 0.1 m nearer the robot.
    crate = _crate("crate_3", (4.5, 1.5), size=(0.1, 0.1))
    grid = _with_boxes(grid, [(4.36, 4.64, 1.36, 1.64)])
    base = FakeBase((0.0, 1.5, 0.0), grid)
    ctx, _ = _context(base, [crate, *crates])
    result = navigate_to(NavigateParams(object="crate_3"), ctx)
    assert result.success, result.reason
    gap = footprint_gap((base.x, base.y, base.yaw), HUSKY_FOOTPRINT, ObjectBox((4.5, 1.5), (0.3, 0.3)))
    assert 0.0 < gap <= 0.15 and not base.collided


def test_navigate_to_pose_with_heading():
    _, crates, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, crates)
    result = navigate_to(NavigateParams(pose=[3.5, 1.2, -1.5]), ctx)
    assert result.success, result.reason
    assert math.dist((base.x, base.y), (3.5, 1.2)) <= 0.07 and abs(wrap_angle(base.yaw + 1.5)) <= 0.07
    assert not base.collided and result.effects["unverified"] == ["robot_at([3.5, 1.2, -1.5])"]


@pytest.mark.parametrize("params, words", [
    ({"object": "blue_duck"}, ["unknown object", "blue_duck"]),
    ({"pose": [2.0, 0.1]}, ["inside an obstacle"]),
    ({"pose": [30.0, 0.0]}, ["outside the occupancy grid"]),
    ({"object": "walled_cube"}, ["reachable"]),
])
def test_navigate_to_refuses_without_moving(params, words):
    cube, crates, grid = _scene()
    walled = MapObject("walled_cube", "cube", "cube", (), None, [-3.0, 4.0, 0.03], [0.06] * 3, 0.0)
    grid = _with_boxes(grid, [(-4.0, -1.8, 2.8, 2.85), (-1.85, -1.8, 2.8, 5.99)])
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, [cube, walled, *crates])
    result = navigate_to(NavigateParams(**params), ctx)
    assert not result.success and result.effects == {"moved": False}
    for word in words:
        assert word in result.reason
    assert not base.moved()


def test_navigate_to_refuses_without_grid_or_pose():
    cube, _, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), None)
    ctx, _ = _context(base, [cube])
    result = navigate_to(NavigateParams(object="red_cube"), ctx)
    assert not result.success and "no occupancy grid" in result.reason and not base.moved()
    base = FakeBase((0.0, 0.0, 0.0), grid)
    base.localised = False
    ctx, _ = _context(base, [cube])
    result = navigate_to(NavigateParams(object="red_cube"), ctx)
    assert not result.success and "not localised" in result.reason and not base.moved()


@pytest.mark.parametrize("args, words", [
    ({"object": "red_cube", "pose": [1.0, 2.0]}, ["exactly one", "both"]),
    ({}, ["exactly one", "neither"]),
    ({"pose": [1.0]}, ["at least 2"]),
    ({"pose": [1.0, 2.0, 3.0, 4.0]}, ["at most 3"]),
    ({"pose": [1.0, float("nan")]}, ["finite"]),
    ({"object": "red cube!"}, ["pattern"]),
    ({"object": "red_cube", "speed": 2}, ["Extra inputs"]),
])
def test_navigate_params_reject_bad_calls(args, words):
    with pytest.raises(ValidationError) as error:
        NavigateParams.model_validate(args)
    for word in words:
        assert word in str(error.value)


def test_navigate_schema_tells_the_planner_to_give_one_goal():
    schema = NavigateParams.model_json_schema()
    for name in ("object", "pose"):
        assert "exactly one of 'object' or 'pose'" in schema["properties"][name]["description"]


def test_cancel_stops_the_base():
    cube, crates, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), grid, cancel_after_s=2.0)
    ctx, _ = _context(base, [cube, *crates])
    result = navigate_to(NavigateParams(object="red_cube"), ctx)
    assert not result.success and result.reason == "cancelled"
    assert base.commands[-1] == (0.0, 0.0) and base.moved()


def test_obstacle_appearing_on_the_path_stops_the_base_and_it_replans_around():
    cube, crates, grid = _scene()
    later = _with_boxes(grid, [(1.5, 1.8, 1.8, 2.2)])
    base = FakeBase((0.0, 2.0, 0.0), lambda t: grid if t < 1.5 else later, truth=later)
    ctx, _ = _context(base, [cube, *crates])
    result = navigate_to(NavigateParams(pose=[4.0, 2.0]), ctx)
    assert result.success, result.reason
    assert result.effects["observed"]["replans"] >= 1
    assert not base.collided and math.dist((base.x, base.y), (4.0, 2.0)) <= 0.07


def test_blocked_for_good_fails_with_reason_and_stops():
    cube, crates, grid = _scene()
    wall = _with_boxes(grid, [(1.0, 1.1, -6.0, 6.0)])
    base = FakeBase((0.0, 0.0, 0.0), lambda t: grid if t < 1.0 else wall, truth=wall)
    ctx, _ = _context(base, [cube, *crates])
    result = navigate_to(NavigateParams(pose=[2.5, 1.5]), ctx)
    assert not result.success and "blocked" in result.reason and "no other way" in result.reason
    assert base.commands[-1] == (0.0, 0.0) and not base.collided and result.effects["moved"]


def test_a_base_that_does_not_move_times_out():
    cube, crates, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), grid, stuck=True)
    ctx, _ = _context(base, [cube, *crates])
    result = navigate_to(NavigateParams(pose=[1.0, -1.0]), ctx)
    assert not result.success and "did not reach" in result.reason
    assert base.commands[-1] == (0.0, 0.0) and base.time < 60.0


# --- search -------------------------------------------------------------------------------------


def test_search_finds_a_known_object_without_moving():
    cube, crates, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, [cube, *crates])
    result = search(SearchParams(query="red cube"), ctx)
    assert result.success and result.effects["observed"]["object"] == "red_cube" and not base.moved()


def _behind(obj, base):
    """Visible once the base faces it within 40 degrees."""
    bearing = math.atan2(obj.position[1] - base.y, obj.position[0] - base.x)
    return abs(wrap_angle(bearing - base.yaw)) < math.radians(40)


def test_search_looks_around_until_the_object_is_in_view():
    cube, crates, grid = _scene()
    duck = MapObject("yellow_duck", "yellow duck", "duck", (), "yellow", [-2.0, 0.3, 0.03], [0.06] * 3, 0.0)
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, world = _context(base, [cube, duck, *crates], visible=_behind)
    result = search(SearchParams(query="yellow duck"), ctx)
    assert result.success, result.reason
    assert result.effects["observed"]["object"] == "yellow_duck" and result.effects["moved"]
    assert 2 <= world.refreshes <= 6 and abs(wrap_angle(base.yaw - math.pi)) < 1.2
    _assert_ramped(base.commands, SHIELD_LINEAR_ACCEL, SHIELD_ANGULAR_ACCEL)


def test_search_explores_a_frontier_then_finds_the_object():
    # Seen so far: 3 m behind and to the sides, 2.5 m ahead. The ball is 4.5 m ahead, seen from 2.5 m.
    grid = _with_boxes(_grid(fill=-1), [(-3.0, 2.5, -3.0, 3.0)], value=0)
    ball = MapObject("green_ball", "green ball", "sphere", (), "green", [4.5, 0.0, 0.05], [0.1] * 3, 0.0)
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, [ball], visible=lambda obj, b: math.dist((b.x, b.y), (4.5, 0.0)) < 2.5)
    result = search(SearchParams(query="green ball", max_places=3), ctx)
    assert result.success, result.reason
    assert result.effects["observed"]["places"] == 2 and base.x > 2.0


def test_search_reports_how_many_places_it_looked_at():
    cube, crates, grid = _scene()
    base = FakeBase((0.0, 0.0, 0.0), grid)
    ctx, _ = _context(base, [cube, *crates])
    result = search(SearchParams(query="purple elephant", max_places=2), ctx)
    assert not result.success
    assert "no object matching 'purple elephant' after looking at" in result.reason
    assert base.commands[-1] == (0.0, 0.0) and not base.collided


def test_search_without_a_base_only_looks_again():
    cube, _, _ = _scene()
    world = FakeWorld([cube], visible=lambda obj, base: world.refreshes > 0)
    ctx = SkillContext(None, world, FakeSpeech(), None)
    result = search(SearchParams(query="red cube"), ctx)
    assert result.success and not result.effects["moved"] and world.refreshes == 1
    result = search(SearchParams(query="green ball"), ctx)
    assert not result.success and "after looking at 1 place" in result.reason and not result.effects["moved"]


def test_weak_matches_do_not_count_as_found():
    cube, _, _ = _scene()
    world = FakeWorld([cube])
    world.find = lambda text, n: [(cube, MATCH_SCORE - 0.1)]
    result = search(SearchParams(query="red block"), SkillContext(None, world, FakeSpeech(), None))
    assert not result.success and "closest was 'red_cube'" in result.reason


def test_navigation_skills_are_declared():
    skills = {skill.name: skill for skill in (NAVIGATE_TO, SEARCH)}
    assert skills["navigate_to"].requires == ("base",) and skills["search"].requires == ()
    assert skills["navigate_to"].preconditions == ("known(object)",)
    no_base = SkillContext(None, FakeWorld([]), FakeSpeech(), None)
    result = skills["navigate_to"].run(NavigateParams(object="x"), no_base)
    assert not result.success and "needs a base" in result.reason
    assert "query" in skills["search"].schema()["properties"]
