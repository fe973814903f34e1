"""What every planner backend produces: a plan of skill calls, or an answer, question or refusal.

The rules, transformers and openai backends all return a `Plan`. A plan of kind "execute" is a
sequence of skill calls; the other kinds carry only the robot's reply: an answer to a question about
the scene, a clarifying question naming the candidates, a refusal with its reason, or "I did not
understand" with examples. `validate_plan` checks every call against the skill library's JSON
Schemas and every object id against the current map before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from modular_robot.core.mapping.objects import MapObject
from modular_robot.planning.dialogue import Dialogue
from modular_robot.skills.base import CallError
from modular_robot.skills.library import SKILLS, validate_call

PlanKind = Literal["execute", "answer", "clarify", "refuse", "not_understood"]
PLAN_KINDS: tuple[str, ...] = ("execute", "answer", "clarify", "refuse", "not_understood")



def object_arguments(skill: str) -> tuple[str, ...]:
    """Return the arguments of a skill that name map objects (none for an unknown skill)."""
    return SKILLS[skill].object_arguments if skill in SKILLS else ()

@dataclass(frozen=True)
class Call:
    """One skill call of a plan.

    Attributes:
        skill: Skill name, a key of `modular_robot.skills.library.SKILLS`.
        args: Arguments, valid against the skill's JSON Schema.
    """

    skill: str
    args: dict[str, Any] = field(default_factory=dict)

    def args_json(self) -> str:
        """Return the arguments as the canonical JSON of `PlanStep.args_json` (sorted keys)."""
        return json.dumps(self.args, sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        """Return {"skill": ..., "args": {...}}."""
        return {"skill": self.skill, "args": dict(self.args)}

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" if not isinstance(v, str) else f"{k}={v}" for k, v in self.args.items())
        return f"{self.skill}({inner})"


@dataclass(frozen=True)
class Plan:
    """A planner's answer to one instruction.

    Attributes:
        kind: "execute" (run `steps`), "answer" (a question about the scene, answered in `reply`),
            "clarify" (`reply` asks which of `candidates` is meant), "refuse" (`reply` says why),
            "not_understood" (`reply` says so and gives examples of what works).
        steps: The skill calls to run, in order (kind "execute" only).
        reply: What the robot says: the answer, the question, the refusal, or for "execute" a short
            statement of what it will do.
        candidates: Map ids a clarifying question offers, in the order named.
        tokens: Token counts of the model call behind the plan ("prompt", "completion"); empty for
            the rules backend.
    """

    kind: PlanKind
    steps: tuple[Call, ...] = ()
    reply: str = ""
    candidates: tuple[str, ...] = ()
    tokens: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the shape of the plan JSON Schema)."""
        return {"kind": self.kind, "steps": [c.to_dict() for c in self.steps], "reply": self.reply,
                "candidates": list(self.candidates)}

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """Build a plan from `to_dict` output or a model's JSON.

        Raises:
            ValueError: if the structure is wrong (not a mapping, unknown kind, a step without a
                skill name or with non-object arguments). Argument values are checked by `validate_plan`.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a plan must be a JSON object, got {type(data).__name__}")
        kind = data.get("kind", "execute")
        if kind not in PLAN_KINDS:
            raise ValueError(f"unknown plan kind {kind!r}; expected one of {', '.join(PLAN_KINDS)}")
        raw_steps = data.get("steps", [])
        if not isinstance(raw_steps, list):
            raise ValueError("'steps' must be a list")
        steps = []
        for index, step in enumerate(raw_steps, start=1):
            if not isinstance(step, dict) or not isinstance(step.get("skill"), str):
                raise ValueError(f"step {index} must be an object with a string 'skill'")
            args = step.get("args", {})
            if not isinstance(args, dict):
                raise ValueError(f"step {index}: 'args' must be an object")
            steps.append(Call(step["skill"], args))
        reply = data.get("reply", "")
        candidates = data.get("candidates", [])
        if not isinstance(reply, str) or not isinstance(candidates, list):
            raise ValueError("'reply' must be a string and 'candidates' a list")
        return cls(kind, tuple(steps), reply, tuple(str(c) for c in candidates))


@dataclass(frozen=True)
class PlanRequest:
    """Everything a backend plans from.

    Attributes:
        instruction: The user's words.
        objects: The semantic map's confirmed objects now.
        dialogue: The conversation so far (follow-ups, pronouns, pending clarification, undo).
        skills: Names of the skills this robot can run (a robot without a base cannot navigate).
        held: Id of the object in the gripper, or None.
        robot_pose: (x, y, yaw) of the robot's base in the world frame; None is the origin along +x.
    """

    instruction: str
    objects: Sequence[MapObject]
    dialogue: Dialogue
    skills: tuple[str, ...] = tuple(SKILLS)
    held: str | None = None
    robot_pose: tuple[float, float, float] | None = None


class Planner(Protocol):
    """A planner backend."""

    name: str

    def plan(self, request: PlanRequest) -> Plan:
        """Return the plan, answer, question or refusal for the request's instruction."""
        ...


def validate_plan(plan: Plan, objects: Iterable[MapObject], skills: Iterable[str] = tuple(SKILLS)) -> list[str]:
    """Return every problem of a plan's calls (empty when all are valid).

    A call is valid when its skill is one this robot can run, its arguments satisfy the skill's
    JSON Schema, and every object it names is in the map.
    """
    known = {o.id for o in objects}
    allowed = set(skills)
    problems = []
    for index, call in enumerate(plan.steps, start=1):
        if call.skill not in allowed:
            problems.append(f"step {index}: this robot has no skill '{call.skill}'")
            continue
        checked = validate_call(call.skill, call.args_json())
        if isinstance(checked, CallError):
            problems.append(f"step {index}: {checked.reason}")
            continue
        for name in object_arguments(call.skill):
            value = call.args.get(name)
            if value is not None and value not in known:
                problems.append(f"step {index}: {call.skill} names '{value}', which is not in the map")
    if plan.kind != "execute" and plan.steps:
        problems.append(f"a plan of kind '{plan.kind}' must have no steps")
    if plan.kind == "execute" and not plan.steps:
        problems.append("a plan of kind 'execute' needs at least one step")
    return problems
