"""The twelve named colours shared by scenarios, the simulator and perception."""

from __future__ import annotations

# sRGB in [0, 1]. Chosen to be far apart from each other so that colour naming is well posed.
NAMED_COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "green": (0.10, 0.70, 0.15),
    "blue": (0.10, 0.25, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "orange": (1.00, 0.50, 0.00),
    "purple": (0.50, 0.15, 0.70),
    "white": (0.95, 0.95, 0.95),
    "black": (0.05, 0.05, 0.05),
    "gray": (0.50, 0.50, 0.50),
    "brown": (0.45, 0.25, 0.10),
    "pink": (1.00, 0.55, 0.75),
    "cyan": (0.10, 0.85, 0.90),
}


def rgba(name: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """Return the RGBA tuple of a named colour.

    Raises:
        KeyError: if the name is not one of the twelve named colours.
    """
    r, g, b = NAMED_COLORS[name]
    return (r, g, b, alpha)
