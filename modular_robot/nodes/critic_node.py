"""Critic node: judges plan steps from the world, never from a skill's word.

Serves `check_step` (CheckStep.srv): phase "pre" asks whether a step's preconditions hold in the
current semantic map and robot state; phase "post" whether its effects are observed in fresh
perception: only camera frames stamped at or after the request's `since` (its arrival when zero)
count, and the service waits, up to `post_timeout_s` of sim time, for `post_frames` of them. Every
verdict is also published on `verdicts`. A bad request (unknown skill, arguments failing the skill's
schema, unknown phase) gets a not-ok verdict that says why, never an exception.

The node only gathers evidence and converts messages; the rules are in `modular_robot.critic`. Evidence kept:
the recent observation frames, joint states (finger opening and speed, arm joints), the latest
gripper command, what the robot said on chat/robot (only the `speech_node`'s words: another node's
text there is not the robot speaking), TF (grasp point and base pose at each frame's
stamp), and semantic maps. A post verdict needs the map from before the step: what the objects it
names looked like and where they were. That is the map the step's pre check judged (by task_id and
step_index), else the newest map published before `since`; objects the map has dropped since are
filled in from memory. During a pick the map sees the cube in part (the gripper hides it, the
self-filter cuts it) and then drops it, so the object a place or place_at puts down is taken as the
map knew it when its pick was checked. Reachability is checked with the arm's kinematics.

The service callback blocks while it waits for frames: it has its own callback group, and the node
needs a multi-threaded executor (`main` uses one).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header, String

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.navigation.geometry import HUSKY_FOOTPRINT
from modular_robot.core.robot_model import (
    PANDA_ARM_JOINTS,
    PANDA_FINGER_JOINTS,
    PANDA_MAX_OPENING,
    ROBOT_KINDS,
    robot_kind,
)
from modular_robot.core.tf_tree import TfError
from modular_robot.core.transforms import Transform, quat_to_rpy
from modular_robot.critic.evidence import CriticVerdict, ObservedBox, PerceptionFrame, Proprioception, Reachable
from modular_robot.critic.post import needs_perception, post_verdict, uses_perception
from modular_robot.critic.pre import pre_verdict
from modular_robot.motion.grasping import GripperPose, place_pose, top_down_grasp, top_down_orientation
from modular_robot.motion.kinematics import ArmKinematics, panda_kinematics
from modular_robot.ros import qos
from modular_robot.ros.conversions import clip, stamp_to_ns
from modular_robot.ros.object_msgs import msg_to_detection, msg_to_object, object_problem
from modular_robot.ros.spin import spin_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.ros.tf_listener import TfListener
from modular_robot.ros.trusted import TrustedSubscription
from modular_robot.skills.base import CallError
from modular_robot.skills.library import SKILLS, validate_call
from modular_robot_interfaces.msg import ObjectObservationArray, SemanticMap, Verdict
from modular_robot_interfaces.srv import CheckStep, QueryObjects

_FRAMES_KEPT = 300
_MAPS_KEPT = 200
_JOINT_STATES_KEPT = 1000
_CHAT_KEPT = 100
_STEPS_KEPT = 100
_WAIT_POLL_S = 0.02
_QUERY_TIMEOUT_S = 2.0
# Above the object's top, where a gripper pointing down is checked for reach when no grasp fits it.
_ABOVE_TOP_M = 0.05
# Evidence stamped further than this ahead of the node's clock is refused: kept, it would count as
# fresh for every post check until time caught up, and clear the history of older stamps.
_MAX_FUTURE_STAMP_S = 1.0
# Longest arguments of a step: skills take a few names and numbers.
MAX_ARGS_CHARS = 10_000


@dataclass(frozen=True)
class _JointSample:
    stamp_ns: int
    opening: float | None
    speed: float | None
    arm: np.ndarray | None


@dataclass(frozen=True)
class _Box:
    """A box in the arm base's frame (satisfies motion.grasping.Box)."""

    position: np.ndarray
    size: np.ndarray
    yaw: float


class CriticNode(StackNode):
    """Answers check_step requests with verdicts drawn from perception, the map and proprioception."""

    def __init__(self, **kwargs) -> None:
        super().__init__("critic", **kwargs)
        # Set before anything can fail: the context destroys a half-built node on shutdown.
        self._kinematics: ArmKinematics | None = None
        self._declare_parameters()

        def get(name: str):
            return self.get_parameter(name).value

        self.robot = get("robot")
        kind = robot_kind(self.robot)
        self.world_frame = get("world_frame")
        self.post_frames = int(get("post_frames"))
        if self.post_frames < 1:
            raise ValueError(f"parameter post_frames must be at least 1, got {self.post_frames}")
        self.post_timeout_s = float(get("post_timeout_s"))
        self.post_wall_timeout_s = float(get("post_wall_timeout_s"))
        self.grasp_frame = get("grasp_frame")
        self.base_frame = get("base_frame")
        self.arm_base_frame = get("arm_base_frame")
        self.max_opening = float(get("max_opening"))
        self.has_arm = kind.has_arm
        self.footprint = HUSKY_FOOTPRINT
        if self.has_arm:
            self._kinematics = panda_kinematics()

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._frames: deque[PerceptionFrame] = deque(maxlen=_FRAMES_KEPT)
        self._maps: deque[tuple[int, dict[str, MapObject]]] = deque(maxlen=_MAPS_KEPT)
        self._remembered: dict[str, MapObject] = {}
        # The map each step's pre check judged, by (task_id, step_index): the post check's "before".
        # With it, when that pre check came: what the robot says during the step counts from then.
        self._step_maps: OrderedDict[tuple[str, int], tuple[int, dict[str, MapObject]]] = OrderedDict()
        # Each object as the map knew it when a pick of it was checked: while it is held, the map
        # sees it in part (fingers, self-filter) and may shrink or drop it.
        self._picked: dict[str, MapObject] = {}
        self._joints: deque[_JointSample] = deque(maxlen=_JOINT_STATES_KEPT)
        self._gripper_command: float | None = None
        self._said: deque[tuple[int, str]] = deque(maxlen=_CHAT_KEPT)

        self.tf = TfListener(self)
        self.create_subscription(ObjectObservationArray, "objects/observations", self._on_observations, qos.RELIABLE)
        self.create_subscription(SemanticMap, "semantic_map", self._on_map, qos.LATCHED)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, qos.RELIABLE)
        self.create_subscription(Float64MultiArray, "gripper_controller/commands", self._on_gripper_command,
                                 qos.RELIABLE)
        self.speech = TrustedSubscription(self, String, "chat/robot", self._on_chat, qos.RELIABLE,
                                          owner=get("speech_node"))
        self.verdicts_pub = self.create_publisher(Verdict, "verdicts", qos.RELIABLE)
        # The map lookup answers while a check waits on it: its responses need a group of their own.
        self._query = self.create_client(QueryObjects, "query_objects", callback_group=ReentrantCallbackGroup())
        self.create_service(CheckStep, "check_step", self._on_check_step,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f"critic for {self.robot}: post verdicts need {self.post_frames} fresh frames "
                               f"within {self.post_timeout_s} s")

    def _declare_parameters(self) -> None:
        def declare(name, default, description):
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))

        declare("robot", "panda_tabletop", f"Robot kind: {', '.join(ROBOT_KINDS)} (arm kinematics, base footprint).")
        declare("world_frame", "map", "Frame of observations, map and verdict geometry.")
        declare("post_frames", 3, "Fresh perception frames a post verdict is judged over (majority rules).")
        declare("post_timeout_s", 3.0, "Longest sim time a post check waits for its fresh frames.")
        declare("post_wall_timeout_s", 30.0, "Longest wall time a post check waits (sim time may stand still).")
        declare("grasp_frame", "panda_grasptarget", "TF frame of the grasp centre between the fingertips.")
        declare("base_frame", "base_link", "TF frame of the robot's base (its view: x forward, y left).")
        declare("arm_base_frame", "panda_link0", "TF frame the arm's kinematics are expressed in.")
        declare("max_opening", PANDA_MAX_OPENING, "Widest finger opening (m).")
        declare("speech_node", "skill_server", "The node whose text on chat/robot is what the robot said (say).")

    def destroy_node(self) -> None:
        """Release the kinematics' PyBullet client, then destroy the node."""
        if self._kinematics is not None:
            self._kinematics.close()
            self._kinematics = None
        super().destroy_node()

    # --- evidence ---------------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _refuse_stamp(self, what: str, stamp_ns: int) -> bool:
        """Return whether evidence stamped `stamp_ns` is refused (before zero, or from the future), logging why."""
        now_ns = self._now_ns()
        # A clock at zero has not started (sim time before the first /clock): nothing to compare with.
        if stamp_ns >= 0 and not (now_ns and stamp_ns > now_ns + _MAX_FUTURE_STAMP_S * 1e9):
            return False
        self.get_logger().warning(f"ignoring {what} stamped {stamp_ns / 1e9:.3f} s: the clock reads "
                                  f"{now_ns / 1e9:.3f} s", throttle_duration_sec=5.0)
        return True

    def _usable(self, what: str, objects) -> list:
        """Return the objects (observations or map objects) that pass `object_problem`, logging the others."""
        usable = []
        for obj in objects:
            problem = object_problem(obj)
            if problem is None:
                usable.append(obj)
            else:
                self.get_logger().warning(f"ignoring {what}: {problem}", throttle_duration_sec=5.0)
        return usable

    def _on_observations(self, msg: ObjectObservationArray) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.world_frame:
            self.get_logger().warning(f"ignoring observations in frame {clip(msg.header.frame_id)!r}, not "
                                      f"{self.world_frame!r}", throttle_duration_sec=5.0)
            return
        stamp = stamp_to_ns(msg.header.stamp)
        if self._refuse_stamp("observations", stamp):
            return
        boxes = tuple(ObservedBox.from_detection(msg_to_detection(o), stamp)
                      for o in self._usable("an observation", msg.observations))
        with self._changed:
            # A stamp older than the newest means time was reset: forget the old timeline.
            if self._frames and stamp < self._frames[-1].stamp_ns:
                self._frames.clear()
            self._frames.append(PerceptionFrame(stamp, boxes))
            self._changed.notify_all()

    def _on_map(self, msg: SemanticMap) -> None:
        objects = {o.id: msg_to_object(o) for o in self._usable("a map object", msg.objects)}
        stamp = stamp_to_ns(msg.header.stamp)
        with self._changed:
            self._maps.append((stamp, objects))
            self._remembered.update(objects)
            self._changed.notify_all()

    def _on_joint_states(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            return
        stamp = stamp_to_ns(msg.header.stamp) or self._now_ns()
        if self._refuse_stamp("joint states", stamp):
            return
        index = {name: i for i, name in enumerate(msg.name)}
        opening = speed = arm = None
        # A non-finite reading is no reading: the joint's evidence is left out of this sample.
        if all(f in index for f in PANDA_FINGER_JOINTS):
            opening = float(sum(msg.position[index[f]] for f in PANDA_FINGER_JOINTS))
            if len(msg.velocity) == len(msg.name):
                speed = float(sum(abs(msg.velocity[index[f]]) for f in PANDA_FINGER_JOINTS))
        if all(j in index for j in PANDA_ARM_JOINTS):
            arm = np.array([msg.position[index[j]] for j in PANDA_ARM_JOINTS])
        opening = opening if opening is not None and np.isfinite(opening) else None
        speed = speed if speed is not None and np.isfinite(speed) else None
        arm = arm if arm is not None and np.isfinite(arm).all() else None
        with self._changed:
            if self._joints and stamp < self._joints[-1].stamp_ns:
                self._joints.clear()
            self._joints.append(_JointSample(stamp, opening, speed, arm))
            self._changed.notify_all()

    def _on_gripper_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) == 1 and np.isfinite(msg.data[0]):
            with self._lock:
                self._gripper_command = float(msg.data[0])

    def _on_chat(self, msg: String) -> None:
        with self._changed:
            self._said.append((self._now_ns(), msg.data))
            self._changed.notify_all()

    def _joint_sample(self, stamp_ns: int | None) -> _JointSample | None:
        """Return the newest joint sample at or before a stamp (the newest of all when None); lock held."""
        if not self._joints:
            return None
        if stamp_ns is None:
            return self._joints[-1]
        best = None
        for sample in reversed(self._joints):
            if sample.stamp_ns <= stamp_ns:
                best = sample
                break
        return best or self._joints[0]

    def _lookup(self, frame: str, stamp_ns: int | None) -> Transform | None:
        """Return world_from_frame at a stamp, else the latest one, else None."""
        for stamp in ((stamp_ns, None) if stamp_ns else (None,)):
            try:
                return self.tf.lookup(self.world_frame, frame, stamp)
            except TfError:
                continue
        return None

    def _proprioception(self, stamp_ns: int | None) -> Proprioception | None:
        """Return the robot's state at a stamp (the latest when None), or None before any joint state."""
        with self._lock:
            sample = self._joint_sample(stamp_ns)
            command = self._gripper_command
        grasp = self._lookup(self.grasp_frame, stamp_ns) if self.has_arm else None
        base = self._lookup(self.base_frame, stamp_ns)
        if sample is None and base is None:
            return None
        base_pose = None
        if base is not None:
            base_pose = (float(base.translation[0]), float(base.translation[1]), float(quat_to_rpy(base.rotation)[2]))
        return Proprioception(
            stamp_ns=sample.stamp_ns if sample is not None else (stamp_ns or 0),
            gripper_opening=sample.opening if sample is not None else None,
            gripper_speed=sample.speed if sample is not None else None, gripper_command=command,
            grasp_point=grasp.apply(np.zeros(3)) if grasp is not None else None,
            arm_joints=sample.arm if sample is not None else None, base_pose=base_pose, max_opening=self.max_opening)

    def _map_at(self, stamp_ns: int | None) -> dict[str, MapObject]:
        """Return the newest map published at or before a stamp (the newest when None), plus remembered objects
        it lacks; lock held."""
        chosen: dict[str, MapObject] = {}
        if self._maps:
            chosen = self._maps[-1][1] if stamp_ns is None else self._maps[0][1]
            if stamp_ns is not None:
                for stamp, objects in self._maps:
                    if stamp <= stamp_ns:
                        chosen = objects
        return {**self._remembered, **chosen}

    # --- reachability -----------------------------------------------------------------------------

    def _reachable(self, skill: str, params) -> Reachable | None:
        """Return the reachability check of a skill's objects, or None where it does not apply."""
        if skill not in SKILLS or not SKILLS[skill].moves_object:
            return None
        if self._kinematics is None:
            return lambda obj: f"this robot ({self.robot}) has no arm"
        try:
            base_from_world = self.tf.lookup(self.arm_base_frame, self.world_frame)
        except TfError as error:
            problem = f"no transform from {self.world_frame} to the arm base {self.arm_base_frame}: {error}"
            return lambda obj: problem
        state = self._proprioception(None)
        seed = state.arm_joints if state is not None and state.arm_joints is not None else None
        kinematics = self._kinematics
        base_yaw = float(quat_to_rpy(base_from_world.rotation)[2])
        with self._lock:
            remembered = dict(self._remembered)

        def in_base(obj: MapObject) -> _Box:
            return _Box(base_from_world.apply(obj.position), np.array(obj.size), obj.yaw + base_yaw)

        def poses_for(obj: MapObject) -> list[tuple[str, GripperPose]] | str:
            box = in_base(obj)
            relation = getattr(params, "relation", None)
            if skill == "place_at":
                # obj is the held object standing at the position: it is released onto the surface under it.
                support = _Box(box.position - [0.0, 0.0, float(box.size[2]) / 2.0],
                               np.array([box.size[0], box.size[1], 0.0]), box.yaw)
                plan = place_pose(support, "on", box.size)
                return [("the pose above the release", plan.pre_place), ("the release", plan.release)]
            if skill == "place" and relation in ("in", "on"):
                held = remembered.get(getattr(params, "object", ""))
                size = held.size if held is not None else np.array([0.04, 0.04, 0.04])
                plan = place_pose(box, relation, size)
                if plan is None:
                    return f"the held object does not fit {relation} '{obj.id}'"
                return [("the pose above the release", plan.pre_place), ("the release", plan.release)]
            plan = top_down_grasp(box.position, box.size, box.yaw, self.max_opening)
            if plan is not None:
                return [("the pose above it", plan.pre_grasp), ("the grasp", plan.grasp)]
            above = box.position + [0.0, 0.0, float(box.size[2]) / 2.0 + _ABOVE_TOP_M]
            return [("the pose above it", GripperPose(above, top_down_orientation(box.yaw)))]

        def reachable(obj: MapObject) -> str | None:
            poses = poses_for(obj)
            if isinstance(poses, str):
                return poses
            q = seed
            for what, pose in poses:
                solution = kinematics.solve(pose.position, pose.quaternion, seed=q)
                if solution.q is None:
                    p = pose.position
                    return f"{what} at ({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f}) in {self.arm_base_frame}: {solution.reason}"
                q = solution.q
            return None

        return reachable

    # --- search -----------------------------------------------------------------------------------

    def _find(self, text: str) -> list[tuple[MapObject, float]]:
        """Ask the semantic map's query_objects service; [] when it does not answer."""
        if not self._query.service_is_ready():
            return []
        done = threading.Event()
        future = self._query.call_async(QueryObjects.Request(text=text, max_results=5))
        future.add_done_callback(lambda _: done.set())
        if not done.wait(_QUERY_TIMEOUT_S) or future.result() is None:
            return []
        response = future.result()
        return [(msg_to_object(o), float(s)) for o, s in zip(response.objects, response.scores)]

    # --- the service ------------------------------------------------------------------------------

    def _on_check_step(self, request: CheckStep.Request, response: CheckStep.Response) -> CheckStep.Response:
        arrival_ns = self._now_ns()
        try:
            verdict = self._judge(request, arrival_ns)
        except Exception as error:  # noqa: BLE001 - a verdict, never an exception, goes back
            self.get_logger().error(f"check_step failed: {type(error).__name__}: {clip(error)}")
            verdict = CriticVerdict(False, 0.0, f"the critic failed: {type(error).__name__}: {clip(error)}")
        msg = Verdict(header=Header(stamp=self.get_clock().now().to_msg(), frame_id=self.world_frame),
                      task_id=request.task_id, step_index=request.step_index, phase=request.phase, ok=bool(verdict.ok),
                      confidence=float(min(1.0, max(0.0, verdict.confidence))), reason=verdict.reason,
                      observed=bool(verdict.observed))
        self.verdicts_pub.publish(msg)
        line = (f"{clip(request.phase)} {clip(request.skill)} {clip(request.args_json)}: "
                f"({verdict.confidence:.2f}) {clip(verdict.reason)}")
        # rclpy refuses one call site logging at two severities: one call per severity.
        if verdict.ok:
            self.get_logger().info(f"ok: {line}")
        else:
            self.get_logger().warning(f"NOT ok: {line}")
        response.verdict = msg
        return response

    def _judge(self, request: CheckStep.Request, arrival_ns: int) -> CriticVerdict:
        if request.phase not in (Verdict.PHASE_PRE, Verdict.PHASE_POST):
            return CriticVerdict(False, 0.0, f"unknown phase {clip(request.phase)!r}: expected "
                                             f"'{Verdict.PHASE_PRE}' or '{Verdict.PHASE_POST}'")
        if len(request.args_json) > MAX_ARGS_CHARS:
            return CriticVerdict(False, 0.0, f"bad step: arguments of {len(request.args_json)} characters, more than "
                                             f"{MAX_ARGS_CHARS}")
        try:
            params = validate_call(request.skill, request.args_json)
        except RecursionError:
            return CriticVerdict(False, 0.0, "bad step: arguments nested too deeply")
        if isinstance(params, CallError):
            return CriticVerdict(False, 0.0, f"bad step: {clip(params.reason)}")
        skill = request.skill
        key = (request.task_id, int(request.step_index))
        if request.phase == Verdict.PHASE_PRE:
            with self._lock:
                current = dict(self._maps[-1][1]) if self._maps else {}
                remembered = dict(self._remembered)
                recent = list(self._frames)[-self.post_frames:]
                self._step_maps[key] = (arrival_ns, {**remembered, **current})
                self._step_maps.move_to_end(key)
                while len(self._step_maps) > _STEPS_KEPT:
                    self._step_maps.popitem(last=False)
                if skill == "pick" and params.object in current:
                    self._picked[params.object] = current[params.object]
                current = self._with_held(skill, params, current)
            state = self._proprioception(None)
            frames = [PerceptionFrame(f.stamp_ns, f.boxes, self._proprioception(f.stamp_ns)) for f in recent]
            return pre_verdict(skill, params, current, state, self._reachable(skill, params),
                                      remembered=remembered, frames=frames)
        since_ns = stamp_to_ns(request.since) or arrival_ns
        return self._post(skill, params, since_ns, arrival_ns, key)

    def _with_held(self, skill: str, params, objects: dict[str, MapObject]) -> dict[str, MapObject]:
        """Return the objects with the one a place or place_at puts down as it was when picked; lock held."""
        held = self._picked.get(getattr(params, "object", "")) if skill in SKILLS and SKILLS[skill].releases else None
        return {**objects, held.id: held} if held is not None else objects

    def _post(self, skill: str, params, since_ns: int, arrival_ns: int, key: tuple[str, int]) -> CriticVerdict:
        perception = needs_perception(skill, params)
        wanted = uses_perception(skill, params)
        text = getattr(params, "text", "") if skill == "say" else ""

        def fresh_frames() -> list[PerceptionFrame]:
            return [f for f in self._frames if f.stamp_ns >= since_ns]

        with self._lock:
            step = self._step_maps.get(key)
        # Speech happens during the step, so it counts from the step's pre check when there was one.
        spoken_since = min(step[0], since_ns) if step is not None else since_ns

        def ready() -> bool:
            if wanted:
                return len(fresh_frames()) >= self.post_frames and self._fresh_joints(since_ns)
            if skill == "say":
                return any(t >= spoken_since and s.strip() == text.strip() for t, s in self._said)
            if skill in ("move_arm_home", "open_gripper", "close_gripper"):
                return self._fresh_joints(since_ns)
            return True

        self._wait(ready, arrival_ns)
        with self._lock:
            frames = fresh_frames()[-self.post_frames:]
            # The map the step's pre check judged; else the map as it was at `since`.
            before = self._with_held(skill, params, step[1] if step is not None else self._map_at(since_ns))
            current = dict(self._maps[-1][1]) if self._maps else {}
            said = [s for t, s in self._said if t >= spoken_since]
            joints_fresh = self._fresh_joints(since_ns)
        if perception and len(frames) < self.post_frames:
            return CriticVerdict(False, 0.0, f"no fresh perception: {len(frames)} of {self.post_frames} frames stamped "
                                             f"after {since_ns / 1e9:.3f} s within {self.post_timeout_s} s")
        state = self._proprioception(None) if joints_fresh or skill in ("navigate_to", "search") else None
        if skill in ("move_arm_home", "open_gripper", "close_gripper") and state is None:
            return CriticVerdict(False, 0.0, f"no fresh joint states after {since_ns / 1e9:.3f} s within "
                                             f"{self.post_timeout_s} s")
        judged = [PerceptionFrame(f.stamp_ns, f.boxes, self._proprioception(f.stamp_ns)) for f in frames]
        find: Callable[[str], list[tuple[MapObject, float]]] | None = self._find if skill == "search" else None
        return post_verdict(skill, params, before, judged, state, map_objects=current, find=find, said=said,
                                   robot_footprint=self.footprint)

    def _fresh_joints(self, since_ns: int) -> bool:
        """Return whether a joint state stamped at or after a time came; lock held."""
        return bool(self._joints) and self._joints[-1].stamp_ns >= since_ns

    def _wait(self, ready: Callable[[], bool], arrival_ns: int) -> None:
        """Block until ready() (called with the lock held) or the sim-time or wall-time limit passes."""
        deadline_ns = arrival_ns + int(self.post_timeout_s * 1e9)
        wall_deadline = time.monotonic() + self.post_wall_timeout_s
        with self._changed:
            while not ready():
                now = self._now_ns()
                # A clock that went back (a reset) ends the wait as a passed deadline would.
                if now >= deadline_ns or now < arrival_ns or time.monotonic() >= wall_deadline:
                    return
                self._changed.wait(_WAIT_POLL_S)


def main(args=None) -> None:
    """Run the critic node until shutdown (multi-threaded: check_step waits for fresh frames)."""
    spin_node(CriticNode, "critic", args, multithreaded=True)


if __name__ == "__main__":
    main()

