"""Scenario objects as PyBullet bodies; every call names its client."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet

from modular_robot.core.colors import rgba
from modular_robot.scenarios.scenario import ObjectSpec, object_extent
from modular_robot.sim.assets import data_path, untextured_duck_urdf

# Density of solid objects (kg/m^3): a 4 cm cube weighs about 45 g, light enough for the gripper.
_DENSITY = 700.0
_WALL = 0.008
_DUCK_LENGTH_AT_UNIT_SCALE = 0.0907
_BOWL_SEGMENTS = 12


def _box(client: int, half: list[float], color) -> tuple[int, int]:
    col = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half, physicsClientId=client)
    vis = pybullet.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=color, physicsClientId=client)
    return col, vis


@dataclass(frozen=True)
class _Part:
    """One primitive of a compound body: a box (half extents) or a cylinder (radius, length)."""

    offset: tuple[float, float, float]
    half_extents: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.0
    length: float = 0.0
    yaw: float = 0.0

    @property
    def shape(self) -> int:
        return pybullet.GEOM_CYLINDER if self.radius > 0 else pybullet.GEOM_BOX


def _compound(client: int, parts: list[_Part], color, mass: float) -> int:
    """Create one rigid body from primitive parts, placed relative to the body's centre."""
    n = len(parts)
    shapes = [p.shape for p in parts]
    halves = [list(p.half_extents) for p in parts]
    radii = [p.radius for p in parts]
    lengths = [p.length for p in parts]
    offsets = [list(p.offset) for p in parts]
    orients = [list(pybullet.getQuaternionFromEuler([0, 0, p.yaw])) for p in parts]
    col = pybullet.createCollisionShapeArray(
        shapes, radii=radii, halfExtents=halves, lengths=lengths, collisionFramePositions=offsets,
        collisionFrameOrientations=orients, physicsClientId=client)
    vis = pybullet.createVisualShapeArray(
        shapes, radii=radii, halfExtents=halves, lengths=lengths, visualFramePositions=offsets,
        visualFrameOrientations=orients, rgbaColors=[color] * n, physicsClientId=client)
    return pybullet.createMultiBody(mass, col, vis, physicsClientId=client)


def _container(client: int, extent, color, mass: float, round_: bool) -> int:
    """Create an open container: a floor with walls standing on it (a box, or a ring of segments).

    Walls start on top of the floor rather than beside it, so that a container resting on a
    table touches it with its floor alone: fewer contacts, a faster and steadier solver.
    """
    sx, sy, sz = extent
    floor_z = _WALL / 2 - sz / 2
    wall_z, wall_half = _WALL / 2, (sz - _WALL) / 2
    if not round_:
        return _compound(client, [
            _Part((0.0, 0.0, floor_z), (sx / 2, sy / 2, _WALL / 2)),
            _Part((sx / 2 - _WALL / 2, 0.0, wall_z), (_WALL / 2, sy / 2, wall_half)),
            _Part((-sx / 2 + _WALL / 2, 0.0, wall_z), (_WALL / 2, sy / 2, wall_half)),
            _Part((0.0, sy / 2 - _WALL / 2, wall_z), (sx / 2 - _WALL, _WALL / 2, wall_half)),
            _Part((0.0, -sy / 2 + _WALL / 2, wall_z), (sx / 2 - _WALL, _WALL / 2, wall_half)),
        ], color, mass)
    radius = min(sx, sy) / 2 - _WALL / 2
    chord = 2 * radius * math.tan(math.pi / _BOWL_SEGMENTS) + _WALL
    parts = [_Part((0.0, 0.0, floor_z), radius=min(sx, sy) / 2, length=_WALL)]
    for i in range(_BOWL_SEGMENTS):
        a = 2 * math.pi * i / _BOWL_SEGMENTS
        parts.append(_Part((radius * math.cos(a), radius * math.sin(a), wall_z), (_WALL / 2, chord / 2, wall_half),
                           yaw=a))
    return _compound(client, parts, color, mass)


def _table(client: int, extent, color) -> int:
    sx, sy, sz = extent
    top = 0.03
    leg = 0.04
    parts = [_Part((0.0, 0.0, sz / 2 - top / 2), (sx / 2, sy / 2, top / 2))]
    for dx in (-1, 1):
        for dy in (-1, 1):
            parts.append(_Part((dx * (sx / 2 - leg), dy * (sy / 2 - leg), -top / 2),
                               (leg / 2, leg / 2, (sz - top) / 2)))
    return _compound(client, parts, color, 0.0)


def create_object(client: int, spec: ObjectSpec) -> int:
    """Create the body of one scenario object, resting with its bottom at the spec's z.

    The body's bounding box is centred on the spec's x, y and its base is rotated by the yaw.

    Returns:
        The PyBullet body id.
    """
    extent = object_extent(spec)
    color = rgba(spec.color) if spec.color else (0.7, 0.7, 0.7, 1.0)
    solid_mass = _DENSITY * extent[0] * extent[1] * extent[2]
    mass = 0.0 if spec.static else (spec.mass if spec.mass is not None else solid_mass)
    kind = spec.type
    if kind == "cube":
        col, vis = _box(client, [e / 2 for e in extent], color)
        body = pybullet.createMultiBody(mass, col, vis, physicsClientId=client)
    elif kind == "cylinder":
        col = pybullet.createCollisionShape(
            pybullet.GEOM_CYLINDER, radius=extent[0] / 2, height=extent[2], physicsClientId=client)
        vis = pybullet.createVisualShape(
            pybullet.GEOM_CYLINDER, radius=extent[0] / 2, length=extent[2], rgbaColor=color,
            physicsClientId=client)
        body = pybullet.createMultiBody(mass * math.pi / 4, col, vis, physicsClientId=client)
    elif kind == "sphere":
        col = pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=extent[0] / 2, physicsClientId=client)
        vis = pybullet.createVisualShape(
            pybullet.GEOM_SPHERE, radius=extent[0] / 2, rgbaColor=color, physicsClientId=client)
        body = pybullet.createMultiBody(mass * math.pi / 6, col, vis, physicsClientId=client)
        # A sphere on a flat table rolls away on the slightest touch; real balls have rolling resistance.
        pybullet.changeDynamics(body, -1, rollingFriction=0.001, spinningFriction=0.001, physicsClientId=client)
    elif kind == "duck":
        body = pybullet.loadURDF(
            untextured_duck_urdf(),
            baseOrientation=pybullet.getQuaternionFromEuler([math.pi / 2, 0, 0]),
            globalScaling=max(extent) / _DUCK_LENGTH_AT_UNIT_SCALE, physicsClientId=client,
        )
        pybullet.changeVisualShape(body, -1, rgbaColor=color, physicsClientId=client)
        if mass != 0.1:
            pybullet.changeDynamics(body, -1, mass=mass, physicsClientId=client)
    elif kind == "tray":
        body = _container(client, extent, color, mass * 0.2, round_=False)
    elif kind == "bowl":
        body = _container(client, extent, color, mass * 0.2, round_=True)
    elif kind == "table":
        body = _table(client, extent, color)
    else:
        body = pybullet.loadURDF(
            data_path(kind), useFixedBase=spec.static, physicsClientId=client
        )
        if spec.color:
            for link in range(-1, pybullet.getNumJoints(body, physicsClientId=client)):
                pybullet.changeVisualShape(body, link, rgbaColor=color, physicsClientId=client)
    place_body(client, body, spec.pose)
    return body


def place_body(client: int, body: int, pose) -> None:
    """Move a body so that its bounding box is centred on (x, y) with its bottom at z, turned by yaw."""
    x, y, z, yaw = pose
    _, orientation = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)
    # Keep the body's modelling rotation (the duck stands up by a roll) and add the yaw about world z.
    turned = pybullet.multiplyTransforms(
        [0, 0, 0], pybullet.getQuaternionFromEuler([0, 0, yaw]), [0, 0, 0],
        _modelling_rotation(client, body, orientation), physicsClientId=client)[1]
    pybullet.resetBasePositionAndOrientation(body, [0, 0, 0], turned, physicsClientId=client)
    lo, hi = pybullet.getAABB(body, physicsClientId=client)
    for link in range(pybullet.getNumJoints(body, physicsClientId=client)):
        llo, lhi = pybullet.getAABB(body, link, physicsClientId=client)
        lo = np.minimum(lo, llo)
        hi = np.maximum(hi, lhi)
    # AABBs carry a small collision margin; a 1 mm lift keeps the body from starting in contact.
    offset = [x - (lo[0] + hi[0]) / 2, y - (lo[1] + hi[1]) / 2, z - lo[2] + 0.001]
    pybullet.resetBasePositionAndOrientation(body, offset, turned, physicsClientId=client)
    pybullet.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=client)


def _modelling_rotation(client: int, body: int, orientation) -> tuple:
    """Return the body's orientation with its yaw about world z removed."""
    roll, pitch, _ = pybullet.getEulerFromQuaternion(orientation, physicsClientId=client)
    return pybullet.getQuaternionFromEuler([roll, pitch, 0.0], physicsClientId=client)
