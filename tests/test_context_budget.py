"""What the model reads costs it context: the tool definitions stay within a budget, every field still described."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import GENERAL_KEY
from tests.processes import COMMAND, RawStdio, server_env

pytestmark = pytest.mark.anyio

INPUT_SCHEMA_BUDGET = 8_000
"""Characters of the input schemas of chat, web_search_chat, submit_async, get_result and list_jobs together,
as sent on the wire (compact JSON): half of what they were before the budget."""
MISSION_TOOLS = ("chat", "web_search_chat", "submit_async", "get_result", "list_jobs")
TOOLS_LIST_BUDGET = 30_000
"""Bytes of the default toolsets' whole `tools/list` result as the server writes it: clients that list the tools
(Cursor and VS Code put every definition in the model's context) pay them in every conversation. It was 57.8 KB,
39 KB of it output schemas and the same icon on every tool."""
ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
"""JSON Schema keywords that tell a reader about a value and validate nothing."""


def wire_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def described(schema: Any, path: str = "") -> list[str]:
    """The paths of the properties, at any depth, that carry no description (`role` enums excepted: they say it)."""
    missing: list[str] = []
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if isinstance(prop, dict) and not prop.get("description") and "enum" not in prop:
                missing.append(f"{path}{name}")
            missing += described(prop, f"{path}{name}.")
        if isinstance(schema.get("items"), dict):
            missing += described(schema["items"], f"{path}[].")
    return missing


async def test_the_input_schemas_fit_the_budget_and_say_what_each_field_is(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    sizes = {name: wire_size(tools[name].input_schema) for name in MISSION_TOOLS}
    print(f"input schemas: {sizes} = {sum(sizes.values())} characters (budget {INPUT_SCHEMA_BUDGET})")
    assert sum(sizes.values()) <= INPUT_SCHEMA_BUDGET, sizes
    for name in MISSION_TOOLS:
        schema = tools[name].input_schema
        assert described(schema) == [], (name, described(schema))
        assert "title" not in json.dumps(schema), f"{name}: generated titles say nothing to a model"
        assert "$ref" not in json.dumps(schema), f"{name}: not self-contained"
        assert schema.get("additionalProperties") is False, f"{name}: unknown arguments are refused, say so"


async def test_the_default_tools_list_fits_its_budget_on_the_wire() -> None:
    """Measured on the real command's stdio, as a client receives it."""
    list_tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }
    async with await anyio.open_process(COMMAND, env=server_env(GLM_API_KEY=GENERAL_KEY)) as process:
        raw = RawStdio(process)
        await raw.send(initialize)
        server_info = (await raw.answer(1))["result"]["serverInfo"]
        await raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"}, list_tools)
        listed = (await raw.answer(2))["result"]
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(10):
            await process.wait()
    size = len(json.dumps(listed, separators=(",", ":"), ensure_ascii=False).encode())
    print(f"tools/list: {len(listed['tools'])} tools, {size} bytes (budget {TOOLS_LIST_BUDGET})")
    assert size <= TOOLS_LIST_BUDGET, size
    assert server_info["icons"], "the icon is sent once, with the server"
    assert all("icons" not in tool for tool in listed["tools"]), "and not again with every tool"


async def test_output_schemas_hold_what_validates_and_nothing_for_a_reader(client: Client) -> None:
    """A model reads the result and the tool's description, never the output schema: a client validates against it."""
    for tool in (await client.list_tools()).tools:
        assert tool.output_schema is not None
        assert annotated(tool.output_schema) == [], (tool.name, annotated(tool.output_schema))


def annotated(schema: Any, path: str = "") -> list[str]:
    """The places in `schema` that carry an annotation keyword (a property's name is not a keyword)."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ANNOTATIONS:
                found.append(f"{path}/{key}")
            elif key in ("properties", "$defs") and isinstance(value, dict):
                for name, item in value.items():
                    found += annotated(item, f"{path}/{key}/{name}")
            else:
                found += annotated(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            found += annotated(item, f"{path}/{index}")
    return found
