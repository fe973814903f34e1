"""Fuse per-frame detections into persistent object instances: the semantic map.

Each frame, detections (world frame) are associated with the map's objects by 3D centre distance
and box overlap, gated, among compatible objects only (same colour; same category, categories
whose text embeddings are close, like "mug" and "cup", or two coarse shapes of overlapping
boxes, since the geometric detector may flip between "cube" and "cylinder"); the assignment is
optimal per frame (Hungarian). Labels and categories are majority votes over the detections.
Matched objects refine their pose and extent by count-weighted running averages; a consistent
large jump (two frames) snaps the pose, so a moved object updates within a few frames.
New objects stay tentative until seen ``min_observations`` times, so one spurious detection never
reaches the published map.

The world changes: an object that should be visible in a frame (its whole box projects well
inside the image, in range, and the depth image at its centre is not much nearer than the object,
i.e. nothing hides it) but is not detected counts a miss; enough consecutive misses remove it.
Objects out of view or hidden are kept. When an object's old place is seen empty while a
compatible new one appears, the object is moved there and keeps its id.

The robot carries things: an object at a gripper's grasp point with the fingers closed on it
(core.gripper.holds) is *held*. A held object moves with the grasp point, keeps the size it had
when grasped (the fingers hide part of it), and is never removed for not being seen; it is let go
when the fingers open off it (or meet), and is observed as usual from there.

Thread-safety is left to the caller (the node updates and reads under one lock).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from modular_robot.core.gripper import Gripper, holds, is_irregular
from modular_robot.core.mapping.map_config import SemanticMapConfig
from modular_robot.core.mapping.map_file import (
    SCHEMA,
    SCHEMA_VERSION,
    MapLoadWarning,
    describe_error,
    move_aside,
    read_finite,
    read_finite_vector,
    read_string,
    read_votes,
)
from modular_robot.core.mapping.objects import (
    MapChange,
    MapObject,
    box_arrays,
    box_distance,
    box_iou,
    expected_visible,
    iou_matrix,
)
from modular_robot.core.perception.types import SHAPES, CameraFrame, Detection

TextSimilarity = Callable[[str, str], float]
"""Cosine similarity of two short texts in [-1, 1], e.g. ``TextEmbedder().similarity``."""

# Stands in for "not allowed" in the assignment problem; far above any gated cost (at most 3.1).
_FORBIDDEN = 1e6


@dataclass
class _Track:
    """A map object plus the bookkeeping that fuses detections into it."""

    obj: MapObject
    key: int
    confirmed: bool = False
    hit_this_frame: bool = True
    missed_streak: int = 0
    jump_streak: int = 0
    averaged: int = 1
    label_votes: dict[str, float] = field(default_factory=dict)
    category_votes: dict[str, float] = field(default_factory=dict)
    attribute_votes: dict[tuple[str, ...], float] = field(default_factory=dict)
    # What subscribers last heard about this object, to publish only real changes.
    reported: MapObject | None = None
    # Its size when seen widest across: a hand closing in on an object hides part of it, shrinking the
    # running estimate just before a grasp.
    widest: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    # While held: which gripper (index into update's grippers), the object's offset from its grasp
    # point, and the finger opening that grasped it (its width as the fingers measured it).
    held_by: int | None = None
    held_offset: NDArray[np.float64] | None = None
    held_opening: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the object and its fusion state."""
        return {
            "object": self.obj.to_dict(), "key": self.key, "confirmed": self.confirmed,
            "missed_streak": self.missed_streak, "jump_streak": self.jump_streak,
            "averaged": self.averaged, "label_votes": self.label_votes,
            "category_votes": self.category_votes,
            "attribute_votes": [[list(words), weight] for words, weight in self.attribute_votes.items()],
            "reported": None if self.reported is None else self.reported.to_dict(),
            "widest": [float(v) for v in self.widest],
            "held_by": self.held_by,
            "held_offset": None if self.held_offset is None else [float(v) for v in self.held_offset],
            "held_opening": self.held_opening,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Track:
        """Build a track from ``to_dict`` output (raises KeyError, TypeError, ValueError)."""
        reported = data["reported"]
        obj = MapObject.from_dict(data["object"])
        return cls(
            obj=obj, key=int(data["key"]),
            confirmed=bool(data["confirmed"]), hit_this_frame=False,
            missed_streak=int(data["missed_streak"]), jump_streak=int(data["jump_streak"]),
            averaged=int(data["averaged"]),
            label_votes=read_votes(data["label_votes"]), category_votes=read_votes(data["category_votes"]),
            attribute_votes={tuple(read_string(w, "attribute") for w in words): read_finite(weight, "vote")
                             for words, weight in data["attribute_votes"]},
            reported=None if reported is None else MapObject.from_dict(reported),
            widest=obj.size.copy() if data.get("widest") is None else read_finite_vector(data["widest"], 3, "widest"),
            held_by=None if data.get("held_by") is None else int(data["held_by"]),
            held_offset=None if data.get("held_offset") is None
            else read_finite_vector(data["held_offset"], 3, "held_offset"),
            held_opening=read_finite(data.get("held_opening", 0.0), "held_opening"),
        )


class SemanticMap:
    """A persistent map of objects fused from per-frame detections.

    Args:
        config: Tuning; defaults suit a tabletop RGB-D camera at about 15 Hz.
        text_similarity: Optional similarity of two category names (e.g.
            ``TextEmbedder().similarity``), letting open-vocabulary labels such as "mug" and "cup"
            associate. Without it, categories must match exactly.
    """

    def __init__(self, config: SemanticMapConfig | None = None,
                 text_similarity: TextSimilarity | None = None) -> None:
        self.config = config or SemanticMapConfig()
        self._text_similarity = text_similarity
        self._similarity_cache: dict[tuple[str, str], float] = {}
        self._reset()

    def _reset(self) -> None:
        self._tracks: dict[int, _Track] = {}
        self._next_key = 1
        self._next_index: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(track.confirmed for track in self._tracks.values())

    def objects(self, include_tentative: bool = False) -> list[MapObject]:
        """Return copies of the confirmed objects (and tentative ones if asked), oldest first."""
        return [track.obj.copy() for track in sorted(self._tracks.values(), key=lambda t: t.key)
                if track.confirmed or include_tentative]

    def get(self, object_id: str) -> MapObject | None:
        """Return a copy of the confirmed object with this id, or None."""
        for track in self._tracks.values():
            if track.confirmed and track.obj.id == object_id:
                return track.obj.copy()
        return None

    def clear(self) -> MapChange:
        """Forget every object; return the confirmed ones as removed."""
        removed = [obj.id for obj in self.objects()]
        self._reset()
        return MapChange(removed=removed)

    def update(self, detections: Sequence[Detection], frame: CameraFrame,
               grippers: Sequence[Gripper] = ()) -> MapChange:
        """Fuse one frame's detections and account for the objects the frame shows missing.

        Args:
            detections: This frame's detections in the world frame; ones with non-finite
                position or size are ignored.
            frame: The frame they come from: its pose, intrinsics and depth decide which objects
                should have been seen; its stamp dates the observations.
            grippers: The robot's grippers at the frame's stamp, in the same order every frame:
                held objects follow them, and they grasp and let go of objects.

        Returns:
            The confirmed objects added, updated (beyond the change tolerances) and removed.
        """
        stamp = int(frame.stamp_ns)
        change = MapChange()
        usable = [d for d in detections
                  if np.all(np.isfinite(d.position)) and np.all(np.isfinite(d.size))]
        for track in self._tracks.values():
            track.hit_this_frame = False
        if not all(np.all(np.isfinite(g.grasp_point)) for g in grippers):
            grippers = ()
        self._follow(grippers)
        tracks = list(self._tracks.values())
        pairs = self._associate(usable, tracks)
        for det_index, track_index in pairs:
            self._absorb(tracks[track_index], usable[det_index], stamp)
            _note_widest(tracks[track_index])
        matched = {det_index for det_index, _ in pairs}
        for det_index, detection in enumerate(usable):
            if det_index not in matched:
                self._start_track(detection, stamp)
        self._count_misses(frame, stamp, change)
        self._relocate_moved(stamp)
        self._merge_duplicates(change)
        self._grasp_and_let_go(grippers)
        self._confirm(change)
        self._report_updates(change)
        return change

    def held(self) -> MapObject | None:
        """Return a copy of a held object (the first gripper's), or None when nothing is held."""
        holding = [t for t in self._tracks.values() if t.held_by is not None]
        return min(holding, key=lambda t: t.held_by).obj.copy() if holding else None

    def save(self, path: str | Path) -> None:
        """Write the whole map (tentative objects and fusion state included) as JSON, atomically.

        The file is written beside the target and renamed over it, so a crash leaves either the
        old map or the new one, never half of one.

        Raises:
            OSError: if the file cannot be written.
        """
        path = Path(path)
        document = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "saved_at_unix_s": time.time(),
            "next_key": self._next_key, "next_index": self._next_index,
            "tracks": [track.to_dict() for track in sorted(self._tracks.values(), key=lambda t: t.key)],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with partial.open("w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=1)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def load(self, path: str | Path) -> MapLoadWarning | None:
        """Replace this map with the one saved at ``path``; never raises on a bad file.

        A missing file starts an empty map (the first run). A file that cannot be read, does not
        parse, or has another schema or version is renamed to ``<name>.unusable-<UTC time>`` so
        nothing is lost, an empty map is started, and the reason is returned for the caller to log.

        Returns:
            None when the map was loaded or no file exists, else the warning describing the problem.
        """
        path = Path(path)
        if not path.exists():
            self._reset()
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            self._restore(document)
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError,
                AttributeError, RecursionError) as error:
            self._reset()
            return MapLoadWarning(path, describe_error(error), move_aside(path))

    def _restore(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise TypeError(f"top level is a {type(document).__name__}, expected an object")
        if document.get("schema") != SCHEMA:
            raise ValueError(f"schema {document.get('schema')!r}, expected {SCHEMA!r}")
        if document.get("version") != SCHEMA_VERSION:
            raise ValueError(f"schema version {document.get('version')!r}, expected {SCHEMA_VERSION}")
        tracks = [_Track.from_dict(item) for item in document["tracks"]]
        next_index = {read_string(prefix, "prefix"): int(n) for prefix, n in document["next_index"].items()}
        next_key = int(document["next_key"])
        keys = [track.key for track in tracks]
        if len(set(keys)) != len(keys) or any(key >= next_key for key in keys):
            raise ValueError("track keys are duplicated or not below next_key")
        self._tracks = {track.key: track for track in tracks}
        self._next_key = next_key
        self._next_index = next_index

    # Association.

    def _associate(self, detections: list[Detection], tracks: list[_Track]) -> list[tuple[int, int]]:
        """Return (detection, track) index pairs of the cheapest gated one-to-one assignment.

        Geometry is computed for all pairs at once; only pairs inside the gate are checked for
        compatibility in Python.
        """
        if not detections or not tracks:
            return []
        det_pos, det_size, det_yaw = box_arrays((d.position, d.size, d.yaw) for d in detections)
        trk_pos, trk_size, trk_yaw = box_arrays((t.obj.position, t.obj.size, t.obj.yaw) for t in tracks)
        overlap = iou_matrix(det_pos, det_size, det_yaw, trk_pos, trk_size, trk_yaw)
        distance = np.linalg.norm(det_pos[:, np.newaxis] - trk_pos[np.newaxis], axis=2)
        # A partly seen tray's centre wanders more than a cube's: the gate grows with the extent.
        gate = self.config.gate_distance_m + 0.5 * np.maximum(
            det_size[:, :2].max(axis=1)[:, np.newaxis], trk_size[:, :2].max(axis=1)[np.newaxis])
        cost = np.full(distance.shape, _FORBIDDEN)
        for i, j in np.argwhere((distance <= gate) | (overlap >= self.config.min_iou)):
            detection, track = detections[i], tracks[j]
            similarity = self._category_similarity(detection.category, detection.color, track, overlap[i, j])
            if similarity is None:
                continue
            # A small bias towards confirmed objects, so a duplicate tentative never steals their match.
            bias = 0.0 if track.confirmed else 0.1
            cost[i, j] = min(distance[i, j] / gate[i, j], 1.0) + (1.0 - overlap[i, j]) + (1.0 - similarity) + bias
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _FORBIDDEN]

    def _category_similarity(self, category: str, color: str | None, track: _Track,
                             overlap: float) -> float | None:
        """Return how well a category fits a track, or None if they must not associate.

        Colours must agree. Categories must be equal, or close as texts, or both coarse shapes of
        boxes that overlap by ``shape_flip_iou``: the geometric detector may call one object a
        cube in one frame and a cylinder in the next, and two objects cannot share a place.
        """
        obj = track.obj
        if color is not None and obj.color is not None and color != obj.color:
            return None
        if category == obj.category or category in track.category_votes:
            return 1.0
        if category in SHAPES and obj.category in SHAPES and overlap >= self.config.shape_flip_iou:
            return 0.5
        if self._text_similarity is None:
            return None
        similarity = self._similarity(category, obj.category)
        return similarity if similarity >= self.config.label_merge_similarity else None

    def _similarity(self, a: str, b: str) -> float:
        key = (a, b) if a <= b else (b, a)
        if key not in self._similarity_cache:
            self._similarity_cache[key] = float(self._text_similarity(a, b))
        return self._similarity_cache[key]

    def _compatible(self, a: _Track, b: _Track, overlap: float) -> bool:
        return (self._category_similarity(a.obj.category, a.obj.color, b, overlap) is not None
                or self._category_similarity(b.obj.category, b.obj.color, a, overlap) is not None)

    # Fusion.

    def _start_track(self, detection: Detection, stamp: int) -> None:
        key = self._next_key
        self._next_key += 1
        score = _vote_weight(detection.score)
        obj = MapObject(
            id=f"tentative_{key}", label=detection.label, category=detection.category,
            attributes=tuple(detection.attributes), color=detection.color,
            position=detection.position, size=detection.size, yaw=_wrap_half_turn(detection.yaw),
            confidence=self.config.hit_gain * score, observations=1,
            first_seen_ns=stamp, last_seen_ns=stamp,
        )
        self._tracks[key] = _Track(
            obj=obj, key=key, widest=obj.size.copy(), label_votes={detection.label: score},
            category_votes={detection.category: score},
            attribute_votes={tuple(detection.attributes): score},
        )

    def _absorb(self, track: _Track, detection: Detection, stamp: int) -> None:
        """Fold a matched detection into its track: votes, confidence, pose."""
        obj, config = track.obj, self.config
        score = _vote_weight(detection.score)
        track.hit_this_frame = True
        track.missed_streak = 0
        obj.observations += 1
        obj.last_seen_ns = max(obj.last_seen_ns, stamp)
        obj.confidence += (1.0 - obj.confidence) * config.hit_gain * score
        for votes, key in ((track.label_votes, detection.label), (track.category_votes, detection.category),
                           (track.attribute_votes, tuple(detection.attributes))):
            votes[key] = votes.get(key, 0.0) + score
        _elect(track)
        if obj.color is None:
            obj.color = detection.color
        if track.held_by is not None:
            # The grasp point places it, and the fingers hide part of it: what is seen of it is no
            # better estimate of its pose or size.
            return

        position = np.asarray(detection.position, dtype=np.float64)
        size = np.asarray(detection.size, dtype=np.float64)
        jump_limit = max(config.jump_distance_m, 0.25 * float(np.max(obj.size[:2])))
        if np.linalg.norm(position - obj.position) > jump_limit:
            track.jump_streak += 1
            if track.jump_streak < config.jump_frames:
                return
            # The object really moved: start the estimate afresh from here.
            obj.position, obj.size, obj.yaw = position.copy(), size.copy(), _wrap_half_turn(detection.yaw)
            track.averaged, track.jump_streak = 1, 0
            return
        track.jump_streak = 0
        track.averaged += 1
        alpha = max(1.0 / track.averaged, config.min_alpha)
        obj.position += alpha * (position - obj.position)
        obj.size += alpha * (size - obj.size)
        # Boxes look the same after a half turn, and square ones after a quarter turn.
        symmetry = math.pi / 2 if abs(obj.size[0] - obj.size[1]) < 0.1 * obj.size[0] else math.pi
        obj.yaw = _wrap_half_turn(obj.yaw + alpha * math.remainder(detection.yaw - obj.yaw, symmetry))

    # Misses, moves, merges.

    def _count_misses(self, frame: CameraFrame, stamp: int, change: MapChange) -> None:
        """Count a miss for every undetected object that the frame should show; drop stale ones."""
        config = self.config
        unseen = [track for track in self._tracks.values() if not track.hit_this_frame and track.held_by is None]
        if not unseen:
            return
        visible = expected_visible(
            np.array([t.obj.position for t in unseen]), np.array([t.obj.size for t in unseen]), frame,
            margin_px=config.image_margin_px, min_range_m=config.min_range_m,
            max_range_m=config.max_range_m, occlusion_margin_m=config.occlusion_margin_m,
            yaws=np.array([t.obj.yaw for t in unseen]))
        ttl_ns = config.tentative_ttl_s * 1e9
        for track, in_view in zip(unseen, visible):
            if in_view:
                track.missed_streak += 1
                track.obj.confidence *= config.miss_decay
            if track.confirmed:
                if track.missed_streak >= config.max_misses:
                    self._drop(track, change)
            elif track.missed_streak >= config.tentative_max_misses or stamp - track.obj.last_seen_ns > ttl_ns:
                self._drop(track, change)

    def _relocate_moved(self, stamp: int) -> None:
        """Move confirmed objects whose place is seen empty onto compatible new candidates."""
        config = self.config
        candidates = [t for t in self._tracks.values()
                      if not t.confirmed and t.hit_this_frame and t.obj.observations >= config.move_frames]
        for candidate in sorted(candidates, key=lambda t: t.key):
            new = candidate.obj
            missing = [t for t in self._tracks.values()
                       if t.confirmed and t.missed_streak >= config.move_frames and self._compatible(
                           t, candidate,
                           box_iou(t.obj.position, t.obj.size, t.obj.yaw, new.position, new.size, new.yaw))]
            if not missing:
                continue
            moved = min(missing, key=lambda t: float(np.linalg.norm(t.obj.position - new.position)))
            obj = moved.obj
            obj.position, obj.size, obj.yaw = new.position.copy(), new.size.copy(), new.yaw
            obj.observations += new.observations
            obj.last_seen_ns = stamp
            obj.confidence = max(obj.confidence, new.confidence)
            moved.missed_streak = moved.jump_streak = 0
            moved.averaged = new.observations
            moved.hit_this_frame = True
            del self._tracks[candidate.key]

    def _merge_duplicates(self, change: MapChange) -> None:
        """Fold compatible objects that occupy the same place into the older one."""
        config = self.config
        ordered = sorted(self._tracks.values(), key=lambda t: (not t.confirmed, t.key))
        if len(ordered) < 2:
            return
        position, size, yaw = box_arrays((t.obj.position, t.obj.size, t.obj.yaw) for t in ordered)
        overlap = iou_matrix(position, size, yaw, position, size, yaw)
        distance = np.linalg.norm(position[:, np.newaxis] - position[np.newaxis], axis=2)
        close = np.triu((distance <= config.merge_distance_m) | (overlap >= config.merge_iou), k=1)
        for i, j in np.argwhere(close):
            keep, other = ordered[i], ordered[j]
            if keep.key in self._tracks and other.key in self._tracks and self._compatible(keep, other, overlap[i, j]):
                if other.held_by is not None:
                    # Confirmed objects come first: the other is a second confirmed one, not a duplicate.
                    continue
                self._fold(keep, other, change)

    def _fold(self, keep: _Track, other: _Track, change: MapChange) -> None:
        """Merge ``other`` into ``keep``, weighting poses by observations, and drop it."""
        a, b = keep.obj, other.obj
        if keep.held_by is None:
            weight = b.observations / (a.observations + b.observations)
            a.position += weight * (b.position - a.position)
            a.size += weight * (b.size - a.size)
        a.observations += b.observations
        a.first_seen_ns = min(a.first_seen_ns, b.first_seen_ns)
        a.last_seen_ns = max(a.last_seen_ns, b.last_seen_ns)
        a.confidence = max(a.confidence, b.confidence)
        for mine, theirs in ((keep.label_votes, other.label_votes), (keep.category_votes, other.category_votes),
                             (keep.attribute_votes, other.attribute_votes)):
            for word, vote in theirs.items():
                mine[word] = mine.get(word, 0.0) + vote
        _elect(keep)
        if _width(other.widest) > _width(keep.widest):
            keep.widest = other.widest
        keep.hit_this_frame = keep.hit_this_frame or other.hit_this_frame
        if keep.hit_this_frame:
            keep.missed_streak = 0
        self._drop(other, change)

    def _follow(self, grippers: Sequence[Gripper]) -> None:
        """Move each held object with its gripper's grasp point."""
        for track in self._tracks.values():
            if track.held_by is not None and track.held_by < len(grippers):
                track.obj.position = grippers[track.held_by].grasp_point + track.held_offset

    def _grasp_and_let_go(self, grippers: Sequence[Gripper]) -> None:
        """Let go of held objects whose fingers opened off them; grasp objects the fingers closed on.

        An object is grasped by fingers that just closed to the opening its unhidden width allows
        (core.gripper.holds); from then on the fingers themselves measure it, so it is let go once
        they open wider than that by the holding slack, or meet.
        """
        for index, gripper in enumerate(grippers):
            if gripper.opening is None:
                continue
            for track in [t for t in self._tracks.values() if t.held_by == index]:
                obj = track.obj
                if not holds(gripper.opening, track.held_opening, is_irregular(obj.category), gripper.max_opening):
                    track.held_by, track.held_offset, obj.held = None, None, False
            holding = any(t.held_by == index for t in self._tracks.values())
            if holding or gripper.closed_by < self.config.grasp_closing_m:
                continue
            grasped = [t for t in self._tracks.values()
                       if t.confirmed and t.held_by is None
                       and box_distance(gripper.grasp_point, t.obj.position, t.obj.size, t.obj.yaw)
                       <= self.config.held_distance_m
                       and holds(gripper.opening, _width(t.widest), is_irregular(t.obj.category), gripper.max_opening)]
            if grasped:
                track = min(grasped, key=lambda t: float(np.linalg.norm(t.obj.position - gripper.grasp_point)))
                obj = track.obj
                obj.size = track.widest.copy()
                track.held_by, track.held_offset, obj.held = index, obj.position - gripper.grasp_point, True
                track.held_opening, track.missed_streak = gripper.opening, 0

    def _drop(self, track: _Track, change: MapChange) -> None:
        del self._tracks[track.key]
        if track.confirmed:
            change.removed.append(track.obj.id)

    def _confirm(self, change: MapChange) -> None:
        for track in sorted(self._tracks.values(), key=lambda t: t.key):
            if not track.confirmed and track.obj.observations >= self.config.min_observations:
                track.confirmed = True
                track.obj.id = self._new_id(track.obj)
                track.reported = track.obj.copy()
                change.added.append(track.obj.id)

    def _new_id(self, obj: MapObject) -> str:
        words = [obj.color, obj.category] if obj.color and obj.color not in obj.category else [obj.category]
        prefix = re.sub(r"[^a-z0-9]+", "_", " ".join(words).lower()).strip("_") or "object"
        index = self._next_index.get(prefix, 0) + 1
        self._next_index[prefix] = index
        return f"{prefix}_{index}"

    def _report_updates(self, change: MapChange) -> None:
        config = self.config
        for track in self._tracks.values():
            if not track.confirmed or track.reported is None or track.obj.id in change.added:
                continue
            now, before = track.obj, track.reported
            if (np.linalg.norm(now.position - before.position) > config.change_position_m
                    or np.max(np.abs(now.size - before.size)) > config.change_size_m
                    or abs(math.remainder(now.yaw - before.yaw, math.pi)) > config.change_yaw_rad
                    or (now.label, now.category, now.attributes, now.color, now.held)
                    != (before.label, before.category, before.attributes, before.color, before.held)):
                track.reported = now.copy()
                change.updated.append(now.id)


def _width(size: NDArray[np.float64]) -> float:
    """Return a box's width across the fingers: its narrower horizontal extent."""
    return float(min(size[0], size[1]))


def _note_widest(track: _Track) -> None:
    """Remember the track's size if it is the widest seen (not while held: the grasp point places it)."""
    if track.held_by is None and _width(track.obj.size) > _width(track.widest):
        track.widest = track.obj.size.copy()


def _elect(track: _Track) -> None:
    """Set an object's label, category and attributes to the most voted ones."""
    obj = track.obj
    obj.label = max(track.label_votes, key=track.label_votes.__getitem__)
    obj.category = max(track.category_votes, key=track.category_votes.__getitem__)
    obj.attributes = max(track.attribute_votes, key=track.attribute_votes.__getitem__)


def _wrap_half_turn(yaw: float) -> float:
    """Return ``yaw`` brought into (-pi/2, pi/2], the range of an upright box's yaw."""
    wrapped = math.remainder(float(yaw), math.pi)
    return math.pi / 2 if wrapped == -math.pi / 2 else wrapped


def _vote_weight(score: float) -> float:
    # A zero or broken score must still count a little, or an object could never be confirmed.
    return float(np.clip(score, 0.05, 1.0)) if math.isfinite(score) else 0.05


