"""What the planner remembers between instructions: turns, referents, clarifications and moves.

One `Dialogue` lives in the planner node for the whole conversation. Backends read it to resolve
"it", "do the same with the blue one", "undo that", "put it back", and the answer to a clarifying
question; the task executor writes what actually happened (which objects moved from where), so
"undo" reverses what the robot did, not what it was asked to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Turns kept for follow-ups and for LLM prompts.
MAX_TURNS = 20


@dataclass(frozen=True)
class Turn:
    """One exchange.

    Attributes:
        user: The user's words.
        reply: What the robot answered (its plan summary, answer, question or refusal).
        kind: The plan kind ("execute", "answer", "clarify", "refuse", "not_understood").
        steps: The executed calls as "skill(args)" strings (for prompts).
        success: Whether the task succeeded (answers count as successes).
    """

    user: str
    reply: str
    kind: str
    steps: tuple[str, ...] = ()
    success: bool = False


@dataclass(frozen=True)
class Move:
    """An object the robot moved during one task.

    Attributes:
        object_id: Map id of the object.
        before: Its centre (x, y, z) in the world frame before the task (m).
        after: Its centre after the task, or None when it was left in the gripper or the map lost it.
    """

    object_id: str
    before: tuple[float, float, float]
    after: tuple[float, float, float] | None


@dataclass(frozen=True)
class Clarification:
    """A question the robot asked and waits to have answered.

    Attributes:
        instruction: The instruction that was ambiguous.
        candidates: Map ids the question offered.
        state: Backend-specific data needed to finish the instruction once the answer picks a candidate.
    """

    instruction: str
    candidates: tuple[str, ...]
    state: Any = None


@dataclass
class Dialogue:
    """The conversation's memory.

    Attributes:
        turns: The latest exchanges, oldest first (at most MAX_TURNS).
        referents: Map ids the last instruction was about ("it", "them").
        pending: The clarifying question waiting for an answer, or None.
        last_action: The rules backend's parsed form of the last executed instruction ("do the same").
        moves: Per executed task, the objects it moved, oldest first ("undo that", "put it back").
    """

    turns: list[Turn] = field(default_factory=list)
    referents: tuple[str, ...] = ()
    pending: Clarification | None = None
    last_action: Any = None
    moves: list[tuple[Move, ...]] = field(default_factory=list)

    def add_turn(self, turn: Turn) -> None:
        """Append an exchange, dropping the oldest beyond MAX_TURNS."""
        self.turns.append(turn)
        del self.turns[:-MAX_TURNS]

    def record_moves(self, moves: tuple[Move, ...]) -> None:
        """Remember what a task moved (ignored when it moved nothing)."""
        if moves:
            self.moves.append(moves)
            del self.moves[:-MAX_TURNS]

    def last_moves(self) -> tuple[Move, ...]:
        """Return the moves of the latest task that moved something (empty when none did)."""
        return self.moves[-1] if self.moves else ()

    def forget_last_moves(self) -> tuple[Move, ...]:
        """Remove and return the latest task's moves (after they were undone)."""
        return self.moves.pop() if self.moves else ()


def follow_renames(renamed: dict[str, str], object_id: str) -> str:
    """Return the id the map knows an object by now, following a chain of renames (old id -> new id)."""
    now_id, seen = object_id, {object_id}
    while now_id in renamed and renamed[now_id] not in seen:
        now_id = renamed[now_id]
        seen.add(now_id)
    return now_id


def moves_between(before: dict[str, np.ndarray], after: dict[str, np.ndarray], touched: set[str],
                  held: str | None, min_distance_m: float = 0.02,
                  renamed: dict[str, str] | None = None) -> tuple[Move, ...]:
    """Return the moves of the objects a task touched, from map positions before and after it.

    Args:
        before: Object id -> centre before the task.
        after: Object id -> centre after it.
        touched: Ids the task's calls named as the moved object (pick, place, push).
        held: Id of the object left in the gripper, if any.
        min_distance_m: Objects that moved less than this did not move.
        renamed: Ids the map replaced during the task (old id -> new id): a touched object seen
            anew under another id moved from its old id's place to its new id's, and is undone
            under its new id.

    A touched object the map no longer has is still a move (to an unknown place): "undo that"
    must then say it cannot put it back, not undo the task before.
    """
    renamed = renamed or {}
    moves = []
    for object_id in sorted(touched):
        if object_id not in before:
            continue
        start = tuple(float(v) for v in before[object_id])
        now_id = follow_renames(renamed, object_id)
        if now_id == held or now_id not in after:
            moves.append(Move(now_id, start, None))
        elif float(np.linalg.norm(after[now_id] - before[object_id])) >= min_distance_m:
            moves.append(Move(now_id, start, tuple(float(v) for v in after[now_id])))
    return tuple(moves)
