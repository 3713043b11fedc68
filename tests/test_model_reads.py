"""What the model reads: over a real stdio subprocess, each kind of result can be acted on from its
structured content alone (what Claude Code hands its model), with no null or empty field."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from mcp import Client, StdioServerParameters

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.tools import answer as results_module
from tests.conftest import GENERAL_KEY, settings_for
from tests.processes import COMMAND, server_env

pytestmark = pytest.mark.anyio

NEXT_CALL = re.compile(r'Call get_result with task_id="([^"]+)" .*; it waits up to (\d+) s')


def empties(value: Any, path: str = "") -> list[str]:
    """The paths of null, empty or blank values anywhere in `value`: noise a model pays for."""
    found: list[str] = []
    if value is None or value in ("", [], {}):
        return [path or "(root)"]
    if isinstance(value, dict):
        for key, item in value.items():
            found += empties(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += empties(item, f"{path}[{index}]")
    return found


def stdio(emulator: Emulator, **env: str) -> StdioServerParameters:
    variables = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, **env)
    return StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=variables)


async def test_quick_handed_off_and_failing_calls_each_say_what_a_model_needs(emulator: Emulator) -> None:
    async with Client(stdio(emulator), mode="legacy") as client:
        schemas = {tool.name: tool.output_schema or {} for tool in (await client.list_tools()).tools}

        quick = await client.call_tool("chat", {"prompt": "Say hello.", "model": "glm-4.6"})
        content = quick.structured_content
        assert not quick.is_error and content is not None
        assert next(iter(content)) == "text" and content["text"], "the answer comes first"
        assert content["model"] == "glm-4.6" and "status" not in content
        assert empties(content) == [] and "total_tokens" not in content["usage"]
        jsonschema.validate(content, schemas["chat"])

        emulator.config.chunk_delay = 0.05
        handed = await client.call_tool("chat", {"prompt": "Write a long essay.", "wait_seconds": 0.3})
        content = handed.structured_content
        assert not handed.is_error and content is not None
        assert list(content)[:3] == ["status", "next", "job_id"] and content["status"] == "running"
        assert content["model"] and empties(content) == []
        jsonschema.validate(content, schemas["chat"])
        called = NEXT_CALL.search(content["next"])
        assert called is not None and called[1] == content["job_id"] and called[2] == "45", content["next"]
        # Doing exactly what `next` says gets the rest of the answer.
        emulator.config.chunk_delay = 0.0
        rest = await client.call_tool("get_result", {"task_id": called[1]})
        assert rest.structured_content is not None and rest.structured_content["status"] == "completed"
        assert rest.structured_content["result"]["text"].startswith(content.get("text", ""))
        assert empties(rest.structured_content) == []
        jsonschema.validate(rest.structured_content, schemas["get_result"])

        submitted = await client.call_tool("submit_async", {"prompt": "Later, please."})
        content = submitted.structured_content
        assert content is not None and NEXT_CALL.search(content["next"])[1] == content["task_id"]  # type: ignore[index]
        jsonschema.validate(content, schemas["submit_async"])

        failing = await client.call_tool("chat", {"promt": "Say hello."})
        assert failing.is_error and failing.structured_content is not None
        text = failing.content[0].text  # type: ignore[union-attr]
        # Such clients show the model the text copy of an error: what went wrong first, then what to do.
        assert text.startswith("Error: Invalid argument `promt`") and "Did you mean `prompt`?" in text
        assert "nothing was sent" in text.split("\n\n")[1]
        assert empties(failing.structured_content) == []
        jsonschema.validate(failing.structured_content, schemas["chat"])


async def test_reasoning_is_its_beginning_and_length_unless_asked_for_whole(
    settings: Settings, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_module, "REASONING_PREVIEW_CHARS", 40)
    arguments = {"prompt": "Think it over.", "model": "glm-4.6"}
    async with Client(create_server(settings)) as client:
        short = (await client.call_tool("chat", arguments)).structured_content
        whole = (await client.call_tool("chat", {**arguments, "include_reasoning": True})).structured_content
    assert short is not None and whole is not None
    assert len(whole["reasoning"]) > 40 and not whole["reasoning"].endswith("…")
    assert short["reasoning"].endswith("…") and len(short["reasoning"]) <= 41
    assert whole["reasoning"].startswith(short["reasoning"][:-1])
    assert short["reasoning_tokens"] == whole["reasoning_tokens"] > 0


async def test_an_api_that_goes_silent_is_said_to_be_silent_not_unreachable(emulator: Emulator) -> None:
    emulator.inject("stall:5", path="/chat/completions")
    settings = Settings.from_env(
        {"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url, "GLM_TIMEOUT": "0.5", "GLM_MAX_RETRIES": "0"}
    )
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("chat", {"prompt": "hello"})
    failure = result.structured_content
    assert result.is_error and failure is not None and failure["error"] == "upstream_timeout"
    assert "was reached, then sent nothing for 0.5 s" in failure["message"]
    assert "could not reach" not in failure["message"] and "GLM_TIMEOUT" in failure["hint"]


async def test_nothing_a_result_leaves_out_when_empty_is_required_by_its_output_schema(
    emulator: Emulator, data_dir: Any
) -> None:
    """structuredContent drops empty lists and objects (they tell a model nothing), so none may be required:
    an empty list_conversations once failed the SDK's own output validation ("Error executing tool")."""
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all")
    async with Client(create_server(settings)) as client:
        tools = (await client.list_tools()).tools
        required_empty = [
            f"{tool.name}: {where}.{name}"
            for tool in tools
            for where, schema in _object_schemas(tool.output_schema or {}, "")
            for name in schema.get("required", [])
            if schema["properties"][name].get("type") in {"array", "object"}
        ]
        assert not required_empty
        listed = await client.call_tool("list_conversations", {})
        assert not listed.is_error, listed.content
        assert listed.content[0].text == "No conversations."  # type: ignore[union-attr]


def _object_schemas(schema: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (sub)schema with properties in `schema`, with where it is."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append((where or "(top)", schema))
        for key, value in schema.items():
            found += _object_schemas(value, f"{where}/{key}" if where else key)
    elif isinstance(schema, list):
        for value in schema:
            found += _object_schemas(value, where)
    return found
