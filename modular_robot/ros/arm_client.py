"""The skills' ArmInterface over ROS: commands through the safety shield, completion from joint_states.

Trajectories and gripper commands go to the shield's `safe/...` topics; the shield forwards them to
the controllers or refuses them on `safety/refusals`, which ends the motion at once with the
shield's reason; a refusal that any node other than the shield publishes is ignored (and counted
in `RosArm.refusal_subscription.rejected`). A command no shield listens to is not sent and fails at
once, and a motion whose shield leaves the graph fails then, naming it: waiting out the motion's
time would end in a misleading "not reached in time". Time is the robot's: the stamps of
joint_states, so waiting works the same in lockstep simulation, in real time and on hardware.
Nothing here spins the node: an executor does that in another thread while a skill blocks in
`execute`.

A stamp is taken as robot time only if it is not ahead of this node's clock by more than
FUTURE_TOLERANCE_S: one message stamped in the far future would otherwise set the time every later
wait measures from, and none would end. Robot time that goes back by more than that tolerance (a
simulation reset) is taken as the new time, and the motions waiting on the old one fail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.motion.timing import TimedPath, braking_stop, lead_time
from modular_robot.ros import qos
from modular_robot.ros.conversions import stamp_to_ns
from modular_robot.ros.trusted import TrustedSubscription
from modular_robot.skills.interfaces import MotionResult

ARM_TOPIC = "safe/arm_controller/joint_trajectory"
GRIPPER_TOPIC = "safe/gripper_controller/commands"
# A goal is reached when every joint is this close to it (rad) and moving slower than GOAL_SPEED.
GOAL_TOLERANCE = 0.01
GOAL_SPEED = 0.05
# Every trajectory starts at least this long after it is sent (s); longer where the arm, measured
# off the path's start or still moving, needs longer to reach it within the path's limits.
LEAD_S = 0.1
# Robot time a trajectory may overrun its duration before it counts as failed (s).
OVERRUN_S = 2.0
# Fingers that moved less than this (m) over GRIPPER_SETTLE_S have stopped, on an object or not.
GRIPPER_STILL = 2e-4
GRIPPER_SETTLE_S = 0.2
GRIPPER_TOLERANCE = 0.002
GRIPPER_TIMEOUT_S = 3.0
# After a cancel the arm brakes evenly to a stop, in this time at least (s).
HOLD_S = 0.2
# Wall time without joint_states after which the robot is taken to be gone (s).
STALE_WALL_S = 5.0
# joint_states may be stamped this far ahead of this node's clock (s): the clock and the stamps come
# from the same source, but over different topics. Also the largest step back taken as jitter.
FUTURE_TOLERANCE_S = 1.0
_POLL_S = 0.05


def _duration(seconds: float) -> Duration:
    whole = int(seconds)
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


class RosArm:
    """An arm and parallel gripper driven through the safety shield.

    Args:
        node: The node that owns the subscriptions and publishers.
        finger_joints: Joints whose positions sum to the finger opening.
        cancel: Set while a motion must stop; `execute` then holds the arm and fails.
        callback_group: Group for the subscriptions, so that they run while a skill blocks.
        shield_node: Name of the safety shield node, in `node`'s namespace: the only publisher of
            `safety/refusals` heard.

    Attributes:
        refusal_subscription: The `safety/refusals` subscription (its `rejected` counts refusals from other nodes).
    """

    def __init__(self, node: Node, arm_joints: Sequence[str], finger_joints: Sequence[str],
                 cancel: threading.Event, callback_group=None, shield_node: str = "safety_shield") -> None:
        self._node = node
        self._arm_joints = list(arm_joints)
        self._finger_joints = list(finger_joints)
        self._cancel = cancel
        self._state = threading.Condition()
        self._positions: dict[str, float] = {}
        self._velocities: dict[str, float] = {}
        self._stamp_ns = -1
        # Counts the times robot time went back; a wait begun before one cannot end on its deadline.
        self._time_jumps = 0
        self._received_wall = 0.0
        self._refusals: list[str] = []
        node.create_subscription(JointState, "joint_states", self._on_joint_states, qos.RELIABLE,
                                 callback_group=callback_group)
        self.refusal_subscription = TrustedSubscription(node, String, "safety/refusals", self._on_refusal,
                                                        qos.RELIABLE, owner=shield_node,
                                                        callback_group=callback_group)
        self._arm_pub = node.create_publisher(JointTrajectory, ARM_TOPIC, qos.RELIABLE)
        self._gripper_pub = node.create_publisher(Float64MultiArray, GRIPPER_TOPIC, qos.RELIABLE)

    # --- subscriptions --------------------------------------------------------------------------

    def _on_joint_states(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        ahead_s = (stamp_ns - self._node.get_clock().now().nanoseconds) * 1e-9
        if ahead_s > FUTURE_TOLERANCE_S:
            self._node.get_logger().warning(f"ignoring joint_states stamped {stamp_ns * 1e-9:.3f} s, {ahead_s:.3f} s "
                                            f"ahead of this node's clock", throttle_duration_sec=5.0)
            return
        tolerance_ns = int(FUTURE_TOLERANCE_S * 1e9)
        with self._state:
            self._positions.update(zip(msg.name, msg.position))
            if len(msg.velocity) == len(msg.name):
                self._velocities.update(zip(msg.name, msg.velocity))
            if stamp_ns < self._stamp_ns - tolerance_ns:
                self._node.get_logger().warning(f"robot time went back {(self._stamp_ns - stamp_ns) * 1e-9:.3f} s; "
                                                f"motions in progress fail")
                self._time_jumps += 1
                self._stamp_ns = stamp_ns
            else:
                self._stamp_ns = max(self._stamp_ns, stamp_ns)
            self._received_wall = time.monotonic()
            self._state.notify_all()

    def _on_refusal(self, msg: String) -> None:
        with self._state:
            self._refusals.append(msg.data)
            self._state.notify_all()

    # --- ArmInterface ---------------------------------------------------------------------------

    def ready(self) -> bool:
        """Return whether joint_states have reported every arm and finger joint."""
        with self._state:
            return all(n in self._positions for n in self._arm_joints + self._finger_joints)

    def joint_positions(self) -> np.ndarray:
        with self._state:
            return np.array([self._positions[n] for n in self._arm_joints])

    def gripper_opening(self) -> float:
        with self._state:
            return float(sum(self._positions[n] for n in self._finger_joints))

    def execute(self, joint_names: Sequence[str], path: TimedPath) -> MotionResult:
        if self._cancel.is_set():
            return MotionResult(False, "cancelled")
        names = list(joint_names)
        with self._state:
            start_ns, before = self._stamp_ns, self._marks()
            here, moving = self._measured(names)
        msg, lead = trajectory_message(names, path, here, moving)
        goal = np.asarray(path.positions[-1], dtype=float)
        unheard = _unheard(self._arm_pub)
        if unheard:
            return MotionResult(False, unheard)
        self._arm_pub.publish(msg)
        deadline_ns = start_ns + int((lead + path.duration + OVERRUN_S) * 1e9)

        def reached() -> bool:
            error = np.abs(np.array([self._positions[n] for n in names]) - goal)
            speed = np.abs(np.array([self._velocities.get(n, 0.0) for n in names]))
            return bool(np.all(error < GOAL_TOLERANCE) and np.all(speed < GOAL_SPEED))

        outcome = self._wait(reached, deadline_ns, before, self._arm_pub)
        if outcome == "the goal was not reached in time":
            with self._state:
                error = np.array([self._positions[n] for n in names]) - goal
                speed = np.array([self._velocities.get(n, 0.0) for n in names])
            worst = int(np.argmax(np.abs(error)))
            outcome += (f" ({names[worst]} {error[worst]:+.3f} rad from it, fastest joint "
                        f"{np.max(np.abs(speed)):.3f} rad/s)")
        if outcome == "cancelled":
            self._hold(names, path.acceleration_limits)
            return MotionResult(False, "cancelled")
        if outcome is not None:
            return MotionResult(False, outcome)
        return MotionResult(True)

    def set_gripper(self, opening: float) -> MotionResult:
        if self._cancel.is_set():
            return MotionResult(False, "cancelled")
        with self._state:
            start_ns, before = self._stamp_ns, self._marks()
        unheard = _unheard(self._gripper_pub)
        if unheard:
            return MotionResult(False, unheard)
        self._gripper_pub.publish(Float64MultiArray(data=[float(opening)]))
        history: list[tuple[int, float]] = []
        settle_ns = int(GRIPPER_SETTLE_S * 1e9)

        def stopped() -> bool:
            now, current = self._stamp_ns, sum(self._positions[n] for n in self._finger_joints)
            history.append((now, current))
            if abs(current - opening) < GRIPPER_TOLERANCE:
                return True
            older = [value for stamp, value in history if stamp <= now - settle_ns]
            # Fingers that have not moved over the settle time have stopped on something, once
            # they had time to start moving.
            return now - start_ns >= 2 * settle_ns and bool(older) and abs(current - older[-1]) < GRIPPER_STILL

        outcome = self._wait(stopped, start_ns + int(GRIPPER_TIMEOUT_S * 1e9), before, self._gripper_pub)
        if outcome is not None:
            return MotionResult(False, outcome)
        return MotionResult(True)

    def pause(self, seconds: float) -> MotionResult:
        if self._cancel.is_set():
            return MotionResult(False, "cancelled")
        with self._state:
            start_ns, before = self._stamp_ns, self._marks()
        end_ns = start_ns + int(seconds * 1e9)
        outcome = self._wait(lambda: self._stamp_ns >= end_ns, end_ns, before)
        if outcome is not None:
            return MotionResult(False, outcome)
        return MotionResult(True)

    # --- helpers --------------------------------------------------------------------------------

    def _marks(self) -> tuple[int, int]:
        """Return (refusals, time jumps) so far, for `_wait` to tell new ones; call with the state held."""
        return len(self._refusals), self._time_jumps

    def _wait(self, done, deadline_ns: int, before: tuple[int, int], command_pub=None) -> str | None:
        """Wait on joint_states until done() holds; return None, "cancelled" or why it failed.

        `command_pub`, if given, published the command: the motion fails if its shield leaves.
        """
        refusals_before, jumps_before = before
        with self._state:
            while True:
                if command_pub is not None and _unheard(command_pub):
                    return f"the safety shield listening on {command_pub.topic_name} went away during the motion"
                if len(self._refusals) > refusals_before:
                    return f"the safety shield {self._refusals[refusals_before]}"
                if self._cancel.is_set():
                    return "cancelled"
                if self._time_jumps != jumps_before:
                    return "robot time went back (a simulation reset?) during the motion"
                if done():
                    return None
                if self._stamp_ns > deadline_ns:
                    return "the goal was not reached in time"
                if time.monotonic() - self._received_wall > STALE_WALL_S:
                    return f"no joint_states for {STALE_WALL_S:.0f} s"
                self._state.wait(_POLL_S)

    def _measured(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the measured positions and velocities of the joints; call with the state held."""
        return (np.array([self._positions[n] for n in names]),
                np.array([self._velocities.get(n, 0.0) for n in names]))

    def _hold(self, names: list[str], acceleration_limits: np.ndarray) -> None:
        """Command the arm to brake to a stop from its measured motion, within the given limits.

        "Stay here" would ask a moving arm to stop at once, which no acceleration limit allows and
        the safety shield refuses; the arm would then go on with the motion being cancelled.
        """
        with self._state:
            here, moving = self._measured(names)
        self._arm_pub.publish(braking_trajectory(names, here, moving, acceleration_limits))


def braking_trajectory(joint_names: Sequence[str], here: np.ndarray, moving: np.ndarray,
                       acceleration_limits: np.ndarray) -> JointTrajectory:
    """Return the trajectory that brakes the arm evenly to rest from its measured motion, within the limits.

    Its one point lies ahead of the measured positions; the controller reaches it from the measured
    velocities, decelerating at a constant rate over at least HOLD_S.
    """
    duration, offset = braking_stop(moving, acceleration_limits, HOLD_S)
    return JointTrajectory(joint_names=list(joint_names), points=[JointTrajectoryPoint(
        positions=[float(v) for v in here + offset], velocities=[0.0] * len(joint_names),
        time_from_start=_duration(duration))])


def _unheard(publisher) -> str | None:
    """Return why a command on `publisher` would go nowhere (no shield listens), None if one does."""
    if publisher.get_subscription_count() == 0:
        return f"no safety shield is listening on {publisher.topic_name}: the command was not sent"
    return None


def trajectory_message(joint_names: Sequence[str], path: TimedPath, here: np.ndarray,
                       moving: np.ndarray) -> tuple[JointTrajectory, float]:
    """Return the trajectory that takes the arm from its measured state along a path, and its lead (s).

    The path starts at rest where the arm was planned to be. The controller reaches that first
    waypoint from the measured positions and velocities (settling after a grasp, the end of the
    last motion) over the lead, timed with the path's own limits so that the shield, which checks
    that segment from the same measured state, accepts what the path's timing accepts.
    """
    gap = np.asarray(path.positions[0], dtype=float) - here
    lead = max(LEAD_S, lead_time(gap, moving, path.velocity_limits, path.acceleration_limits))
    msg = JointTrajectory(joint_names=list(joint_names))
    msg.points = [JointTrajectoryPoint(positions=[float(v) for v in q], velocities=[float(v) for v in v_],
                                       time_from_start=_duration(lead + float(t)))
                  for t, q, v_ in zip(path.times, path.positions, path.velocities)]
    return msg, lead
