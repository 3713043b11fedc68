"""The README as a user's guide: its tool reference follows the live tool schemas, and its client
snippets are the manifests the tests check (the variable table is checked in test_config.py).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.doctor import write_report

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.anyio


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"the README has no '## {heading}' section"
    return match.group(1)


def tool_sections() -> dict[str, str]:
    """Each '### `tool`' subsection of '## Tools', by tool name."""
    parts = re.split(r"^### (.*)\n", section(README, "Tools"), flags=re.M)
    return {
        m.group(1): body
        for title, body in zip(parts[1::2], parts[2::2], strict=True)
        if (m := re.fullmatch(r"`(\w+)`", title))
    }


def json_blocks(text: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"^```json\n(.*?)^```", text, re.M | re.S)]


@pytest.fixture
async def tools() -> dict[str, Any]:
    """Every tool, whatever the default toolsets: the reference documents them all."""
    async with Client(create_server(Settings.from_env({"GLM_MCP_TOOLSETS": "all"}))) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


async def test_every_tool_has_a_section_and_every_section_a_tool(tools: dict[str, Any]) -> None:
    assert set(tool_sections()) == set(tools), "add or remove the tool's '### `name`' section under '## Tools'"


async def test_each_tool_section_names_every_argument(tools: dict[str, Any]) -> None:
    for name, body in tool_sections().items():
        missing = [arg for arg in tools[name].input_schema["properties"] if f"`{arg}`" not in body]
        assert not missing, f"the README's section on {name} does not mention {missing}"


async def test_each_tool_section_shows_a_result_made_of_real_fields(tools: dict[str, Any]) -> None:
    for name, body in tool_sections().items():
        examples = json_blocks(body)
        assert examples, f"the README's section on {name} has no example result"
        schema = tools[name].output_schema  # {"anyOf": [result, failure]}: the result is the first
        fields = set(schema["$defs"][schema["anyOf"][0]["$ref"].split("/")[-1]]["properties"])
        for example in examples:
            assert set(example) <= fields, f"{name}'s example has fields it does not return: {set(example) - fields}"


def test_quick_start_snippets_are_the_checked_manifests() -> None:
    """Each JSON snippet is the manifest file its paragraph links to; each command is in claude-code/add.sh."""
    quick_start = section(README, "Quick start")
    snippets = re.findall(
        r"\]\((manifests/[\w/.-]+\.json)\)(?:(?!\]\(manifests/).)*?^```json\n(.*?)^```", quick_start, re.M | re.S
    )
    assert len(snippets) >= 5
    for path, snippet in snippets:
        assert json.loads(snippet) == json.loads((ROOT / path).read_text()), f"the README's copy of {path} differs"
    commands = (ROOT / "manifests" / "claude-code" / "add.sh").read_text().splitlines()
    shown = [line for line in quick_start.splitlines() if line.startswith("claude mcp add")]
    assert shown and all(line in commands for line in shown)


def test_the_doctor_sample_is_in_the_doctors_own_words() -> None:
    out = io.StringIO()
    write_report([], out)
    header = out.getvalue().split("\n\n")[0]
    assert header in section(README, "Quick start")


def test_the_first_two_commands_install_into_the_checkouts_venv_and_test() -> None:
    """Command 1 must work whatever the system's Python is: nothing is pip-installed outside .venv."""
    first = re.search(r"^```bash\n(.*?)^```", README, re.M | re.S)
    assert first
    commands = [line for line in first.group(1).splitlines() if line and not line.startswith("#")]
    assert commands == ["scripts/serve demo --transport http", "scripts/test"]
    for script in ("serve", "test"):
        text = (ROOT / "scripts" / script).read_text()
        assert "make_venv" in text and ".venv/bin/python -m pip install" in text
    assert not re.search(r"^(?!.*\.venv[/\\](bin|Scripts)[/\\]).*\bpip install\b", README, re.M), (
        "a pip install outside .venv"
    )


def test_quick_start_says_which_set_up_works_today_and_which_after_the_release() -> None:
    quick_start = section(README, "Quick start")
    assert "**Today, from a checkout**" in quick_start and "**After the first release**" in quick_start
    for line in quick_start.splitlines():
        if "uvx --from glm-mcp-server" in line and line.startswith("claude mcp add"):
            before = quick_start[: quick_start.index(line)].rstrip().splitlines()
            assert "After the first release" in "\n".join(before[-3:]), line
    assert '"command": "uvx"' not in quick_start, "a JSON snippet of today that starts the unpublished package"
