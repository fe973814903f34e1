"""The simulated Franka hand: both fingers move as one mechanism, as on the real gripper."""

import numpy as np
import pybullet
import pytest

from modular_robot.scenarios.scenario import parse_scenario
from modular_robot.sim.world import SimWorld

SCENE = """
name: gripper_coupling
category: spine
robot: panda_tabletop
objects:
  - {id: cube, type: cube, color: red, size: 0.04, pose: [0.9, 0.6, 0.0, 0.0]}
expect:
  - {unmoved: [cube]}
"""


@pytest.fixture
def world():
    sim = SimWorld(parse_scenario(SCENE), width=64, height=48, renderer="tiny")
    yield sim
    sim.close()


def _link(world, name):
    robot = world.robots[0]
    return pybullet.getLinkState(robot.arm_body, robot._link_index(robot.arm_body, name),
                                 physicsClientId=world.client)


def _fingers(world):
    robot = world.robots[0]
    return [s[0] for s in pybullet.getJointStates(robot.arm_body, robot._finger_index, physicsClientId=world.client)]


def _run(world, seconds, push=None):
    for _ in range(round(seconds / world.time_step)):
        if push is not None:
            body, force = push
            position, _ = pybullet.getBasePositionAndOrientation(body, physicsClientId=world.client)
            pybullet.applyExternalForce(body, -1, force, position, pybullet.WORLD_FRAME, physicsClientId=world.client)
        world.step()


def test_a_sideways_pull_on_a_held_cube_moves_neither_finger_off_centre(world):
    """Two position loops squeezing an object are indifferent to where it sits between them: a
    steady pull (here 10 N along the fingers' axis, about what a swing of the arm exerts on a
    heavier object) slides object and fingers to one side until a finger reaches its limit. The
    coupled fingers hold it centred, so a release drops it where the hand is."""
    cube = world.bodies["cube"]
    target = _link(world, "panda_grasptarget")
    pybullet.resetBasePositionAndOrientation(cube, target[0], target[1], physicsClientId=world.client)
    # Weightless while the fingers close on it, so that it does not fall out first.
    pybullet.setGravity(0, 0, 0, physicsClientId=world.client)
    world.robots[0].set_gripper(0.0)
    _run(world, 0.5)
    pybullet.setGravity(0, 0, -9.81, physicsClientId=world.client)
    assert abs(np.subtract(*_fingers(world))) < 1e-3
    hand = np.array(_link(world, "panda_grasptarget")[0])
    axis = np.array(pybullet.getMatrixFromQuaternion(_link(world, "panda_hand")[1])).reshape(3, 3)[:, 1]
    _run(world, 0.5, push=(cube, (10.0 * axis).tolist()))
    left, right = _fingers(world)
    assert abs(left - right) < 2e-3, (left, right)
    assert sum(_fingers(world)) == pytest.approx(0.04, abs=2e-3)
    held = np.array(pybullet.getBasePositionAndOrientation(cube, physicsClientId=world.client)[0])
    assert abs(float(np.dot(held - hand, axis))) < 2e-3
