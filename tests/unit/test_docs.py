"""The documentation holds together, without a database: the README stays an entry page, every
relative link of README.md and docs/*.md reaches a file (and a heading, when it names one),
every image in docs/ is shown somewhere, and every path docs/architecture.md names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 260
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg")

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# A project path in backticks: `engine/usecases/reads.py`, `api/console/`, `cypher/trace.cypher`.
PROJECT_PATH = re.compile(
    r"`((?:engine|api|loaders|cli|cypher|bench|tests|scripts|docs)/[A-Za-z0-9_./-]*)`"
)


def prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks (a `# comment` in bash is no heading)."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(page):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    return [m.group(1) for line in prose(page) for m in LINK.finditer(line)]


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target) is not None


def test_readme_is_an_entry_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): "
        "move the detail to a page in docs/ and link it"
    )


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in links(page):
            if is_external(target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_every_image_in_docs_is_shown() -> None:
    shown = {
        (page.parent / t.partition("#")[0]).resolve()
        for page in PAGES
        for t in links(page)
        if not is_external(t)
    }
    images = [p for p in (ROOT / "docs").rglob("*") if p.suffix.lower() in IMAGES]
    assert images, "docs/ has no images: the console's screenshots are gone"
    assert sorted(str(p.relative_to(ROOT)) for p in images if p.resolve() not in shown) == []


def test_architecture_names_existing_paths() -> None:
    """The "where is X" map and the code layout name files that exist (a moved module is moved
    here too)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(PROJECT_PATH.findall(text))
    assert len(named) > 40
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_slug_follows_github() -> None:
    assert slug("Benchmark (last run)") == "benchmark-last-run"
    assert slug("Where the online load's time goes") == "where-the-online-loads-time-goes"
    assert slug("Population directory: reaching every person") == (
        "population-directory-reaching-every-person"
    )
    assert slug("`/v1/positives` pages") == "v1positives-pages"
