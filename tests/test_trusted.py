"""TrustedSubscription on a real graph: the owner's messages pass, held while the graph names it late; others are
counted and logged once per publisher."""

import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String

from modular_robot.core.trusted_senders import UNKNOWN_NODE_NAME, Endpoint
from modular_robot.ros import qos
from modular_robot.ros.trusted import TrustedSubscription


class _Graph:
    """Nodes in one context: a listener with a trusted subscription, its owner and an impostor, all publishing."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.listener = rclpy.create_node("listener", namespace="/robot1", context=self.context)
        self.lines: list[str] = []
        self.listener.get_logger = lambda: self
        self.got: list[str] = []
        self.subscription = TrustedSubscription(self.listener, String, "chat/robot", lambda m: self.got.append(m.data),
                                                qos.RELIABLE, owner="owner")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.listener)
        self.publishers = {}
        for name in ("owner", "impostor"):
            node = rclpy.create_node(name, namespace="/robot1", context=self.context)
            self.executor.add_node(node)
            self.publishers[name] = node.create_publisher(String, "chat/robot", qos.RELIABLE)
        assert self.spin_until(lambda: all(p.get_subscription_count() for p in self.publishers.values()))

    def warning(self, line: str, **kwargs) -> None:
        self.lines.append(line)

    def spin_until(self, condition, wall_s: float = 5.0) -> bool:
        deadline = time.monotonic() + wall_s
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
        return condition()

    def close(self) -> None:
        self.executor.shutdown()
        for node in self.executor.get_nodes():
            node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def graph():
    made = _Graph()
    yield made
    made.close()


def test_the_owners_messages_pass_and_an_impostors_are_counted_and_logged_once(graph):
    for k in range(3):
        graph.publishers["impostor"].publish(String(data=f"forged {k}"))
        graph.publishers["owner"].publish(String(data=f"said {k}"))
    assert graph.spin_until(lambda: len(graph.got) == 3 and graph.subscription.rejected == 3)
    assert graph.got == ["said 0", "said 1", "said 2"]
    assert len(graph.lines) == 1, graph.lines
    assert "/robot1/chat/robot from /robot1/impostor: only /robot1/owner may publish there" in graph.lines[0]


def test_a_publisher_the_graph_names_late_is_held_not_rejected(graph):
    reads = []
    read_graph = graph.subscription._graph

    def late_graph() -> list[Endpoint]:
        reads.append(1)
        named = read_graph()
        return named if len(reads) > 3 else [Endpoint(e.gid, UNKNOWN_NODE_NAME, "") for e in named]

    graph.subscription._graph = late_graph
    graph.publishers["owner"].publish(String(data="said"))
    assert graph.spin_until(lambda: graph.got == ["said"])
    assert len(reads) == 4 and graph.subscription.rejected == 0
    assert graph.subscription._timer.is_canceled()


def test_a_publisher_never_named_is_rejected_after_the_wait(graph):
    graph.subscription._senders.max_wait_s = 0.1
    graph.subscription._graph = lambda: []
    graph.publishers["owner"].publish(String(data="said"))
    started = time.monotonic()
    assert graph.spin_until(lambda: graph.subscription.rejected == 1)
    assert 0.1 <= time.monotonic() - started < 1.0
    assert graph.got == [] and "a publisher the graph does not name" in graph.lines[0]
    assert graph.subscription._timer.is_canceled()
