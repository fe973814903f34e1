"""Which messages on a topic come from the one node allowed to publish there.

A subscriber learns who published a message from the publisher's GID (a 16-byte endpoint id the
middleware passes with each message) and the ROS graph, which names the node of every endpoint.
The graph can name a just-started publisher's node some milliseconds after its first message
arrives (measured: 14 ms across processes with Fast DDS; the endpoint shows as
`UNKNOWN_NODE_NAME` until then), so a message from a publisher the graph does not name yet is held
for a bounded time, not rejected at once. This module is the bookkeeping; `ros.trusted` reads the
graph and feeds it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

# rmw's name for an endpoint whose node it has not learnt yet.
UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"
# How long a message from an unnamed publisher is held for the graph to name it (s).
MAX_WAIT_S = 1.0
# Messages held at once; more are rejected: a flood of unnamed publishers cannot grow memory.
MAX_HELD = 100
# Publishers whose verdict is remembered; the oldest are forgotten (and looked up again if they speak).
MAX_KNOWN = 1024


@dataclass(frozen=True)
class Endpoint:
    """A publisher as the ROS graph lists it.

    Attributes:
        gid: Its endpoint GID.
        node_name: Name of the node it belongs to (`UNKNOWN_NODE_NAME` while the graph does not know).
        node_namespace: That node's absolute namespace.
    """

    gid: bytes
    node_name: str
    node_namespace: str

    @property
    def node(self) -> str:
        """Return the node's fully qualified name, e.g. `/robot1/safety_shield`."""
        return f"{self.node_namespace.rstrip('/')}/{self.node_name}"


@dataclass(frozen=True)
class Rejected:
    """A message that was not passed on, with who sent it.

    Attributes:
        gid: Its publisher's GID.
        sender: The publishing node's full name, or a phrase saying it is unknown.
        item: The message.
    """

    gid: bytes
    sender: str
    item: Any


class TrustedSenders:
    """Pass on the messages of one node's publishers, in order; reject the others.

    Args:
        owner: Name of the only node whose messages pass.
        namespace: Absolute namespace that node must be in.
        max_wait_s: Longest time a message from a publisher the graph does not name yet is held.
        max_held: Most messages held at once.
        max_known: Most publishers remembered.
    """

    def __init__(self, owner: str, namespace: str, max_wait_s: float = MAX_WAIT_S, max_held: int = MAX_HELD,
                 max_known: int = MAX_KNOWN) -> None:
        self.owner = owner
        self.namespace = namespace
        self.max_wait_s = max_wait_s
        self.max_held = max_held
        self.max_known = max_known
        self._known: OrderedDict[bytes, Endpoint] = OrderedDict()
        self._held: deque[tuple[bytes, float, Any]] = deque()

    @property
    def owner_node(self) -> str:
        """Return the owner's fully qualified name."""
        return Endpoint(b"", self.owner, self.namespace).node

    @property
    def held(self) -> int:
        """Return how many messages wait for their publisher to be named."""
        return len(self._held)

    def unnamed(self) -> bool:
        """Return whether a held message's publisher is still unknown (the graph must be read)."""
        return any(gid not in self._known for gid, _, _ in self._held)

    def learn(self, endpoints: list[Endpoint]) -> None:
        """Remember the publishers the graph names; those it does not name yet stay unknown."""
        for endpoint in endpoints:
            if endpoint.node_name == UNKNOWN_NODE_NAME or endpoint.gid in self._known:
                continue
            self._known[endpoint.gid] = endpoint
            if len(self._known) > self.max_known:
                self._known.popitem(last=False)

    def trusted(self, gid: bytes) -> bool | None:
        """Return whether a publisher is the owner's; None while the graph has not named it."""
        endpoint = self._known.get(gid)
        if endpoint is None:
            return None
        return endpoint.node_name == self.owner and endpoint.node_namespace == self.namespace

    def admit(self, gid: bytes, item: Any, now_s: float) -> Rejected | None:
        """Hold a message until `release`; return it rejected at once when too many are held."""
        if len(self._held) >= self.max_held:
            return Rejected(gid, self._sender(gid), item)
        self._held.append((gid, now_s, item))
        return None

    def release(self, now_s: float) -> tuple[list[Any], list[Rejected]]:
        """Return the held messages to pass on, in arrival order, and those rejected; keep the rest.

        A message whose publisher is still unnamed after `max_wait_s` is rejected.
        """
        passed: list[Any] = []
        rejected: list[Rejected] = []
        kept: deque[tuple[bytes, float, Any]] = deque()
        for gid, since_s, item in self._held:
            verdict = self.trusted(gid)
            if verdict is None and now_s - since_s > self.max_wait_s:
                verdict = False
            if verdict is None:
                kept.append((gid, since_s, item))
            elif verdict:
                passed.append(item)
            else:
                rejected.append(Rejected(gid, self._sender(gid), item))
        self._held = kept
        return passed, rejected

    def _sender(self, gid: bytes) -> str:
        endpoint = self._known.get(gid)
        return endpoint.node if endpoint is not None else "a publisher the graph does not name"
