"""The README's client set-ups are the manifests the tests check and start (tests/test_manifests.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"the README has no '## {heading}' section"
    return match.group(1)


def linked_snippets(text: str) -> list[tuple[str, str]]:
    """Each JSON snippet of `text` with the manifest file its paragraph links to: (path, snippet)."""
    return re.findall(
        r"\]\((manifests/[\w/.-]+\.json)\)(?:(?!\]\(manifests/).)*?^```json\n(.*?)^```", text, re.M | re.S
    )


def test_quick_start_snippets_are_the_checked_manifests() -> None:
    """Each JSON snippet is the manifest file its paragraph links to; each command is in claude-code/add.sh."""
    quick_start = section(README, "Quick start")
    snippets = linked_snippets(quick_start)
    assert len(snippets) >= 5
    for path, snippet in snippets:
        assert json.loads(snippet) == json.loads((ROOT / path).read_text()), f"the README's copy of {path} differs"
    commands = (ROOT / "manifests" / "claude-code" / "add.sh").read_text().splitlines()
    shown = [line for line in quick_start.splitlines() if line.startswith("claude mcp add")]
    assert shown and all(line in commands for line in shown)


def test_quick_start_says_which_set_up_works_today_and_which_after_the_release() -> None:
    quick_start = section(README, "Quick start")
    assert "**Today, from a checkout**" in quick_start and "**After the first release**" in quick_start
    for line in quick_start.splitlines():
        if "uvx --from glm-mcp-server" in line and line.startswith("claude mcp add"):
            before = quick_start[: quick_start.index(line)].rstrip().splitlines()
            assert "After the first release" in "\n".join(before[-3:]), line
    assert '"command": "uvx"' not in quick_start, "a JSON snippet of today that starts the unpublished package"
