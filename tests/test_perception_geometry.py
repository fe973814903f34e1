"""Boxes lifted from point sets."""

import math

import numpy as np
import pytest

from modular_robot.core.perception.geometry import box_from_points, size_class


def _box_surface(centre, size, yaw, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    local = (rng.random((n, 3)) - 0.5) * np.asarray(size)
    c, s = math.cos(yaw), math.sin(yaw)
    world = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) + np.asarray(centre)
    return world


@pytest.mark.parametrize("yaw", [0.0, 0.4, -1.2, 1.5])
def test_box_recovers_centre_size_and_yaw(yaw):
    points = _box_surface((0.5, -0.1, 0.03), (0.10, 0.04, 0.06), yaw)
    centre, size, found_yaw = box_from_points(points)
    assert np.allclose(centre, (0.5, -0.1, 0.03), atol=0.003)
    assert np.allclose(size, (0.10, 0.04, 0.06), atol=0.004)
    assert abs(math.remainder(found_yaw - yaw, math.pi)) < 0.02


def test_support_height_extends_box_to_the_hidden_bottom():
    top_only = _box_surface((0.4, 0.0, 0.035), (0.04, 0.04, 0.01), 0.0)
    centre, size, _ = box_from_points(top_only, support_z=0.0)
    assert size[2] == pytest.approx(0.04, abs=0.002)
    assert centre[2] == pytest.approx(0.02, abs=0.002)


def test_size_classes():
    assert size_class(np.array([0.03, 0.03, 0.03])) == "small"
    assert size_class(np.array([0.08, 0.03, 0.03])) == "medium"
    assert size_class(np.array([0.24, 0.24, 0.05])) == "large"
