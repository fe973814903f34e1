"""`modular-robot replay`: publish a recorded episode (MCAP) onto ROS topics with its recorded timing.

Perception, mapping or any other node can be fed a recording instead of the simulator: messages go
out as the recorded CDR bytes (nothing is deserialised), each on a publisher with the recorded
publishers' reliability and durability, so latched topics stay latched. With `--clock`, /clock is
published from the recorded timestamps, for nodes that run on `use_sim_time`.

Command topics (`is_command_topic`: trajectories, gripper commands, cmd_vel, the emergency stop and
the shield's `safe/...` inputs) would move a live robot: they are replayed only when named with
`--command-topics`, never by default and never through `--topics`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Connection, QosDurability, QosReliability
from rosbags.rosbag2 import Reader, ReaderError
from rosgraph_msgs.msg import Clock as ClockMsg

from modular_robot.ros import qos
from modular_robot.ros.recorder import message_class

CLOCK_TOPIC = "/clock"
# The last name segments of the topics that command motion; any topic under a `safe` segment is one
# of the shield's inputs, which it forwards to the hardware.
_COMMAND_SUFFIXES = (("joint_trajectory",), ("gripper_controller", "commands"), ("cmd_vel",), ("emergency_stop",))


def is_command_topic(topic: str) -> bool:
    """Return whether replaying `topic` could move a robot or release its emergency stop."""
    segments = tuple(s for s in topic.split("/") if s)
    return "safe" in segments or any(segments[-len(suffix):] == suffix for suffix in _COMMAND_SUFFIXES)


def _absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def replay_topic(recorded: str, namespace: str = "") -> str:
    """Return the topic a recorded topic is published on: pushed into `namespace`, /clock never."""
    namespace = namespace.strip("/")
    if not namespace or recorded == CLOCK_TOPIC:
        return recorded
    return f"/{namespace}{recorded}"


def publisher_qos(connection: Connection) -> QoSProfile:
    """Return a QoS offering what the recorded publishers offered (reliability, durability, depth)."""
    offered = connection.ext.offered_qos_profiles
    reliable = all(q.reliability == QosReliability.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offered)
    depth = max([q.depth for q in offered] + [1]) if latched else 10
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class Replayer:
    """Publish the messages of one MCAP file through `node`.

    Args:
        path: The MCAP file (as `RecorderNode` or `ros2 bag record -s mcap` writes it).
        node: The node that owns the publishers.
        topics: Recorded topic names to publish (a missing leading slash is added); when empty, every
            topic that is not a command topic.
        namespace: Push every topic but /clock into this namespace.
        clock: Publish /clock from the recorded timestamps; the recorded /clock, if any, is not replayed.
        command_topics: Command topics to publish as well (they move a live robot).

    Raises:
        ValueError: The file is not a recording, a topic named is not in it, or `topics` names a
            command topic.
    """

    def __init__(self, path: Path, node: Node, topics: Sequence[str] = (), namespace: str = "",
                 clock: bool = False, command_topics: Sequence[str] = ()) -> None:
        self.path = Path(path)
        wanted = {_absolute(t) for t in topics}
        commands = {_absolute(t) for t in command_topics}
        named_commands = sorted(t for t in wanted if is_command_topic(t))
        if named_commands:
            raise ValueError(f"{', '.join(named_commands)}: command topics move a live robot; "
                             f"name them with --command-topics to replay them")
        not_commands = sorted(t for t in commands if not is_command_topic(t))
        if not_commands:
            raise ValueError(f"{', '.join(not_commands)}: not command topics; name them with --topics")
        connections = recorded_connections(self.path)
        missing = (wanted | commands) - {c.topic for c in connections}
        if missing:
            raise ValueError(f"not in {self.path}: {', '.join(sorted(missing))}")
        self.connections = [c for c in connections
                            if (c.topic in wanted or c.topic in commands
                                or (not wanted and not is_command_topic(c.topic)))
                            and not (clock and c.topic == CLOCK_TOPIC)]
        self.withheld = sorted({c.topic for c in connections if is_command_topic(c.topic) and c.topic not in commands})
        self.publishers = {c.id: node.create_publisher(message_class(c.msgtype), replay_topic(c.topic, namespace),
                                                       publisher_qos(c))
                           for c in self.connections}
        self.clock_publisher = node.create_publisher(ClockMsg, CLOCK_TOPIC, qos.CLOCK) if clock else None
        self.published = 0

    def play(self, rate: float = 1.0, loop: bool = False, stop: threading.Event | None = None) -> int:
        """Publish every selected message at its recorded time, scaled by `rate`; return how many went out.

        Args:
            rate: Playback speed (2.0 plays twice as fast as recorded).
            loop: Start over at the end, until `stop` is set.
            stop: Set it (from another thread) to stop playing.
        """
        if rate <= 0.0:
            raise ValueError(f"rate must be > 0, got {rate}")
        stop = stop or threading.Event()
        # rosbags reads every connection when given none: with nothing selected, nothing is played.
        while self.connections and not stop.is_set():
            self._play_once(rate, stop)
            if not loop:
                break
        return self.published

    def _play_once(self, rate: float, stop: threading.Event) -> None:
        with Reader(self.path) as reader:
            first_ns = None
            started = time.monotonic()
            last_clock_ns = -1
            for connection, stamp_ns, data in reader.messages(self.connections):
                if first_ns is None:
                    first_ns = stamp_ns
                delay = started + (stamp_ns - first_ns) / 1e9 / rate - time.monotonic()
                if delay > 0.0 and stop.wait(delay):
                    return
                if stop.is_set():
                    return
                if self.clock_publisher is not None and stamp_ns > last_clock_ns:
                    last_clock_ns = stamp_ns
                    clock = ClockMsg()
                    clock.clock.sec, clock.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
                    self.clock_publisher.publish(clock)
                self.publishers[connection.id].publish(bytes(data))
                self.published += 1


def recorded_connections(path: Path) -> list[Connection]:
    """Return the connections (topics) of a recording.

    Raises:
        ValueError: `path` is not an MCAP file or rosbag2 folder that can be read.
    """
    try:
        with Reader(path) as reader:
            return list(reader.connections)
    except (ReaderError, FileNotFoundError, OSError) as error:
        raise ValueError(f"{path} is not a recording (an MCAP file such as reports/run/episode.mcap, "
                         f"or a rosbag2 folder): {error}") from error


def add_replay_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of `modular-robot replay` to `parser` and return it."""
    parser.add_argument("file", help="MCAP file (e.g. reports/run/episode.mcap) or rosbag2 folder")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed (default: %(default)s)")
    parser.add_argument("--topics", nargs="+", default=[], metavar="TOPIC",
                        help="replay only these recorded topics (default: all but command topics)")
    parser.add_argument("--command-topics", nargs="+", default=[], metavar="TOPIC",
                        help="also replay these command topics (joint trajectories, gripper commands, cmd_vel, "
                             "emergency_stop, safe/...): they MOVE a live robot")
    parser.add_argument("--namespace", default="", help="push every topic but /clock into this namespace")
    parser.add_argument("--loop", action="store_true", help="start over at the end, until Ctrl-C")
    parser.add_argument("--clock", action="store_true", help="publish /clock from the recorded timestamps")
    parser.add_argument("--delay", type=float, default=1.0,
                        help="wall seconds to wait before the first message, for subscribers to match "
                             "(default: %(default)s)")
    return parser


def run_replay(args: argparse.Namespace) -> int:
    """Replay `args.file` as `add_replay_arguments` describes; return the exit status."""
    path = Path(args.file)
    if not path.exists():
        print(f"error: no such file or folder: {path}", file=sys.stderr)
        return 2
    with rclpy.init():
        node = rclpy.create_node("replay")
        try:
            replayer = Replayer(path, node, args.topics, args.namespace, args.clock, args.command_topics)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        names = ", ".join(replay_topic(c.topic, args.namespace) for c in replayer.connections)
        print(f"[replay] {path}: {names}", flush=True)
        if replayer.withheld:
            print(f"[replay] not replaying command topics: {', '.join(replayer.withheld)} (see --command-topics)",
                  flush=True)
        try:
            # Publishers need no spinning; the wait lets subscribers in other processes match first.
            time.sleep(max(args.delay, 0.0))
            replayer.play(args.rate, args.loop)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        print(f"[replay] published {replayer.published} messages")
        node.destroy_node()
    return 0
