"""Function calling and knowledge-base retrieval through chat and submit_async, against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from glm_mcp.emulator import Emulator
from glm_mcp.glm.types import FunctionCall, ToolCall
from glm_mcp.tools.functions import FunctionCallRequest
from tests.conftest import upstream_calls
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = "Use get_weather for Paris, please."


async def test_an_agent_asks_glm_to_call_a_function_and_feeds_the_result_back(
    client: Client, emulator: Emulator
) -> None:
    first = ok(await client.call_tool("chat", {"prompt": ASK, "tools": [WEATHER], "tool_choice": "auto"}))
    sent = upstream_calls(emulator, "/chat/completions")[-1]
    assert sent.body is not None
    assert sent.body["tools"] == [{"type": "function", "function": WEATHER}]
    assert sent.body["tool_choice"] == "auto"
    assert sent.body["tool_stream"] is True  # glm-4.6 streams the arguments in pieces: they were joined
    (wanted,) = sent.response["choices"][0]["message"]["tool_calls"]
    assert first["finish_reason"] == "tool_calls"
    (call,) = first["tool_calls"]
    assert call == {
        "id": wanted["id"],
        "name": "get_weather",
        "arguments": json.loads(wanted["function"]["arguments"]),
    }
    assert "tool_call_id" in first["next"]

    # The agent runs the function and sends the call and its result back, the calls as the result gave them.
    messages = [
        {"role": "user", "content": ASK},
        {"role": "assistant", "tool_calls": first["tool_calls"]},
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"},
    ]
    second = ok(await client.call_tool("chat", {"messages": messages, "tools": [WEATHER]}))
    body = upstream_calls(emulator, "/chat/completions")[-1].body
    assert body is not None
    assert body["messages"][1]["tool_calls"] == [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(call["arguments"])},
        }
    ]
    assert "Sunny, 21 C" in second["text"] and "tool_calls" not in second


async def test_models_that_send_calls_whole_get_no_tool_stream(client: Client, emulator: Emulator) -> None:
    out = ok(await client.call_tool("chat", {"prompt": ASK, "tools": [WEATHER], "model": "glm-4-flash"}))
    body = upstream_calls(emulator, "/chat/completions")[-1].body
    assert body is not None and "tool_stream" not in body
    assert out["tool_calls"][0]["name"] == "get_weather"


async def test_submit_async_takes_functions_and_get_result_returns_the_calls(
    client: Client, emulator: Emulator
) -> None:
    emulator.config.async_delay = 0.0
    submitted = ok(await client.call_tool("submit_async", {"prompt": ASK, "tools": [WEATHER]}))
    body = upstream_calls(emulator, "/async/chat/completions")[-1].body
    assert body is not None and body["tools"][0]["function"]["name"] == "get_weather"
    assert "tool_stream" not in body  # not streamed: the platform refuses tool_stream without stream
    done = ok(await client.call_tool("get_result", {"task_id": submitted["task_id"], "wait_seconds": 10}))
    assert done["result"]["tool_calls"][0]["name"] == "get_weather"
    assert set(done["result"]["tool_calls"][0]["arguments"]) == {"city"}


@pytest.mark.parametrize(
    ("tools", "field", "words"),
    [
        (
            [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}],
            "tools[0].parameters",
            "properties/a/type",
        ),
        ([{"name": "f", "parameters": {"type": "string"}}], "tools[0].parameters", "object schema"),
        ([{"name": "bad name!"}], "tools[0].name", "pattern"),
        ([{"name": "f"}, {"name": "f"}], "tools", "unique"),
        ([{"name": "f", "params": {}}], "tools[0].params", "not permitted"),
    ],
)
async def test_function_definitions_are_checked_before_sending(
    client: Client, emulator: Emulator, tools: list[dict[str, Any]], field: str, words: str
) -> None:
    out = failed(await client.call_tool("chat", {"prompt": ASK, "tools": tools}))
    assert out["error"] == "invalid_argument" and out["field"] == field
    assert words in out["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_tool_choice_needs_something_to_choose(client: Client, emulator: Emulator) -> None:
    out = failed(await client.call_tool("chat", {"prompt": ASK, "tool_choice": "auto"}))
    assert out["field"] == "tool_choice"
    out = failed(await client.call_tool("chat", {"prompt": ASK, "tools": [WEATHER], "tool_choice": "required"}))
    assert out["field"] == "tool_choice"
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_a_knowledge_id_adds_the_retrieval_tool(client: Client, emulator: Emulator) -> None:
    args = {"prompt": "What does the handbook say about holidays?", "knowledge_id": "kb-1234"}
    out = ok(await client.call_tool("chat", {**args, "knowledge_prompt": "Answer from {{knowledge}}"}))
    body = upstream_calls(emulator, "/chat/completions")[-1].body
    assert body is not None
    assert body["tools"] == [
        {"type": "retrieval", "retrieval": {"knowledge_id": "kb-1234", "prompt_template": "Answer from {{knowledge}}"}}
    ]
    assert "knowledge base kb-1234" in out["text"]
    assert "tool_stream" not in body  # no function to stream
    refused = failed(await client.call_tool("chat", {"prompt": "x", "knowledge_prompt": "{{knowledge}}"}))
    assert refused["field"] == "knowledge_prompt"


@pytest.mark.parametrize(
    ("text", "parsed", "error"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}, None),
        ("", {}, None),
        ('{"city": "Par', None, "not JSON"),
        ('["Paris"]', None, "not an object"),
    ],
)
def test_arguments_are_parsed_or_flagged_with_the_text_kept(text: str, parsed: Any, error: str | None) -> None:
    call = FunctionCallRequest.from_call(ToolCall(id="c1", function=FunctionCall(name="f", arguments=text)))
    assert call.arguments == parsed
    if error is None:
        assert call.raw_arguments is None and call.arguments_error is None
    else:
        assert call.raw_arguments == text and call.arguments_error is not None and error in call.arguments_error
