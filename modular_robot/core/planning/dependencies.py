"""Which of the nodes a task depends on left the graph while it ran.

A task needs more nodes than the two the executor calls: perception feeds the map and the critic,
the semantic map answers the critic's queries, the safety shield carries every motion. One that
dies mid-task (killed, crashed) may be restarted within seconds, and a restarted node has lost what
the task relied on (a critic's pre-state, a shield's measured start); so a node that left during a
task ends it, even if it is back by the next step. Each node is seen through a count the graph gives
(publishers, subscribers, servers): a count that drops means one of its processes left.
"""

from __future__ import annotations

from collections.abc import Mapping


class DependencyWatch:
    """Follow, poll by poll, the graph counts of a task's dependencies and tell which dropped.

    Args:
        names: The dependencies, as the messages name them (e.g. "critic ('check_step')").
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._counts: dict[str, int] | None = None
        self._lost: list[str] = []

    def begin(self, counts: Mapping[str, int]) -> None:
        """Start following a task from the counts at its start."""
        self._counts = {name: counts[name] for name in self.names}
        self._lost = []

    def end(self) -> None:
        """Stop following: between tasks nothing is lost."""
        self._counts = None
        self._lost = []

    def update(self, counts: Mapping[str, int]) -> list[str]:
        """Take the latest counts; return the dependencies that dropped since the last poll."""
        if self._counts is None:
            return []
        dropped = [name for name in self.names if counts[name] < self._counts[name] and name not in self._lost]
        self._counts = {name: counts[name] for name in self.names}
        self._lost.extend(dropped)
        return dropped

    @property
    def lost(self) -> list[str]:
        """The dependencies that dropped during the task, in the order they did."""
        return list(self._lost)
