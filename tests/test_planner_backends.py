"""The planner node's backend parameter builds each backend from its settings, or says what is missing."""

from __future__ import annotations

import pytest

from modular_robot.core.mapping.objects import MapObject
from modular_robot.nodes.planner_node import make_planner
from modular_robot.planning.dialogue import Dialogue
from modular_robot.planning.plan import PlanRequest, validate_plan
from tiny_lm import build_tiny_lm


def settings(**values):
    defaults = {"model_dir": "", "base_url": "", "model": "", "api_key_env": "MODULAR_ROBOT_TEST_NO_KEY"}
    defaults.update(values)
    return defaults.__getitem__


def test_rules_is_the_offline_default_backend():
    assert make_planner("rules", settings()).name == "rules"


def test_unknown_backends_and_missing_settings_are_clear_errors():
    with pytest.raises(ValueError, match="backend must be one of"):
        make_planner("gpt", settings())
    with pytest.raises(ValueError, match="model_dir"):
        make_planner("transformers", settings())
    with pytest.raises(ValueError, match="base_url and model"):
        make_planner("openai", settings(base_url="http://127.0.0.1:9/v1"))


def test_openai_backend_is_built_from_base_url_and_model():
    planner = make_planner("openai", settings(base_url="http://127.0.0.1:9/v1", model="qwen2.5:7b"))
    assert planner.name == "openai"


def test_transformers_backend_loads_a_local_model_directory_and_plans_valid_calls(tmp_path):
    planner = make_planner("transformers", settings(model_dir=str(build_tiny_lm(tmp_path))))
    objects = [MapObject("red_cube_1", "small red cube", "cube", ("red", "small"), "red", [0.5, 0.1, 0.02], [0.04] * 3),
               MapObject("tray_1", "large gray tray", "tray", ("gray", "large"), "gray", [0.45, -0.25, 0.025],
                         [0.24, 0.24, 0.05])]
    plan = planner.plan(PlanRequest("put the red cube in the tray", objects, Dialogue()))
    assert planner.name == "transformers"
    assert validate_plan(plan, objects) == []
