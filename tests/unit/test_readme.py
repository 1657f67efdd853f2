"""The README stays whole as branches add to it: its table of contents matches its sections,
and its variables table and ``.env.example`` name every variable the settings model reads.

Anchors follow GitHub's heading ids: lower case, punctuation other than ``-`` and ``_``
dropped, each space a ``-``, a repeated id suffixed ``-1``, ``-2``...
Source: https://docs.github.com/en/get-started/writing-on-github/getting-started-with-writing-and-formatting-on-github/basic-writing-and-formatting-syntax#section-links
"""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from vonage_bridge.config import _GROUPS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CHANGE_URL_ONLY = {"VONAGE_API_KEY", "VONAGE_API_SECRET"}
"""Variables ``.env.example`` and the README name that only ``change_url.py`` and ``doctor``
read (not the server's settings model)."""


def slug(heading: str) -> str:
    """GitHub's id of a heading's text."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading outside fenced code blocks."""
    found: list[tuple[int, str]] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"(#{1,6}) (.+)", line)
        if match and not fenced:
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchors(text: str) -> list[str]:
    """The id of every heading, in order, with GitHub's suffixes for repeats."""
    seen: dict[str, int] = {}
    ids = []
    for _, heading in headings(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        ids.append(base if count == 0 else f"{base}-{count}")
    return ids


def section(text: str, title: str) -> str:
    """The body of the heading ``title`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"#+ {re.escape(title)}", line))
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if re.match(rf"#{{1,{level}}} ", lines[i])
            and not lines[i].startswith("#" * (level + 1))
        ),
        len(lines),
    )
    return "\n".join(lines[start + 1 : end])


def toc_links() -> list[str]:
    """The anchors the Contents section links to, in order."""
    return re.findall(r"\]\(#([^)]+)\)", section(README, "Contents"))


def settings_variables() -> set[str]:
    """Every variable the settings model reads: the field aliases of every group."""
    return {f.alias for group in _GROUPS for f in group.model_fields.values() if f.alias}


def test_slug_follows_github() -> None:
    assert slug("Deploying to Fly.io") == "deploying-to-flyio"
    assert slug("Coming from websocket-openai (Node)") == "coming-from-websocket-openai-node"
    assert slug("Outcome callbacks (`status_url`)") == "outcome-callbacks-status_url"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### A") == ["a", "a-1", "a-2"]


def test_every_contents_link_points_at_a_heading() -> None:
    ids = set(anchors(README))
    links = toc_links()
    assert links, "no Contents links found"
    assert [link for link in links if link not in ids] == []


def test_every_section_is_in_the_contents_in_order() -> None:
    """Every ``##`` heading but Contents itself is linked, and in the README's order."""
    ids = anchors(README)
    sections = [
        anchor
        for (level, text), anchor in zip(headings(README), ids, strict=True)
        if level == 2 and text != "Contents"
    ]
    links = toc_links()
    assert [s for s in sections if s not in links] == []
    assert [link for link in links if link in sections] == sections


def test_every_link_to_a_section_of_the_readme_resolves() -> None:
    """Links like ``[above](#security)`` anywhere in the README, not only in Contents."""
    ids = set(anchors(README))
    assert sorted({a for a in re.findall(r"\]\(#([^)]+)\)", README) if a not in ids}) == []


def test_the_variables_table_names_every_setting() -> None:
    table = section(README, "Variables")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    assert sorted(settings_variables() - named) == []
    assert sorted(named - settings_variables() - CHANGE_URL_ONLY) == []


def test_env_example_has_a_line_for_every_setting() -> None:
    """Every variable has a line in ``.env.example`` (set, empty, or commented out as
    ``# NAME=`` when the platform sets it), and no other variable does."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    example = set(dotenv_values(ROOT / ".env.example"))
    example |= set(re.findall(r"^# ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    assert sorted(settings_variables() - example) == []
    assert sorted(example - settings_variables() - CHANGE_URL_ONLY) == []


def test_the_architecture_tree_names_every_module_and_folder() -> None:
    """Every top-level module and every sub-package of ``vonage_bridge`` is in the tree."""
    tree = section(README, "Architecture").split("```")[1]
    package = ROOT / "vonage_bridge"
    names = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    names |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert sorted(n for n in names if not re.search(rf"(?<![\w/]){re.escape(n)}", tree)) == []
