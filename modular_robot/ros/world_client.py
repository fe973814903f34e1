"""The skills' WorldModel and Speech over ROS: the latched semantic map, its query service, chat/robot."""

from __future__ import annotations

import threading
import time

from rclpy.node import Node
from std_msgs.msg import String

from modular_robot.core.mapping.objects import MapObject
from modular_robot.ros import qos
from modular_robot.ros.conversions import stamp_to_ns
from modular_robot.ros.object_msgs import msg_to_object
from modular_robot_interfaces.msg import ObjectObservationArray, SemanticMap
from modular_robot_interfaces.srv import QueryObjects

# The map node fuses a frame's observations when they arrive; one more fresh frame after the first
# means the first has been fused.
FRESH_FRAMES = 2
QUERY_TIMEOUT_S = 5.0
_POLL_S = 0.05


class RosWorld:
    """The semantic map as the skill server sees it.

    Args:
        node: The node that owns the subscriptions and the query client.
        cancel: Set when the running skill must stop; waits end early.
        callback_group: Group for the subscriptions and the client, so they run while a skill blocks.
    """

    def __init__(self, node: Node, cancel: threading.Event, callback_group=None) -> None:
        self._node = node
        self._cancel = cancel
        self._lock = threading.Condition()
        self._objects: dict[str, MapObject] = {}
        self._frame_stamps: list[int] = []
        node.create_subscription(SemanticMap, "semantic_map", self._on_map, qos.LATCHED,
                                 callback_group=callback_group)
        node.create_subscription(ObjectObservationArray, "objects/observations", self._on_observations,
                                 qos.RELIABLE, callback_group=callback_group)
        self._query = node.create_client(QueryObjects, "query_objects", callback_group=callback_group)

    def _on_map(self, msg: SemanticMap) -> None:
        objects = {o.id: msg_to_object(o) for o in msg.objects}
        with self._lock:
            self._objects = objects

    def _on_observations(self, msg: ObjectObservationArray) -> None:
        with self._lock:
            self._frame_stamps = [*self._frame_stamps[-(FRESH_FRAMES - 1):], stamp_to_ns(msg.header.stamp)]
            self._lock.notify_all()

    def lookup(self, object_id: str) -> MapObject | None:
        with self._lock:
            found = self._objects.get(object_id)
        return found.copy() if found is not None else None

    def objects(self) -> list[MapObject]:
        with self._lock:
            return [o.copy() for o in self._objects.values()]

    def refresh(self, timeout_s: float) -> bool:
        since = self._node.get_clock().now().nanoseconds
        deadline = since + int(timeout_s * 1e9)
        with self._lock:
            while not self._cancel.is_set():
                if sum(stamp >= since for stamp in self._frame_stamps) >= FRESH_FRAMES:
                    return True
                if self._node.get_clock().now().nanoseconds > deadline:
                    return False
                self._lock.wait(_POLL_S)
        return False

    def find(self, text: str, max_results: int) -> list[tuple[MapObject, float]]:
        if not self._query.service_is_ready():
            return []
        done = threading.Event()
        future = self._query.call_async(QueryObjects.Request(text=text, max_results=max_results))
        future.add_done_callback(lambda _: done.set())
        wall_deadline = time.monotonic() + QUERY_TIMEOUT_S
        while not done.wait(_POLL_S):
            if self._cancel.is_set() or time.monotonic() > wall_deadline:
                future.cancel()
                return []
        response = future.result()
        return [(msg_to_object(o), float(s)) for o, s in zip(response.objects, response.scores)]


class RosSpeech:
    """Speech as text on chat/robot, where the chat node and other UIs read it."""

    def __init__(self, node: Node) -> None:
        self._pub = node.create_publisher(String, "chat/robot", qos.RELIABLE)

    def say(self, text: str) -> None:
        self._pub.publish(String(data=text))
