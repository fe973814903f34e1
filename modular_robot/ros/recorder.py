"""Record every topic of the ROS graph to one ROS 2 MCAP file, in process.

`ros2 bag record` is not on PyPI, so this node does its job for our stacks: it looks at the graph
periodically (topics that appear later are picked up), subscribes to each topic in raw mode (the
CDR bytes as the middleware delivered them: nothing is deserialised in Python), and writes them
with the `rosbags` MCAP writer, with `ros2msg` schemas from rosbags' typestore plus our own
interfaces. Camera images are kept at a reduced rate (`image_rate_hz`); everything else is kept.

Action feedback (`<action>/_action/feedback`, type `<pkg>/action/<Action>_FeedbackMessage`) is
recorded: its schema is written with the feedback part under a `msg` name
(`<pkg>/msg/<Action>_Feedback`), since rosbags writes `ros2msg` schemas of `msg` types only; the
field layout, and so the CDR bytes, are those of the action's. Not recorded: service event topics
(`*/srv/*` types) and topics whose type no typestore knows (logged once each).
"""

from __future__ import annotations

import importlib
import shutil
import struct
import tempfile
import threading
from pathlib import Path

from rclpy.clock import Clock, ClockType
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from modular_robot.ros.stack_node import StackNode

# Our interface packages, whose .msg files built the message classes the stack uses.
INTERFACES = Path(__file__).resolve().parents[2] / "interfaces"
IMAGE_TYPE = "sensor_msgs/msg/Image"
# A camera at 10 Hz kept at 2 Hz must keep the frames at 0.5 s, 1.0 s, ..., although the stamps are
# floats summed in the simulator: a frame this close before a period boundary counts as on it.
_PERIOD_SLACK_NS = 1_000_000
# Deep enough for every latched publisher's last message (tf_static has one per broadcaster).
_LATCHED_DEPTH = 100
_DEPTH = 100


def build_typestore(interfaces: Path = INTERFACES) -> Typestore:
    """Return the ROS 2 Kilted typestore with our interface packages' messages and action feedback registered.

    Args:
        interfaces: Folder holding one folder per interface package.
    """
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(interfaces.glob("*/msg/*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{path.parent.parent.name}/msg/{path.stem}"))
    for path in sorted(interfaces.glob("*/action/*.action")):
        package = path.parent.parent.name
        # An .action file is goal, result and feedback, separated by lines of three dashes.
        feedback = path.read_text().split("\n---")[2]
        types.update(get_types_from_msg(feedback, f"{package}/msg/{path.stem}_Feedback"))
        types.update(get_types_from_msg(f"unique_identifier_msgs/UUID goal_id\n{package}/{path.stem}_Feedback feedback",
                                        f"{package}/action/{path.stem}_FeedbackMessage"))
    store.register(types)
    return store


def message_class(msgtype: str) -> type:
    """Return the rclpy message class of a type name such as `sensor_msgs/msg/Image`.

    Action parts (`pkg/action/Name_FeedbackMessage`) are classes of the action's `Impl`.
    """
    package, kind, name = msgtype.split("/")
    module = importlib.import_module(f"{package}.{kind}")
    if kind == "action" and not hasattr(module, name):
        action, _, part = name.rpartition("_")
        return getattr(getattr(module, action).Impl, part)
    return getattr(module, name)


def header_stamp_ns(cdr: bytes) -> int:
    """Return the header stamp of a serialised message whose first field is a std_msgs/Header.

    Reading the eight stamp bytes after the CDR encapsulation header spares deserialising a whole
    image in Python just to decide whether to keep it.
    """
    order = "<" if cdr[1] & 1 else ">"
    sec, nanosec = struct.unpack_from(order + "iI", cdr, 4)
    return sec * 1_000_000_000 + nanosec


def subscription_qos(publishers: list[TopicEndpointInfo]) -> QoSProfile:
    """Return a QoS that matches every publisher, as rosbag2 adapts it.

    Reliable only when every publisher is reliable, transient local only when every publisher is
    (a reliable or transient-local subscription would not match a best-effort or volatile
    publisher), so latched topics deliver their last message to the recorder too.
    """
    reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    latched = all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=_LATCHED_DEPTH if latched else _DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def offered_qos(publisher: TopicEndpointInfo) -> Qos:
    """Return a publisher's QoS as rosbags stores it in the file (replay reads durability back)."""
    profile = publisher.qos_profile
    zero = QosTime(0, 0)
    return Qos(
        history=QosHistory.KEEP_ALL if profile.history == HistoryPolicy.KEEP_ALL else QosHistory.KEEP_LAST,
        depth=profile.depth,
        reliability=QosReliability.RELIABLE if profile.reliability == ReliabilityPolicy.RELIABLE
        else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
        else QosDurability.VOLATILE,
        deadline=zero, lifespan=zero, liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False)


class RecorderNode(StackNode):
    """Subscribe to every topic the graph shows and write what arrives to `path` (one MCAP file).

    Parameters:
        image_rate_hz: Keep the first message of each 1/image_rate_hz period (by header stamp) of
            each sensor_msgs/Image topic (0 keeps all).
        discovery_period_s: Wall seconds between looks at the graph for new topics.
        compress: Compress MCAP chunks with zstd.

    Args:
        path: The MCAP file to create; it must not exist.
        typestore: Message definitions for the schemas (`build_typestore()` when None).
        **kwargs: Passed to `rclpy.node.Node` (context, parameter_overrides, ...).

    Messages are stamped with the node's clock when they arrive (sim time with `use_sim_time`), as
    rosbag2 stamps them. In lockstep the sim steps on between camera frames while messages queue, so
    arrival stamps there lag the publishers' header stamps by up to one camera period.
    Call `close()` before the context shuts down: it stops recording and finishes the file.
    """

    def __init__(self, path: Path, typestore: Typestore | None = None, node_name: str = "recorder",
                 **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.declare_parameter("image_rate_hz", 2.0)
        self.declare_parameter("discovery_period_s", 0.5)
        self.declare_parameter("compress", True)
        rate = float(self.get_parameter("image_rate_hz").value)
        if rate < 0.0:
            raise ValueError(f"image_rate_hz must be >= 0, got {rate}")
        self._image_period_ns = int(1e9 / rate) if rate > 0.0 else 0
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already; the recorder never overwrites")
        self.typestore = typestore or build_typestore()
        # rosbags writes a rosbag2 folder <dir>/<dir>.mcap; the file is moved out of it on close. A
        # fresh folder each time: one left by a crashed recording is never in the way.
        self._folder = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent)) / "bag"
        self._writer = Writer(self._folder, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        if self.get_parameter("compress").value:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()
        self._lock = threading.Lock()
        self._recorded: dict[str, object] = {}
        self._skipped: set[str] = set()
        self._last_image_slot: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.discover()
        # Discovery runs on wall time: with use_sim_time a sim-time timer would wait for the sim.
        self._discovery = self.create_timer(float(self.get_parameter("discovery_period_s").value), self.discover,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))

    def discover(self) -> None:
        """Subscribe to topics that have appeared since the last look (a publisher is needed for QoS)."""
        for topic, types in self.get_topic_names_and_types():
            if topic in self._recorded or topic in self._skipped:
                continue
            msgtype = types[0]
            if msgtype not in self.typestore.fielddefs:
                self._skipped.add(topic)
                self.get_logger().info(f"not recording {topic}: no ros2msg schema for {msgtype}")
                continue
            publishers = [p for p in self.get_publishers_info_by_topic(topic) if p.topic_type == msgtype]
            if not publishers:
                continue
            with self._lock:
                if self._writer is None:
                    return
                connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                         offered_qos_profiles=[offered_qos(p) for p in publishers])
            self.counts[topic] = 0
            self._recorded[topic] = self.create_subscription(
                message_class(msgtype), topic, self._writer_callback(topic, connection, msgtype == IMAGE_TYPE),
                subscription_qos(publishers), raw=True)

    def _writer_callback(self, topic: str, connection, throttle: bool):
        def write(cdr: bytes) -> None:
            if throttle and self._image_period_ns:
                # The first frame of each period of the stamps' clock: kept frames stay on a regular
                # grid at exactly the rate, however the camera's own period divides into it.
                slot = (header_stamp_ns(cdr) + _PERIOD_SLACK_NS) // self._image_period_ns
                if slot == self._last_image_slot.get(topic):
                    return
                self._last_image_slot[topic] = slot
            now = self.get_clock().now().nanoseconds
            with self._lock:
                if self._writer is None:
                    return
                self._writer.write(connection, now, cdr)
                self.counts[topic] += 1
        return write

    def close(self) -> None:
        """Stop recording, finish the MCAP file at `path` and destroy the node."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return
        if self.executor is not None:
            self.executor.remove_node(self)
        self.destroy_timer(self._discovery)
        for subscription in self._recorded.values():
            self.destroy_subscription(subscription)
        writer.close()
        (self._folder / f"{self._folder.name}.mcap").replace(self.path)
        # The folder's metadata.yaml repeats what the MCAP file holds in its rosbag2 metadata record.
        shutil.rmtree(self._folder.parent)
        self.destroy_node()


def start_recorder(path: Path, context, executor, image_rate_hz: float = 2.0,
                   use_sim_time: bool = True, introspection: bool = True) -> RecorderNode:
    """Create a recorder on `context` and add it to `executor` (which may already be spinning).

    `introspection` False builds it without parameter services and default QoS-event handlers
    (`StackNode`), as a lockstep stack's nodes are.
    """
    recorder = RecorderNode(path, context=context, introspection=introspection, parameter_overrides=[
        Parameter("image_rate_hz", value=float(image_rate_hz)), Parameter("use_sim_time", value=use_sim_time)])
    executor.add_node(recorder)
    return recorder
