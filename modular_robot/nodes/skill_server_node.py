"""Skill server node: the `execute_skill` action over the skill library, acting through the safety shield.

Goals name a skill and its JSON arguments. The arguments are validated against the skill's schema
before anything moves; the skill then runs over ROS implementations of its interfaces (arm and
gripper through `safe/...` topics and joint_states, the base through `safe/cmd_vel` and TF, the
semantic map, chat/robot). Feedback reports the phase; cancelling stops the motion. The result
carries the skill's reason and its effects as JSON; whether the world changed is the critic's call.
Every skill with its schema, preconditions and effects is listed on the latched `skills/catalog`.

Engaging the latched `emergency_stop` (std_msgs/Bool) stops the running skill, which fails with
"emergency stop" in its message and `emergency_stop` in its effects; while it is engaged every goal
is refused with that reason. A goal whose client (the planner) leaves the graph is stopped too.
"""

from __future__ import annotations

import json
import threading
import traceback

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from std_msgs.msg import Bool, String

from modular_robot.core.robot_model import PANDA_FINGER_JOINTS, PANDA_MAX_OPENING, ROBOT_KINDS, robot_kind
from modular_robot.core.tf_tree import TfError
from modular_robot.motion.kinematics import ArmKinematics, panda_kinematics
from modular_robot.ros import qos
from modular_robot.ros.arm_client import RosArm
from modular_robot.ros.base_client import RosBase
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.ros.tf_listener import TfListener
from modular_robot.ros.world_client import RosSpeech, RosWorld
from modular_robot.skills.base import CallError, SkillResult, refuse
from modular_robot.skills.interfaces import SkillContext
from modular_robot.skills.library import SKILLS, skill_catalog, validate_call
from modular_robot_interfaces.action import ExecuteSkill

# How often a running skill checks that some client of `execute_skill` is still there (s of the node's clock).
CLIENT_CHECK_PERIOD_S = 0.5


class SkillServerNode(StackNode):
    """Run one skill at a time on request; refuse bad calls before anything moves."""

    def __init__(self, **kwargs) -> None:
        super().__init__("skill_server", **kwargs)
        # Set before anything can fail: the context destroys a half-built node on shutdown.
        self._kinematics: ArmKinematics | None = None
        self._cancel = threading.Event()
        self._declare_parameters()
        robot = self.get_parameter("robot").value
        self.parts = robot_kind(robot).parts
        self.world_frame = self.get_parameter("world_frame").value
        self.arm_base_frame = self.get_parameter("arm_base_frame").value
        self._busy = threading.Lock()
        # The emergency stop is engaged now; it was engaged during the running skill; the running
        # skill's client went away.
        self._estop = threading.Event()
        self._estopped = threading.Event()
        self._client_gone = threading.Event()
        data = ReentrantCallbackGroup()
        self.tf = TfListener(self, callback_group=data)
        self.world = RosWorld(self, self._cancel, callback_group=data)
        self.speech = RosSpeech(self)
        self.arm: RosArm | None = None
        self.base: RosBase | None = None
        if "arm" in self.parts:
            self._kinematics = panda_kinematics()
            self.arm = RosArm(self, self._kinematics.joint_names, PANDA_FINGER_JOINTS, self._cancel,
                              callback_group=data, shield_node=self.get_parameter("shield_node").value)
        if "base" in self.parts:
            self.base = RosBase(self, world_frame=self.world_frame, base_frame=self.get_parameter("base_frame").value,
                                cancel_event=self._cancel, callback_group=data)
        self.create_subscription(Bool, "emergency_stop", self._on_emergency_stop, qos.LATCHED, callback_group=data)
        self.catalog_pub = self.create_publisher(String, "skills/catalog", qos.LATCHED)
        self.catalog_pub.publish(String(data=json.dumps(self.catalog())))
        self._server = ActionServer(self, ExecuteSkill, "execute_skill", execute_callback=self._execute,
                                    goal_callback=lambda goal: GoalResponse.ACCEPT,
                                    cancel_callback=self._on_cancel, callback_group=ReentrantCallbackGroup())
        self._goal_service = self.resolve_topic_name("execute_skill") + "/_action/send_goal"
        self.create_timer(CLIENT_CHECK_PERIOD_S, self._check_client, callback_group=data)
        self.get_logger().info(f"serving {len(SKILLS)} skills for {robot} ({' and '.join(self.parts)})")

    def _declare_parameters(self) -> None:
        def declare(name, default, description):
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))

        declare("robot", "panda_tabletop", f"Robot kind: {', '.join(ROBOT_KINDS)}.")
        declare("world_frame", "map", "Frame of the semantic map and of navigation goals.")
        declare("arm_base_frame", "panda_link0", "Frame the arm's kinematics are expressed in.")
        declare("base_frame", "base_link", "Frame of the mobile base.")
        declare("shield_node", "safety_shield", "Name of the safety shield node in this namespace: refusals on "
                "safety/refusals count only from it.")
        declare("velocity_scale", 0.5, "Fraction of the URDF joint velocity limits the arm moves at.")
        declare("base_radius_m", 0.6, "Radius of a circle around the base's footprint, kept off obstacles.")
        declare("base_linear_speed", 0.5, "Forward speed of the base (m/s).")
        declare("base_angular_speed", 1.0, "Turn rate of the base (rad/s).")

    def catalog(self) -> list[dict]:
        """Return the skill catalog, each entry marked with whether this robot can run it."""
        return [{**entry, "available": all(part in self.parts for part in SKILLS[entry["name"]].requires)}
                for entry in skill_catalog()]

    def destroy_node(self) -> None:
        """Stop a running skill and release the kinematics' PyBullet client, then destroy the node."""
        self._cancel.set()
        if self._kinematics is not None:
            self._kinematics.close()
            self._kinematics = None
        super().destroy_node()

    def _on_emergency_stop(self, msg: Bool) -> None:
        if msg.data:
            if not self._estop.is_set():
                self.get_logger().warning("emergency stop engaged: stopping the running skill; goals are refused")
            self._estop.set()
            self._estopped.set()
            self._cancel.set()
        elif self._estop.is_set():
            self.get_logger().info("emergency stop released: nothing moves until a new goal")
            self._estop.clear()

    def _check_client(self) -> None:
        """Stop the running skill when no client of `execute_skill` is left: nobody would stop it otherwise."""
        if self._busy.locked() and not self._cancel.is_set() and self.count_clients(self._goal_service) == 0:
            self.get_logger().warning("the client of the running skill went away: stopping the skill")
            self._client_gone.set()
            self._cancel.set()

    def _on_cancel(self, goal_handle) -> CancelResponse:
        self.get_logger().info("cancel requested: stopping the running skill")
        self._cancel.set()
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle) -> ExecuteSkill.Result:
        request = goal_handle.request
        if not self._busy.acquire(blocking=False):
            outcome = refuse(f"busy: another skill is running; '{request.skill}' was not started")
        else:
            try:
                self._cancel.clear()
                self._estopped.clear()
                self._client_gone.clear()
                # Checked after clearing: a stop engaged from here on sets the events again.
                if self._estop.is_set():
                    outcome = SkillResult(False, f"emergency stop engaged: '{request.skill}' was not started",
                                          {"moved": False, "emergency_stop": True})
                else:
                    outcome = self._stopped_by(request.skill, self._run(request.skill, request.args_json,
                                                                        goal_handle))
            finally:
                self._busy.release()
        line = f"{request.skill}({request.args_json}): {'succeeded' if outcome.success else 'failed'}: {outcome.reason}"
        if outcome.success:
            self.get_logger().info(line)
        else:
            self.get_logger().warning(line)
        result = ExecuteSkill.Result(success=outcome.success, message=outcome.reason,
                                     effects_json=json.dumps(outcome.effects, default=_json_default))
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif outcome.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _run(self, name: str, args_json: str, goal_handle) -> SkillResult:
        goal_handle.publish_feedback(ExecuteSkill.Feedback(phase="validating", progress=0.0))
        params = validate_call(name, args_json)
        if isinstance(params, CallError):
            return refuse(params.reason)
        skill = SKILLS[name]
        ctx = SkillContext(
            arm=self.arm, world=self.world, speech=self.speech, kinematics=self._kinematics,
            velocity_scale=self.get_parameter("velocity_scale").value, max_opening=PANDA_MAX_OPENING, base=self.base,
            base_radius=self.get_parameter("base_radius_m").value,
            base_linear_speed=self.get_parameter("base_linear_speed").value,
            base_angular_speed=self.get_parameter("base_angular_speed").value,
            progress=lambda phase, fraction: goal_handle.publish_feedback(
                ExecuteSkill.Feedback(phase=phase, progress=float(fraction))))
        if "arm" in skill.requires and self.arm is not None:
            if not self.arm.ready():
                return refuse("no joint_states from the arm yet")
            try:
                ctx.arm_base_from_world = self.tf.lookup(self.arm_base_frame, self.world_frame)
            except TfError as error:
                return refuse(f"no transform from {self.world_frame} to {self.arm_base_frame}: {error}")
        try:
            outcome = skill.run(params, ctx)
        except Exception as error:  # noqa: BLE001 - a skill bug must not take the server down
            self.get_logger().error(f"{name} raised: {traceback.format_exc()}")
            self._stop_motion()
            return SkillResult(False, f"internal error in {name}: {error}", {"moved": True})
        goal_handle.publish_feedback(ExecuteSkill.Feedback(phase="done", progress=1.0))
        return outcome

    def _stopped_by(self, name: str, outcome: SkillResult) -> SkillResult:
        """Return the outcome of a skill the emergency stop or a vanished client may have stopped."""
        if self._estopped.is_set():
            return SkillResult(False, f"emergency stop: {name} was stopped ({outcome.reason})",
                               {**outcome.effects, "emergency_stop": True})
        if self._client_gone.is_set():
            return SkillResult(False, f"{name} was stopped: its client went away ({outcome.reason})", outcome.effects)
        return outcome

    def _stop_motion(self) -> None:
        if self.base is not None:
            self.base.stop()


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def main(args=None) -> None:
    """Run the skill server until shutdown."""
    spin_node(SkillServerNode, "skill_server", args, multithreaded=True)


if __name__ == "__main__":
    main()
