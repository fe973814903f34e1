"""A simulated stack in lockstep in this process: the evaluator steps the sim, the nodes spin beside it.

The simulator and its ground truth stay with the evaluator (`modular-robot run`, benchmarks,
tests); every other node of the stack runs on a multi-threaded executor in a background thread,
configured exactly as its process would be. Stepping waits for perception to finish each new
camera frame, so lockstep means every frame is seen, however fast the simulator runs. It also waits
until the executor has delivered /clock to within `MAX_LAG_S` of the sim: otherwise the sim runs a
camera period ahead of the nodes between frames, their subscriber queues overflow, and what a node
times by message stamps (a skill's pause, a controller's settle) drifts by that much.

Nothing outside the process inspects a lockstep stack, so its nodes are built without parameter
services and default QoS-event handlers (`StackNode` with introspection off): on one shared
executor those entities were most of what every wake-up walked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock as ClockMsg

from modular_robot.core.stack import Stack
from modular_robot.harness.stack_runner import create_nodes
from modular_robot.ros import qos
from modular_robot.ros.conversions import stamp_to_ns
from modular_robot.ros.spin import destroy_node
from modular_robot.ros.stack_node import StackNode
from modular_robot.scenarios.scenario import Scenario
from modular_robot.sim.bridge_node import SimBridgeNode
from modular_robot.sim.world import SimWorld
from modular_robot_interfaces.msg import ObjectObservationArray

CHUNK_S = 0.01
# Longest wall time stepping waits for perception to finish a camera frame.
PERCEPTION_WAIT_S = 0.5
# How far sim time may run ahead of what the executor has delivered (its /clock), and the longest wall
# time a step waits for it to catch up.
MAX_LAG_S = 0.02
DELIVERY_WAIT_S = 0.5
# Waits of one kind that time out this many times in a row: stepping stops making them.
MISSED_WAITS_LIMIT = 3
# Executor threads: nodes whose callbacks block (action servers, the critic's service) each hold one
# while they wait for messages that other threads must deliver.
EXECUTOR_THREADS = 8
# Sim parameters that the evaluator sets itself, whatever the stack file says.
_EVALUATOR_SIM_PARAMETERS = {"scenario", "mode", "autostart", "renderer"}


class StampGate:
    """Where stepping waits until the nodes have seen a stamp (a perceived frame, a delivered /clock).

    Args:
        timeout_s: Longest wall time one wait takes.
        enabled: Whether stepping waits here; a gate whose waits time out `MISSED_WAITS_LIMIT` times
            in a row turns itself off, so a node that has died slows stepping only so much.
    """

    def __init__(self, timeout_s: float, enabled: bool = True) -> None:
        self.timeout_s = timeout_s
        self.enabled = enabled
        self._seen = threading.Condition()
        self._seen_ns = -1
        self._missed = 0

    def saw(self, stamp_ns: int) -> None:
        """Record a stamp the nodes have seen (called from a subscription)."""
        with self._seen:
            self._seen_ns = max(self._seen_ns, stamp_ns)
            self._seen.notify_all()

    def wait(self, stamp_ns: int) -> bool:
        """Wait until a stamp at or after `stamp_ns` was seen; return False when this wait turned the gate off."""
        with self._seen:
            seen = self._seen.wait_for(lambda: self._seen_ns >= stamp_ns, timeout=self.timeout_s)
        self._missed = 0 if seen else self._missed + 1
        if self._missed == MISSED_WAITS_LIMIT:
            self.enabled = False
        return self.enabled


class LockstepStack:
    """A SimWorld behind its bridge node, plus the stack's other nodes and a client node.

    Args:
        scenario: The world to build.
        stack: The nodes to run beside the sim; its sim node's parameters (camera rate, image size,
            ...) configure the bridge, except scenario, mode and renderer, which are the evaluator's.
        renderer: "auto", "egl" or "tiny".
        client_name: Name of the node the evaluator talks through (`self.client`).
        log: Called with one line when stepping stops waiting for perception (the `log` attribute;
            replaceable).
        prepare: Called with the client node before the executor starts spinning, to build what
            must not be built on a spinning node (an action client); its result is `self.prepared`.
    """

    def __init__(self, scenario: Scenario, stack: Stack | None = None, renderer: str = "auto",
                 client_name: str = "evaluator", log: Callable[[str], None] = print,
                 prepare: Callable[[Node], Any] | None = None) -> None:
        sim_parameters = {}
        others = ()
        if stack is not None:
            sim_specs = [n for n in stack.nodes if n.executable == "sim_bridge"]
            if sim_specs:
                sim_parameters = {k: v for k, v in sim_specs[0].parameters.items()
                                  if k not in _EVALUATOR_SIM_PARAMETERS}
            others = tuple(n for n in stack.nodes if n.executable != "sim_bridge")
        self.log = log
        self.world = SimWorld(scenario, renderer=renderer, width=int(sim_parameters.get("camera_width", 640)),
                              height=int(sim_parameters.get("camera_height", 480)))
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS, context=self.context)
        self.nodes = []
        try:
            overrides = [Parameter(k, value=v) for k, v in sim_parameters.items()]
            overrides += [Parameter("mode", value="lockstep"), Parameter("autostart", value=False)]
            self.sim = SimBridgeNode(self.world, context=self.context, parameter_overrides=overrides,
                                     introspection=False)
            self.nodes.append(self.sim)
            if others:
                self.nodes += create_nodes(Stack(stack.name, others, stack.source), context=self.context,
                                           introspection=False)
            self.client = StackNode(client_name, context=self.context, introspection=False,
                                    parameter_overrides=[Parameter("use_sim_time", value=True)])
            self.nodes.append(self.client)
        except Exception:
            self.close()
            raise
        self.perceived = StampGate(PERCEPTION_WAIT_S, enabled=any(n.executable == "perception" for n in others))
        self._waited_ns = -1
        self.client.create_subscription(ObjectObservationArray, "objects/observations",
                                        lambda msg: self.perceived.saw(stamp_to_ns(msg.header.stamp)), qos.RELIABLE)
        self.delivered = StampGate(DELIVERY_WAIT_S)
        self.client.create_subscription(ClockMsg, "/clock", lambda msg: self.delivered.saw(stamp_to_ns(msg.clock)),
                                        qos.CLOCK, callback_group=ReentrantCallbackGroup())
        # rclpy's ActionClient joins its node's waitables before it has its lock: built while the
        # executor spins, it can crash the spin thread (seen once in a full suite run).
        self.prepared = prepare(self.client) if prepare is not None else None
        for node in self.nodes:
            self.executor.add_node(node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    @property
    def sim_time(self) -> float:
        return self.world.sim_time

    def step(self) -> None:
        """Advance the sim one chunk; wait for perception to see a new frame and for /clock to catch up."""
        self.sim.advance(CHUNK_S)
        frame_ns = self.sim.last_camera_stamp_ns
        if self.perceived.enabled and frame_ns > self._waited_ns:
            self._waited_ns = frame_ns
            if not self.perceived.wait(frame_ns):
                self.log(f"perception answered none of {MISSED_WAITS_LIMIT} frames in {PERCEPTION_WAIT_S} s "
                         f"each; stepping on without waiting for it")
        if not self.delivered.enabled:
            return
        # A /clock slower than MAX_LAG_S bounds the lag by its own period instead.
        behind_ns = min(self.world.sim_time_ns - int(MAX_LAG_S * 1e9), self.sim.last_clock_stamp_ns)
        if not self.delivered.wait(behind_ns):
            self.log(f"the executor delivered no /clock within {MAX_LAG_S} s of sim time in {DELIVERY_WAIT_S} s, "
                     f"{MISSED_WAITS_LIMIT} times in a row; stepping on without waiting for it")

    def advance(self, seconds: float) -> None:
        """Step for `seconds` of sim time."""
        end = self.world.sim_time + seconds
        while self.world.sim_time < end - 1e-9:
            self.step()

    def advance_until(self, condition: Callable[[], bool], max_seconds: float) -> bool:
        """Step until condition() holds or max_seconds of sim time pass; return whether it held."""
        end = self.world.sim_time + max_seconds
        while not condition():
            if self.world.sim_time >= end:
                return False
            self.step()
        return True

    def wait_future(self, future, max_seconds: float) -> bool:
        """Step until an rclpy future is done or max_seconds of sim time pass; return whether it is done."""
        return self.advance_until(future.done, max_seconds)

    def wait_server(self, client, wall_timeout_s: float = 5.0) -> bool:
        """Step until an action or service client sees its server (discovery takes wall time)."""
        deadline = time.monotonic() + wall_timeout_s
        ready = client.server_is_ready if hasattr(client, "server_is_ready") else client.service_is_ready
        while not ready():
            if time.monotonic() > deadline:
                return False
            self.step()
        return True

    def close(self) -> None:
        """Stop the executor, destroy every node and shut the context down."""
        self.executor.shutdown()
        for node in self.nodes:
            destroy_node(node)
        self.nodes = []
        if self.context.ok():
            rclpy.shutdown(context=self.context)
