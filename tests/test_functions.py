"""Function calling and knowledge-base retrieval through chat and submit_async, against the emulator."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.emulator import Emulator
from glm_mcp.glm.types import FunctionCall, ToolCall
from glm_mcp.tools import functions
from glm_mcp.tools.functions import FunctionCallRequest
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import COMMAND, RawStdio, server_env
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
    first = ok(await client.call_tool("chat", {"prompt": ASK, "tools": [WEATHER]}))
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


def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


DRAFT_04 = "http://json-schema.org/draft-04/schema#"
COSTLY_SCHEMAS = [
    # The pairwise uniqueness check of draft-04's `enum`: seconds of CPU for 1,500 objects.
    (
        {"$schema": DRAFT_04, "type": "object", "properties": {"a": {"enum": [{"v": i} for i in range(1500)]}}},
        "draft-04",
    ),
    ({"$schema": "https://example.com/my-meta-schema", "type": "object"}, "accepted: 2020-12, 2019-09"),
    # The same pairwise check on any draft: `type` wants its items unique, and objects cannot be sorted.
    ({"type": "object", "properties": {"a": {"type": [{"v": i} for i in range(101)]}}}, "at most 100"),
    ({"type": "object", "properties": {f"p{i}": {} for i in range(2001)}}, "2,000 JSON values"),
    ({"type": "object", "properties": {"a": _nested(40)}}, "deeper than 32 levels"),
    ({"type": "object", "properties": {f"p{i}": {"description": "x" * 30_000} for i in range(3)}}, "65,536"),
]


@pytest.mark.parametrize(("schema", "words"), COSTLY_SCHEMAS)
async def test_a_schema_whose_check_would_cost_too_much_is_refused_naming_the_bound(
    client: Client, emulator: Emulator, schema: dict[str, Any], words: str
) -> None:
    out = failed(await client.call_tool("chat", {"prompt": ASK, "tools": [{"name": "f", "parameters": schema}]}))
    assert out["error"] == "invalid_argument" and out["field"] == "tools[0].parameters"
    assert words in out["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_schemas_within_the_bounds_pass(client: Client, emulator: Emulator) -> None:
    zones = {"type": "string", "enum": [f"Zone/{i}" for i in range(1_000)]}  # long, but strings sort
    draft_07 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {"tz": zones}}
    nested = {"type": "object", "properties": {"a": _nested(20)}}
    tools = [{"name": "in_zone", "parameters": draft_07}, {"name": "deep", "parameters": nested}, WEATHER]
    ok(await client.call_tool("chat", {"prompt": ASK, "tools": tools}))
    assert len(upstream_calls(emulator, "/chat/completions")[-1].body["tools"]) == 3


HEAVY = {"type": "object", "properties": {f"p{i}": {} for i in range(1_990)}}
"""Within every bound, but a few tenths of a second of the checker's time each."""


async def test_checking_schemas_has_a_time_limit(
    client: Client, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(functions, "SCHEMA_CHECK_SECONDS", 0.01)
    tools = [{"name": f"f{i}", "parameters": HEAVY} for i in range(5)]
    out = failed(await client.call_tool("chat", {"prompt": ASK, "tools": tools}))
    assert out["error"] == "invalid_argument" and out["field"] == "tools"
    assert "took over 0.01 s, the limit" in out["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_other_callers_are_answered_while_a_costly_schema_is_checked(emulator: Emulator) -> None:
    """Over a real stdio server: a call whose schemas take seconds to check (twenty heavy ones, the last broken)
    and a list_jobs sent just after it. The list_jobs is answered first: the check does not hold up the event loop."""
    broken = {"type": "object", "properties": {"a": {"type": "nope"}}}
    tools = [*({"name": f"f{i}", "parameters": HEAVY} for i in range(20)), {"name": "last", "parameters": broken}]
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    async with await anyio.open_process(COMMAND, env=env) as process:
        raw = RawStdio(process)
        await raw.initialize()
        costly_call = {"name": "chat", "arguments": {"prompt": ASK, "tools": tools}}
        await raw.send(
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": costly_call},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_jobs", "arguments": {}}},
        )
        listed = await raw.answer(3, timeout=60)
        assert not any(message.get("id") == 2 for message in raw.seen), "list_jobs waited for the schema check"
        costly = await raw.answer(2, timeout=120)
        await process.aclose()
    assert listed["result"]["isError"] is False
    refused = costly["result"]["structuredContent"]
    assert costly["result"]["isError"] is True and refused["error"] == "invalid_argument"
    assert refused["field"] in {"tools", "tools[20].parameters"}  # the time limit, or the broken one if quicker
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
