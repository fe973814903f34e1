"""Which of the nodes a task depends on left the graph while it ran.

A task needs more nodes than the two the executor calls: perception feeds the map and the critic,
the semantic map answers the critic's queries, the safety shield carries every motion. One that
dies mid-task (killed, crashed) may be restarted within seconds, and a restarted node has lost what
the task relied on (a critic's pre-state, a shield's measured start); so a node that left during a
task ends it, even if it is back by the next step. Each node is seen through the endpoints the
graph lists for it (their GIDs): an endpoint that goes means one of its processes left. A count
would miss a restart whose new process registers as the dead one's lease expires.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Set


class DependencyWatch:
    """Follow, poll by poll, the graph endpoints of a task's dependencies and tell which lost one.

    Args:
        names: The dependencies, as the messages name them (e.g. "critic ('verdicts')").
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._endpoints: dict[str, frozenset[Hashable]] | None = None
        self._lost: list[str] = []

    def begin(self, endpoints: Mapping[str, Set[Hashable]]) -> None:
        """Start following a task from the endpoints at its start."""
        self._endpoints = {name: frozenset(endpoints[name]) for name in self.names}
        self._lost = []

    def end(self) -> None:
        """Stop following: between tasks nothing is lost."""
        self._endpoints = None
        self._lost = []

    def update(self, endpoints: Mapping[str, Set[Hashable]]) -> list[str]:
        """Take the latest endpoints; return the dependencies that lost one since the last poll."""
        if self._endpoints is None:
            return []
        dropped = [name for name in self.names
                   if self._endpoints[name] - endpoints[name] and name not in self._lost]
        self._endpoints = {name: frozenset(endpoints[name]) for name in self.names}
        self._lost.extend(dropped)
        return dropped

    @property
    def lost(self) -> list[str]:
        """The dependencies that dropped during the task, in the order they did."""
        return list(self._lost)
