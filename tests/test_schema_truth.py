"""What the tools' schemas and descriptions tell the model is true: no argument with a single choice
(`tool_choice`), no description that claims inputs the tool lacks, the value forms the platform takes (`stop` as
one word). Read through the SDK's client, as a model's client reads them, in process."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from glm_mcp.emulator import Emulator
from tests.conftest import upstream_calls
from tests.test_tools import ok

pytestmark = pytest.mark.anyio


async def schemas(client: Client) -> dict[str, dict[str, Any]]:
    return {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}


# --- submit_async ---------------------------------------------------------------------------------------------


async def test_submit_async_says_which_of_chats_inputs_it_lacks(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    chat, submit = tools["chat"], tools["submit_async"]
    lacking = set(chat.input_schema["properties"]) - set(submit.input_schema["properties"])
    assert lacking == {"conversation_id", "from_turn", "wait_seconds", "include_reasoning"}
    description = submit.description or ""
    assert "same inputs as chat" not in description
    assert "conversation_id" in description and "return at once" in description  # no conversation, no wait
    assert "include_reasoning" in description  # where the reasoning is read instead: get_result
    assert "include_reasoning" in tools["get_result"].input_schema["properties"]


# --- tool_choice ----------------------------------------------------------------------------------------------


async def test_no_tool_offers_a_tool_choice_with_one_choice(client: Client, emulator: Emulator) -> None:
    """The platform takes only `"auto"` (docs/glm-endpoints.md), what it does anyway: no choice to offer."""
    assert [name for name, schema in (await schemas(client)).items() if "tool_choice" in schema["properties"]] == []
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    ok(await client.call_tool("chat", {"prompt": "Weather in Paris?", "tools": [weather]}))
    assert upstream_calls(emulator, "/chat/completions")[-1].body["tool_choice"] == "auto"


# --- stop -----------------------------------------------------------------------------------------------------


async def test_stop_takes_one_stop_word_as_a_string(client: Client, emulator: Emulator) -> None:
    """The platform's SDKs take `stop` as a string or a list; the model writes either form."""
    ask = {"prompt": "Tell me about lanterns", "model": "glm-4-flash"}
    full = ok(await client.call_tool("chat", ask))["text"]
    word = full.split()[12]
    stopped = ok(await client.call_tool("chat", {**ask, "stop": word}))
    assert upstream_calls(emulator, "/chat/completions")[-1].body["stop"] == [word]
    assert "finish_reason" not in stopped and stopped["text"] == full[: full.index(word)]  # ended, at `stop`
    listed = ok(await client.call_tool("chat", {**ask, "stop": [word]}))
    assert listed["text"] == stopped["text"]
    stop = (await schemas(client))["chat"]["properties"]["stop"]
    assert {option["type"] for option in stop["anyOf"]} == {"string", "array"}
