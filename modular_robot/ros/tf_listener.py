"""Feed /tf and /tf_static into a TfTree: the rclpy side of the TF buffer.

The PyPI ROS wheels have no tf2_ros, so this replaces ``tf2_ros.Buffer`` plus
``tf2_ros.TransformListener`` for our nodes. ``tf2_msgs`` is imported only when a listener is built
without an explicit message type, so importing this module never needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import TransformStamped
from rclpy.callback_groups import CallbackGroup
from rclpy.clock import ClockChange, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time

from modular_robot.core.tf_tree import TfTree
from modular_robot.core.transforms import Transform
from modular_robot.ros import qos
from modular_robot.ros.conversions import clip, stamp_to_ns, transform_stamped_to_edge

# A dynamic transform stamped further than this ahead of the node's clock is refused by default.
MAX_FUTURE_STAMP_S = 1.0


def _default_tf_message_type() -> type:
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as error:
        raise ImportError(
            "tf2_msgs is not importable: build interfaces/compat/tf2_msgs (make setup) and source "
            "install/, or pass msg_type to TfListener"
        ) from error
    return TFMessage


class TfListener:
    """Subscribe to TF topics and answer transform lookups from the received data.

    Topic names are relative, so a node in namespace ``/robot1`` listens on ``/robot1/tf`` (as
    navigation2 remaps ``/tf`` for namespaced robots); pass absolute names to share the global
    ones. Callbacks and lookups may run on different executor threads: every access to the tree
    goes through one lock. When ROS time jumps backwards (a simulator reset) or switches source,
    dynamic transforms are cleared, as tf2_ros does, because their newer-stamped history would make
    all new data look stale; static transforms are kept, since they are not published again.

    Args:
        node: Node that owns the subscriptions and whose clock is watched for jumps.
        tree: Tree to fill; a new ``TfTree()`` when None. Access it through this listener while
            the node spins.
        topic: Topic of dynamic transforms.
        static_topic: Topic of static transforms (transient-local, so late joiners get them).
        msg_type: Message type with a ``transforms`` list of TransformStamped; defaults to
            ``tf2_msgs.msg.TFMessage``.
        callback_group: Callback group of both subscriptions, e.g. to spin them on their own.
        max_future_s: Dynamic transforms stamped more than this ahead of the node's clock are
            refused: kept, one would answer lookups at times that have not come and set the
            edge's newest stamp far ahead.

    Raises:
        ImportError: if ``msg_type`` is None and tf2_msgs is not importable.
    """

    def __init__(
        self,
        node: Node,
        tree: TfTree | None = None,
        topic: str = "tf",
        static_topic: str = "tf_static",
        msg_type: type | None = None,
        callback_group: CallbackGroup | None = None,
        max_future_s: float = MAX_FUTURE_STAMP_S,
    ) -> None:
        self._node = node
        self._max_future_ns = int(max_future_s * 1e9)
        self._rejected = 0
        self._tree = tree if tree is not None else TfTree()
        self._lock = threading.Lock()
        # Notified whenever transforms are stored, for `wait_for_transform`.
        self._arrived = threading.Condition(self._lock)
        message_type = msg_type if msg_type is not None else _default_tf_message_type()
        self._subscription = node.create_subscription(
            message_type, topic, self._on_tf, qos.TF, callback_group=callback_group
        )
        self._static_subscription = node.create_subscription(
            message_type, static_topic, self._on_tf_static, qos.TF_STATIC_LISTENER,
            callback_group=callback_group,
        )
        self._jump_handle = node.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1)),
            post_callback=self._on_time_jump,
        )

    @property
    def rejected(self) -> int:
        """How many transforms were refused so far (malformed, from the future, or breaking the tree)."""
        return self._rejected

    @property
    def tree(self) -> TfTree:
        """The tree this listener fills; not thread-safe on its own."""
        return self._tree

    def add_transforms(self, transforms: Iterable[TransformStamped], static: bool) -> int:
        """Insert TransformStamped messages into the tree, as the subscriptions do.

        Refused at the door, each with a logged reason, like tf2 does, so that one bad publisher
        cannot stall the rest of a message or poison the tree: empty or equal frame names, non-unit
        or non-finite rotations, non-finite translations, dynamic transforms stamped before zero or
        more than ``max_future_s`` ahead of the node's clock (not checked while the clock reads
        zero: sim time before the first /clock), loops, and changes of a frame's parent that
        ``TfTree`` refuses (a static frame's, a live dynamic frame's).

        Returns:
            How many transforms were stored (stale and refused ones are not).
        """
        edges = []
        rejected = []
        now_ns = self._node.get_clock().now().nanoseconds
        for msg in transforms:
            try:
                edge = transform_stamped_to_edge(msg)
            except ValueError as error:
                rejected.append((msg.header.frame_id, msg.child_frame_id, error))
                continue
            stamp_ns = edge[2]
            if not static and (stamp_ns < 0 or (now_ns and stamp_ns > now_ns + self._max_future_ns)):
                rejected.append((msg.header.frame_id, msg.child_frame_id,
                                 f"stamp {stamp_ns / 1e9:.3f} s is not before the clock's {now_ns / 1e9:.3f} s "
                                 f"+ {self._max_future_ns / 1e9:g} s"))
                continue
            edges.append(edge)
        stored = 0
        with self._lock:
            for parent, child, stamp_ns, transform in edges:
                try:
                    stored += self._tree.set_transform(parent, child, stamp_ns, transform, static)
                except ValueError as error:
                    rejected.append((parent, child, error))
            if stored:
                self._arrived.notify_all()
            self._rejected += len(rejected)
        # Throttled because a faulty publisher repeats the same bad transform at its full rate.
        for parent, child, error in rejected:
            self._node.get_logger().warning(
                f"ignoring transform {clip(parent)!r} -> {clip(child)!r}: {clip(error)}", throttle_duration_sec=5.0
            )
        return stored

    def lookup(
        self, target_frame: str, source_frame: str, time: Time | TimeMsg | int | None = None
    ) -> Transform:
        """Return the transform mapping points in ``source_frame`` into ``target_frame``.

        Args:
            target_frame: Frame the result maps into.
            source_frame: Frame the result maps from.
            time: rclpy Time, builtin_interfaces/Time or integer nanoseconds. None or zero means
                the latest common time, as ``rclpy.time.Time()`` does for tf2_ros.

        Raises:
            modular_robot.core.tf_tree.TfError: (a LookupError) when the lookup cannot be
                answered; see ``TfTree.lookup``.
        """
        stamp_ns = _to_ns(time)
        with self._lock:
            return self._tree.lookup(target_frame, source_frame, stamp_ns or None)

    def can_transform(
        self, target_frame: str, source_frame: str, time: Time | TimeMsg | int | None = None
    ) -> bool:
        """Return whether ``lookup`` with the same arguments would succeed."""
        stamp_ns = _to_ns(time)
        with self._lock:
            return self._tree.can_transform(target_frame, source_frame, stamp_ns or None)

    def wait_for_transform(
        self, target_frame: str, source_frame: str, time: Time | TimeMsg | int | None = None,
        timeout_s: float = 0.0,
    ) -> bool:
        """Wait up to ``timeout_s`` (wall time) until ``lookup`` with the same arguments can succeed.

        A camera frame and the transforms at its stamp come on different topics, in no fixed
        order: a consumer that looks up the frame's pose on arrival waits here instead of dropping
        it. The listener's subscriptions must be able to run meanwhile: give it its own callback
        group and spin the node on a multithreaded executor.

        Returns:
            Whether the lookup can now be answered.
        """
        stamp_ns = _to_ns(time) or None
        with self._arrived:
            return self._arrived.wait_for(
                lambda: self._tree.can_transform(target_frame, source_frame, stamp_ns), timeout=timeout_s
            )

    def destroy(self) -> None:
        """Remove the subscriptions and the clock jump callback from the node."""
        self._jump_handle.unregister()
        self._node.destroy_subscription(self._subscription)
        self._node.destroy_subscription(self._static_subscription)

    def _on_tf(self, msg: Any) -> None:
        self.add_transforms(msg.transforms, static=False)

    def _on_tf_static(self, msg: Any) -> None:
        self.add_transforms(msg.transforms, static=True)

    def _on_time_jump(self, jump: TimeJump) -> None:
        with self._lock:
            self._tree.clear(keep_static=True)
        if jump.clock_change in (ClockChange.ROS_TIME_ACTIVATED, ClockChange.ROS_TIME_DEACTIVATED):
            cause = f"time source changed ({jump.clock_change.name})"
        else:
            cause = f"time jumped back by {-jump.delta.nanoseconds / 1e9:.3f} s"
        self._node.get_logger().info(f"{cause}; cleared dynamic transforms")


def _to_ns(time: Time | TimeMsg | int | None) -> int | None:
    if time is None:
        return None
    if isinstance(time, Time):
        return time.nanoseconds
    if isinstance(time, TimeMsg):
        return stamp_to_ns(time)
    return int(time)
