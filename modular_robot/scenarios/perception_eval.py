"""Score detections against ground truth: matching and the accuracy figures of benchmarks/perception_eval.py.

Pure functions on plain data, so that the detector benchmark, the semantic-map evaluation and tests
share one definition of "found", "false" and "correct".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from modular_robot.core.perception.types import Detection
from modular_robot.scenarios.world_state import ObjectState

# The coarse shape the geometric detector should name for each scenario object type.
SHAPE_OF_TYPE: dict[str, str] = {
    "cube": "cube",
    "cylinder": "cylinder",
    "sphere": "sphere",
    "duck": "irregular",
    "tray": "tray",
    "bowl": "bowl",
}
# A detection farther than this from every object is a false one (m).
MATCH_DISTANCE_M = 0.05
FOUND_WITHIN_M = 0.02
# Objects smaller than this (largest extent, m) are not required to be found.
MIN_OBJECT_SIZE_M = 0.03


@dataclass(frozen=True)
class TruthObject:
    """A ground-truth object as the evaluation sees it.

    Attributes:
        id: Scenario id.
        type: Scenario type (cube, duck, tray, ...).
        color: Colour name, or None.
        center: Centre of its axis-aligned bounding box (m), world frame.
        size: Extent of that box (m).
    """

    id: str
    type: str
    color: str | None
    center: np.ndarray
    size: np.ndarray

    @classmethod
    def from_state(cls, state: ObjectState) -> TruthObject:
        """Return the evaluation view of a simulator ObjectState."""
        lo, hi = np.asarray(state.aabb_min, dtype=float), np.asarray(state.aabb_max, dtype=float)
        return cls(state.id, state.type, state.color, (lo + hi) / 2, hi - lo)

    @property
    def shape(self) -> str | None:
        """Return the coarse shape expected for this object, or None for types without one."""
        return SHAPE_OF_TYPE.get(self.type)


@dataclass(frozen=True)
class Match:
    """One object paired with one detection.

    Attributes:
        truth: Index into the truth list.
        detection: Index into the detection list.
        distance: Distance between the detection's box centre and the object's box centre (m).
    """

    truth: int
    detection: int
    distance: float


def match_detections(truths: Sequence[TruthObject], detections: Sequence[Detection],
                     max_distance: float = MATCH_DISTANCE_M) -> list[Match]:
    """Pair objects and detections one-to-one, minimising the total centre distance.

    Hungarian assignment on 3D centre distances; pairs farther apart than `max_distance` are left
    unmatched.

    Returns:
        The matches, ordered by truth index.
    """
    if not truths or not detections:
        return []
    centres = np.array([t.center for t in truths])
    positions = np.array([np.asarray(d.position, dtype=float) for d in detections])
    cost = np.linalg.norm(centres[:, np.newaxis] - positions[np.newaxis], axis=2)
    # Pairs beyond the gate get a cost no allowed pairing can beat, then are dropped.
    gated = np.where(cost <= max_distance, cost, max_distance * (len(truths) + len(detections) + 1))
    rows, cols = linear_sum_assignment(gated)
    return [Match(int(r), int(c), float(cost[r, c])) for r, c in zip(rows, cols) if cost[r, c] <= max_distance]


@dataclass(frozen=True)
class ObjectOutcome:
    """What became of one ground-truth object in one frame.

    Attributes:
        frame: Name of the frame (scene).
        id: Object id.
        type: Object type.
        required: Whether it had to be found (largest extent >= MIN_OBJECT_SIZE_M).
        matched: Whether a detection was paired with it.
        distance: Centre distance to that detection (m), or None.
        color_correct: Whether that detection named its colour right (False when unmatched).
        shape_correct: Whether it named its shape right; None for types without an expected shape.
    """

    frame: str
    id: str
    type: str
    required: bool
    matched: bool
    distance: float | None
    color_correct: bool
    shape_correct: bool | None

    @property
    def found(self) -> bool:
        """Return whether the object was matched within FOUND_WITHIN_M."""
        return self.distance is not None and self.distance <= FOUND_WITHIN_M


@dataclass
class Tally:
    """Counts accumulated over frames; ``figures()`` turns them into percentages.

    Attributes:
        objects: Objects that had to be found (largest extent >= MIN_OBJECT_SIZE_M).
        found: Of those, matched with a centre within FOUND_WITHIN_M.
        matched: Matched objects of any size (the base of colour and shape accuracy).
        color_correct: Matched objects whose colour was named right.
        shape_scored: Matched objects with an expected shape.
        shape_correct: Of those, the shape named right.
        detections: All detections.
        false_detections: Detections matched to no object.
        errors: Readable notes on each miss, wrong attribute and false detection.
        outcomes: One record per object per frame, for breakdowns (by type, by scene).
    """

    objects: int = 0
    found: int = 0
    matched: int = 0
    color_correct: int = 0
    shape_scored: int = 0
    shape_correct: int = 0
    detections: int = 0
    false_detections: int = 0
    errors: list[str] = field(default_factory=list)
    outcomes: list[ObjectOutcome] = field(default_factory=list)

    def add(self, truths: Sequence[TruthObject], detections: Sequence[Detection], frame: str = "") -> None:
        """Score one frame's detections against its objects and add the counts."""
        matches = match_detections(truths, detections)
        by_truth = {m.truth: m for m in matches}
        self.detections += len(detections)
        self.false_detections += len(detections) - len(matches)
        matched_detections = {m.detection for m in matches}
        for i, d in enumerate(detections):
            if i not in matched_detections:
                self.errors.append(f"{frame}: false detection {d.label!r} at {np.round(d.position, 3).tolist()}")
        for i, truth in enumerate(truths):
            match = by_truth.get(i)
            required = float(np.max(truth.size)) >= MIN_OBJECT_SIZE_M
            if required:
                self.objects += 1
            if match is None:
                if required:
                    self.errors.append(f"{frame}: missed {truth.id}")
                self.outcomes.append(ObjectOutcome(frame, truth.id, truth.type, required, False, None, False,
                                                   None if truth.shape is None else False))
                continue
            if required and match.distance <= FOUND_WITHIN_M:
                self.found += 1
            elif required:
                self.errors.append(f"{frame}: {truth.id} off by {match.distance * 100:.1f} cm")
            self.matched += 1
            detection = detections[match.detection]
            color_correct = detection.color == truth.color
            if color_correct:
                self.color_correct += 1
            else:
                self.errors.append(f"{frame}: {truth.id} colour named {detection.color}")
            shape_correct = None
            if truth.shape is not None:
                self.shape_scored += 1
                shape_correct = detection.category == truth.shape
                if shape_correct:
                    self.shape_correct += 1
                else:
                    self.errors.append(f"{frame}: {truth.id} shape named {detection.category}")
            self.outcomes.append(ObjectOutcome(frame, truth.id, truth.type, required, True, match.distance,
                                               color_correct, shape_correct))

    def figures(self) -> dict[str, float]:
        """Return the accuracy figures in percent (0 where nothing was counted)."""
        return {
            "found_within_2cm_pct": _percent(self.found, self.objects),
            "color_correct_pct": _percent(self.color_correct, self.matched),
            "shape_correct_pct": _percent(self.shape_correct, self.shape_scored),
            "false_detections_pct": _percent(self.false_detections, self.detections),
        }


def tally(frames: Iterable[tuple[Sequence[TruthObject], Sequence[Detection]]]) -> Tally:
    """Return the counts over (truths, detections) frames."""
    total = Tally()
    for index, (truths, detections) in enumerate(frames):
        total.add(truths, detections, f"frame {index}")
    return total


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
