"""A skill's facts come from its registration: which arguments are objects, what it grasps or releases."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from modular_robot.planning.plan import object_arguments
from modular_robot.skills.base import OBJECT_ID_PATTERN, Skill, SkillResult
from modular_robot.skills.library import SKILLS


class _HandOverParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    object: str = Field(pattern=OBJECT_ID_PATTERN)
    person: str | None = Field(None, pattern=OBJECT_ID_PATTERN)
    message: str = "here you are"


def _hand_over(params, ctx) -> SkillResult:
    """Hand an object over."""
    return SkillResult(True, "handed over")


def test_object_arguments_are_the_parameters_with_the_object_id_pattern():
    assert SKILLS["place"].object_arguments == ("object", "target")
    assert SKILLS["navigate_to"].object_arguments == ("object",)
    assert SKILLS["say"].object_arguments == () and SKILLS["search"].object_arguments == ()
    skill = Skill("hand_over", "", _HandOverParams, (), (), _hand_over, ("arm",), releases=True)
    assert skill.object_arguments == ("object", "person")
    assert object_arguments("place") == ("object", "target") and object_arguments("no_such_skill") == ()


def test_grasps_and_releases_agree_with_the_declared_effects():
    for skill in SKILLS.values():
        assert skill.grasps == ("holding(object)" in skill.effects), skill.name
        assert skill.releases == ("gripper_empty" in skill.effects), skill.name
        if skill.grasps:
            assert skill.moves_object and "object" in skill.object_arguments, skill.name
    assert {s.name for s in SKILLS.values() if s.moves_object} == {"pick", "place", "place_at", "push"}
