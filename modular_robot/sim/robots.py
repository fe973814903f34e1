"""Simulated robots: a Panda arm, a Husky base, and both together; every call names its client."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet

from modular_robot.core.robot_model import (
    ARM_MOUNT_ON_HUSKY,
    HUSKY_TRACK,
    HUSKY_WHEEL_JOINTS,
    HUSKY_WHEEL_RADIUS,
    PANDA_ARM_JOINTS,
    PANDA_FINGER_JOINTS,
    PANDA_HOME,
    PANDA_MAX_OPENING,
    panda_urdf_path,
    robot_kind,
)
from modular_robot.core.trajectory import JointLimits, Trajectory, sample
from modular_robot.sim.assets import data_path, derived_asset


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits: a parent frame, an offset and a look direction.

    Attributes:
        parent: Frame the camera_link is fixed to ("base_link" or a link name).
        xyz: Position of camera_link in the parent frame (m).
        rpy: Orientation of camera_link (x forward, z up) in the parent frame (rad).
        fov_deg: Vertical field of view.
    """

    parent: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    fov_deg: float = 45.0


@dataclass(frozen=True)
class BaseLimits:
    """Velocity and acceleration limits of the mobile base."""

    linear: float = 1.0
    angular: float = 2.0
    linear_accel: float = 1.5
    angular_accel: float = 3.0


class SimRobot:
    """One robot in the world: an optional mobile base, an optional arm and an RGB-D camera mount.

    All poses are in the world frame; frame names follow the URDFs, with `base_link` the robot's base.
    """

    def __init__(self, client: int, kind: str, name: str, pose: tuple[float, float, float],
                 camera: str = "fixed", mesh_detail: str = "low") -> None:
        self.client = client
        self.kind = kind
        parts = robot_kind(kind).parts
        self.name = name
        self.base_body: int | None = None
        self.arm_body: int | None = None
        self.base_limits = BaseLimits()
        self._twist_cmd = np.zeros(2)
        self._twist = np.zeros(2)
        self._odom = np.zeros(3)
        self._odom_twist = np.zeros(2)
        self._trajectory: Trajectory | None = None
        self._trajectory_start: np.ndarray | None = None
        self._trajectory_start_velocity: np.ndarray | None = None
        self._trajectory_t0 = 0.0
        self._arm_target: np.ndarray | None = None
        self._finger_target = PANDA_MAX_OPENING / 2
        self.frozen = False
        self._names: dict[int, list[str]] = {}
        x, y, yaw = pose
        orientation = pybullet.getQuaternionFromEuler([0, 0, yaw])
        if "base" in parts:
            self.base_body = pybullet.loadURDF(
                data_path("husky", "husky.urdf"), [x, y, 0.0], orientation, physicsClientId=client)
            self._wheel_index = [self._joint_index(self.base_body, j) for j in HUSKY_WHEEL_JOINTS]
            self._base_link_index = self._link_index(self.base_body, "base_link")
        if "arm" in parts:
            if self.base_body is None:
                mount_pos, mount_orn = [x, y, 0.0], orientation
            else:
                mount_pos, mount_orn = pybullet.multiplyTransforms(
                    *self._link_pose(self.base_body, self._base_link_index), ARM_MOUNT_ON_HUSKY, [0, 0, 0, 1],
                    physicsClientId=client)
            self.arm_body = pybullet.loadURDF(
                panda_urdf(mesh_detail), mount_pos, mount_orn,
                useFixedBase=self.base_body is None, flags=pybullet.URDF_USE_SELF_COLLISION,
                physicsClientId=client)
            if self.base_body is not None:
                pybullet.createConstraint(
                    self.base_body, self._base_link_index, self.arm_body, -1, pybullet.JOINT_FIXED,
                    [0, 0, 0], ARM_MOUNT_ON_HUSKY, [0, 0, 0], physicsClientId=client)
            # panda_link7's and panda_hand's collision meshes overlap by 2.5 cm in the URDF: a contact
            # that never resolves keeps the solver at full iterations every step.
            pybullet.setCollisionFilterPair(
                self.arm_body, self.arm_body, self._link_index(self.arm_body, "panda_link7"),
                self._link_index(self.arm_body, "panda_hand"), 0, physicsClientId=client)
            self._arm_index = [self._joint_index(self.arm_body, j) for j in PANDA_ARM_JOINTS]
            self._finger_index = [self._joint_index(self.arm_body, j) for j in PANDA_FINGER_JOINTS]
            for i, q in zip(self._arm_index, PANDA_HOME):
                pybullet.resetJointState(self.arm_body, i, q, physicsClientId=client)
            for i in self._finger_index:
                pybullet.resetJointState(self.arm_body, i, PANDA_MAX_OPENING / 2, physicsClientId=client)
                pybullet.changeDynamics(self.arm_body, i, lateralFriction=1.5, physicsClientId=client)
            # The Franka hand drives both fingers through one mechanism (the URDF's mimic tag, which
            # PyBullet ignores): without the coupling, two independent position loops squeezing an
            # object let it drift to one finger, and opening then shoves it sideways.
            coupling = pybullet.createConstraint(
                self.arm_body, self._finger_index[0], self.arm_body, self._finger_index[1], pybullet.JOINT_GEAR,
                [0, 1, 0], [0, 0, 0], [0, 0, 0], physicsClientId=client)
            pybullet.changeConstraint(coupling, gearRatio=-1, maxForce=100, erp=0.1, physicsClientId=client)
            self._arm_target = np.array(PANDA_HOME)
            self.arm_limits = {
                name: JointLimits(*self._limits(self.arm_body, i)) for name, i in zip(PANDA_ARM_JOINTS, self._arm_index)
            }
        self.camera = self._camera_mount(camera)
        self._odom[:] = (x, y, yaw)
        self._odom_origin = np.array([x, y, yaw])

    # --- structure -------------------------------------------------------------------------------

    def _joint_index(self, body: int, name: str) -> int:
        for i in range(pybullet.getNumJoints(body, physicsClientId=self.client)):
            if pybullet.getJointInfo(body, i, physicsClientId=self.client)[1].decode() == name:
                return i
        raise KeyError(f"joint {name} not in body {body}")

    def _link_index(self, body: int, name: str) -> int:
        for i in range(pybullet.getNumJoints(body, physicsClientId=self.client)):
            if pybullet.getJointInfo(body, i, physicsClientId=self.client)[12].decode() == name:
                return i
        raise KeyError(f"link {name} not in body {body}")

    def _limits(self, body: int, index: int) -> tuple[float, float, float]:
        info = pybullet.getJointInfo(body, index, physicsClientId=self.client)
        return info[8], info[9], info[11]

    def _root_pose(self, body: int):
        """Return the world pose of a body's root link frame.

        getBasePositionAndOrientation gives the root's centre of mass, which for a URDF with an
        inertial offset (panda_link0) is not the link frame that TF must report.
        """
        com = pybullet.getBasePositionAndOrientation(body, physicsClientId=self.client)
        inertial = pybullet.getDynamicsInfo(body, -1, physicsClientId=self.client)[3:5]
        return pybullet.multiplyTransforms(*com, *pybullet.invertTransform(*inertial), physicsClientId=self.client)

    def _link_pose(self, body: int, index: int):
        if index < 0:
            return self._root_pose(body)
        state = pybullet.getLinkState(body, index, computeForwardKinematics=True, physicsClientId=self.client)
        return state[4], state[5]

    def _camera_mount(self, camera: str) -> CameraMount:
        if self.kind == "panda_tabletop" and camera == "wrist":
            # Looking along the hand's approach axis (z), slightly behind the fingers.
            return CameraMount("panda_hand", (0.05, 0.0, 0.02), (0.0, -math.pi / 2, 0.0), 58.0)
        if self.kind == "panda_tabletop":
            # Across the table from the arm, looking down at the workspace.
            return CameraMount("base_link", (1.15, 0.0, 0.75), (0.0, math.radians(42.0), math.pi), 45.0)
        if self.kind == "mobile_manipulator":
            # Pitched further down: the table tops where the arm works, just past the bumper, stay in
            # view, as do tables a few metres away.
            return CameraMount("base_link", (0.42, 0.0, 0.55), (0.0, math.radians(30.0), 0.0), 58.0)
        # A forward camera on the chassis, pitched down to see the floor and low tables ahead.
        return CameraMount("base_link", (0.42, 0.0, 0.55), (0.0, math.radians(20.0), 0.0), 58.0)

    @property
    def has_arm(self) -> bool:
        """Return True when the robot has the Panda arm."""
        return self.arm_body is not None

    @property
    def has_base(self) -> bool:
        """Return True when the robot has the mobile base."""
        return self.base_body is not None

    def joint_names(self) -> list[str]:
        """Return the names of every joint reported on joint_states."""
        names: list[str] = []
        if self.has_arm:
            names += [*PANDA_ARM_JOINTS, *PANDA_FINGER_JOINTS]
        if self.has_base:
            names += list(HUSKY_WHEEL_JOINTS)
        return names

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return positions, velocities and efforts in the order of joint_names()."""
        states = []
        if self.has_arm:
            states += pybullet.getJointStates(
                self.arm_body, self._arm_index + self._finger_index, physicsClientId=self.client)
        if self.has_base:
            states += pybullet.getJointStates(self.base_body, self._wheel_index, physicsClientId=self.client)
        arr = np.array([(s[0], s[1], s[3]) for s in states], dtype=float).reshape(-1, 3)
        return arr[:, 0], arr[:, 1], arr[:, 2]

    def arm_positions(self) -> np.ndarray:
        """Return the seven arm joint positions."""
        states = pybullet.getJointStates(self.arm_body, self._arm_index, physicsClientId=self.client)
        return np.array([s[0] for s in states])

    def _link_names(self, body: int) -> list[str]:
        """Return the link names of a body by link index (cached: the structure never changes)."""
        if body not in self._names:
            n = pybullet.getNumJoints(body, physicsClientId=self.client)
            self._names[body] = [pybullet.getJointInfo(body, i, physicsClientId=self.client)[12].decode()
                                 for i in range(n)]
        return self._names[body]

    def link_poses(self) -> dict[str, tuple]:
        """Return world poses (position, quaternion xyzw) of the base and every link, by frame name."""
        poses: dict[str, tuple] = {"base_link": self.base_pose()}
        for body, skip_root in ((self.base_body, True), (self.arm_body, False)):
            if body is None:
                continue
            if not skip_root:
                root = pybullet.getBodyInfo(body, physicsClientId=self.client)[0].decode()
                poses[root] = self._root_pose(body)
            names = self._link_names(body)
            states = pybullet.getLinkStates(body, list(range(len(names))), computeForwardKinematics=True,
                                            physicsClientId=self.client)
            for name, state in zip(names, states):
                poses[name] = (state[4], state[5])
        return poses

    def link_parents(self) -> dict[str, tuple[str, bool]]:
        """Return, for every link frame, its parent frame and whether the joint between them is fixed."""
        parents: dict[str, tuple[str, bool]] = {}
        for body in (self.base_body, self.arm_body):
            if body is None:
                continue
            root = pybullet.getBodyInfo(body, physicsClientId=self.client)[0].decode()
            names = {-1: root}
            n = pybullet.getNumJoints(body, physicsClientId=self.client)
            for i in range(n):
                names[i] = pybullet.getJointInfo(body, i, physicsClientId=self.client)[12].decode()
            for i in range(n):
                info = pybullet.getJointInfo(body, i, physicsClientId=self.client)
                parent = names[info[16]]
                if body == self.base_body and parent == root:
                    if names[i] == "base_link":
                        continue
                    parent = "base_link"
                parents[names[i]] = (parent, info[2] == pybullet.JOINT_FIXED)
        if self.arm_body is not None:
            root = pybullet.getBodyInfo(self.arm_body, physicsClientId=self.client)[0].decode()
            parents[root] = ("base_link", True)
        return parents

    def base_pose(self) -> tuple:
        """Return the world pose of base_link: the base's chassis frame, or the arm's root when fixed."""
        if self.base_body is not None:
            return self._link_pose(self.base_body, self._base_link_index)
        return self._root_pose(self.arm_body)

    def frame_pose(self, frame: str) -> tuple:
        """Return the world pose of a named frame (base_link or a link)."""
        if frame == "base_link":
            return self.base_pose()
        return self.link_poses()[frame]

    def camera_optical_pose(self) -> tuple:
        """Return the world pose of camera_color_optical_frame (z forward, x right, y down)."""
        parent = self.frame_pose(self.camera.parent)
        link = pybullet.multiplyTransforms(
            *parent, self.camera.xyz, pybullet.getQuaternionFromEuler(self.camera.rpy), physicsClientId=self.client)
        return pybullet.multiplyTransforms(*link, [0, 0, 0], OPTICAL_FROM_LINK, physicsClientId=self.client)

    # --- commands ---------------------------------------------------------------------------------

    def start_trajectory(self, trajectory: Trajectory, now: float) -> None:
        """Begin executing a validated trajectory from the current positions and velocities at sim time `now`."""
        self._trajectory = trajectory
        self._trajectory_start = self.arm_positions_of(trajectory.joint_names)
        self._trajectory_start_velocity = self.arm_velocities_of(trajectory.joint_names)
        self._trajectory_t0 = now

    def arm_positions_of(self, names) -> np.ndarray:
        """Return the positions of the named arm joints, in that order."""
        q = self.arm_positions()
        return np.array([q[PANDA_ARM_JOINTS.index(n)] for n in names])

    def arm_velocities_of(self, names) -> np.ndarray:
        """Return the velocities of the named arm joints, in that order."""
        states = pybullet.getJointStates(self.arm_body, self._arm_index, physicsClientId=self.client)
        return np.array([states[PANDA_ARM_JOINTS.index(n)][1] for n in names])

    def set_gripper(self, opening: float) -> None:
        """Command the distance between the fingers (m)."""
        self._finger_target = opening / 2.0

    def set_twist(self, linear: float, angular: float) -> None:
        """Command the base's forward and yaw velocity (m/s, rad/s)."""
        self._twist_cmd[:] = (linear, angular)

    def freeze(self) -> None:
        """Stop all motion now and hold the current joint positions (emergency stop).

        The arm's joints are braked to rest at once, as a real arm's stop category 0 (brakes on):
        holding the positions the stop found by position control alone lets the arm's momentum carry
        it on for tens of milliseconds and back.
        """
        self.frozen = True
        self._trajectory = None
        self._twist_cmd[:] = 0.0
        self._twist[:] = 0.0
        if self.has_arm:
            self._arm_target = self.arm_positions()
            for index, position in zip(self._arm_index, self._arm_target):
                pybullet.resetJointState(self.arm_body, index, position, targetVelocity=0.0,
                                         physicsClientId=self.client)
            states = pybullet.getJointStates(self.arm_body, self._finger_index, physicsClientId=self.client)
            self._finger_target = float(np.mean([s[0] for s in states]))
        if self.has_base:
            pybullet.resetBaseVelocity(self.base_body, [0, 0, 0], [0, 0, 0], physicsClientId=self.client)

    def release(self) -> None:
        """Leave the emergency stop; the robot holds still until it gets new commands."""
        self.frozen = False

    # --- control, called every physics step --------------------------------------------------------

    def control(self, now: float, dt: float) -> None:
        """Apply motor commands for the next physics step."""
        if self.has_arm:
            self._control_arm(now)
        if self.has_base:
            self._control_base(dt)

    def _control_arm(self, now: float) -> None:
        target = self._arm_target
        velocity = np.zeros(len(PANDA_ARM_JOINTS))
        if self._trajectory is not None and not self.frozen:
            q, qd = sample(self._trajectory, self._trajectory_start, now - self._trajectory_t0,
                           self._trajectory_start_velocity)
            target = target.copy()
            for name, value, rate in zip(self._trajectory.joint_names, q, qd):
                target[PANDA_ARM_JOINTS.index(name)] = value
                velocity[PANDA_ARM_JOINTS.index(name)] = rate
            self._arm_target = target
            if now - self._trajectory_t0 > self._trajectory.duration:
                self._trajectory = None
        pybullet.setJointMotorControlArray(
            self.arm_body, self._arm_index, pybullet.POSITION_CONTROL, targetPositions=target.tolist(),
            targetVelocities=velocity.tolist(), forces=[87.0] * 4 + [12.0] * 3,
            positionGains=[0.3] * 7, velocityGains=[1.0] * 7, physicsClientId=self.client)
        pybullet.setJointMotorControlArray(
            self.arm_body, self._finger_index, pybullet.POSITION_CONTROL,
            targetPositions=[self._finger_target] * 2, forces=[40.0, 40.0], physicsClientId=self.client)

    def _control_base(self, dt: float) -> None:
        limits = self.base_limits
        target = np.zeros(2) if self.frozen else self._twist_cmd
        step = np.array([limits.linear_accel, limits.angular_accel]) * dt
        if self.frozen:
            self._twist[:] = 0.0
        else:
            self._twist += np.clip(target - self._twist, -step, step)
        v, w = self._twist
        position, orientation = pybullet.getBasePositionAndOrientation(self.base_body, physicsClientId=self.client)
        yaw = pybullet.getEulerFromQuaternion(orientation, physicsClientId=self.client)[2]
        linear, _ = pybullet.getBaseVelocity(self.base_body, physicsClientId=self.client)
        # Planar drive, as Gazebo's planar_move: the commanded twist moves the chassis; wheels turn to match.
        pybullet.resetBaseVelocity(
            self.base_body, [v * math.cos(yaw), v * math.sin(yaw), linear[2]], [0, 0, w],
            physicsClientId=self.client)
        left = (v - w * HUSKY_TRACK / 2) / HUSKY_WHEEL_RADIUS
        right = (v + w * HUSKY_TRACK / 2) / HUSKY_WHEEL_RADIUS
        pybullet.setJointMotorControlArray(
            self.base_body, self._wheel_index, pybullet.VELOCITY_CONTROL,
            targetVelocities=[left, right, left, right], forces=[50.0] * 4, physicsClientId=self.client)

    def integrate_odometry(self, dt: float) -> None:
        """Dead-reckon the base pose from the chassis' measured body-frame velocity over one step."""
        if not self.has_base:
            return
        linear, angular = pybullet.getBaseVelocity(self.base_body, physicsClientId=self.client)
        _, orientation = pybullet.getBasePositionAndOrientation(self.base_body, physicsClientId=self.client)
        yaw = pybullet.getEulerFromQuaternion(orientation, physicsClientId=self.client)[2]
        forward = linear[0] * math.cos(yaw) + linear[1] * math.sin(yaw)
        self._odom_twist[:] = (forward, angular[2])
        heading = self._odom[2] + angular[2] * dt / 2
        self._odom[0] += forward * math.cos(heading) * dt
        self._odom[1] += forward * math.sin(heading) * dt
        self._odom[2] = math.atan2(math.sin(self._odom[2] + angular[2] * dt), math.cos(self._odom[2] + angular[2] * dt))

    def odometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the odometry pose (x, y, yaw) in the odom frame and the body twist (v, w)."""
        ox, oy, oyaw = self._odom_origin
        dx, dy = self._odom[0] - ox, self._odom[1] - oy
        c, s = math.cos(-oyaw), math.sin(-oyaw)
        pose = np.array([c * dx - s * dy, s * dx + c * dy, self._odom[2] - oyaw])
        return pose, self._odom_twist.copy()

    def ground_truth_base(self) -> tuple[tuple[float, float, float], float]:
        """Return the base_link world position and yaw (evaluator only)."""
        position, orientation = self.base_pose()
        return tuple(position), pybullet.getEulerFromQuaternion(orientation, physicsClientId=self.client)[2]

    def held_object(self, bodies: dict[str, int]) -> str | None:
        """Return the id of the object touched by both fingers, or None (evaluator only)."""
        if not self.has_arm:
            return None
        touching = []
        for finger in self._finger_index:
            contacts = pybullet.getContactPoints(bodyA=self.arm_body, linkIndexA=finger, physicsClientId=self.client)
            touching.append({c[2] for c in contacts})
        for object_id, body in bodies.items():
            if all(body in t for t in touching):
                return object_id
        return None


def panda_urdf(mesh_detail: str) -> str:
    """Return the Panda URDF to load: `full` visual meshes, or `low` (the collision meshes drawn).

    The full visual meshes have about 100k triangles, which halves the frame rate of software
    rendering; the collision meshes (about 3k) look alike at camera distance.
    """
    source = panda_urdf_path()
    if mesh_detail == "full":
        return source
    if mesh_detail != "low":
        raise ValueError(f"mesh_detail must be 'low' or 'full', got {mesh_detail!r}")
    text = Path(source).read_text().replace("package://meshes/visual/", "package://meshes/collision/")
    return derived_asset("panda_low_detail.urdf", text.replace("package://", os.path.dirname(source) + "/"))


# camera_link (x forward, y left, z up) to optical frame (z forward, x right, y down): REP-103.
OPTICAL_FROM_LINK = pybullet.getQuaternionFromEuler([-math.pi / 2, 0.0, -math.pi / 2])
