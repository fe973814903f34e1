"""What a parallel gripper's finger opening says about an object between its fingers.

One rule, read the same way by the skills (is the object still in the hand?), the critic (did the
pick hold?) and the semantic map (which object does the robot carry?).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modular_robot.core.robot_model import PANDA_MAX_OPENING

# Closing on an object leaves the fingers at least this fraction of its width apart; closing on
# nothing brings them together, so a smaller opening means the grasp missed.
HOLDING_WIDTH_FRACTION = 0.5
# Below this opening the fingers have met, whatever the object's width.
CLOSED_OPENING = 0.005
# Fingers resting on a box-like object are at most this much wider apart than its observed width.
HOLDING_SLACK = 0.01
# An open gripper reads within this of its widest opening (m).
OPEN_MARGIN = 0.005
# A held object's observed box lies within this of the grasp point (m): the grasp centre is inside
# the object, and its observed part may be only what the fingers leave in view.
HOLD_DISTANCE_M = 0.03
# Categories whose observed box is their true shape; anything else (a duck, a mug) is irregular.
BOX_LIKE = ("cube", "cylinder", "sphere", "flat", "tray", "bowl")


def is_irregular(category: str) -> bool:
    """Return whether an object of this category may be wider across the fingers than its box."""
    return category not in BOX_LIKE


def holding_bounds(width: float, irregular: bool = False,
                   max_opening: float = PANDA_MAX_OPENING) -> tuple[float, float]:
    """Return the finger openings (low, high] that show the fingers closed on an object `width` wide.

    An irregular object (a duck) can be wider across the fingers than its observed box says, so
    for it only an open gripper bounds the range from above.
    """
    high = max_opening - OPEN_MARGIN if irregular else min(width + HOLDING_SLACK, max_opening - OPEN_MARGIN)
    return max(CLOSED_OPENING, HOLDING_WIDTH_FRACTION * width), high


def holds(opening: float, width: float, irregular: bool = False, max_opening: float = PANDA_MAX_OPENING) -> bool:
    """Return whether a measured finger opening shows the fingers closed on an object `width` wide."""
    low, high = holding_bounds(width, irregular, max_opening)
    return low < opening <= high


class OpeningHistory:
    """The finger openings of the last few seconds, by stamp, to read the one a camera frame saw.

    Args:
        finger_joints: Names of the finger joints whose positions add up to the opening (m).
        span_ns: How long samples are kept.
    """

    def __init__(self, finger_joints: Sequence[str], span_ns: int = 2_000_000_000) -> None:
        self.finger_joints = tuple(finger_joints)
        self.span_ns = span_ns
        self._samples: deque[tuple[int, float]] = deque()

    def add(self, stamp_ns: int, names: Sequence[str], positions: Sequence[float]) -> None:
        """Record a joint-state sample; one without every finger joint, or not finite, is ignored."""
        if len(names) != len(positions):
            return
        index = {name: i for i, name in enumerate(names)}
        if not all(joint in index for joint in self.finger_joints):
            return
        opening = float(sum(positions[index[joint]] for joint in self.finger_joints))
        if not math.isfinite(opening):
            return
        if self._samples and stamp_ns < self._samples[-1][0]:
            # The clock went back (a restarted simulation): older samples belong to another time line.
            self._samples.clear()
        self._samples.append((stamp_ns, opening))
        while self._samples and self._samples[0][0] < stamp_ns - self.span_ns:
            self._samples.popleft()

    def at(self, stamp_ns: int) -> float | None:
        """Return the newest opening sampled at or before a stamp, or None when none is kept."""
        before = [opening for stamp, opening in self._samples if stamp <= stamp_ns]
        return before[-1] if before else None

    def closed_by(self, stamp_ns: int, window_ns: int) -> float:
        """Return how far the fingers closed (m) over the window that ends at a stamp: its widest
        opening less the opening at the stamp (0 when they only opened or nothing is known)."""
        now = self.at(stamp_ns)
        window = [opening for stamp, opening in self._samples if stamp_ns - window_ns <= stamp <= stamp_ns]
        return max(0.0, max(window) - now) if now is not None and window else 0.0


@dataclass(frozen=True)
class Gripper:
    """One gripper of the robot as a frame shows it.

    Attributes:
        grasp_point: World position (m) of the grasp centre between its fingertips.
        opening: Distance between its fingers (m), or None when unknown (nothing is then grasped
            or let go).
        closed_by: How far the fingers closed (m) over the last second (OpeningHistory.closed_by):
            only fingers that just closed grasp something.
        max_opening: Its widest opening (m).
    """

    grasp_point: NDArray[np.float64]
    opening: float | None
    closed_by: float = 0.0
    max_opening: float = PANDA_MAX_OPENING
