"""Every reference in the repository resolves inside it or in GARM's public source.

Code, tests and docs cite GARM's behaviour as ``garm@v0.1.5 path/file.go:line`` and pygarm's own
documentation as ``docs/<page>.md#<anchor>``. This test fails when a file cites notes that are not part
of the repository (the section sign of a private spec, notes kept elsewhere, a path outside the repository)
or links to a page or heading that does not exist, so a reader who clones pygarm never meets a
reference that leads nowhere. RFC section signs (``RFC 6455 §7.4.2``) are public and allowed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCANNED = (
    ("src", "*.py"),
    ("tests", "*.py"),
    ("bench", "*.py"),
    ("examples", "*.py"),
    ("docs", "*.md"),
    (".", "README.md"),
)
"""Where references live: the package, its tests, benchmarks, examples and every document."""

FORBIDDEN = (
    (re.compile("(?<!RFC [0-9]{3} )(?<!RFC [0-9]{4} )(?<!RFC [0-9]{5} )\N{SECTION SIGN}"),
     "a section sign that is not an RFC's: cite garm@v0.1.5 path:line or docs/<page>.md#<anchor>"),
    (re.compile(r"design[ -]notes", re.IGNORECASE), "notes outside the repository: cite docs/design.md"),
    (re.compile(r"style[ -]anchors", re.IGNORECASE), "notes outside the repository: cite docs/design.md"),
    (re.compile(r"\b(?:runner|metrics|companion)[ -]spec\b", re.IGNORECASE),
     "notes outside the repository: cite docs/garm-protocol.md"),
    (re.compile(r"\[obs\]"), "a marker of notes outside the repository: say '(observed)'"),
    (re.compile(r"\.\./shared|/work/s[h]ared|garm-v0\.1\.5-[a-z-]*spec"), "a file outside the repository"),
)
"""Patterns that only ever point outside the repository, with what to write instead."""

DOC_CITATION = re.compile(r"(?<![\w/.@-])(docs/[\w./-]+?\.md)(?:#([\w-]+))?")
"""``docs/<page>.md`` or ``docs/<page>.md#<anchor>`` anywhere in a file, relative to the repository root."""

MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
"""The target of a Markdown link, ``[text](target)``."""

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SECTION = "\N{SECTION SIGN}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text (outside code fences), duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def _anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        cache[path] = anchors(path.read_text(encoding="utf-8"))
    return cache[path]


def _resolve(target: Path, anchor: str | None, cache: dict[Path, set[str]]) -> str | None:
    """Why ``target#anchor`` does not resolve inside the repository, or ``None`` when it does."""
    try:
        target.resolve().relative_to(ROOT)
    except ValueError:
        return f"{target} is outside the repository"
    if not target.is_file():
        return f"{target.relative_to(ROOT) if target.is_absolute() else target} does not exist"
    if anchor and target.suffix == ".md" and anchor not in _anchors_of(target, cache):
        return f"no heading with anchor #{anchor} in {target.resolve().relative_to(ROOT)}"
    return None


def problems(path: Path, text: str, cache: dict[Path, set[str]]) -> list[str]:
    """Every reference in ``text`` (the contents of ``path``) that leads nowhere, as ``path:line: why``."""
    found: list[str] = []
    relative = path.relative_to(ROOT) if path.is_absolute() else path
    in_fence = False
    own_anchors: set[str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{relative}:{number}"
        for pattern, why in FORBIDDEN:
            if pattern.search(line):
                found.append(f"{where}: {why}: {line.strip()[:100]}")
        for match in DOC_CITATION.finditer(line):
            reason = _resolve(ROOT / match.group(1), match.group(2), cache)
            if reason:
                found.append(f"{where}: {match.group(0)}: {reason}")
        if path.suffix != ".md":
            continue
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        for match in MD_LINK.finditer(line):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            if not file_part:  # an anchor on this very page
                if own_anchors is None:
                    own_anchors = anchors(text)
                reason = None if anchor in own_anchors else f"no heading with anchor #{anchor} on this page"
            else:
                reason = _resolve(path.parent / file_part, anchor or None, cache)
            if reason:
                found.append(f"{where}: ({target}): {reason}")
    return found


def scanned_files() -> list[Path]:
    files: list[Path] = []
    for folder, pattern in SCANNED:
        base = ROOT / folder
        candidates = [base / pattern] if "*" not in pattern else sorted(base.rglob(pattern))
        files.extend(p for p in candidates if p.is_file() and not any(part.startswith(".") for part in
                                                                       p.relative_to(ROOT).parts))
    return files


def test_every_reference_resolves_inside_the_repository() -> None:
    cache: dict[Path, set[str]] = {}
    found: list[str] = []
    for path in scanned_files():
        found.extend(problems(path, path.read_text(encoding="utf-8"), cache))
    assert not found, "references that lead nowhere:\n" + "\n".join(found)


def test_the_scan_covers_code_tests_and_docs() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert {"README.md", "docs/garm-protocol.md", "docs/design.md", "src/pygarm/errors.py",
            "tests/test_references.py"} <= names


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Spelt in pieces, so that this file itself holds none of the references it rejects.
        ("GARM answers 500 here (spec " + SECTION + "6.6).", "section sign"),
        ("see runner" + " spec " + SECTION + "1.2", "section sign"),
        ("the " + SECTION + "1.5 key order", "section sign"),
        ("as the design" + " notes measured", "notes outside the repository"),
        ("the style" + " anchors say", "notes outside the repository"),
        ("[" + "obs] confirmed", "marker"),
        ("see ../" + "shared/x.md", "outside the repository"),
        ("docs/garm-protocol.md" + "#no-such-heading", "no heading with anchor"),
        ("docs/" + "no-such-page.md", "does not exist"),
    ],
)
def test_a_reference_that_leads_nowhere_is_reported(line: str, expected: str) -> None:
    found = problems(ROOT / "src" / "example.py", line, {})
    assert found and expected in found[0]


@pytest.mark.parametrize(
    "line",
    [
        "In the private-use range 4000-4999 of RFC 6455 §7.4.2.",
        "HTTP semantics (RFC 9110 §15.5) and cookies (RFC 6265 §5.2).",
        "GARM's handler (garm@v0.1.5 apiserver/controllers/controllers.go:65-97).",
        "See docs/garm-protocol.md#error-mapping and docs/design.md.",
    ],
)
def test_a_reference_that_resolves_is_accepted(line: str) -> None:
    assert problems(ROOT / "src" / "example.py", line, {}) == []


def test_markdown_links_are_checked_relative_to_their_page() -> None:
    page = ROOT / "docs" / "example.md"
    assert problems(page, "[ok](garm-protocol.md#filter-rules) [top](#x)\n# X", {}) == []
    found = problems(page, "[bad](events.md#nope) [gone](../" + "shared/spec.md)", {})
    assert len(found) == 3  # the missing anchor, the link outside the repository, its path text


def test_anchors_follow_github_rules() -> None:
    text = "# A `code` Title: v0.1.5\n```bash\n# not a heading\n```\n## Events\n## Events\n"
    assert anchors(text) == {"a-code-title-v015", "events", "events-1"}
