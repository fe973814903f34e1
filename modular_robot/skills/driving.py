"""How a skill drives the mobile base: follow a planned path, stop for obstacles, turn, back out.

`drive` follows a path on the latest occupancy grid one control period at a time: each period it
reads the pose, checks the path ahead against the latest grid (stopping and replanning, a bounded
number of times, when something blocks it), and sends one velocity command. Robot time is bounded;
cancellation (the base's `wait` returning False) stops the base at once (`Cancelled`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.navigation.following import DriveLimits, PathFollower, path_blockage
from modular_robot.core.navigation.geometry import (
    HUSKY_FOOTPRINT,
    STOP_MARGIN_M,
    ObjectBox,
    OccupancyMap,
    Point,
    Pose,
    footprint_gap,
    grid_problem,
    wrap_angle,
)
from modular_robot.core.navigation.path_planning import (
    APPROACH_GAP_M,
    TARGET_CELL_MARGIN_M,
    TARGET_SIDE_CLEARANCE_M,
    CostMap,
    Plan,
    build_costmap,
    path_is_free,
    plan_path,
    plan_to_object,
)
from modular_robot.skills.interfaces import SkillContext

# Seconds of robot time between velocity commands.
CONTROL_PERIOD_S = 0.1
# Accelerations the skills ramp at: half the safety shield's limits for the Husky (1.5 m/s^2 and
# 3.0 rad/s^2 in config/safety/husky_base.yaml), because the shield measures acceleration between
# the arrival times of consecutive commands, which jitter around the control period.
LINEAR_ACCEL_MPS2 = 0.75
ANGULAR_ACCEL_RADPS2 = 1.5
# Robot time allowed for a drive: path length at the skill's speed times this, plus a margin for
# turning in place, stops and replans.
TIME_FACTOR = 3.0
TIME_MARGIN_S = 20.0
# Replans after the path ahead was blocked, before the skill gives up.
MAX_BLOCKED_REPLANS = 5
# Replans because a new grid or a moved target made the path invalid; past this the path is kept
# (the obstacle stop still guards it).
MAX_MAP_REPLANS = 30
# Robot time to stand still after an obstacle stop, so that the grid catches up before replanning.
BLOCKED_SETTLE_S = 0.5
# How long the skill waits for a pose before refusing, or while driving before failing (s).
LOCALISATION_WAIT_S = 2.0
# A target whose mapped centre moves by more than this gets a new standoff pose (m).
TARGET_MOVED_M = 0.10
# When the target's own cells block the path with at most this much path left, the object is
# nearer than the map said (or stands on a table whose near edge counts as its cells): the base
# creeps on, able to stop in time, stops once the blockage is TARGET_CONTACT_M near, and squares up
# to face the object (m).
TARGET_SHORTFALL_M = 1.0
TARGET_CONTACT_M = 0.05
# A new grid invalidates the path only beyond this distance ahead: the base itself may stand
# inside the inflated zone, which it is allowed to leave (m).
REPLAN_SKIP_M = 0.3

# Extra robot time for a turn in place, on top of TIME_FACTOR x angle / turn rate (s).
TURN_MARGIN_S = 5.0
# A base that stands too close to something to turn in place (after driving up to an object on a
# table) first reverses straight back, at most this far (m) and at this speed (m/s).
BACK_OUT_MAX_M = 0.5
BACK_OUT_SPEED_MPS = 0.2
# A base stopped short of an object (nearer than mapped) while still turning onto it, facing more
# than this away from the object's centre (rad), squares up: backs out, turns to face it, creeps on.
SQUARE_UP_RAD = 0.15


class Cancelled(Exception):
    """The skill was cancelled: the base has been stopped."""


@dataclass
class Target:
    """Where a drive goes: a position (and heading), or a standoff pose in front of an object."""

    label: str
    position: Point | None = None
    yaw: float | None = None
    object_id: str | None = None
    box: ObjectBox | None = None


@dataclass
class _Outcome:
    """How a drive ended."""

    success: bool
    reason: str
    moved: bool
    observed: dict[str, Any] = field(default_factory=dict)


# --- helpers ------------------------------------------------------------------------------------


def valid_pose(pose: Any) -> Pose | None:
    """Return a pose as three floats, or None when it is missing or not finite."""
    if pose is None:
        return None
    try:
        x, y, yaw = (float(v) for v in pose)
    except (TypeError, ValueError):
        return None
    return (x, y, yaw) if all(math.isfinite(v) for v in (x, y, yaw)) else None


def object_box(obj: MapObject) -> ObjectBox:
    return ObjectBox((float(obj.position[0]), float(obj.position[1])), (float(obj.size[0]), float(obj.size[1])),
                     float(obj.yaw))


def _limits(ctx: SkillContext) -> DriveLimits:
    return DriveLimits(ctx.base_linear_speed, ctx.base_angular_speed, LINEAR_ACCEL_MPS2, ANGULAR_ACCEL_RADPS2)


def context_problem(ctx: SkillContext) -> str | None:
    """Return why the context's base settings are unusable, or None."""
    for name in ("base_radius", "base_linear_speed", "base_angular_speed"):
        value = getattr(ctx, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
            return f"the skill context's {name} must be a positive number, got {value!r}"
    return None


def _costmap(ctx: SkillContext, grid: OccupancyMap, target: Target) -> CostMap:
    """Return the costmap of a grid, the target object's own cells inflated only enough to pass it sideways."""
    if target.box is None:
        return build_costmap(grid, ctx.base_radius)
    return build_costmap(grid, ctx.base_radius, target.box,
                         min(ctx.base_radius, HUSKY_FOOTPRINT.half_width + TARGET_SIDE_CLEARANCE_M))


def _plan(costmap: CostMap, start: Point, target: Target) -> tuple[Plan, float | None, str]:
    """Return the path to a target, the heading to end with, and a note on where it ends."""
    if target.box is None:
        return plan_path(costmap, start, target.position), target.yaw, ""
    approach = plan_to_object(costmap, start, target.box, HUSKY_FOOTPRINT)
    if approach.pose is None:
        return approach.plan, None, ""
    note = ""
    if approach.gap > APPROACH_GAP_M + 1e-6:
        note = (f"; nothing closer than {approach.gap:.2f} m to {target.label} is free (it stands on or "
                f"next to something), so the base stopped there")
    return approach.plan, approach.pose[2], note


def _budget(length: float, ctx: SkillContext) -> float:
    return length / ctx.base_linear_speed * TIME_FACTOR + TIME_MARGIN_S


def _wait(ctx: SkillContext, seconds: float) -> None:
    """Let robot time pass; on cancellation stop the base and raise Cancelled."""
    if not ctx.base.wait(seconds):
        ctx.base.stop()
        raise Cancelled


def localise(ctx: SkillContext) -> Pose | None:
    """Return the base's pose, waiting up to LOCALISATION_WAIT_S of robot time for one."""
    waited = 0.0
    while True:
        pose = valid_pose(ctx.base.pose())
        if pose is not None or waited >= LOCALISATION_WAIT_S:
            return pose
        _wait(ctx, CONTROL_PERIOD_S)
        waited += CONTROL_PERIOD_S


def rounded(values: Any) -> list[float]:
    return [round(float(v), 4) for v in values]


# --- driving ------------------------------------------------------------------------------------


def drive(ctx: SkillContext, target: Target) -> _Outcome:
    """Plan to a target, then follow the path with obstacle stops and replans; always ends with the base stopped.

    Raises:
        Cancelled: when the base's wait reports cancellation (the base is stopped first).
    """
    base = ctx.base
    problem = context_problem(ctx)
    if problem is not None:
        return _Outcome(False, problem, False)
    pose = localise(ctx)
    if pose is None:
        return _Outcome(False, f"cannot drive to {target.label}: the base is not localised (no pose in the world "
                               f"frame for {LOCALISATION_WAIT_S:.0f} s)", False)
    grid = base.occupancy()
    if grid is None:
        return _Outcome(False, f"cannot drive to {target.label}: no occupancy grid has arrived, so no "
                               f"collision-free path can be planned", False)
    problem = grid_problem(grid)
    if problem is not None:
        return _Outcome(False, f"cannot drive to {target.label}: unusable occupancy grid: {problem}", False)
    pose, backed = _back_out(ctx, grid, pose)
    costmap = _costmap(ctx, grid, target)
    plan, goal_yaw, where = _plan(costmap, pose[:2], target)
    if not plan.ok:
        return _Outcome(False, f"cannot drive to {target.label}: {plan.reason}", backed > 0.0)

    limits = _limits(ctx)
    follower = PathFollower(plan.path, limits, CONTROL_PERIOD_S, goal_yaw)
    budget = _budget(plan.length, ctx)
    elapsed, lost, travelled = 0.0, 0.0, backed
    commanded = backed > 0.0
    stopped_short = False
    blocked_replans = map_replans = 0
    note = ""
    previous = pose

    def observed(current: Pose | None) -> dict[str, Any]:
        goal = [*follower.goal, follower.goal_yaw] if follower.goal_yaw is not None else [*follower.goal]
        result: dict[str, Any] = {"goal": rounded(goal), "distance_m": round(travelled, 3),
                                  "duration_s": round(elapsed, 2), "replans": blocked_replans + map_replans}
        if current is not None:
            result["pose"] = rounded(current)
            result["position_error_m"] = round(math.dist(current[:2], follower.goal), 3)
            if follower.goal_yaw is not None:
                result["heading_error_rad"] = round(abs(wrap_angle(follower.goal_yaw - current[2])), 3)
            if target.box is not None:
                result["object"] = target.object_id
                result["gap_m"] = round(footprint_gap(current, HUSKY_FOOTPRINT, target.box), 3)
        return result

    def failure(reason: str, current: Pose | None) -> _Outcome:
        base.stop()
        return _Outcome(False, reason, True, observed(current))

    def replan(current: Pose) -> Plan:
        nonlocal costmap, goal_yaw, where
        costmap = _costmap(ctx, grid, target)
        new_plan, new_yaw, new_where = _plan(costmap, current[:2], target)
        if new_plan.ok:
            goal_yaw, where = new_yaw, new_where
        return new_plan

    while True:
        if elapsed > budget:
            return failure(f"did not reach {target.label} within {budget:.0f} s of robot time "
                           f"({math.dist(previous[:2], follower.goal):.2f} m from the goal)", previous)
        current = valid_pose(base.pose())
        if current is None:
            base.stop()
            follower.halted()
            lost += CONTROL_PERIOD_S
            if lost > LOCALISATION_WAIT_S:
                return failure(f"lost localisation for {LOCALISATION_WAIT_S:.0f} s while driving to {target.label}",
                               None)
            _wait(ctx, CONTROL_PERIOD_S)
            elapsed += CONTROL_PERIOD_S
            continue
        lost = 0.0
        travelled += math.dist(current[:2], previous[:2])
        previous = current

        stale_path = False
        latest = base.occupancy()
        if latest is not None and latest is not grid:
            problem = grid_problem(latest)
            if problem is not None:
                return failure(f"the occupancy grid became unusable while driving to {target.label}: {problem}",
                               current)
            grid = latest
            if target.object_id is not None:
                obj = ctx.world.lookup(target.object_id)
                if obj is not None and math.dist(object_box(obj).center, target.box.center) > TARGET_MOVED_M:
                    target.box = object_box(obj)
                    stale_path = True
            costmap = _costmap(ctx, grid, target)
            stale_path = stale_path or not path_is_free(costmap, follower.remaining_path(current), REPLAN_SKIP_M)

        blockage = path_blockage(grid, current, follower.remaining_path(current), HUSKY_FOOTPRINT)
        stop_within = None
        if (blockage is not None and target.box is not None and follower.remaining <= TARGET_SHORTFALL_M
                and bool(target.box.contains(blockage.points, TARGET_CELL_MARGIN_M).all())):
            # The object itself is nearer than mapped: creep on until just before it.
            if blockage.distance <= TARGET_CONTACT_M:
                note = (f"; stopped {follower.remaining:.2f} m short of the standoff pose because "
                        f"'{target.object_id}' is nearer than mapped")
                stopped_short = True
                break
            stop_within, blockage = blockage.distance - TARGET_CONTACT_M, None
        if blockage is not None:
            base.stop()
            blocked_replans += 1
            where = rounded(blockage.points.mean(axis=0))
            if blocked_replans > MAX_BLOCKED_REPLANS:
                return failure(f"blocked by an obstacle {blockage.distance:.2f} m ahead at ({where[0]:.2f}, "
                               f"{where[1]:.2f}) on the way to {target.label}, after {MAX_BLOCKED_REPLANS} "
                               f"replans", current)
            _wait(ctx, BLOCKED_SETTLE_S)
            elapsed += BLOCKED_SETTLE_S
            current = valid_pose(base.pose()) or current
            latest = base.occupancy()
            if latest is not None and grid_problem(latest) is None:
                grid = latest
            new_plan = replan(current)
            if not new_plan.ok:
                return failure(f"blocked by an obstacle {blockage.distance:.2f} m ahead at ({where[0]:.2f}, "
                               f"{where[1]:.2f}) on the way to {target.label}, and no other way: "
                               f"{new_plan.reason}", current)
            follower = PathFollower(new_plan.path, limits, CONTROL_PERIOD_S, goal_yaw)
            budget = max(budget, elapsed + _budget(new_plan.length, ctx))
            continue

        if stale_path and map_replans < MAX_MAP_REPLANS:
            map_replans += 1
            new_plan = replan(current)
            if new_plan.ok:
                follower = PathFollower(new_plan.path, limits, CONTROL_PERIOD_S, goal_yaw, initial=follower.command)
                budget = max(budget, elapsed + _budget(new_plan.length, ctx))

        command = follower.step(current, stop_within)
        if command.done:
            break
        base.send_velocity(command.linear, command.angular)
        commanded = True
        ctx.progress(f"driving to {target.label} ({command.phase})",
                     min(1.0, max(0.0, 1.0 - follower.remaining / max(follower.length, 1e-6))))
        _wait(ctx, CONTROL_PERIOD_S)
        elapsed += CONTROL_PERIOD_S

    base.stop()
    if stopped_short:
        driven, squared = _square_up(ctx, target.box)
        travelled += driven
        if squared:
            note += ", then squared up to face it"
    final = valid_pose(base.pose()) or previous
    travelled += math.dist(final[:2], previous[:2])
    return _Outcome(True, f"reached {target.label}{where}{note}", commanded, observed(final))


def _facing_error(pose: Pose, box: ObjectBox) -> float:
    """Return how far (rad) the base's heading is from facing a box's centre."""
    return abs(wrap_angle(math.atan2(box.center[1] - pose[1], box.center[0] - pose[0]) - pose[2]))


def _turn_is_free(grid: OccupancyMap, pose: Pose, yaw: float) -> bool:
    """Return whether the footprint, grown by STOP_MARGIN_M, sweeps no occupied cell turning in place to a heading.

    Cells it already covers are left out, as the obstacle stop leaves them out.
    """
    points = grid.occupied_centres()
    points = points[np.hypot(points[:, 0] - pose[0], points[:, 1] - pose[1]) <= _turn_clearance(grid)]
    turn = wrap_angle(yaw - pose[2])
    steps = max(1, math.ceil(abs(turn) / math.radians(5.0)))
    covered = None
    for k in range(steps + 1):
        heading = pose[2] + turn * k / steps
        c, s = math.cos(heading), math.sin(heading)
        dx, dy = points[:, 0] - pose[0], points[:, 1] - pose[1]
        x, y = dx * c + dy * s, -dx * s + dy * c
        inside = ((x <= HUSKY_FOOTPRINT.front + STOP_MARGIN_M) & (x >= -HUSKY_FOOTPRINT.rear - STOP_MARGIN_M)
                  & (np.abs(y) <= HUSKY_FOOTPRINT.half_width + STOP_MARGIN_M))
        if covered is None:
            covered = inside
        elif (inside & ~covered).any():
            return False
    return True


def _square_up(ctx: SkillContext, box: ObjectBox) -> tuple[float, bool]:
    """Face an object squarely after stopping short of it at an angle.

    Where the turn to face the object's centre would sweep into something, the base first backs
    out (when the way back is free). It turns, then creeps straight on until the occupied cells
    ahead are TARGET_CONTACT_M away or its bumper is APPROACH_GAP_M from the object. Nothing turns
    without room to.

    Returns:
        How far the base drove (m), and whether it now faces the object.

    Raises:
        Cancelled: when the base's wait reports cancellation (the base is stopped first).
    """
    pose = valid_pose(ctx.base.pose())
    grid = ctx.base.occupancy()
    if pose is None or grid is None or grid_problem(grid) is not None or _facing_error(pose, box) <= SQUARE_UP_RAD:
        return 0.0, False
    start = pose

    def facing(p: Pose) -> float:
        return math.atan2(box.center[1] - p[1], box.center[0] - p[0])

    if not _turn_is_free(grid, pose, facing(pose)):
        pose, _ = _back_out(ctx, grid, pose)
        if not _turn_is_free(grid, pose, facing(pose)):
            return math.dist(pose[:2], start[:2]), False
    if not turn(ctx, facing(pose)):
        return math.dist(pose[:2], start[:2]), False
    ctx.progress("squaring up to the object", 1.0)
    origin = current = valid_pose(ctx.base.pose()) or pose
    limit = math.dist(origin[:2], box.center)
    speed = 0.0
    while True:
        latest = valid_pose(ctx.base.pose())
        if latest is None:
            break
        current = latest
        done = math.dist(current[:2], origin[:2])
        if done >= limit or footprint_gap(current, HUSKY_FOOTPRINT, box) <= APPROACH_GAP_M:
            break
        ahead = (current[0] + limit * math.cos(current[2]), current[1] + limit * math.sin(current[2]))
        latest_grid = ctx.base.occupancy()
        if latest_grid is not None and grid_problem(latest_grid) is None:
            grid = latest_grid
        blockage = path_blockage(grid, current, [current[:2], ahead], HUSKY_FOOTPRINT, lookahead=limit)
        room = math.inf if blockage is None else blockage.distance - TARGET_CONTACT_M
        if room <= 0.0:
            break
        speed = min(BACK_OUT_SPEED_MPS, speed + LINEAR_ACCEL_MPS2 * CONTROL_PERIOD_S,
                    math.sqrt(2.0 * LINEAR_ACCEL_MPS2 * room))
        ctx.base.send_velocity(speed, 0.0)
        _wait(ctx, CONTROL_PERIOD_S)
    _ramp_down(ctx, speed, 1.0)
    final = valid_pose(ctx.base.pose()) or current
    return math.dist(start[:2], pose[:2]) + math.dist(origin[:2], final[:2]), True


def _turn_clearance(grid: OccupancyMap) -> float:
    """Return how far (m) every occupied cell's centre must be from the base's centre for it to turn in place."""
    return HUSKY_FOOTPRINT.radius + STOP_MARGIN_M + grid.resolution


def _nearest(centres: np.ndarray, point: Point) -> float:
    """Return the distance (m) from a point to the nearest of some cell centres (inf when none)."""
    if len(centres) == 0:
        return math.inf
    return float(np.min(np.hypot(centres[:, 0] - point[0], centres[:, 1] - point[1])))


def _ramp_down(ctx: SkillContext, speed: float, direction: float) -> None:
    """Decelerate a straight drive at `speed` (m/s, forward for direction 1, back for -1) to a stop."""
    while speed > 0.0:
        speed = max(0.0, speed - LINEAR_ACCEL_MPS2 * CONTROL_PERIOD_S)
        ctx.base.send_velocity(direction * speed, 0.0)
        _wait(ctx, CONTROL_PERIOD_S)
    ctx.base.stop()


def _back_out(ctx: SkillContext, grid: OccupancyMap, pose: Pose) -> tuple[Pose, float]:
    """Reverse straight back until the base has room to turn in place, when it has none and the way back is free.

    A base that drove up to an object on a table stands with the table's edge inside its turning
    circle: turning there would sweep a corner into it, and the obstacle stop would keep it from
    leaving. Reversing at most BACK_OUT_MAX_M (the footprint is swept back along the way and must
    stay clear of occupied cells) gives it room. Returns the pose afterwards and the distance reversed.

    Raises:
        Cancelled: when the base's wait reports cancellation (the base is stopped first).
    """
    clearance = _turn_clearance(grid)
    centres = grid.occupied_centres()
    if _nearest(centres, pose[:2]) > clearance:
        return pose, 0.0
    # Where the base would be after backing out the whole way, and the sweep there (the footprint
    # is symmetric front to back, so the sweep is checked with the base turned around).
    end = (pose[0] - BACK_OUT_MAX_M * math.cos(pose[2]), pose[1] - BACK_OUT_MAX_M * math.sin(pose[2]))
    turned = (pose[0], pose[1], wrap_angle(pose[2] + math.pi))
    if path_blockage(grid, turned, [pose[:2], end], HUSKY_FOOTPRINT, lookahead=BACK_OUT_MAX_M) is not None:
        return pose, 0.0
    start, current = pose, pose
    speed = 0.0
    elapsed = 0.0
    budget = BACK_OUT_MAX_M / BACK_OUT_SPEED_MPS * TIME_FACTOR
    while (math.dist(current[:2], start[:2]) < BACK_OUT_MAX_M and elapsed <= budget
           and _nearest(centres, current[:2]) <= clearance):
        ctx.progress("backing out to turn", 0.0)
        speed = min(BACK_OUT_SPEED_MPS, speed + LINEAR_ACCEL_MPS2 * CONTROL_PERIOD_S)
        ctx.base.send_velocity(-speed, 0.0)
        _wait(ctx, CONTROL_PERIOD_S)
        elapsed += CONTROL_PERIOD_S
        current = valid_pose(ctx.base.pose()) or current
    _ramp_down(ctx, speed, -1.0)
    final = valid_pose(ctx.base.pose()) or current
    return final, math.dist(final[:2], start[:2])


def turn(ctx: SkillContext, yaw: float) -> bool:
    """Turn in place to a heading; return whether it was reached in time. The base ends stopped.

    Raises:
        Cancelled: when the base's wait reports cancellation.
    """
    pose = localise(ctx)
    if pose is None:
        return False
    follower = PathFollower([pose[:2]], _limits(ctx), CONTROL_PERIOD_S, yaw)
    budget = abs(wrap_angle(yaw - pose[2])) / ctx.base_angular_speed * TIME_FACTOR + TURN_MARGIN_S
    elapsed = 0.0
    while elapsed <= budget:
        current = valid_pose(ctx.base.pose())
        if current is None:
            break
        command = follower.step(current)
        if command.done:
            ctx.base.stop()
            return True
        ctx.base.send_velocity(command.linear, command.angular)
        _wait(ctx, CONTROL_PERIOD_S)
        elapsed += CONTROL_PERIOD_S
    ctx.base.stop()
    return False


def room_to_turn(grid: OccupancyMap | None, pose: Pose) -> bool:
    """Return whether a usable grid shows no occupied cell within the footprint's turning circle."""
    if grid is None or grid_problem(grid) is not None:
        return False
    rows, cols = np.nonzero(grid.occupied())
    if len(rows) == 0:
        return True
    centres = np.stack([grid.origin[0] + (cols + 0.5) * grid.resolution,
                        grid.origin[1] + (rows + 0.5) * grid.resolution], axis=1)
    near = np.hypot(centres[:, 0] - pose[0], centres[:, 1] - pose[1]) <= HUSKY_FOOTPRINT.radius + grid.resolution
    return not bool(near.any())


# --- navigate_to ----------------------------------------------------------------------------------


# --- search ---------------------------------------------------------------------------------------


