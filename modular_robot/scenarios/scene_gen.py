"""Seeded random scenes for evaluation: tabletop scenes for the Panda, floor-and-table scenes for the Husky.

Pure functions of an integer seed: the same seed gives the same scenario on every machine with the
same Python minor version (draws come from a ``random.Random`` seeded by a string, which hash
randomisation does not touch). Objects never overlap, keep a clear gap between them so that
touching bodies do not merge into one, and lie where the robot's camera sees them whole:

- ``tabletop_scene``: the fixed camera of ``panda_tabletop`` sees the table top from x = 0.79 m
  (bottom image edge) to beyond the robot, and |y| up to 0.42 m at x = 0.79 m and 0.62 m at
  x = 0.32 m (measured by intersecting the corner rays of the 640x480 camera with z = 0). The
  arm reaches x 0.3-0.75 m, |y| <= 0.35 m; every object's footprint lies inside both.
- ``floor_scene``: the Husky's chassis camera (0.55 m high, pitched 20 degrees down, 58 degrees
  vertical field of view) sees the floor from about 0.9 m ahead of the base. Objects are spread on
  the floor 1.1-2.2 m ahead and on a table whose front edge is about 1.4-1.7 m ahead, so that a
  second viewpoint can see both again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from modular_robot.core.colors import NAMED_COLORS
from modular_robot.scenarios.scenario import (
    BasePose,
    ObjectPose,
    ObjectSpec,
    RobotSpec,
    Scenario,
    object_extent,
)

SMALL_OBJECT_TYPES: tuple[str, ...] = ("cube", "cylinder", "sphere", "duck")
CONTAINER_TYPES: tuple[str, ...] = ("tray", "bowl")
COLORS: tuple[str, ...] = tuple(NAMED_COLORS)
MIN_OBJECT_SIZE_M = 0.03
MAX_OBJECT_SIZE_M = 0.08
# Free space between the footprint circles of two objects: more than twice the geometric detector's
# 1 cm clustering voxel, so that every body is a cluster of its own.
DEFAULT_GAP_M = 0.03
# Cylinders at least this tall relative to their diameter, so that none is a low disc that looks
# like a plate ("flat"); at most this tall, so that none is a thin pole.
_CYLINDER_ASPECT = (0.75, 1.5)
_TRAY_SIDE_M = (0.16, 0.24)
_BOWL_SIDE_M = (0.12, 0.18)
_CONTAINER_PROBABILITY = 0.35
_PLACEMENT_TRIES = 200
# Random placement can paint itself into a corner; starting the layout afresh usually succeeds.
_LAYOUT_TRIES = 50


@dataclass(frozen=True)
class Region:
    """An axis-aligned rectangle of the world's x-y plane (m) that footprints must stay inside."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def contains(self, x: float, y: float, radius: float) -> bool:
        """Return whether a disc of `radius` at (x, y) lies inside the rectangle."""
        return (self.x_min + radius <= x <= self.x_max - radius
                and self.y_min + radius <= y <= self.y_max - radius)


# Where tabletop objects may stand: the arm's reach intersected with the fixed camera's view, with
# a few centimetres to spare from the bottom image edge (x = 0.79 m).
TABLETOP_REGION = Region(0.30, 0.75, -0.35, 0.35)
# Floor objects for the Husky: ahead of the camera's nearest visible floor (0.9 m) and inside its
# 73-degree horizontal field of view at that distance.
FLOOR_REGION = Region(1.1, 2.2, -0.45, 0.45)
_TABLE_SIZE_M = ((0.5, 0.7), (0.6, 0.9), (0.3, 0.42))
_TABLE_FRONT_X_M = (1.4, 1.7)
_TABLE_Y_M = (-0.5, 0.5)
# Objects on a table keep this far from its edges, so that none stands on the rim.
_TABLE_EDGE_MARGIN_M = 0.06


def footprint_radius(spec: ObjectSpec) -> float:
    """Return the radius of the circle that encloses an object's footprint at any yaw (m)."""
    sx, sy, _ = object_extent(spec)
    return math.hypot(sx, sy) / 2


def tabletop_scene(seed: int, n_objects: int | None = None, *, containers: bool | None = None,
                   gap: float = DEFAULT_GAP_M) -> Scenario:
    """Return a random tabletop scene for ``panda_tabletop`` with its fixed camera.

    Args:
        seed: Selects the scene; equal seeds give equal scenes.
        n_objects: Number of small objects (cubes, cylinders, spheres, ducks), 3-12 drawn from the
            seed when None.
        containers: Whether to add one tray or bowl; drawn from the seed (about one scene in three)
            when None.
        gap: Minimum free space between the footprint circles of any two objects (m).

    Returns:
        A scenario named ``tabletop_<seed>`` with no commands, expecting every object to stay put.

    Raises:
        ValueError: if `n_objects` is outside 1-12 or the objects do not fit on the table.
    """
    rng = random.Random(f"tabletop:{seed}")
    if n_objects is None:
        n_objects = rng.randint(3, 12)
    if not 1 <= n_objects <= 12:
        raise ValueError(f"n_objects must be within 1-12, got {n_objects}")
    if containers is None:
        containers = rng.random() < _CONTAINER_PROBABILITY
    specs = [_container(rng, 0)] if containers else []
    specs += [_small_object(rng, i) for i in range(len(specs), len(specs) + n_objects)]
    placed = _place(rng, specs, TABLETOP_REGION, 0.0, [], gap)
    return _scenario(f"tabletop_{seed}", "perception_tabletop", "panda_tabletop", seed, placed)


def skill_trial_scene(seed: int, target_type: str, task: str, n_others: int | None = None,
                      gap: float = DEFAULT_GAP_M) -> Scenario:
    """Return a random tabletop scene for one manipulation trial, with objects named by their role.

    Args:
        seed: Selects the scene; equal seeds give equal scenes.
        target_type: cube, cylinder, sphere or duck: the object to act on, id ``target``, 3.5-6 cm.
        task: ``place`` adds a tray or bowl (id ``container``, alternating with the seed); ``stack``
            adds a 5-6 cm cube (id ``support``) and makes the target a 3.5-4.5 cm cube; ``pick``
            adds neither.
        n_others: Number of other small objects (ids ``other_<n>``), 0-2 drawn from the seed when None.
        gap: Minimum free space between the footprint circles of any two objects (m).

    Returns:
        A scenario named ``<task>_<target_type>_<seed>`` with no commands.

    Raises:
        ValueError: for an unknown target type or task.
    """
    if target_type not in SMALL_OBJECT_TYPES:
        raise ValueError(f"target_type must be one of {SMALL_OBJECT_TYPES}, got {target_type!r}")
    if task not in ("pick", "place", "stack"):
        raise ValueError(f"task must be pick, place or stack, got {task!r}")
    rng = random.Random(f"skill:{task}:{target_type}:{seed}")
    kind = "cube" if task == "stack" else target_type
    size = round(rng.uniform(0.035, 0.045 if task == "stack" else 0.06), 3)
    height = round(size * rng.uniform(*_CYLINDER_ASPECT), 3) if kind == "cylinder" else None
    specs = [ObjectSpec(id="target", type=kind, color=rng.choice(COLORS), size=size, height=height,
                        pose=ObjectPose(0.0, 0.0, 0.0, 0.0))]
    if task == "place":
        kind = CONTAINER_TYPES[seed % len(CONTAINER_TYPES)]
        side = round(rng.uniform(*(_TRAY_SIDE_M if kind == "tray" else _BOWL_SIDE_M)), 3)
        specs.append(ObjectSpec(id="container", type=kind, color=rng.choice(COLORS), size=side, height=None,
                                pose=ObjectPose(0.0, 0.0, 0.0, 0.0)))
    elif task == "stack":
        specs.append(ObjectSpec(id="support", type="cube", color=rng.choice(COLORS),
                                size=round(rng.uniform(0.05, 0.06), 3), height=None,
                                pose=ObjectPose(0.0, 0.0, 0.0, 0.0)))
    n_others = rng.randint(0, 2) if n_others is None else n_others
    specs += [ObjectSpec(id=f"other_{i + 1}", type=o.type, color=o.color, size=o.size, height=o.height, pose=o.pose)
              for i, o in enumerate(_small_object(rng, i) for i in range(n_others))]
    placed = _place(rng, specs, TABLETOP_REGION, 0.0, [], gap)
    return _scenario(f"{task}_{target_type}_{seed}", f"skill_{task}", "panda_tabletop", seed, placed)


def navigation_trial_scene(seed: int, n_obstacles: int | None = None) -> Scenario:
    """Return a random room for one ``husky_base`` navigation trial: a target across it, obstacles between.

    The target (id ``target``, a 15-24 cm cube, cylinder or sphere) stands 3-5 m ahead and within
    the camera's view from the start; obstacles (ids ``obstacle_<n>``, 20-40 cm boxes) stand
    between, at least 1.3 m from the robot's start so that it can turn, and clear of the target.

    Args:
        seed: Selects the scene; equal seeds give equal scenes.
        n_obstacles: Number of obstacles, 1-3 drawn from the seed when None.
    """
    rng = random.Random(f"navigation:{seed}")
    kind = rng.choice(("cube", "cylinder", "sphere"))
    distance, bearing = rng.uniform(3.0, 5.0), rng.uniform(-0.3, 0.3)
    target = ObjectSpec(id="target", type=kind, color=rng.choice(COLORS), size=round(rng.uniform(0.15, 0.24), 3),
                        height=None, pose=ObjectPose(round(distance * math.cos(bearing), 3),
                                                     round(distance * math.sin(bearing), 3), 0.0,
                                                     round(rng.uniform(-math.pi, math.pi), 3)))
    n_obstacles = rng.randint(1, 3) if n_obstacles is None else n_obstacles
    obstacles = [ObjectSpec(id=f"obstacle_{i + 1}", type="cube", color=rng.choice(COLORS),
                            size=round(rng.uniform(0.2, 0.4), 3), height=None, pose=ObjectPose(0.0, 0.0, 0.0, 0.0),
                            static=True)
                 for i in range(n_obstacles)]
    region = Region(1.3, target.pose.x - 0.6, -1.2, 1.2)
    placed = _place(rng, obstacles, region, 0.0, [(target.pose.x, target.pose.y, 0.6)], 0.5)
    return _scenario(f"navigate_{seed}", "skill_navigate", "husky_base", seed, [target, *placed])


def floor_scene(seed: int, n_floor: int | None = None, n_table: int | None = None, *,
                gap: float = DEFAULT_GAP_M) -> Scenario:
    """Return a random scene for ``husky_base``: objects on the floor and on a table ahead.

    Args:
        seed: Selects the scene; equal seeds give equal scenes.
        n_floor: Number of small objects on the floor, 2-6 drawn from the seed when None.
        n_table: Number of small objects on the table, 1-4 drawn from the seed when None.
        gap: Minimum free space between the footprint circles of any two objects (m).

    Returns:
        A scenario named ``floor_<seed>`` with one static table (id ``table``) and no commands,
        expecting every other object to stay put.

    Raises:
        ValueError: if the objects do not fit.
    """
    rng = random.Random(f"floor:{seed}")
    n_floor = rng.randint(2, 6) if n_floor is None else n_floor
    n_table = rng.randint(1, 4) if n_table is None else n_table
    sx, sy, sz = (round(rng.uniform(lo, hi), 3) for lo, hi in _TABLE_SIZE_M)
    table_x = round(rng.uniform(*_TABLE_FRONT_X_M) + sx / 2, 3)
    table_y = round(rng.uniform(*_TABLE_Y_M), 3)
    table = ObjectSpec(id="table", type="table", color=rng.choice(COLORS), size=(sx, sy, sz), height=None,
                       pose=ObjectPose(table_x, table_y, 0.0, 0.0), static=True)
    top = Region(table_x - sx / 2 + _TABLE_EDGE_MARGIN_M, table_x + sx / 2 - _TABLE_EDGE_MARGIN_M,
                 table_y - sy / 2 + _TABLE_EDGE_MARGIN_M, table_y + sy / 2 - _TABLE_EDGE_MARGIN_M)
    on_table = _place(rng, [_small_object(rng, i) for i in range(n_table)], top, sz, [], gap)
    # Floor objects keep clear of the table's legs and of the space under it.
    table_keepout = (table_x, table_y, math.hypot(sx, sy) / 2)
    on_floor = _place(rng, [_small_object(rng, i) for i in range(n_table, n_table + n_floor)], FLOOR_REGION,
                      0.0, [table_keepout], gap)
    return _scenario(f"floor_{seed}", "perception_floor", "husky_base", seed, [table, *on_table, *on_floor])


def _small_object(rng: random.Random, index: int) -> ObjectSpec:
    """Draw one cube, cylinder, sphere or duck with a random colour and size (pose set later)."""
    kind = rng.choice(SMALL_OBJECT_TYPES)
    color = rng.choice(COLORS)
    size = round(rng.uniform(MIN_OBJECT_SIZE_M, MAX_OBJECT_SIZE_M), 3)
    height = None
    if kind == "cylinder":
        height = round(min(max(size * rng.uniform(*_CYLINDER_ASPECT), MIN_OBJECT_SIZE_M), 0.1), 3)
    return ObjectSpec(id=f"{color}_{kind}_{index}", type=kind, color=color, size=size, height=height,
                      pose=ObjectPose(0.0, 0.0, 0.0, 0.0))


def _container(rng: random.Random, index: int) -> ObjectSpec:
    """Draw one tray or bowl with a random colour and footprint (pose set later)."""
    kind = rng.choice(CONTAINER_TYPES)
    side = round(rng.uniform(*(_TRAY_SIDE_M if kind == "tray" else _BOWL_SIDE_M)), 3)
    return ObjectSpec(id=f"{kind}_{index}", type=kind, color=rng.choice(COLORS), size=side, height=None,
                      pose=ObjectPose(0.0, 0.0, 0.0, 0.0))


def _place(rng: random.Random, specs: Sequence[ObjectSpec], region: Region, z: float,
           keepouts: list[tuple[float, float, float]], gap: float) -> list[ObjectSpec]:
    """Give each object a pose inside `region`, clear of the others and of the keep-out discs.

    Raises:
        ValueError: if no layout was found.
    """
    for _ in range(_LAYOUT_TRIES):
        poses = _layout(rng, specs, region, z, keepouts, gap)
        if poses is not None:
            return [_with_pose(spec, pose) for spec, pose in zip(specs, poses)]
    raise ValueError(f"cannot place {len(specs)} objects with a {gap} m gap: too many for the region")


def _layout(rng: random.Random, specs: Sequence[ObjectSpec], region: Region, z: float,
            keepouts: list[tuple[float, float, float]], gap: float) -> list[ObjectPose] | None:
    """Return one pose per object by rejection sampling, largest first, or None when one does not fit."""
    taken = list(keepouts)
    poses: dict[int, ObjectPose] = {}
    for index in sorted(range(len(specs)), key=lambda i: -footprint_radius(specs[i])):
        radius = footprint_radius(specs[index])
        if not (region.x_max - region.x_min >= 2 * radius and region.y_max - region.y_min >= 2 * radius):
            return None
        for _ in range(_PLACEMENT_TRIES):
            x = rng.uniform(region.x_min + radius, region.x_max - radius)
            y = rng.uniform(region.y_min + radius, region.y_max - radius)
            if all(math.hypot(x - ox, y - oy) >= radius + other + gap for ox, oy, other in taken):
                break
        else:
            return None
        taken.append((x, y, radius))
        poses[index] = ObjectPose(round(x, 4), round(y, 4), z, round(rng.uniform(-math.pi, math.pi), 4))
    return [poses[i] for i in range(len(specs))]


def _with_pose(spec: ObjectSpec, pose: ObjectPose) -> ObjectSpec:
    return ObjectSpec(id=spec.id, type=spec.type, color=spec.color, size=spec.size, height=spec.height, pose=pose,
                      mass=spec.mass, static=spec.static)


def _scenario(name: str, category: str, robot: str, seed: int, objects: list[ObjectSpec]) -> Scenario:
    # With no commands the world must stay put, as in the spine scenario: the loader wants one
    # expectation, and this one catches objects that topple or roll away.
    unmoved = [o.id for o in objects if not o.static]
    return Scenario(name=name, category=category, robot=robot, robots=[RobotSpec("", robot, BasePose(0.0, 0.0, 0.0))],
                    seed=seed, objects=objects, commands=[], disturbances=[], expect=[{"unmoved": unmoved}],
                    timeout_s=120.0, camera="fixed", source=f"<scene_gen {name}>")
