"""Subscriptions that take a topic's messages only from the one node meant to publish them.

Any node can publish on any topic. Where a subscriber acts on what a message claims (the shield
refused this motion, the robot said this), a message from any other node (a test tool, a replay, a
faulty or hostile node) would make it act on a claim that nobody entitled to it made.
`TrustedSubscription` passes on only the messages whose publisher, named by the GID in the message
info, belongs to the named node in the subscribing node's own namespace as the ROS graph lists it.
Node names are not authenticated: this keeps other nodes out, not one that takes the owner's name
(that needs SROS2 access control).

A message from a publisher that the graph does not name yet is held and checked again on a
steady-clock timer for up to `core.trusted_senders.MAX_WAIT_S`, never by blocking in a callback:
the node's other callbacks (an emergency stop, joint_states) run as before, on any executor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.subscription import MessageInfo

from modular_robot.core.trusted_senders import Endpoint, Rejected, TrustedSenders
from modular_robot.ros.conversions import clip

# Period of the checks for held messages (s of steady time).
POLL_S = 0.02
# Publishers whose first rejected message is logged; past this many, rejections are logged throttled.
MAX_LOGGED = 100
_THROTTLE_S = 5.0


class TrustedSubscription:
    """A subscription whose callback gets only the messages of one node's publishers.

    Args:
        node: The subscribing node; the owner must be in its namespace.
        msg_type: Message type.
        topic: Topic name, relative to the node's namespace.
        callback: Called with each message from the owner, in the order the owner sent them.
        qos_profile: QoS of the subscription.
        owner: Name of the only node whose messages pass.
        callback_group: Group of the subscription and of the timer that checks held messages.

    Attributes:
        rejected: How many messages were not passed on.
    """

    def __init__(self, node: Node, msg_type: type, topic: str, callback: Callable[[Any], None],
                 qos_profile: QoSProfile | int, owner: str, callback_group=None) -> None:
        self._node = node
        self._topic = node.resolve_topic_name(topic)
        self._callback = callback
        self._senders = TrustedSenders(owner, node.get_namespace())
        self._lock = threading.Lock()
        self._logged: set[bytes] = set()
        self.rejected = 0
        # Steady time: held messages wait wall time for discovery, whether or not sim time runs.
        self._timer = node.create_timer(POLL_S, self._release, callback_group=callback_group,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME), autostart=False)
        node.create_subscription(msg_type, topic, self._on_message, qos_profile, callback_group=callback_group)

    @property
    def owner(self) -> str:
        """Return the fully qualified name of the node whose messages pass."""
        return self._senders.owner_node

    def _on_message(self, msg: Any, info: MessageInfo) -> None:
        with self._lock:
            refused = self._senders.admit(bytes(info["publisher_gid"]["data"]), msg, time.monotonic())
            if refused is not None:
                self._reject([refused])
        self._release()

    def _release(self) -> None:
        """Pass on the held messages whose publisher is the owner; reject the others and those waited on too long."""
        with self._lock:
            if self._senders.unnamed():
                self._senders.learn(self._graph())
            passed, rejected = self._senders.release(time.monotonic())
            if not self._senders.held:
                self._timer.cancel()
            elif self._timer.is_canceled():
                self._timer.reset()
            # Under the lock: two threads of a reentrant group must not pass one publisher's messages out of order.
            for msg in passed:
                self._callback(msg)
            self._reject(rejected)

    def _graph(self) -> list[Endpoint]:
        """Return the topic's publishers as the graph lists them now."""
        return [Endpoint(bytes(e.endpoint_gid), e.node_name, e.node_namespace)
                for e in self._node.get_publishers_info_by_topic(self._topic)]

    def _reject(self, rejected: list[Rejected]) -> None:
        """Count rejected messages; log the first of each publisher; lock held."""
        for message in rejected:
            self.rejected += 1
            line = (f"ignoring a message on {self._topic} from {clip(message.sender)}: only {self.owner} may "
                    f"publish there ({self.rejected} ignored so far)")
            if message.gid in self._logged:
                continue
            if len(self._logged) < MAX_LOGGED:
                self._logged.add(message.gid)
                self._node.get_logger().warning(line)
            else:
                self._node.get_logger().warning(line, throttle_duration_sec=_THROTTLE_S)
