"""Fuzz a running stack: malformed messages on every input topic, bad service and action requests.

Runs the tabletop stack (config/stacks/sim_tabletop.yaml) in lockstep in this process
(`modular_robot.harness.lockstep.LockstepStack`) and, while the sim steps:

1. publishes `--messages` malformed messages on every topic a node of the stack subscribes to,
   except the hardware topics: NaN/inf, huge and empty values, mismatched lengths, unknown joints,
   wrong image encodings and sizes, bogus TF edges (re-parented robot frames, loops, non-unit
   rotations, future stamps), stamps from the future, garbage JSON. Each message is a recorded live
   message (or a valid one built here) with some fields spoilt, by type-aware and generic mutations;
   `emergency_stop` only ever gets `false` (true would stop the robot, which is not malformed);
2. sends `--requests` bad requests to each service (query_objects, check_step) and action
   (execute_skill, execute_task): garbage and huge texts, megabyte and 100k-deep JSON arguments;
3. measures the emergency stop: a motion through the shield, `emergency_stop` true during it, sim
   time until every arm joint of `joint_states` moves slower than 0.01 rad/s; release, repeat;
4. publishes `--messages` malformed commands straight on the hardware topics the simulated driver
   reads (arm_controller/joint_trajectory, gripper_controller/commands).

Counted throughout:

- node crashes: exceptions raised out of a node's callback (subscription, timer, service, guard
  condition, action goal or cancel), which end a node's process. Every callback of the stack's nodes
  is wrapped to record the exception with the node, the input and the traceback, then swallow it so
  the fuzzing goes on: `node_crashes` counts the nodes that would have died, `unhandled_exceptions`
  every exception raised out of any callback or thread (action execute callbacks included, which
  rclpy turns into an aborted goal and a printed traceback);
- unsafe commands forwarded: every message on the hardware topics during steps 1-3 is checked
  here, independently of the shield, against config/safety/panda_tabletop.yaml: known joints, equal
  lengths, finite values, increasing times, positions within limits, declared speeds and each
  segment's mean speed and mean acceleration (lower bounds of their peaks) within limits (1%
  slack), a gripper opening within its range.

Usage:
    .venv/bin/python benchmarks/fuzz_eval.py [--messages 10000] [--requests 200] [--quick] [--seed 0]

The table comes first, then the crashes found (node, input, traceback), then as the last line:
    {"messages": n, "node_crashes": c, "unhandled_exceptions": e, "unsafe_forwarded": u,
     "estop_ms_sim_p95": t}
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import math
import random
import resource
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from report import Report, print_report, stdout_for_results

ROOT = Path(__file__).resolve().parent.parent
STACK_FILE = ROOT / "config/stacks/sim_tabletop.yaml"
SCENARIO_FILE = ROOT / "sim/scenarios/spine_tabletop.yaml"
LIMITS_FILE = ROOT / "config/safety/panda_tabletop.yaml"
HARDWARE_TOPICS = ("arm_controller/joint_trajectory", "gripper_controller/commands", "cmd_vel")
# Topics no fuzzer should touch: time itself, and the graph's bookkeeping.
SKIPPED_TOPICS = ("/clock", "/parameter_events", "/rosout")
QUICK_MESSAGES = 300
QUICK_REQUESTS = 20
ESTOP_ROUNDS = 5
ESTOP_ROUNDS_QUICK = 3
STOPPED_RAD_S = 0.01
# Messages published between two sim steps: at most a subscriber queue's depth (10), so that a burst
# is delivered rather than dropped.
BATCH = 8
# Tries per message that must reach a topic's subscribers, for mutations the serialisation refuses.
MAX_TRIES_PER_MESSAGE = 3
SPEED_SLACK = 1.01
# Longest sim time a batch of commands on safe/ topics waits for the shield's answers.
SHIELD_WAIT_S = 1.0
EXCERPT_CHARS = 300

_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 3.0e38, -3.0e38, 0.0, -1.0, 1e-300, 1e6)
_INTS = (0, 1, -1, 2**7 - 1, 2**8 - 1, 2**15 - 1, 2**16 - 1, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1)
_FRAMES = ("", "/", "map", "world", "odom", "base_link", "panda_link0", "panda_link3", "panda_link8", "panda_hand",
           "panda_grasptarget", "camera_link", "camera_color_optical_frame", "fuzz_frame")
_ENCODINGS = ("mono8", "mono16", "16UC1", "32FC1", "32SC1", "rgb8", "bgr8", "rgba8", "bgra8", "yuv422", "", "8UC3")
_JSON = ("", "{}", "[]", "[1]", "null", "5", '"x"', "{", '{"skills": 5}', '[{"name": 5}]', '{"object": null}',
         '{"object": "red_cube_1", "relation": "in", "target": "tray_1"}', '{"x": NaN}', '{"x": 1e999}')
_WORDS = ("pick", "place", "place_at", "say", "search", "navigate_to", "move_arm_home", "open_gripper", "pre", "post",
          "red_cube_1", "tray_1", "stop", "pick up the red cube and put it on the moon", "\x00", "é" * 10, "%s%n{}")


def _huge_text(rng: random.Random) -> str:
    return rng.choice(("x" * 1_000_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000))


@dataclass
class Crash:
    """One exception raised out of a callback or a thread."""

    node: str
    entity: str
    error: str
    where: str
    input_excerpt: str
    traceback: str
    fatal: bool


@dataclass
class CrashMonitor:
    """Wraps every callback of the stack's nodes and records what they raise instead of dying."""

    crashes: list[Crash] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, node: str, entity: str, args: tuple, error: BaseException, fatal: bool) -> None:
        excerpt = repr(args[0])[:EXCERPT_CHARS] if args else ""
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})" if frames else "?"
        crash = Crash(node, entity, f"{type(error).__name__}: {str(error)[:EXCERPT_CHARS]}", where, excerpt,
                      "".join(traceback.format_exception(error))[-4000:], fatal)
        with self.lock:
            self.crashes.append(crash)

    def wrap(self, node_name: str, entity: str, callback: Callable, fatal: bool = True,
             on_error: Callable[[tuple], object] = lambda args: None) -> Callable:
        """Return `callback` recording and swallowing what it raises; `on_error(args)` is returned instead."""
        if inspect.iscoroutinefunction(callback):
            @functools.wraps(callback)
            async def guarded_async(*args, **kwargs):
                try:
                    return await callback(*args, **kwargs)
                except Exception as error:  # noqa: BLE001 - what the fuzzer is counting
                    self.record(node_name, entity, args, error, fatal)
                    return on_error(args)
            return guarded_async

        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - what the fuzzer is counting
                self.record(node_name, entity, args, error, fatal)
                return on_error(args)
        return guarded

    def watch(self, node) -> None:
        """Wrap the callbacks of every subscription, timer, service, guard condition and action server."""
        name = node.get_name()
        for sub in node.subscriptions:
            sub.callback = self.wrap(name, f"topic {sub.topic_name}", sub.callback)
        for timer in node.timers:
            if timer.callback is not None:
                timer.callback = self.wrap(name, "timer", timer.callback)
        for service in node.services:
            service.callback = self.wrap(name, f"service {service.srv_name}", service.callback,
                                         on_error=lambda args: args[1])
        for guard in node.guards:
            if guard.callback is not None:
                guard.callback = self.wrap(name, "guard condition", guard.callback)
        for waitable in node.waitables:
            action = getattr(waitable, "_action_name", None)
            if action is None or not hasattr(waitable, "_execute_callback"):
                continue
            result_type = waitable._action_type.Result
            waitable._execute_callback = self.wrap(name, f"action {action} (execute)", waitable._execute_callback,
                                                   fatal=False, on_error=lambda args: result_type())
            for attribute in ("_goal_callback", "_cancel_callback", "_handle_accepted_callback"):
                if getattr(waitable, attribute, None) is not None:
                    setattr(waitable, attribute, self.wrap(name, f"action {action} ({attribute[1:]})",
                                                           getattr(waitable, attribute)))

    def on_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        """Record an exception that ended a thread (threading.excepthook)."""
        if args.exc_value is not None:
            self.record(getattr(args.thread, "name", "thread"), "thread", (), args.exc_value, fatal=True)


class Mutator:
    """Spoils messages: type-aware mutations of known message types, generic ones of any field."""

    def __init__(self, rng: random.Random, sim_time_ns: Callable[[], int], arm_joints: tuple[str, ...]) -> None:
        self.rng = rng
        self.sim_time_ns = sim_time_ns
        self.arm_joints = arm_joints

    def spoil(self, template):
        """Return a copy of `template` with one or more fields made malformed."""
        msg = copy.deepcopy(template)
        special = getattr(self, f"_spoil_{type(msg).__name__}", None)
        if special is not None and self.rng.random() < 0.6:
            special(msg)
        else:
            for _ in range(self.rng.randint(1, 3)):
                self._spoil_any_field(msg)
        self._maybe_spoil_stamp(msg)
        if type(msg).__name__ == "Bool":
            # emergency_stop: true is a valid stop, not a malformed message, and would freeze the robot.
            msg.data = False
        return msg

    # --- generic ------------------------------------------------------------------------------------

    def _leaves(self, msg) -> list[tuple[object, str, str]]:
        leaves = []
        for name, type_name in msg.get_fields_and_field_types().items():
            value = getattr(msg, name)
            if hasattr(value, "get_fields_and_field_types"):
                leaves += self._leaves(value)
                continue
            leaves.append((msg, name, type_name))
            if type_name.startswith("sequence<") and "/" in type_name and len(value):
                leaves += self._leaves(self.rng.choice(list(value)))
        return leaves

    def _spoil_any_field(self, msg) -> None:
        leaves = self._leaves(msg)
        if not leaves:
            return
        owner, name, type_name = self.rng.choice(leaves)
        try:
            setattr(owner, name, self._value(type_name, getattr(owner, name)))
        except (AssertionError, TypeError, ValueError, OverflowError):
            pass  # rclpy refused a value out of the field's range: the message stays as it was

    def _value(self, type_name: str, current):
        rng = self.rng
        if not (type_name.startswith("sequence<") or type_name.endswith("]")):
            return self._scalar(type_name)
        items = list(current)
        if type_name.startswith("sequence<"):
            inner = type_name[len("sequence<"):-1].split(",")[0]
        else:
            inner = type_name.split("[")[0]
        if type_name.endswith("]") and not type_name.endswith("[]"):
            # A fixed-size array (CameraInfo.k): same length, some elements spoilt.
            return [self._scalar(inner) if rng.random() < 0.5 else item for item in items]
        message_items = "/" in inner
        choice = rng.randrange(6)
        if choice == 0:
            return []
        if choice == 1:
            return items[:rng.randrange(len(items) + 1)]
        if choice == 2:
            return items + items[:1] * rng.randint(1, 3)
        if choice == 3 and not message_items:
            return [self._scalar(inner) for _ in items] or [self._scalar(inner)]
        if choice == 4 and not message_items and rng.random() < 0.05:
            # Long, not huge: 100,000 copies of a megabyte text would be a 100 GB message.
            return [self._scalar(inner, huge=False)] * 100_000
        return items * 2

    def _scalar(self, type_name: str, huge: bool = True):
        rng = self.rng
        if type_name in ("float", "double", "float32", "float64"):
            return rng.choice(_FLOATS)
        if type_name == "boolean":
            return rng.random() < 0.5
        if type_name.startswith("string") or type_name.startswith("wstring"):
            if huge and rng.random() < 0.01:
                return _huge_text(rng)
            return rng.choice(_FRAMES + _ENCODINGS + _JSON + _WORDS + self.arm_joints + ("unknown_joint",))
        if type_name in ("octet", "byte", "uint8", "char"):
            return rng.choice((0, 1, 255)) if type_name != "char" else rng.choice((0, 127))
        return rng.choice(_INTS)

    def _maybe_spoil_stamp(self, msg) -> None:
        header = getattr(msg, "header", None)
        if header is None or self.rng.random() > 0.2:
            return
        choice = self.rng.randrange(3)
        if choice == 0:
            header.stamp.sec = 2**31 - 1
        elif choice == 1:
            header.stamp.sec = int(self.sim_time_ns() // 10**9) + 1000
        else:
            header.stamp.sec, header.stamp.nanosec = 0, 0

    # --- by type --------------------------------------------------------------------------------------

    def _spoil_Image(self, msg) -> None:
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            msg.encoding = rng.choice(_ENCODINGS)
        elif choice == 1:
            msg.width, msg.height = rng.choice(((0, 0), (msg.width + 1, msg.height), (1, 1), (msg.width, 0)))
        elif choice == 2:
            msg.step = rng.choice((0, 1, msg.step - 1, msg.step * 2, 2**32 - 1))
        elif choice == 3:
            msg.data = bytes(msg.data[: rng.randrange(len(msg.data) + 1)])
        elif choice == 4:
            msg.header.frame_id = rng.choice(_FRAMES)
        else:
            msg.is_bigendian = 1 - msg.is_bigendian

    def _spoil_CameraInfo(self, msg) -> None:
        rng = self.rng
        choice = rng.randrange(4)
        if choice == 0:
            k = list(msg.k)
            k[rng.choice((0, 2, 4, 5, 8))] = rng.choice(_FLOATS)
            msg.k = k
        elif choice == 1:
            msg.width, msg.height = rng.choice(((0, 0), (msg.width * 2, msg.height), (2**32 - 1, 2**32 - 1)))
        elif choice == 2:
            msg.binning_x = rng.choice((2, 2**32 - 1))
        else:
            msg.header.frame_id = rng.choice(_FRAMES)

    def _spoil_TFMessage(self, msg) -> None:
        from geometry_msgs.msg import TransformStamped

        rng = self.rng
        edge = TransformStamped()
        edge.header.frame_id, edge.child_frame_id = rng.choice(_FRAMES), rng.choice(_FRAMES)
        stamp_ns = self.sim_time_ns()
        edge.header.stamp.sec, edge.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        edge.transform.rotation.w = 1.0
        choice = rng.randrange(4)
        if choice == 0:
            edge.transform.rotation.w = rng.choice((0.0, 0.5, 2.0, math.nan, math.inf))
        elif choice == 1:
            edge.transform.translation.x = rng.choice(_FLOATS)
        elif choice == 2:
            edge.header.stamp.sec = rng.choice((2**31 - 1, int(stamp_ns // 10**9) + 100))
        edges = [edge] * rng.choice((1, 1, 1, 100))
        msg.transforms = (list(msg.transforms) + edges) if rng.random() < 0.5 else edges

    def _spoil_JointState(self, msg) -> None:
        rng = self.rng
        names = list(msg.name) or list(self.arm_joints)
        choice = rng.randrange(5)
        if choice == 0:
            msg.name = names + ["unknown_joint"]
        elif choice == 1:
            msg.position = list(msg.position)[:-1]
        elif choice == 2:
            msg.position = [rng.choice(_FLOATS) for _ in names]
        elif choice == 3:
            msg.velocity = [rng.choice(_FLOATS) for _ in range(rng.randrange(len(names) + 2))]
        else:
            msg.name = names[:1] * len(names)

    def _spoil_JointTrajectory(self, msg) -> None:
        rng = self.rng
        points = list(msg.points)
        choice = rng.randrange(7)
        if choice == 0 and points:
            point = rng.choice(points)
            positions = list(point.positions)
            if positions:
                positions[rng.randrange(len(positions))] = rng.choice((math.nan, math.inf, 10.0, -10.0, 3.0))
                point.positions = positions
        elif choice == 1 and points and rng.random() < 0.5:
            # A huge time on the last point, without velocities (so no segment overshoots): the whole
            # motion stretches over years, which a checker sampling it at a fixed rate must bound.
            for point in points:
                point.velocities = []
            points[-1].time_from_start.sec = 2**31 - 1
        elif choice == 1 and points:
            rng.choice(points).time_from_start.sec = rng.choice((0, 2**31 - 1, -1))
        elif choice == 2 and points:
            rng.choice(points).velocities = [rng.choice((math.nan, 100.0, -100.0))] * len(msg.joint_names)
        elif choice == 3:
            msg.joint_names = list(msg.joint_names) + ["unknown_joint"]
        elif choice == 4:
            msg.joint_names = list(msg.joint_names)[:-1]
        elif choice == 5:
            msg.points = points[::-1] if len(points) > 1 else []
        else:
            msg.points = points * rng.choice((2, 50))

    def _spoil_Float64MultiArray(self, msg) -> None:
        msg.data = self.rng.choice(([], [math.nan], [math.inf], [-1.0], [1.0], [0.04, 0.04], [1e308], [0.5]))

    def _spoil_String(self, msg) -> None:
        rng = self.rng
        msg.data = _huge_text(rng) if rng.random() < 0.02 else rng.choice(_JSON + _WORDS + _FRAMES)


def _check_trajectory(msg, limits) -> str | None:
    """Return why a JointTrajectory on the hardware topic breaks the arm limits, or None."""
    arm = limits.arm
    index = {name: i for i, name in enumerate(arm.joint_names)}
    names = list(msg.joint_names)
    unknown = [n for n in names if n not in index]
    if unknown or len(set(names)) != len(names):
        return f"unknown or repeated joints {names}"
    order = [index[n] for n in names]
    lower, upper, vmax, amax = arm.lower[order], arm.upper[order], arm.velocity[order], arm.acceleration[order]
    previous = None
    for k, point in enumerate(msg.points):
        t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
        q = np.array(point.positions, dtype=float)
        if q.shape != (len(names),) or not np.isfinite(q).all():
            return f"point {k}: positions {list(point.positions)}"
        if ((q < lower - 1e-6) | (q > upper + 1e-6)).any():
            return f"point {k}: positions {q.round(4).tolist()} outside limits"
        v = None
        if len(point.velocities):
            v = np.array(point.velocities, dtype=float)
            if v.shape != q.shape or not np.isfinite(v).all() or (np.abs(v) > vmax * SPEED_SLACK).any():
                return f"point {k}: velocities {v.round(4).tolist()} beyond {vmax.tolist()}"
        if previous is not None:
            t0, q0, v0 = previous
            if not t > t0:
                return f"point {k}: time {t} not after {t0}"
            # Mean speed and mean acceleration over a segment are lower bounds of their peaks.
            speed = np.abs(q - q0) / (t - t0)
            if (speed > vmax * SPEED_SLACK).any():
                return f"segment {k - 1}->{k}: mean speeds {speed.round(4).tolist()} beyond {vmax.tolist()}"
            if v is not None and v0 is not None:
                accel = np.abs(v - v0) / (t - t0)
                if (accel > amax * SPEED_SLACK).any():
                    return f"segment {k - 1}->{k}: mean accelerations {accel.round(4).tolist()} beyond {amax.tolist()}"
        previous = (t, q, v)
    return None


class HardwareMonitor:
    """Checks every command on the hardware topics against the safety limits, independently of the shield."""

    def __init__(self, node, limits) -> None:
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from modular_robot.ros import qos

        self.limits = limits
        self.active = True
        self.checked = 0
        self.unsafe: list[str] = []
        node.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                 lambda msg: self._check("arm", _check_trajectory(msg, limits)), qos.RELIABLE)
        node.create_subscription(Float64MultiArray, "gripper_controller/commands",
                                 lambda msg: self._check("gripper", self._gripper(msg)), qos.RELIABLE)

    def _gripper(self, msg) -> str | None:
        data = list(msg.data)
        gripper = self.limits.gripper
        if len(data) != 1 or not gripper.min_opening <= data[0] <= gripper.max_opening:
            return f"opening {data[:4]} outside [{gripper.min_opening}, {gripper.max_opening}]"
        return None

    def _check(self, what: str, problem: str | None) -> None:
        if not self.active:
            return
        self.checked += 1
        if problem is not None:
            self.unsafe.append(f"{what}: {problem}")


@dataclass
class FuzzResult:
    """What a fuzz run found."""

    messages: int
    per_topic: dict[str, int]
    requests: dict[str, int]
    crashes: list[Crash]
    unsafe: list[str]
    hardware_checked: int
    shield_refusals: int
    shield_unanswered: dict[str, int]
    estop_ms: list[float]
    estop_notes: list[str]
    wall_s: float

    @property
    def crashed_nodes(self) -> Counter:
        """Exceptions that would have ended a node's process, by node."""
        return Counter(c.node for c in self.crashes if c.fatal)

    @property
    def estop_ms_p95(self) -> float | None:
        return float(np.percentile(self.estop_ms, 95)) if self.estop_ms else None

    def summary(self) -> dict:
        """The benchmark's JSON figures."""
        p95 = self.estop_ms_p95
        return {"messages": self.messages, "node_crashes": len(self.crashed_nodes),
                "unhandled_exceptions": len(self.crashes), "unsafe_forwarded": len(self.unsafe),
                "estop_ms_sim_p95": None if p95 is None else round(p95, 1)}


def _qos_like(subscription_qos):
    """Return a publisher profile that any subscription with this profile accepts, with room for a burst."""
    from rclpy.qos import QoSProfile

    return QoSProfile(depth=BATCH * 2, reliability=subscription_qos.reliability,
                      durability=subscription_qos.durability, history=subscription_qos.history)


def _templates(stack, topics: dict, seconds: float) -> dict:
    """Record the newest live message on each input topic while the sim runs."""
    last: dict = {}
    subscriptions = []
    for topic, (msg_type, profile) in topics.items():
        subscriptions.append(stack.client.create_subscription(
            msg_type, topic, lambda msg, topic=topic: last.__setitem__(topic, msg), profile))
    stack.advance(seconds)
    for subscription in subscriptions:
        stack.client.destroy_subscription(subscription)
    return last


def _trajectory(names, start, goal, duration_s: float):
    """Return a valid two-point JointTrajectory from `start` (at rest) to `goal` (at rest)."""
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    points = []
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        t = fraction * duration_s
        # Smoothstep: at rest at both ends, peak speed 1.5x the mean.
        s = 3 * fraction**2 - 2 * fraction**3
        ds = (6 * fraction - 6 * fraction**2) / duration_s
        point = JointTrajectoryPoint(positions=[float(a + s * (b - a)) for a, b in zip(start, goal)],
                                     velocities=[float(ds * (b - a)) for a, b in zip(start, goal)])
        point.time_from_start.sec, point.time_from_start.nanosec = int(t), int(round((t % 1) * 1e9))
        points.append(point)
    return JointTrajectory(joint_names=list(names), points=points)


def _wait_all(stack, futures: list, max_seconds: float) -> int:
    """Step until every future is done or max_seconds of sim time pass; return how many are done."""
    stack.advance_until(lambda: all(f.done() for f in futures), max_seconds)
    return sum(f.done() for f in futures)


def run(messages: int, requests: int, seed: int = 0, estop_rounds: int = ESTOP_ROUNDS,
        log: Callable[[str], None] = lambda line: None) -> FuzzResult:
    """Build the stack, fuzz it, measure the emergency stop and return what was found."""
    from rclpy.action import ActionClient
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool, String
    from trajectory_msgs.msg import JointTrajectory

    from modular_robot.core.safety_limits import load_safety_limits
    from modular_robot.core.stack import load_stack
    from modular_robot.harness.lockstep import LockstepStack
    from modular_robot.ros import qos
    from modular_robot.scenarios.scenario import load_scenario
    from modular_robot_interfaces.action import ExecuteSkill, ExecuteTask
    from modular_robot_interfaces.srv import CheckStep, QueryObjects

    started = time.monotonic()
    rng = random.Random(seed)
    limits = load_safety_limits(LIMITS_FILE)
    arm_joints = tuple(limits.arm.joint_names)
    stack_spec = load_stack(STACK_FILE, overrides={"sim": {"camera_width": 160, "camera_height": 120}})
    monitor = CrashMonitor()
    previous_hook = threading.excepthook
    threading.excepthook = monitor.on_thread_exception

    def prepare(node):
        return {"execute_skill": ActionClient(node, ExecuteSkill, "execute_skill"),
                "execute_task": ActionClient(node, ExecuteTask, "execute_task"),
                "query_objects": node.create_client(QueryObjects, "query_objects"),
                "check_step": node.create_client(CheckStep, "check_step")}

    stack = LockstepStack(load_scenario(SCENARIO_FILE), stack_spec, renderer="tiny", log=log, prepare=prepare)
    try:
        for node in stack.nodes:
            if node is not stack.client:
                monitor.watch(node)
        hardware = HardwareMonitor(stack.client, limits)
        joints: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

        def on_joint_states(msg: JointState) -> None:
            index = {name: i for i, name in enumerate(msg.name)}
            if (all(j in index for j in arm_joints) and len(msg.velocity) == len(msg.name) == len(msg.position)
                    and np.isfinite(msg.position).all() and np.isfinite(msg.velocity).all()):
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                joints["arm"] = (stamp, np.array([msg.position[index[j]] for j in arm_joints]),
                                 np.array([msg.velocity[index[j]] for j in arm_joints]))

        # Read while nothing malformed is published on joint_states: during the emergency stop rounds.
        stack.client.create_subscription(JointState, "joint_states", on_joint_states, qos.RELIABLE)
        refusals: list[str] = []
        stack.client.create_subscription(String, "safety/refusals", lambda msg: refusals.append(msg.data[:200]),
                                         qos.RELIABLE)
        estop = stack.client.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        safe_arm = stack.client.create_publisher(JointTrajectory, "safe/arm_controller/joint_trajectory", qos.RELIABLE)

        topics: dict[str, tuple[type, object]] = {}
        for node in stack.nodes:
            if node is stack.client:
                continue
            for sub in node.subscriptions:
                if sub.topic_name not in SKIPPED_TOPICS and sub.topic_name not in topics:
                    topics[sub.topic_name] = (sub.msg_type, sub.qos_profile)
        log(f"input topics: {', '.join(sorted(topics))}")
        templates = _templates(stack, topics, 1.5)
        stack.advance_until(lambda: "arm" in joints, 2.0)
        home = joints["arm"][1] if "arm" in joints else np.zeros(len(arm_joints))
        for topic, (msg_type, _) in topics.items():
            if topic in templates:
                continue
            if msg_type.__name__ == "JointTrajectory":
                templates[topic] = _trajectory(arm_joints, home, home + 0.1, 2.0)
            elif msg_type.__name__ == "Float64MultiArray":
                templates[topic] = msg_type(data=[0.04])
            else:
                templates[topic] = msg_type()
        mutator = Mutator(rng, lambda: stack.world.sim_time_ns, arm_joints)

        def step() -> None:
            try:
                stack.step()
            except Exception as error:  # noqa: BLE001 - the sim bridge's own code raised: counted
                monitor.record("sim", "step", (), error, fatal=True)

        def shield_answers() -> int:
            return len(refusals) + hardware.checked

        unanswered = Counter()

        def fuzz_topics(names: list[str]) -> dict[str, int]:
            # One topic at a time, among the live traffic of the others: what breaks is one input's
            # doing, and a node's state spoilt by one topic (joint_states) does not mask another's checks.
            sent = Counter()
            for topic in names:
                publisher = stack.client.create_publisher(topics[topic][0], topic, _qos_like(topics[topic][1]))
                shielded = topic.startswith("/safe/") and hardware.active
                # Mutations the message's own serialisation refuses are tried again: `messages` reach
                # the nodes on every topic (at most MAX_TRIES_PER_MESSAGE tries each).
                tries = 0
                while sent[topic] < messages and tries < MAX_TRIES_PER_MESSAGE * messages:
                    answered = shield_answers()
                    batch = 0
                    for _ in range(min(BATCH, messages - sent[topic])):
                        tries += 1
                        try:
                            publisher.publish(mutator.spoil(templates[topic]))
                        except Exception:  # noqa: BLE001 - rclpy's serialisation refused it
                            # A value the message's own serialisation refuses (a negative unsigned
                            # field): it cannot reach a node, so it is not counted.
                            continue
                        batch += 1
                    sent[topic] += batch
                    step()
                    if shielded:
                        # The shield answers every command, forwarded or refused: wait for the
                        # answers so that its checks run on every command instead of a full queue.
                        stack.advance_until(lambda: shield_answers() - answered >= batch, SHIELD_WAIT_S)
                        unanswered[topic] += max(0, batch - (shield_answers() - answered))
                stack.client.destroy_publisher(publisher)
                log(f"{topic}: {sent[topic]} messages, {time.monotonic() - started:.0f} s wall, "
                    f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
            return dict(sent)

        hardware_names = [t for t in topics if t.lstrip("/") in HARDWARE_TOPICS]
        log(f"fuzzing {len(topics) - len(hardware_names)} topics with {messages} messages each")
        per_topic = fuzz_topics([t for t in topics if t not in hardware_names])

        log(f"fuzzing services and actions with {requests} requests each")
        requests_sent = _fuzz_requests(stack, mutator, rng, requests)

        stack.advance(2.0)
        log(f"measuring the emergency stop, {estop_rounds} rounds")
        estop_ms, notes = _measure_estop(stack, estop, safe_arm, joints, arm_joints, limits, estop_rounds, refusals)

        hardware.active = False
        log(f"fuzzing the hardware topics {', '.join(hardware_names)}")
        per_topic.update(fuzz_topics(hardware_names))
        stack.advance(0.5)
        with monitor.lock:
            crashes = list(monitor.crashes)
        return FuzzResult(messages=sum(per_topic.values()), per_topic=per_topic, requests=requests_sent,
                          crashes=crashes, unsafe=list(hardware.unsafe), hardware_checked=hardware.checked,
                          shield_refusals=sum(r.startswith("refused ") for r in refusals),
                          shield_unanswered=dict(unanswered),
                          estop_ms=estop_ms, estop_notes=notes, wall_s=time.monotonic() - started)
    finally:
        stack.close()
        threading.excepthook = previous_hook


def _fuzz_requests(stack, mutator: Mutator, rng: random.Random, requests: int) -> dict[str, int]:
    """Send bad requests to the stack's services and goals to its actions; return how many of each."""
    from modular_robot_interfaces.action import ExecuteSkill, ExecuteTask
    from modular_robot_interfaces.srv import CheckStep, QueryObjects

    clients = stack.prepared
    for client in clients.values():
        stack.wait_server(client, wall_timeout_s=5.0)

    def text() -> str:
        return _huge_text(rng) if rng.random() < 0.1 else rng.choice(_JSON + _WORDS)

    def check_step():
        request = CheckStep.Request(phase=rng.choice(("pre", "post", "", "during", text())), skill=text(),
                                    args_json=text(), task_id=text())
        return mutator.spoil(request) if rng.random() < 0.3 else request

    def skill_goal():
        goal = ExecuteSkill.Goal(skill=rng.choice(_WORDS), args_json=text())
        return mutator.spoil(goal) if rng.random() < 0.3 else goal

    def task_goal():
        return ExecuteTask.Goal(instruction=text())

    makers = {"query_objects": lambda: QueryObjects.Request(text=text(), max_results=rng.choice((0, 1, 5, 2**32 - 1))),
              "check_step": check_step}
    sent = Counter()

    def send(call: Callable, request):
        """Return call(request), or None when rclpy cannot serialise the spoilt request (never sent)."""
        try:
            return call(request)
        except Exception:  # noqa: BLE001 - rclpy's serialisation refused it
            return None

    for name, make in makers.items():
        for start in range(0, requests, BATCH):
            futures = [send(clients[name].call_async, make()) for _ in range(min(BATCH, requests - start))]
            futures = [f for f in futures if f is not None]
            sent[name] += len(futures)
            _wait_all(stack, futures, 10.0)
    for name, make in (("execute_skill", skill_goal), ("execute_task", task_goal)):
        for _ in range(requests):
            future = send(clients[name].send_goal_async, make())
            if future is None:
                continue
            sent[name] += 1
            if not stack.wait_future(future, 5.0) or future.result() is None or not future.result().accepted:
                continue
            result = future.result().get_result_async()
            if not stack.wait_future(result, 5.0):
                cancel = future.result().cancel_goal_async()
                stack.wait_future(cancel, 2.0)
                stack.advance_until(result.done, 5.0)
    return dict(sent)


def _measure_estop(stack, estop, safe_arm, joints: dict, arm_joints, limits, rounds: int,
                   refusals: list[str]) -> tuple[list[float], list[str]]:
    """Stop a motion through the shield `rounds` times; return the sim ms until the arm is still, and notes."""
    from std_msgs.msg import Bool

    latencies, notes = [], []
    for round_index in range(rounds):
        if "arm" not in joints:
            notes.append("no joint_states from the sim")
            break
        _, start, _ = joints["arm"]
        goal = start.copy()
        # Joint 1 swings 0.6 rad, away from its nearer limit.
        joint = 0
        direction = 1.0 if start[joint] < (limits.arm.lower[joint] + limits.arm.upper[joint]) / 2 else -1.0
        goal[joint] += direction * 0.6
        safe_arm.publish(_trajectory(arm_joints, start, goal, 2.0))
        moving = stack.advance_until(lambda: np.abs(joints["arm"][2]).max() > 0.1, 1.5)
        if not moving:
            refused = refusals[-1][:EXCERPT_CHARS] if refusals else "no refusal"
            notes.append(f"round {round_index}: the arm did not move ({refused})")
            continue
        stack.advance(0.3)
        engaged_ns = stack.world.sim_time_ns
        estop.publish(Bool(data=True))
        stopped = stack.advance_until(
            lambda: joints["arm"][0] >= engaged_ns and np.abs(joints["arm"][2]).max() < STOPPED_RAD_S, 2.0)
        if stopped:
            latencies.append((joints["arm"][0] - engaged_ns) / 1e6)
        else:
            notes.append(f"round {round_index}: the arm still moved 2 s after the emergency stop")
        estop.publish(Bool(data=False))
        stack.advance(0.5)
    return latencies, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="malformed messages per input topic")
    parser.add_argument("--requests", type=int, default=200, help="bad requests per service and action")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_MESSAGES} messages per topic, {QUICK_REQUESTS} requests per service/action")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = stdout_for_results()
    messages, requests = (QUICK_MESSAGES, QUICK_REQUESTS) if args.quick else (args.messages, args.requests)
    result = run(messages, requests, args.seed, ESTOP_ROUNDS_QUICK if args.quick else ESTOP_ROUNDS,
                 log=lambda line: print(line, file=sys.stderr, flush=True))

    report = Report()
    summary = result.summary()
    report.section(f"fuzzing {len(result.per_topic)} topics ({result.wall_s:.0f} s wall)")
    for topic, count in sorted(result.per_topic.items()):
        report.add(None, count, f"messages on {topic}")
    for name, count in sorted(result.requests.items()):
        report.add(None, count, f"requests to {name}")
    report.section("findings")
    report.add("messages", summary["messages"], "messages in all")
    report.add("node_crashes", summary["node_crashes"], "nodes that crashed", target=("0", lambda v: v == 0))
    report.add("unhandled_exceptions", summary["unhandled_exceptions"], "exceptions out of callbacks",
               target=("0", lambda v: v == 0))
    report.add(None, result.hardware_checked, "hardware commands checked")
    report.add(None, result.shield_refusals, "commands the shield refused")
    for topic, count in sorted(result.shield_unanswered.items()):
        report.add(None, count, f"on {topic}, neither forwarded nor refused")
    report.add("unsafe_forwarded", summary["unsafe_forwarded"], "unsafe commands forwarded",
               target=("0", lambda v: v == 0))
    report.add("estop_ms_sim_p95", summary["estop_ms_sim_p95"], "emergency stop to still, p95", "ms sim",
               target=("<= 100", lambda v: v <= 100))
    report.notes += result.estop_notes
    report.notes += [f"unsafe: {line[:EXCERPT_CHARS]}" for line in result.unsafe[:10]]
    kinds = Counter((c.node, c.entity, c.error.split(":")[0], c.where) for c in result.crashes)
    shown = set()
    for crash in result.crashes:
        key = (crash.node, crash.entity, crash.error.split(":")[0], crash.where)
        if key in shown:
            continue
        shown.add(key)
        report.notes.append(f"{'crash' if crash.fatal else 'exception'} x{kinds[key]} in {crash.node}, {crash.entity}, "
                            f"at {crash.where}: {crash.error}\n  input: {crash.input_excerpt}\n{crash.traceback}")
    print_report(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
