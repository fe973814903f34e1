"""What every skill shares: its declaration, its result and how calls bind to its conditions."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from modular_robot.skills.interfaces import SkillContext

OBJECT_ID_PATTERN = r"^[A-Za-z0-9_\-]+$"


@dataclass(frozen=True)
class SkillResult:
    """The outcome of one skill execution.

    Attributes:
        success: Whether every step ran and the skill's own checks passed.
        reason: What happened, or why it failed or was refused.
        effects: What the skill observed ("observed") and what only perception can confirm
            ("unverified", grounded predicates), plus "moved": whether any motion was commanded.
    """

    success: bool
    reason: str
    effects: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skill:
    """A skill: its parameters, conditions and execution.

    Attributes:
        name: Name the planner calls it by.
        description: Docstring shown to the planner.
        params: Parameter model; its JSON Schema is the call's contract.
        preconditions: Predicates over parameter names that must hold before execution.
        effects: Predicates over parameter names that hold after a successful execution.
        execute: Runs the skill with validated parameters.
        requires: Parts of the robot (SkillContext fields: "arm", "base") the skill cannot run without.
        moves_object: The call moves the object it names, and only perception can tell where it went.
        grasps: A success leaves the named object in the gripper.
        releases: A success leaves the gripper empty, letting go of whatever it held.
    """

    name: str
    description: str
    params: type[BaseModel]
    preconditions: tuple[str, ...]
    effects: tuple[str, ...]
    execute: Callable[[BaseModel, SkillContext], SkillResult]
    requires: tuple[str, ...] = ()
    moves_object: bool = False
    grasps: bool = False
    releases: bool = False

    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the skill's parameters."""
        return self.params.model_json_schema()

    @cached_property
    def object_arguments(self) -> tuple[str, ...]:
        """The parameters that name map objects: those with the object id pattern."""
        properties = self.schema().get("properties", {})
        return tuple(name for name, spec in properties.items()
                     if any(s.get("pattern") == OBJECT_ID_PATTERN for s in (spec, *spec.get("anyOf", ()))))

    def run(self, params: BaseModel, ctx: SkillContext) -> SkillResult:
        """Execute the skill, refusing without motion when the robot lacks a part it needs."""
        missing = [part for part in self.requires if getattr(ctx, part) is None]
        if missing:
            parts = " and ".join(f"an {part}" if part == "arm" else f"a {part}" for part in missing)
            return refuse(f"{self.name} needs {parts}, which this robot does not have")
        return self.execute(params, ctx)


def skill(name: str, function: Callable[[Any, SkillContext], SkillResult], params: type[BaseModel],
          preconditions: tuple[str, ...], effects: tuple[str, ...], requires: tuple[str, ...] = (),
          **facts: bool) -> Skill:
    """Declare a skill: its function's docstring is the description the planner reads; `facts` are
    Skill's flags (moves_object, grasps, releases)."""
    return Skill(name, inspect.cleandoc(function.__doc__ or ""), params, preconditions, effects, function, requires,
                 **facts)


@dataclass(frozen=True)
class CallError:
    """Why a skill call was rejected before execution.

    Attributes:
        reason: A message naming the skill and every offending argument.
    """

    reason: str


def bind_predicates(predicates: Sequence[str], params: BaseModel) -> list[str]:
    """Return the predicates with every parameter name replaced by the call's value.

    For example "relation(object, target)" with relation="in", object="cube", target="tray"
    becomes "in(cube, tray)".
    """
    values = {name: str(value) for name, value in params.model_dump().items()}
    return [re.sub(r"[A-Za-z_]+", lambda m: values.get(m.group(0), m.group(0)), p) for p in predicates]


def refuse(reason: str) -> SkillResult:
    """Return the result of a skill that refused before commanding any motion."""
    return SkillResult(False, reason, {"moved": False})
