"""Shared output of the benchmark scripts: a readable table, notes, then one JSON line of figures."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Report:
    """Figures for the JSON line and rows for the table, in measurement order."""

    figures: dict[str, object] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str | None, value, label: str, unit: str = "", target: tuple[str, Callable] | None = None,
            digits: int = 1) -> None:
        """Record one figure (key None: table only); with a target, the table shows PASS/FAIL next to it."""
        if key is not None:
            self.figures[key] = value
        shown = "n/a" if value is None else (f"{value:,.{digits}f}" if isinstance(value, float) else str(value))
        verdict = ""
        if target is not None:
            text, holds = target
            verdict = f"{text:>8}  " + ("n/a" if value is None else ("PASS" if holds(value) else "FAIL"))
        self.rows.append((label, f"{shown} {unit}".rstrip(), verdict))

    def section(self, title: str) -> None:
        """Start a titled group of rows."""
        self.rows.append((f"-- {title}", "", ""))


def stdout_for_results():
    """Return a stream on the real stdout and point fd 1 at stderr.

    PyBullet and its EGL plugin print from C; sending those to stderr keeps stdout to the table and
    the JSON line, so the JSON stays the last line.
    """
    sys.stdout.flush()
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return results


def print_report(report: Report, out) -> None:
    """Print the table, the notes and, last, the JSON line."""
    rows = [r for r in report.rows if not r[0].startswith("-- ")]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for label, value, verdict in report.rows:
        if label.startswith("-- "):
            print(f"\n{label[3:]}", file=out)
            continue
        print(f"  {label:<{width}}  {value:>{value_width}}  {verdict}".rstrip(), file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    print(json.dumps(report.figures, separators=(", ", ": ")), file=out)
    out.flush()
