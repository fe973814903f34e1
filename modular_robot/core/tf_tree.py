"""A TF buffer: a time-stamped tree of coordinate frames, queried like tf2's lookupTransform.

Each frame has at most one parent. The edge from a parent to a child holds the pose of the child in
the parent (what a geometry_msgs/TransformStamped with ``header.frame_id = parent`` and
``child_frame_id = child`` carries). Dynamic edges keep a time-ordered history bounded by a cache
duration; static edges hold one transform that is valid at every time.

Differences from tf2 worth knowing:

- A frame's parent and kind (static or dynamic) are kept against other publishers: one bogus edge
  would otherwise cut the frame from its tree, and for a static frame, which is never published
  again, for good. ``set_transform`` refuses with ``ValueError``:

  - any change of parent or kind of a frame that ``/tf_static`` placed (a static publisher may
    update the transform itself, e.g. a recalibrated camera mount);
  - a change of parent or kind of a dynamic frame while its current edge is live: the new sample
    is less than ``reparent_after_s`` newer than the edge's newest one. Once the old publisher has
    been silent that long, the new parent takes over and the old history is dropped. This admits
    what real robots do (a frame handed from one publisher to another, an object frame re-attached
    from the table to the gripper by a node that stops publishing the old edge) and refuses an edge
    interleaved with a live publisher's stream.

  tf2 lets the later parent win at every sample; it never interpolates across a parent change.
- A transform that would close a loop is refused with ``ValueError`` when it is set, not when a
  lookup later walks the loop.
- Lookups within ``extrapolation_tolerance_s`` outside an edge's history use the nearest sample
  instead of failing; tf2's tolerance is zero.
- A leading ``/`` in a frame name is stripped everywhere, lookups included.

``TfTree`` is not thread-safe: guard it with a lock when callbacks and lookups run on different
threads (``modular_robot.ros.tf_listener.TfListener`` does).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from modular_robot.core.transforms import Transform, interpolate

_NS_PER_S = 1_000_000_000


class TfError(LookupError):
    """Base class of the errors a TF lookup raises."""


class FrameNotFoundError(TfError):
    """A frame named in a lookup has never been set."""


class ConnectivityError(TfError):
    """Two frames exist but lie in different trees."""


class ExtrapolationError(TfError):
    """An edge on the path has no data close enough to the requested time.

    Attributes:
        parent: Parent frame of the edge that lacks data.
        child: Child frame of that edge.
        stamp_ns: Requested time.
        oldest_ns: Oldest stamp the edge holds.
        newest_ns: Newest stamp the edge holds.
    """

    def __init__(
        self, message: str, parent: str, child: str, stamp_ns: int, oldest_ns: int, newest_ns: int
    ) -> None:
        super().__init__(message)
        self.parent = parent
        self.child = child
        self.stamp_ns = stamp_ns
        self.oldest_ns = oldest_ns
        self.newest_ns = newest_ns


class PastExtrapolationError(ExtrapolationError):
    """The requested time is older than the edge's history (it may have been pruned)."""


class FutureExtrapolationError(ExtrapolationError):
    """The requested time is newer than the edge's latest data (waiting may help)."""


@dataclass
class _Edge:
    """The link from ``parent`` to one child: one static transform or a time-ordered history."""

    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    transforms: list[Transform] = field(default_factory=list)


def _format_ns(stamp_ns: int) -> str:
    sign = "-" if stamp_ns < 0 else ""
    sec, nsec = divmod(abs(stamp_ns), _NS_PER_S)
    return f"{sign}{sec}.{nsec:09d} s"


def _normalize_frame(frame: str) -> str:
    name = frame[1:] if frame.startswith("/") else frame
    if not name:
        raise ValueError(f"frame name must be non-empty, got {frame!r}")
    return name


class TfTree:
    """Store stamped transforms between frames and answer lookups between any two of them.

    Args:
        cache_duration_s: How much history each dynamic edge keeps, measured back from its newest
            sample. Samples older than that are pruned, and arriving ones are dropped.
        extrapolation_tolerance_s: How far outside an edge's history a lookup may fall and still
            be answered, with the nearest sample.
        reparent_after_s: How long a dynamic frame's edge must have been silent (by stamps) before
            another parent, or a static transform, may take the frame over.

    Raises:
        ValueError: if the cache duration is not positive or a tolerance is negative.
    """

    def __init__(
        self, cache_duration_s: float = 10.0, extrapolation_tolerance_s: float = 0.01,
        reparent_after_s: float = 1.0,
    ) -> None:
        if not cache_duration_s > 0.0:
            raise ValueError(f"cache_duration_s must be positive, got {cache_duration_s}")
        if not extrapolation_tolerance_s >= 0.0:
            raise ValueError(
                f"extrapolation_tolerance_s must be non-negative, got {extrapolation_tolerance_s}"
            )
        if not reparent_after_s >= 0.0:
            raise ValueError(f"reparent_after_s must be non-negative, got {reparent_after_s}")
        self._cache_ns = int(round(cache_duration_s * _NS_PER_S))
        self._reparent_ns = int(round(reparent_after_s * _NS_PER_S))
        self._tolerance_ns = int(round(extrapolation_tolerance_s * _NS_PER_S))
        self._edges: dict[str, _Edge] = {}
        # How many children name each frame as parent; lets frame lookups avoid scanning all edges.
        self._parent_refs: Counter[str] = Counter()

    @property
    def cache_duration_s(self) -> float:
        """History kept per dynamic edge, in seconds."""
        return self._cache_ns / _NS_PER_S

    @property
    def extrapolation_tolerance_s(self) -> float:
        """Distance outside an edge's history still answered with its nearest sample, in seconds."""
        return self._tolerance_ns / _NS_PER_S

    def set_transform(
        self, parent: str, child: str, stamp_ns: int, transform: Transform, static: bool = False
    ) -> bool:
        """Record the pose of ``child`` in ``parent`` at ``stamp_ns``.

        A sample with the same stamp as a stored one replaces it; samples may arrive out of order.
        A different parent, or a change between static and dynamic, replaces the child's edge only
        where the module's rules allow it (never for a static frame; for a dynamic one, once its
        edge has been silent for ``reparent_after_s``).

        Args:
            parent: Parent frame (``header.frame_id``).
            child: Child frame (``child_frame_id``).
            stamp_ns: Time of the sample in nanoseconds; kept for static edges only for reference.
            transform: Maps points in ``child`` into ``parent``.
            static: Whether the transform holds at all times (``/tf_static``).

        Returns:
            False when a dynamic sample was dropped for being older than the cache duration
            allows, True when it was stored.

        Raises:
            ValueError: for empty frame names, a frame as its own parent, a loop, or a change of
                parent or kind that the rules above refuse.
            TypeError: if ``transform`` is not a ``Transform``.
        """
        parent = _normalize_frame(parent)
        child = _normalize_frame(child)
        if parent == child:
            raise ValueError(f"frame {child!r} cannot be its own parent")
        if not isinstance(transform, Transform):
            raise TypeError(f"transform must be a Transform, got {type(transform).__name__}")
        stamp_ns = int(stamp_ns)

        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            self._check_no_loop(parent, child)
            if edge is not None:
                self._check_takeover(edge, parent, child, stamp_ns, static)
            self._replace_edge(child, _Edge(parent=parent, static=static))
            edge = self._edges[child]

        if static:
            edge.stamps[:] = [stamp_ns]
            edge.transforms[:] = [transform]
            return True

        if edge.stamps and stamp_ns < edge.stamps[-1] - self._cache_ns:
            return False
        index = bisect.bisect_left(edge.stamps, stamp_ns)
        if index < len(edge.stamps) and edge.stamps[index] == stamp_ns:
            edge.transforms[index] = transform
        else:
            edge.stamps.insert(index, stamp_ns)
            edge.transforms.insert(index, transform)
        cutoff = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self._cache_ns)
        if cutoff:
            del edge.stamps[:cutoff]
            del edge.transforms[:cutoff]
        return True

    def lookup(
        self, target_frame: str, source_frame: str, stamp_ns: int | None = None
    ) -> Transform:
        """Return the transform that maps points in ``source_frame`` into ``target_frame``.

        Same meaning as tf2's ``lookupTransform(target_frame, source_frame, time)``: the result is
        also the pose of ``source_frame`` in ``target_frame``. Only edges between the two frames and
        their nearest common ancestor are consulted; each dynamic one is interpolated between the
        samples that bracket the requested time.

        Args:
            target_frame: Frame the result maps into.
            source_frame: Frame the result maps from.
            stamp_ns: Time in nanoseconds, or None for the latest time at which every edge on the
                path has data (tf2's "latest common time").

        Raises:
            FrameNotFoundError: if either frame is unknown.
            ConnectivityError: if the frames are in different trees.
            PastExtrapolationError: if an edge's history starts after ``stamp_ns``.
            FutureExtrapolationError: if an edge's history ends before ``stamp_ns``.
            ValueError: for an empty frame name.
        """
        target_up, source_up = self._paths(target_frame, source_frame)
        if stamp_ns is None:
            stamp_ns = self._latest_common_time(target_up + source_up)
        else:
            stamp_ns = int(stamp_ns)
        common_from_source = self._chain_transform(source_up, stamp_ns)
        common_from_target = self._chain_transform(target_up, stamp_ns)
        return common_from_target.inverse() * common_from_source

    def can_transform(
        self, target_frame: str, source_frame: str, stamp_ns: int | None = None
    ) -> bool:
        """Return whether ``lookup`` with the same arguments would succeed."""
        try:
            self.lookup(target_frame, source_frame, stamp_ns)
        except TfError:
            return False
        return True

    def latest_common_time(self, target_frame: str, source_frame: str) -> int | None:
        """Return the newest time at which every dynamic edge between the frames has data.

        Returns:
            The time in nanoseconds, or None when the path has no dynamic edge (then any time
            works).

        Raises:
            FrameNotFoundError: if either frame is unknown.
            ConnectivityError: if the frames are in different trees.
        """
        target_up, source_up = self._paths(target_frame, source_frame)
        return self._latest_common_time(target_up + source_up)

    def frames(self) -> list[str]:
        """Return the names of all known frames, sorted."""
        return sorted(set(self._edges) | set(self._parent_refs))

    def parent(self, frame: str) -> str | None:
        """Return the parent of ``frame``, or None for a root.

        Raises:
            FrameNotFoundError: if the frame is unknown.
        """
        frame = self._require_frame(frame)
        edge = self._edges.get(frame)
        return edge.parent if edge is not None else None

    def clear(self, keep_static: bool = True) -> None:
        """Forget transforms, as after a backward jump of the clock.

        Args:
            keep_static: Keep static edges. True by default, as in tf2: static transforms are
                published once, latched, and would not arrive again.
        """
        for child in [c for c, edge in self._edges.items() if not (keep_static and edge.static)]:
            self._remove_edge(child)

    def _remove_edge(self, child: str) -> None:
        edge = self._edges.pop(child)
        self._parent_refs[edge.parent] -= 1
        if not self._parent_refs[edge.parent]:
            del self._parent_refs[edge.parent]

    def _replace_edge(self, child: str, edge: _Edge) -> None:
        if child in self._edges:
            self._remove_edge(child)
        self._edges[child] = edge
        self._parent_refs[edge.parent] += 1

    def _check_takeover(self, edge: _Edge, parent: str, child: str, stamp_ns: int, static: bool) -> None:
        """Refuse a new parent or kind for a frame that has an edge, per the module's rules."""
        new = f"{'static' if static else 'dynamic'} parent {parent!r}"
        if edge.static:
            raise ValueError(f"{child!r} is a static child of {edge.parent!r}; refusing a {new}")
        if stamp_ns - edge.stamps[-1] <= self._reparent_ns:
            raise ValueError(
                f"{child!r} is a live dynamic child of {edge.parent!r} (data until "
                f"{_format_ns(edge.stamps[-1])}); refusing a {new} at {_format_ns(stamp_ns)}"
            )

    def _check_no_loop(self, parent: str, child: str) -> None:
        frame: str | None = parent
        while frame is not None:
            if frame == child:
                raise ValueError(
                    f"setting {parent!r} as parent of {child!r} would create a loop: "
                    f"{child!r} is already an ancestor of {parent!r}"
                )
            edge = self._edges.get(frame)
            frame = edge.parent if edge is not None else None

    def _require_frame(self, frame: str) -> str:
        name = _normalize_frame(frame)
        if name not in self._edges and name not in self._parent_refs:
            known = ", ".join(self.frames()) or "none"
            raise FrameNotFoundError(f"frame {name!r} does not exist (known frames: {known})")
        return name

    def _ancestry(self, frame: str) -> list[str]:
        """Return ``frame`` followed by its ancestors up to the root."""
        chain = [frame]
        edge = self._edges.get(frame)
        while edge is not None:
            chain.append(edge.parent)
            edge = self._edges.get(edge.parent)
        return chain

    def _paths(self, target_frame: str, source_frame: str) -> tuple[list[str], list[str]]:
        """Return the frames whose parent edges lead from each frame up to their common ancestor."""
        target = self._require_frame(target_frame)
        source = self._require_frame(source_frame)
        target_chain = self._ancestry(target)
        source_chain = self._ancestry(source)
        target_depth = {frame: depth for depth, frame in enumerate(target_chain)}
        for depth, frame in enumerate(source_chain):
            if frame in target_depth:
                return target_chain[: target_depth[frame]], source_chain[:depth]
        raise ConnectivityError(
            f"frames {target!r} and {source!r} are not connected: {target!r} is in the tree "
            f"rooted at {target_chain[-1]!r}, {source!r} in the tree rooted at {source_chain[-1]!r}"
        )

    def _latest_common_time(self, children: list[str]) -> int | None:
        newest = [self._edges[c].stamps[-1] for c in children if not self._edges[c].static]
        return min(newest) if newest else None

    def _chain_transform(self, children: list[str], stamp_ns: int | None) -> Transform:
        """Compose the edges above ``children`` (ordered upwards) into ancestor-from-child."""
        result = Transform()
        for child in children:
            result = self._edge_transform(child, stamp_ns) * result
        return result

    def _edge_transform(self, child: str, stamp_ns: int | None) -> Transform:
        edge = self._edges[child]
        if edge.static or stamp_ns is None:
            # stamp_ns is None only when every edge on the path is static.
            return edge.transforms[0]
        stamps = edge.stamps
        oldest, newest = stamps[0], stamps[-1]
        if stamp_ns < oldest - self._tolerance_ns or stamp_ns > newest + self._tolerance_ns:
            past = stamp_ns < oldest
            error = PastExtrapolationError if past else FutureExtrapolationError
            raise error(
                f"lookup at {_format_ns(stamp_ns)} would extrapolate into the "
                f"{'past' if past else 'future'}: edge {edge.parent!r} -> {child!r} has data from "
                f"{_format_ns(oldest)} to {_format_ns(newest)} "
                f"(tolerance {self._tolerance_ns / _NS_PER_S:g} s)",
                parent=edge.parent,
                child=child,
                stamp_ns=stamp_ns,
                oldest_ns=oldest,
                newest_ns=newest,
            )
        if stamp_ns <= oldest:
            return edge.transforms[0]
        if stamp_ns >= newest:
            return edge.transforms[-1]
        index = bisect.bisect_left(stamps, stamp_ns)
        if stamps[index] == stamp_ns:
            return edge.transforms[index]
        before, after = stamps[index - 1], stamps[index]
        fraction = (stamp_ns - before) / (after - before)
        return interpolate(edge.transforms[index - 1], edge.transforms[index], fraction)
