"""Colour naming: shading-invariant names for the twelve colours."""

import numpy as np
import pytest

from modular_robot.core.colors import NAMED_COLORS
from modular_robot.core.perception.color_naming import color_confidence, color_features, name_color, rank_colors


def _shaded(name: str, seed: int = 0, lit: float = 0.93, n: int = 200) -> np.ndarray:
    """Pixels of an object of a named colour: a lit top face and darker sides, as a renderer shades them."""
    rng = np.random.default_rng(seed)
    shade = np.where(rng.random(n) < 0.5, lit, rng.uniform(0.55, lit, n))
    rgb = np.asarray(NAMED_COLORS[name]) * shade[:, np.newaxis]
    return np.clip(np.round(rgb * 255 + rng.normal(0, 1.0, rgb.shape)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(NAMED_COLORS))
@pytest.mark.parametrize("lit", [0.82, 0.93, 1.0])
def test_every_colour_is_named_under_the_lighting_seen_in_renders(name, lit):
    assert name_color(_shaded(name, lit=lit)) == name


@pytest.mark.parametrize("name", list(NAMED_COLORS))
def test_a_few_highlight_and_silhouette_pixels_do_not_change_the_name(name):
    # Brightness is the 90th percentile, so up to a tenth of bright outliers leave even black alone.
    pixels = _shaded(name, n=300)
    pixels[:9] = 255  # a specular highlight on 3% of the object
    table = np.array([194, 153, 107], dtype=np.uint8)
    pixels[9:24] = ((pixels[9:24].astype(int) + table) // 2).astype(np.uint8)  # 5% of edges blended with the table
    assert name_color(pixels) == name


def test_white_gray_and_black_differ_by_brightness_alone():
    chromaticities = [color_features(_shaded(name))[0] for name in ("white", "gray", "black")]
    assert np.allclose(chromaticities[0], chromaticities[1], atol=0.03)
    assert [name_color(_shaded(name)) for name in ("white", "gray", "black")] == ["white", "gray", "black"]


def test_float_pixels_in_unit_range_name_like_uint8():
    pixels = _shaded("orange")
    assert name_color(pixels.astype(np.float64) / 255.0) == name_color(pixels) == "orange"


def test_ranking_lists_all_colours_nearest_first_and_confidence_is_bounded():
    ranking = rank_colors(_shaded("brown"))
    assert ranking[0][0] == "brown"
    assert sorted(name for name, _ in ranking) == sorted(NAMED_COLORS)
    distances = [d for _, d in ranking]
    assert distances == sorted(distances)
    confidence = color_confidence(ranking)
    assert 0.0 < confidence <= 1.0


@pytest.mark.parametrize("bad", [np.zeros((0, 3), np.uint8), np.zeros((5, 4), np.uint8), np.zeros(3, np.uint8)])
def test_bad_pixel_arrays_raise(bad):
    with pytest.raises(ValueError):
        name_color(bad)
