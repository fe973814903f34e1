"""The regression suite's summary and its Markdown and static HTML reports (no ROS).

Input is the structure `modular-robot eval` writes to results.json (ARCHITECTURE.md, "Figures that
tools can read"): ``{"summary": {...}, "scenarios": [...]}``, each scenario with name, category,
passed, false_success, predicates, transcript and, where the run produced them, ``images``
(``{"before": path, "after": path}`` relative to the report folder) and ``error``.
"""

from __future__ import annotations

import html
from pathlib import Path

# Transcript roles that are the conversation itself, as opposed to planner, sim and map notes.
DIALOGUE_ROLES = ("user", "robot")


def summarize(scenarios: list[dict]) -> dict:
    """Return results.json's summary: totals, false successes and counts per category.

    Args:
        scenarios: Scenario entries with at least category, passed and false_success.

    Returns:
        ``{"total", "passed", "failed", "false_success", "pass_rate", "by_category"}``, where
        ``pass_rate`` is a fraction (None for no scenarios) and ``by_category`` maps each category,
        sorted by name, to ``{"total", "passed", "false_success"}``.
    """
    by_category: dict[str, dict[str, int]] = {}
    for entry in scenarios:
        counts = by_category.setdefault(entry["category"], {"total": 0, "passed": 0, "false_success": 0})
        counts["total"] += 1
        counts["passed"] += bool(entry["passed"])
        counts["false_success"] += bool(entry["false_success"])
    total = len(scenarios)
    passed = sum(bool(e["passed"]) for e in scenarios)
    return {
        "total": total,
        "passed": passed,
        "failed": total - passed,
        "false_success": sum(bool(e["false_success"]) for e in scenarios),
        "pass_rate": round(passed / total, 4) if total else None,
        "by_category": {name: by_category[name] for name in sorted(by_category)},
    }


def _percent(passed: int, total: int) -> str:
    return f"{100.0 * passed / total:.1f} %" if total else "n/a"


def _failing(entry: dict) -> list[dict]:
    return [p for p in entry.get("predicates", []) if not p["passed"]]


def _dialogue(entry: dict) -> list[dict]:
    return [e for e in entry.get("transcript", []) if e.get("role") in DIALOGUE_ROLES]


def _status(entry: dict) -> str:
    if entry["passed"]:
        return "PASS"
    return "FAIL (false success)" if entry["false_success"] else "FAIL"


def _false_success_line(scenarios: list[dict]) -> str:
    names = [e["name"] for e in scenarios if e["false_success"]]
    if not names:
        return "False successes: 0 (the stack never claimed success that ground truth contradicts)"
    return (f"False successes: {len(names)} — the stack reported success but ground truth failed in: "
            + ", ".join(names))


# Markdown ---------------------------------------------------------------------------------------

def _md(text: str) -> str:
    """Return text safe inside a Markdown table cell or list item.

    Newlines would end a table row and ``<`` would start raw HTML in most renderers; ``|`` would
    split a cell.
    """
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\r", " ").replace("\n", " "))


def _md_code(text: str) -> str:
    # A code span cannot hold its own delimiter; predicates never contain backticks, but be safe.
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def build_markdown(results: dict, title: str = "Regression suite") -> str:
    """Return the Markdown report of an eval run.

    Args:
        results: The results.json structure (summary from :func:`summarize`, and scenarios).
        title: The report's heading.
    """
    summary, scenarios = results["summary"], results["scenarios"]
    lines = [f"# {_md(title)}", ""]
    lines.append(f"**Passed: {summary['passed']}/{summary['total']} "
                 f"({_percent(summary['passed'], summary['total'])})**")
    lines.append("")
    marker = "> **⚠ " if summary["false_success"] else "> **"
    lines.append(marker + _md(_false_success_line(scenarios)) + "**")
    lines += ["", "## Success by category", "",
              "| category | scenarios | passed | failed | false success | pass rate |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, counts in summary["by_category"].items():
        lines.append(f"| {_md(name)} | {counts['total']} | {counts['passed']} | "
                     f"{counts['total'] - counts['passed']} | {counts['false_success']} | "
                     f"{_percent(counts['passed'], counts['total'])} |")
    lines.append(f"| **all** | {summary['total']} | {summary['passed']} | {summary['failed']} | "
                 f"{summary['false_success']} | {_percent(summary['passed'], summary['total'])} |")
    lines += ["", "## Scenarios", ""]
    for entry in scenarios:
        lines += _markdown_scenario(entry)
    return "\n".join(lines).rstrip() + "\n"


def _markdown_scenario(entry: dict) -> list[str]:
    timing = f"{entry['sim_s']:.1f} s sim, {entry['wall_s']:.1f} s wall" if entry.get("sim_s") is not None else ""
    lines = [f"### {_md(entry['name'])} — {_status(entry)}", "",
             f"Category: {_md(entry['category'])}" + (f"; {timing}" if timing else ""), ""]
    if entry.get("error"):
        lines += [f"Run error: {_md(entry['error'])}", ""]
    failing = _failing(entry)
    if failing:
        lines.append("Failing predicates:")
        lines += [f"- {_md_code(p['predicate'])}: {_md(p['detail'])}" for p in failing]
        lines.append("")
    dialogue = _dialogue(entry)
    if dialogue:
        lines.append("Dialogue:")
        lines += [f"- **{e['role']}:** {_md(e['text'])}" for e in dialogue]
        lines.append("")
    images = entry.get("images", {})
    if images:
        lines.append(" ".join(f"![{_md(entry['name'])} {label}]({path})" for label, path in images.items()))
        lines.append("")
    if entry.get("log"):
        lines += [f"[Full log]({entry['log']})", ""]
    return lines


# HTML -------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.headline { font-size: 1.4em; }
.false-success { font-size: 1.3em; font-weight: bold; padding: 0.6em 1em; border-radius: 0.3em; }
.false-success.bad { background: #fdd; border: 2px solid #c00; color: #900; }
.false-success.good { background: #dfd; border: 2px solid #393; }
.scenario { border-top: 1px solid #ccc; margin-top: 1.5em; }
.PASS { color: #282; } .FAIL { color: #c00; }
.dialogue .user { font-weight: bold; }
img { max-width: 45%; margin-right: 1em; border: 1px solid #ccc; }
"""


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def build_html(results: dict, title: str = "Regression suite") -> str:
    """Return a self-contained static HTML report of an eval run (images are relative links).

    Args:
        results: The results.json structure (summary from :func:`summarize`, and scenarios).
        title: The page title.
    """
    summary, scenarios = results["summary"], results["scenarios"]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_h(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{_h(title)}</h1>"]
    parts.append(f'<p class="headline">Passed: <b>{summary["passed"]}/{summary["total"]}</b> '
                 f'({_h(_percent(summary["passed"], summary["total"]))})</p>')
    kind = "bad" if summary["false_success"] else "good"
    parts.append(f'<p class="false-success {kind}">{_h(_false_success_line(scenarios))}</p>')
    parts.append("<h2>Success by category</h2><table><tr><th>category</th><th>scenarios</th><th>passed</th>"
                 "<th>failed</th><th>false success</th><th>pass rate</th></tr>")
    for name, counts in summary["by_category"].items():
        parts.append(_html_row(_h(name), counts["total"], counts["passed"], counts["false_success"]))
    parts.append(_html_row("<b>all</b>", summary["total"], summary["passed"], summary["false_success"]))
    parts.append("</table><h2>Scenarios</h2>")
    for entry in scenarios:
        parts.append(_html_scenario(entry))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_row(label: str, total: int, passed: int, false_success: int) -> str:
    return (f"<tr><td>{label}</td><td>{total}</td><td>{passed}</td><td>{total - passed}</td>"
            f"<td>{false_success}</td><td>{_h(_percent(passed, total))}</td></tr>")


def _html_scenario(entry: dict) -> str:
    status = _status(entry)
    parts = [f'<section class="scenario" id="{_h(entry["name"])}">',
             f'<h3>{_h(entry["name"])} — <span class="{status.split()[0]}">{_h(status)}</span></h3>']
    timing = (f"; {entry['sim_s']:.1f} s sim, {entry['wall_s']:.1f} s wall"
              if entry.get("sim_s") is not None else "")
    parts.append(f"<p>Category: {_h(entry['category'])}{_h(timing)}</p>")
    if entry.get("error"):
        parts.append(f"<p><b>Run error:</b> {_h(entry['error'])}</p>")
    failing = _failing(entry)
    if failing:
        parts.append("<p>Failing predicates:</p><ul>")
        parts += [f"<li><code>{_h(p['predicate'])}</code>: {_h(p['detail'])}</li>" for p in failing]
        parts.append("</ul>")
    dialogue = _dialogue(entry)
    if dialogue:
        parts.append('<p>Dialogue:</p><ul class="dialogue">')
        parts += [f'<li class="{_h(e["role"])}">{_h(e["role"])}: {_h(e["text"])}</li>' for e in dialogue]
        parts.append("</ul>")
    images = entry.get("images", {})
    if images:
        parts.append("<p>" + "".join(f'<img src="{_h(path)}" alt="{_h(entry["name"])} {_h(label)}" '
                                     f'title="{_h(label)}">' for label, path in images.items()) + "</p>")
    if entry.get("log"):
        parts.append(f'<p><a href="{_h(entry["log"])}">Full log</a></p>')
    parts.append("</section>")
    return "\n".join(parts)


def write_reports(results: dict, out_dir: Path, title: str = "Regression suite") -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into `out_dir`; return their paths."""
    markdown, page = out_dir / "report.md", out_dir / "report.html"
    markdown.write_text(build_markdown(results, title), encoding="utf-8")
    page.write_text(build_html(results, title), encoding="utf-8")
    return markdown, page
