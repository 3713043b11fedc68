"""What the model reads costs it context: the tool definitions stay within a budget, every field still described."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

INPUT_SCHEMA_BUDGET = 8_000
"""Characters of the input schemas of chat, web_search_chat, submit_async, get_result and list_jobs together,
as sent on the wire (compact JSON): half of what they were before the budget."""
MISSION_TOOLS = ("chat", "web_search_chat", "submit_async", "get_result", "list_jobs")


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
