"""The user documentation: the README's budget, links that resolve, benchmarks that exist."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) with an optional "title"; images too.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
BENCHMARK = re.compile(r"benchmarks/[A-Za-z0-9_]+\.py")


def _relative_links(document: Path) -> list[str]:
    """Return the link targets of a Markdown file that name files of this repository."""
    targets = LINK.findall(document.read_text(encoding="utf-8"))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_readme_stays_within_its_line_budget():
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the budget is {README_MAX_LINES}"


def test_readme_gives_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


def test_the_documents_exist():
    assert (ROOT / "docs" / "architecture.md") in DOCUMENTS and (ROOT / "CHANGELOG.md").exists()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(document):
    missing = [target for target in _relative_links(document)
               if not (document.parent / target.split("#", 1)[0]).exists()]
    assert not missing, f"{document.relative_to(ROOT)} links to missing files: {missing}"


def test_the_link_pattern_finds_relative_links_and_skips_urls_and_anchors():
    sample = ROOT / "docs" / "architecture.md"
    assert "adding_a_skill.md" in _relative_links(sample)
    assert LINK.findall("[a](https://x.org/y) [b](#part) [c](../z.md#top)") == ["https://x.org/y", "#part",
                                                                                  "../z.md#top"]


def test_every_benchmark_named_in_the_figures_exists():
    named = set(BENCHMARK.findall((ROOT / "docs" / "figures.md").read_text(encoding="utf-8")))
    assert named, "docs/figures.md names no benchmark script"
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, f"docs/figures.md names benchmarks that do not exist: {missing}"
