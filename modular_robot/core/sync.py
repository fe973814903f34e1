"""Match messages of several streams by stamp, as message_filters' ApproximateTimeSynchronizer, and
throttle work by message stamps."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any


class StampSync:
    """Pair the latest messages of named streams whose stamps agree within a slop.

    Each stream keeps a short queue. When a message arrives, the newest stamp of the arriving
    stream is matched against every other stream's queue; a match takes, from each stream, the
    message nearest in time, and drops everything older (a consumer wants fresh frames, not a
    backlog).
    """

    def __init__(self, streams: tuple[Hashable, ...], slop_ns: int, queue_size: int = 5) -> None:
        if len(streams) < 2:
            raise ValueError("synchronising needs at least two streams")
        if slop_ns < 0 or queue_size < 1:
            raise ValueError("slop must be >= 0 and queue_size >= 1")
        self.slop_ns = slop_ns
        self.streams = tuple(streams)
        self._queues: dict[Hashable, deque[tuple[int, Any]]] = {s: deque(maxlen=queue_size) for s in streams}

    def add(self, stream: Hashable, stamp_ns: int, message: Any) -> dict[Hashable, Any] | None:
        """Add a message; return {stream: message} when a complete set agrees within the slop."""
        queue = self._queues[stream]
        queue.append((stamp_ns, message))
        match = {stream: (stamp_ns, message)}
        for other, other_queue in self._queues.items():
            if other == stream:
                continue
            best = min(other_queue, key=lambda item: abs(item[0] - stamp_ns), default=None)
            if best is None or abs(best[0] - stamp_ns) > self.slop_ns:
                return None
            match[other] = best
        for name, (stamp, _) in match.items():
            queue_of = self._queues[name]
            while queue_of and queue_of[0][0] <= stamp:
                queue_of.popleft()
        return {name: message for name, (_, message) in match.items()}


class StampThrottle:
    """Let work through at most once per period of message stamps, not of wall time.

    By stamps, a lockstep run or a replayed recording takes the same messages every time, however
    fast the machine. A stamp older than the last one taken means time was reset (a simulator
    restarted): it is taken.
    """

    def __init__(self, period_ns: int) -> None:
        self.period_ns = period_ns
        self._last_ns: int | None = None

    def due(self, stamp_ns: int) -> bool:
        """Return whether work stamped `stamp_ns` should be done now."""
        return self._last_ns is None or not 0 <= stamp_ns - self._last_ns < self.period_ns

    def take(self, stamp_ns: int) -> None:
        """Record that the work stamped `stamp_ns` is being done."""
        self._last_ns = stamp_ns
