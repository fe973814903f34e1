"""Safety shield node: the only path from skill commands on `safe/...` to the hardware topics.

Every command is checked by `core.safety.SafetyShield` and republished unchanged only if it passes;
a refused command is logged and reported on `safety/refusals` and never reaches the robot. The
node holds no motion logic of its own: it converts messages and asks the shield.

Commands, joint_states and the emergency stop have a callback group each, and the node spins on
a multi-threaded executor: a trajectory being checked never delays the stop, and the stop is
checked again under a lock right before anything is published, so that no command checked before
the stop reaches the robot after it. Command queues are deep enough for a burst: every command is
forwarded or refused with a reason, none overwritten unseen while a check runs.

A trajectory the shield forwarded plays on in the controller after its sender has gone: when a
publisher of `safe/arm_controller/joint_trajectory` leaves the graph (a skill server that crashed
or was killed mid-motion), the shield brakes the arm to a stop from its measured motion within the
arm's acceleration limits. Nobody would stop that motion otherwise.
"""

from __future__ import annotations

import threading

import numpy as np
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from modular_robot.core.robot_model import ROBOT_KINDS, robot_kind
from modular_robot.core.safety import ESTOP_REASON, SafetyShield, Verdict
from modular_robot.core.safety_limits import load_safety_limits
from modular_robot.motion.kinematics import ArmKinematics, panda_kinematics
from modular_robot.paths import resolve_data_path
from modular_robot.ros import qos
from modular_robot.ros.arm_client import braking_trajectory
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode

ARM_TOPIC = "arm_controller/joint_trajectory"
GRIPPER_TOPIC = "gripper_controller/commands"
CMD_VEL_TOPIC = "cmd_vel"
SKILL_PREFIX = "safe/"
# Two twists stamped at the same clock reading (sim time standing still) still differ in
# acceleration; a tiny interval instead of zero makes a change refused and a repeat accepted.
_MIN_TWIST_DT = 1e-6
# Skill commands, queued deep enough for a burst (a fuzzer's 2,000 per topic) to wait for its check
# rather than be overwritten: a KEEP_LAST reader drops the oldest sample silently, and no QoS
# event reports it (Fast DDS's message-lost event fires only for samples it never received).
COMMANDS = QoSProfile(depth=2048, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
# How often the shield looks for arm command publishers that left the graph (wall s).
COMMANDER_CHECK_PERIOD_S = 0.1


class SafetyShieldNode(StackNode):
    """Forward skill commands to the hardware topics only when the safety shield accepts them."""

    def __init__(self, **kwargs) -> None:
        super().__init__("safety_shield", **kwargs)
        # Set before anything can fail: the context destroys a half-built node on shutdown.
        self._kinematics: ArmKinematics | None = None
        self._declare_parameters()
        robot = self.get_parameter("robot").value
        robot_kind(robot)
        limits_file = self.get_parameter("limits_file").value or f"config/safety/{robot}.yaml"
        limits = load_safety_limits(resolve_data_path(limits_file))
        self.shield = SafetyShield(limits, self.get_parameter("sample_rate_hz").value)
        # The Panda is the only arm the stack drives; its FK matches the limits' frame, panda_link0.
        if limits.arm is not None:
            self._kinematics = panda_kinematics()
        self._joint_positions: dict[str, float] = {}
        self._joint_velocities: dict[str, float] = {}
        self._state_lock = threading.Lock()
        # Held while the stop changes and while a command is published: see the module docstring.
        self._stop_lock = threading.Lock()
        self._last_twist: tuple[tuple[float, float], float] | None = None

        self.refusals_pub = self.create_publisher(String, "safety/refusals", COMMANDS)
        self.arm_pub = self.create_publisher(JointTrajectory, ARM_TOPIC, qos.RELIABLE)
        self.gripper_pub = self.create_publisher(Float64MultiArray, GRIPPER_TOPIC, qos.RELIABLE)
        self.cmd_vel_pub = self.create_publisher(TwistStamped, CMD_VEL_TOPIC, qos.RELIABLE)
        commands = MutuallyExclusiveCallbackGroup()
        self._arm_commands = self.create_subscription(JointTrajectory, SKILL_PREFIX + ARM_TOPIC, self._on_trajectory,
                                                      COMMANDS, callback_group=commands)
        self._arm_commanders = 0
        self.create_subscription(Float64MultiArray, SKILL_PREFIX + GRIPPER_TOPIC, self._on_gripper, COMMANDS,
                                 callback_group=commands)
        self.create_subscription(TwistStamped, SKILL_PREFIX + CMD_VEL_TOPIC, self._on_twist, COMMANDS,
                                 callback_group=commands)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, qos.RELIABLE,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(Bool, "emergency_stop", self._on_emergency_stop, qos.LATCHED,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        if limits.arm is not None:
            # On the steady clock: a lost sender is braked even while sim time stands still.
            self.create_timer(COMMANDER_CHECK_PERIOD_S, self._check_arm_commanders,
                              callback_group=MutuallyExclusiveCallbackGroup(),
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"shielding {limits.robot} with limits from {limits_file}")

    def _declare_parameters(self) -> None:
        def declare(name, default, description):
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))

        declare("robot", "panda_tabletop", f"Robot kind whose default limits are used: {', '.join(ROBOT_KINDS)}.")
        declare("limits_file", "", "Safety limits YAML; empty means config/safety/<robot>.yaml.")
        declare("sample_rate_hz", 50.0, "Rate at which end-effector positions are sampled along a trajectory "
                "before bisection refines it.")

    def destroy_node(self) -> None:
        """Release the kinematics' PyBullet client, then destroy the node."""
        if self._kinematics is not None:
            self._kinematics.close()
            self._kinematics = None
        super().destroy_node()

    # --- state ------------------------------------------------------------------------------------

    def _on_joint_states(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            self.get_logger().warning("ignoring joint_states whose names and positions differ in length",
                                      throttle_duration_sec=5.0)
            return
        with self._state_lock:
            self._joint_positions.update(zip(msg.name, msg.position))
            if len(msg.velocity) == len(msg.name):
                self._joint_velocities.update(zip(msg.name, msg.velocity))

    def _on_emergency_stop(self, msg: Bool) -> None:
        """Engage or release the stop; on engaging, stop the base.

        The arm gets no hold trajectory from here: the driver freezes it on the same topic and
        refuses every trajectory while stopped, so a hold would be refused there; and one held up
        until the release would then move the arm, unasked, back to where joint_states last saw it.
        A zero twist is different: it is the base's stop itself and depends on no measured state.
        """
        with self._stop_lock:
            if msg.data and not self.shield.engaged:
                self.shield.engage()
                self.get_logger().warning("emergency stop engaged: refusing every command")
                if self.shield.limits.base is not None:
                    hold = TwistStamped()
                    hold.header.stamp = self.get_clock().now().to_msg()
                    self.cmd_vel_pub.publish(hold)
                    self._last_twist = ((0.0, 0.0), self._now_s())
            elif not msg.data and self.shield.engaged:
                self.shield.release()
                self.get_logger().info("emergency stop released")

    def _check_arm_commanders(self) -> None:
        """Brake the arm when a sender of arm trajectories has left the graph."""
        count = self._arm_commands.get_publisher_count()
        left, self._arm_commanders = count < self._arm_commanders, count
        if left:
            self.get_logger().warning(f"a publisher of {SKILL_PREFIX + ARM_TOPIC} left: braking the arm")
            self._brake_arm()

    def _brake_arm(self) -> None:
        """Command the arm to decelerate evenly to rest from its measured motion, within its limits.

        The driver starts the trajectory from the measured positions and velocities; the stop itself
        refuses it while engaged, and the driver has frozen the arm then anyway.
        """
        arm = self.shield.limits.arm
        names = list(arm.joint_names)
        with self._state_lock:
            if any(name not in self._joint_positions for name in names):
                return
            here = np.array([self._joint_positions[name] for name in names])
            moving = np.array([self._joint_velocities.get(name, 0.0) for name in names])
        msg = braking_trajectory(names, here, moving, arm.acceleration)
        with self._stop_lock:
            if not self.shield.engaged:
                self.arm_pub.publish(msg)

    # --- commands ---------------------------------------------------------------------------------

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        names = list(msg.joint_names)
        with self._state_lock:
            missing = [name for name in names if name not in self._joint_positions]
            start = [self._joint_positions.get(name, 0.0) for name in names]
            # A joint_states without velocities says nothing about motion; rest is all there is to assume.
            start_velocity = [self._joint_velocities.get(name, 0.0) for name in names]
        if missing:
            self._refuse(ARM_TOPIC, f"no joint_states for {missing}; the trajectory's start is unknown")
            return
        verdict = self.shield.check_trajectory(
            names,
            [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points],
            [list(p.positions) for p in msg.points],
            _velocities(msg),
            forward_kinematics=self._end_effector if self._kinematics is not None else None,
            start=start,
            start_velocity=start_velocity,
        )
        self._forward(ARM_TOPIC, verdict, self.arm_pub, msg)

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        values = list(msg.data)
        if len(values) != 1:
            self._refuse(GRIPPER_TOPIC, f"expected one finger opening, got {len(values)} values")
            return
        self._forward(GRIPPER_TOPIC, self.shield.check_gripper(values[0]), self.gripper_pub, msg)

    def _on_twist(self, msg: TwistStamped) -> None:
        twist = msg.twist
        # The base is differential drive: other components would be ignored by the driver, so the
        # motion executed would differ from the one commanded.
        others = (twist.linear.y, twist.linear.z, twist.angular.x, twist.angular.y)
        if any(value != 0.0 for value in others):
            self._refuse(CMD_VEL_TOPIC, f"only linear.x and angular.z may be non-zero, got linear "
                                        f"({twist.linear.x}, {twist.linear.y}, {twist.linear.z}) angular "
                                        f"({twist.angular.x}, {twist.angular.y}, {twist.angular.z})")
            return
        command = (twist.linear.x, twist.angular.z)
        now = self._now_s()
        if self._last_twist is None:
            verdict = self.shield.check_twist(*command)
        else:
            previous, stamp = self._last_twist
            verdict = self.shield.check_twist(*command, previous=previous, dt=max(now - stamp, _MIN_TWIST_DT))

        def remember() -> None:
            self._last_twist = (command, now)

        self._forward(CMD_VEL_TOPIC, verdict, self.cmd_vel_pub, msg, forwarded=remember)

    # --- helpers ----------------------------------------------------------------------------------

    def _forward(self, what: str, verdict: Verdict, publisher, msg, forwarded=None) -> None:
        """Publish the message unchanged if the verdict allows it and the stop is still released.

        The stop may have been engaged while the check ran; under the lock it cannot be engaged
        between this look and the publish. `forwarded`, if given, runs under the same lock after
        publishing, so that the stop's own bookkeeping comes after it.
        """
        with self._stop_lock:
            if verdict.ok and self.shield.engaged:
                verdict = Verdict(False, ESTOP_REASON)
            if verdict.ok:
                publisher.publish(msg)
                if forwarded is not None:
                    forwarded()
                return
        self._refuse(what, verdict.reason)

    def _refuse(self, what: str, reason: str) -> None:
        line = f"refused {what}: {reason}"
        self.get_logger().warning(line)
        self.refusals_pub.publish(String(data=line))

    def _end_effector(self, q: np.ndarray) -> np.ndarray:
        return self._kinematics.forward(q)[0]

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def _velocities(msg: JointTrajectory) -> list[list[float]] | None:
    """Return the points' velocities, None when no point has any (linear interpolation).

    Points with velocities of different lengths come back ragged, which the shield refuses.
    """
    velocities = [list(p.velocities) for p in msg.points]
    return velocities if any(velocities) else None


def main(args=None) -> None:
    """Run the safety shield node until shutdown."""
    spin_node(SafetyShieldNode, "safety_shield", args, multithreaded=True)


if __name__ == "__main__":
    main()
