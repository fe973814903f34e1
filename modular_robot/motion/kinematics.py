"""Forward and inverse kinematics of an arm, with PyBullet as a kinematics library.

The robot's URDF is loaded into a private DIRECT PyBullet client that only this object uses, so the
same code serves the simulator and a real robot: nothing here steps physics or touches a world.
Poses are in the arm's base frame (the `base_link` named at construction); quaternions are
(x, y, z, w).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pybullet

from modular_robot.core.robot_model import PANDA_ARM_JOINTS, PANDA_HOME, panda_urdf_path
from modular_robot.core.trajectory import JointLimits

# Franka's datasheet allows 7.5-20 rad/s^2; a third of the smallest keeps the simulated
# position-controlled arm (and a real one carrying a load) on its path.
PANDA_ACCELERATION = (2.5,) * 7
_DLS_DAMPING = 1e-3
_STEP_LIMIT = 0.2


@dataclass(frozen=True)
class IkSolution:
    """The outcome of an inverse kinematics query.

    Attributes:
        q: Joint positions in `joint_names` order, or None when no valid solution was found.
        reason: Why there is no solution ("" when q is given).
        position_error: Distance between the target and the solution's pose (m).
        angle_error: Rotation between the target and the solution's orientation (rad).
    """

    q: np.ndarray | None
    reason: str
    position_error: float
    angle_error: float


class ArmKinematics:
    """Forward and inverse kinematics of a serial arm loaded from its URDF.

    Args:
        urdf_path: The robot's URDF.
        base_link: Link whose frame poses are expressed in.
        ee_link: End-effector link (for a gripper, the grasp centre between the fingertips).
        joint_names: Controlled joints, in the order of every q this class takes and returns.
        rest: Preferred joint positions, pulled towards in the IK null space; the limits' middle if None.
        accelerations: Per-joint acceleration limits (rad/s^2), which URDFs do not carry.
    """

    def __init__(self, urdf_path: str, base_link: str, ee_link: str, joint_names: Sequence[str],
                 rest: Sequence[float] | None = None, accelerations: Sequence[float] | None = None) -> None:
        self.joint_names = tuple(joint_names)
        self._client = pybullet.connect(pybullet.DIRECT)
        self._body = pybullet.loadURDF(urdf_path, useFixedBase=True, physicsClientId=self._client)
        links, joints, movable = {}, {}, []
        self._root_name = pybullet.getBodyInfo(self._body, physicsClientId=self._client)[0].decode()
        for i in range(pybullet.getNumJoints(self._body, physicsClientId=self._client)):
            info = pybullet.getJointInfo(self._body, i, physicsClientId=self._client)
            joints[info[1].decode()] = info
            links[info[12].decode()] = i
            if info[2] != pybullet.JOINT_FIXED:
                movable.append(i)
        links[self._root_name] = -1
        missing = [n for n in self.joint_names if n not in joints] + [
            n for n in (base_link, ee_link) if n not in links]
        if missing:
            raise ValueError(f"{urdf_path} lacks {missing}")
        self._ee = links[ee_link]
        self._base = links[base_link]
        self._joint_index = [joints[n][0] for n in self.joint_names]
        # PyBullet's IK and Jacobian take every movable joint, not only the arm's.
        self._movable = movable
        self._columns = [movable.index(i) for i in self._joint_index]
        self.lower = np.array([joints[n][8] for n in self.joint_names])
        self.upper = np.array([joints[n][9] for n in self.joint_names])
        self.limits = {n: JointLimits(joints[n][8], joints[n][9], joints[n][11]) for n in self.joint_names}
        self.accelerations = np.array(accelerations if accelerations is not None else [5.0] * len(self.joint_names))
        self.rest = np.array(rest) if rest is not None else (self.lower + self.upper) / 2
        self._all_lower = [pybullet.getJointInfo(self._body, i, physicsClientId=self._client)[8] for i in movable]
        self._all_upper = [pybullet.getJointInfo(self._body, i, physicsClientId=self._client)[9] for i in movable]
        self._rest_all = np.array([state[0] for state in pybullet.getJointStates(
            self._body, movable, physicsClientId=self._client)])
        self._rest_all[self._columns] = self.rest
        inertial = pybullet.getLinkState(self._body, self._ee, physicsClientId=self._client)[2:4]
        # calculateJacobian wants the point in the link's centre-of-mass frame: the link origin there.
        self._ee_in_com = pybullet.invertTransform(*inertial)[0]
        self._reach, self._shoulder_link = self._reach_bound()

    def close(self) -> None:
        """Disconnect the private PyBullet client."""
        if pybullet.isConnected(self._client):
            pybullet.disconnect(self._client)

    # --- frames -----------------------------------------------------------------------------------

    def _set(self, q: np.ndarray) -> None:
        for i, value in zip(self._joint_index, q):
            pybullet.resetJointState(self._body, i, float(value), physicsClientId=self._client)

    def _world_link(self, index: int) -> tuple:
        if index >= 0:
            state = pybullet.getLinkState(self._body, index, computeForwardKinematics=True,
                                          physicsClientId=self._client)
            return state[4], state[5]
        # The root's reported pose is its centre of mass; its link frame is the inertial offset away.
        com = pybullet.getBasePositionAndOrientation(self._body, physicsClientId=self._client)
        inertial = pybullet.getDynamicsInfo(self._body, -1, physicsClientId=self._client)[3:5]
        return pybullet.multiplyTransforms(*com, *pybullet.invertTransform(*inertial))

    def _to_base(self, pose: tuple) -> tuple[np.ndarray, np.ndarray]:
        inverse = pybullet.invertTransform(*self._world_link(self._base))
        position, orientation = pybullet.multiplyTransforms(*inverse, *pose)
        return np.array(position), np.array(orientation)

    def _to_world(self, position: Sequence[float], orientation: Sequence[float]) -> tuple:
        return pybullet.multiplyTransforms(*self._world_link(self._base), list(position), list(orientation))

    def _reach_bound(self) -> tuple[float, int]:
        """Return an upper bound on the distance from the first joint's child link to the end effector."""
        first = self._joint_index[0]
        reach, link = 0.0, self._ee
        while link > first:
            info = pybullet.getJointInfo(self._body, link, physicsClientId=self._client)
            reach += float(np.linalg.norm(info[14]))
            link = info[16]
        return reach, first

    # --- forward ----------------------------------------------------------------------------------

    def forward(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Return the end effector's (position, quaternion) in the base frame at joint positions q."""
        self._set(np.asarray(q, dtype=float))
        return self._to_base(self._world_link(self._ee))

    # --- inverse ----------------------------------------------------------------------------------

    def inverse(self, position: Sequence[float], quaternion: Sequence[float], seed: Sequence[float] | None = None,
                tolerance: float = 1e-3, max_iterations: int = 100) -> np.ndarray | None:
        """Return joint positions that put the end effector at the pose, or None when none is found.

        See `solve` for the arguments; call it to learn why a pose has no solution.
        """
        return self.solve(position, quaternion, seed, tolerance, max_iterations=max_iterations).q

    def solve(self, position: Sequence[float], quaternion: Sequence[float], seed: Sequence[float] | None = None,
              tolerance: float = 1e-3, angle_tolerance: float = math.radians(0.5), max_iterations: int = 100,
              restarts: int = 4) -> IkSolution:
        """Solve inverse kinematics for a pose in the base frame, checked by forward kinematics.

        Damped least squares on the Jacobian, started from the seed, finds the solution nearest the
        seed (straight-line motions need that continuity). Failing that, PyBullet's null-space IK
        (limits, rest pose) from the rest pose and then from seeded random postures gives starting
        points that the same refinement brings below the tolerances.

        Args:
            position: Target end-effector position (m), base frame.
            quaternion: Target orientation (x, y, z, w), base frame.
            seed: Joint positions to start from (the current ones keep the solution nearby).
            tolerance: Largest accepted position error (m).
            angle_tolerance: Largest accepted orientation error (rad).
            max_iterations: Refinement iterations per start.
            restarts: Starts beyond the seed and the rest pose.

        Returns:
            The solution, or q=None with the reason and the smallest residual seen.
        """
        target_p = np.asarray(position, dtype=float)
        target_q = np.asarray(quaternion, dtype=float)
        if target_p.shape != (3,) or target_q.shape != (4,) or not (
                np.all(np.isfinite(target_p)) and np.all(np.isfinite(target_q))):
            return IkSolution(None, "target pose must be a finite position (3) and quaternion (4)", math.inf, math.inf)
        target_q = target_q / np.linalg.norm(target_q)
        world_p, world_q = self._to_world(target_p, target_q)
        self._set(self.rest)
        shoulder = np.array(self._world_link(self._shoulder_link)[0])
        distance = float(np.linalg.norm(np.array(world_p) - shoulder))
        if distance > self._reach:
            return IkSolution(None, f"target is {distance:.3f} m from the shoulder, beyond the arm's reach "
                                    f"of {self._reach:.3f} m", distance - self._reach, math.inf)
        rng = np.random.default_rng(0)
        starts = [self.rest] + [rng.uniform(self.lower, self.upper) for _ in range(restarts)]
        if seed is not None:
            starts.insert(0, np.clip(np.asarray(seed, dtype=float), self.lower, self.upper))
        best = (math.inf, math.inf)
        for k, start in enumerate(starts):
            q = start if k == 0 and seed is not None else self._null_space_ik(start, world_p, world_q)
            q, p_err, a_err = self._refine(q, np.array(world_p), np.array(world_q), tolerance, angle_tolerance,
                                           max_iterations)
            if p_err <= tolerance and a_err <= angle_tolerance:
                return IkSolution(q, "", p_err, a_err)
            best = min(best, (p_err, a_err))
        return IkSolution(None, f"no joint solution within limits reaches the pose: best residual "
                                f"{best[0] * 1000:.1f} mm, {math.degrees(best[1]):.2f} deg", *best)

    def _null_space_ik(self, start: np.ndarray, world_p, world_q) -> np.ndarray:
        self._set(start)
        ranges = [u - lo for lo, u in zip(self._all_lower, self._all_upper)]
        solution = pybullet.calculateInverseKinematics(
            self._body, self._ee, world_p, world_q, lowerLimits=self._all_lower, upperLimits=self._all_upper,
            jointRanges=ranges, restPoses=self._rest_all.tolist(), maxNumIterations=100,
            residualThreshold=1e-5, physicsClientId=self._client)
        return np.clip(np.array(solution)[self._columns], self.lower, self.upper)

    def _refine(self, q: np.ndarray, world_p: np.ndarray, world_q: np.ndarray, tolerance: float,
                angle_tolerance: float, max_iterations: int) -> tuple[np.ndarray, float, float]:
        """Return q refined by damped least squares, with its position and angle errors."""
        all_q = self._rest_all.copy()
        zeros = [0.0] * len(self._movable)
        for _ in range(max_iterations + 1):
            self._set(q)
            p, o = self._world_link(self._ee)
            e_p = world_p - np.array(p)
            e_o = _rotation_vector(world_q, np.array(o))
            p_err, a_err = float(np.linalg.norm(e_p)), float(np.linalg.norm(e_o))
            # Converge well below the tolerances, so FK in another process agrees.
            if p_err <= tolerance * 0.1 and a_err <= angle_tolerance * 0.1:
                break
            all_q[self._columns] = q
            linear, angular = pybullet.calculateJacobian(
                self._body, self._ee, list(self._ee_in_com), all_q.tolist(), zeros, zeros,
                physicsClientId=self._client)
            jacobian = np.vstack((np.array(linear), np.array(angular)))[:, self._columns]
            error = np.concatenate((e_p, e_o))
            step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + _DLS_DAMPING * np.eye(6), error)
            # Large steps overshoot where the linearisation no longer holds.
            step *= min(1.0, _STEP_LIMIT / max(float(np.max(np.abs(step))), 1e-12))
            q = np.clip(q + step, self.lower, self.upper)
        return q, p_err, a_err


def _rotation_vector(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Return the rotation vector (axis * angle, world frame) that turns `current` into `target`."""
    x1, y1, z1, w1 = target
    x2, y2, z2, w2 = -current[0], -current[1], -current[2], current[3]
    delta = np.array([
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
    ])
    if delta[3] < 0:
        delta = -delta
    sin_half = float(np.linalg.norm(delta[:3]))
    if sin_half < 1e-12:
        return np.zeros(3)
    return delta[:3] / sin_half * 2.0 * math.atan2(sin_half, delta[3])


def panda_kinematics() -> ArmKinematics:
    """Return the kinematics of the simulated Panda: panda_link0 to the grasp centre (panda_grasptarget)."""
    return ArmKinematics(panda_urdf_path(), "panda_link0", "panda_grasptarget",
                         PANDA_ARM_JOINTS, rest=PANDA_HOME, accelerations=PANDA_ACCELERATION)
