"""The four tools end to end: the SDK's Client in process, the server, the emulator on a real socket.

Each check compares what the tool returned with what the emulator actually sent back.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any
from xml.etree import ElementTree

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, ToolAnnotations

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.glm import GLMAPIError
from glm_mcp.server.failures import describe_failure
from glm_mcp.tools import LISTING_FILE, listing
from glm_mcp.tools.table import TOOLS as TOOL_TABLE
from tests.conftest import CODING_KEY, DEFAULT_TOOLS, GENERAL_KEY, settings_for, upstream_calls

pytestmark = pytest.mark.anyio

TOOLS = DEFAULT_TOOLS


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def failed(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    assert result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return dict(result.structured_content)


def answered(emulator: Emulator) -> dict[str, Any]:
    """The body of the emulator's last answer to a chat request."""
    exchange = upstream_calls(emulator, "/chat/completions")[-1]
    assert exchange.status == 200 and isinstance(exchange.response, dict)
    return exchange.response


async def test_lists_the_four_tools_with_flat_described_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == set(TOOLS)
    for tool in tools.values():
        assert tool.title and tool.description and tool.annotations is not None
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        schema = tool.input_schema
        assert "$defs" not in json.dumps(schema), f"{tool.name} input schema is not self-contained"
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert tools["get_result"].input_schema["required"] == ["task_id"]
    assert tools["web_search_chat"].input_schema["required"] == ["question"]
    assert tools["get_result"].annotations == ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    )
    assert tools["submit_async"].annotations == ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    )


async def test_chat_returns_the_emulators_answer(client: Client, emulator: Emulator) -> None:
    out = ok(await client.call_tool("chat", {"prompt": "Name three rivers in China."}))
    response = answered(emulator)
    message = response["choices"][0]["message"]
    assert out["text"] == message["content"] and out["text"]
    assert out["reasoning"] == message["reasoning_content"]  # glm-4.6 thinks by default
    assert out["model"] == response["model"] == "glm-4.6"
    assert "finish_reason" not in out  # stop: the answer simply ended
    assert out["request_id"] == response["request_id"]
    usage = response["usage"]
    expected = {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
    }
    assert out["usage"] == {name: count for name, count in expected.items() if count}  # compact: no zeros
    assert out["reasoning_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"]
    assert out["reasoning_tokens"] > 0


async def test_chat_sends_a_typed_request_with_the_raw_bearer_key(client: Client, emulator: Emulator) -> None:
    await client.call_tool(
        "chat",
        {
            "prompt": "hi",
            "system": "Be brief.",
            "model": "glm-4.5-air",
            "temperature": 0,
            "top_p": 1,
            "max_tokens": 300,
            "stop": ["END"],
            "thinking": "disabled",
            "json_output": True,
        },
    )
    exchange = upstream_calls(emulator, "/chat/completions")[-1]
    assert exchange.headers["authorization"] == f"Bearer {GENERAL_KEY}"
    assert exchange.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert exchange.body["model"] == "glm-4.5-air"
    # The bounds are sent the way the official SDK sends them: 0 → greedy, 1 → 0.99.
    assert exchange.body["temperature"] == 0.01 and exchange.body["do_sample"] is False
    assert exchange.body["top_p"] == 0.99
    assert exchange.body["max_tokens"] == 300 and exchange.body["stop"] == ["END"]
    assert exchange.body["thinking"] == {"type": "disabled"}
    assert exchange.body["response_format"] == {"type": "json_object"}
    assert exchange.body["stream"] is True and "tools" not in exchange.body


async def test_chat_json_output_gives_a_json_object(client: Client) -> None:
    out = ok(await client.call_tool("chat", {"prompt": "Rate this plan.", "json_output": True}))
    assert isinstance(json.loads(out["text"]), dict)


async def test_chat_with_messages_keeps_the_conversation(client: Client, emulator: Emulator) -> None:
    messages = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And doubled?"},
    ]
    out = ok(await client.call_tool("chat", {"messages": messages, "model": "glm-4-air"}))
    exchange = upstream_calls(emulator, "/chat/completions")[-1]
    assert exchange.body["messages"] == messages
    assert out["text"] == answered(emulator)["choices"][0]["message"]["content"]
    assert "reasoning" not in out  # glm-4-* models never think


async def test_max_tokens_cut_reports_length(client: Client) -> None:
    out = ok(await client.call_tool("chat", {"prompt": "Tell me a long story.", "max_tokens": 5}))
    assert out["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] <= 5


async def test_an_answer_cut_during_reasoning_says_so_and_what_to_change(client: Client) -> None:
    """max_tokens spent on thinking leaves no text: the result says plainly why, and what to change."""
    result = await client.call_tool("chat", {"prompt": "Tell me a long story.", "max_tokens": 5})
    out = ok(result)
    assert out["finish_reason"] == "length" and "text" not in out and out["reasoning_tokens"]
    assert next(iter(out)) == "cut_short", "the model reads why the answer is empty first"
    assert out["cut_short"].startswith("The answer was cut before it began: max_tokens ran out while the model")
    assert "larger max_tokens" in out["cut_short"] and 'thinking "disabled"' in out["cut_short"]
    assert result.content[0].text.startswith(out["cut_short"])  # type: ignore[union-attr]


async def test_an_answer_that_began_before_the_cut_needs_no_such_note(client: Client) -> None:
    arguments = {"prompt": "Tell me a long story.", "max_tokens": 40, "thinking": "disabled"}
    out = ok(await client.call_tool("chat", arguments))
    assert out["finish_reason"] == "length" and out["text"]
    assert "cut_short" not in out


async def test_vision_parts_are_sent_and_the_box_markup_removed(client: Client, emulator: Emulator) -> None:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    out = ok(await client.call_tool("chat", {"messages": [{"role": "user", "content": content}], "model": "glm-4.5v"}))
    assert upstream_calls(emulator, "/chat/completions")[-1].body["messages"][0]["content"] == content
    raw = answered(emulator)["choices"][0]["message"]["content"]
    assert "<|begin_of_box|>" in raw
    assert out["text"] == raw.replace("<|begin_of_box|>", "").replace("<|end_of_box|>", "")


async def test_z1_think_markup_becomes_reasoning(client: Client, emulator: Emulator) -> None:
    out = ok(await client.call_tool("chat", {"prompt": "Why is the sky blue?", "model": "glm-z1-flash"}))
    raw = answered(emulator)["choices"][0]["message"]["content"]
    assert raw.startswith("<think>")
    assert "<think>" not in out["text"] and out["text"] and out["text"] in raw
    assert out["reasoning"] and out["reasoning"] in raw


async def test_text_copy_carries_the_answer_and_its_facts(client: Client) -> None:
    result = await client.call_tool("chat", {"prompt": "Say something."})
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith(result.structured_content["text"])
    assert "glm-4.6" in text and "tokens" in text


async def test_web_search_chat_returns_answer_and_sources(client: Client, emulator: Emulator) -> None:
    out = ok(
        await client.call_tool(
            "web_search_chat",
            {
                "question": "Latest news on solid-state batteries",
                "count": 5,
                "recency": "oneWeek",
                "search_engine": "search_pro",
                "content_size": "high",
            },
        )
    )
    exchange = upstream_calls(emulator, "/chat/completions")[-1]
    (tool,) = exchange.body["tools"]
    assert tool["type"] == "web_search"
    assert tool["web_search"] == {
        "enable": True,
        "search_result": True,
        "count": 5,
        "search_recency_filter": "oneWeek",
        "search_engine": "search_pro",
        "content_size": "high",
    }
    items = exchange.response["web_search"]
    assert len(items) == 5
    assert out["sources"] == [
        {
            "ref": i["refer"],
            "title": i["title"],
            "url": i["link"],
            "media": i["media"],
            "publish_date": i["publish_date"],
            "snippet": i["content"],
        }
        for i in items
    ]
    assert "[ref_" in out["text"] and "note" not in out
    text = (await client.call_tool("web_search_chat", {"question": "solid-state batteries"})).content[0].text  # type: ignore[union-attr]
    links = [item["link"] for item in upstream_calls(emulator, "/chat/completions")[-1].response["web_search"]]
    assert "Sources:" in text and all(link in text for link in links)


async def test_web_search_chat_says_when_nothing_was_found(client: Client) -> None:
    result = await client.call_tool("web_search_chat", {"question": "anything", "domain_filter": "nowhere.invalid"})
    out = ok(result)
    assert "sources" not in out
    assert out["note"] and "no sources" in out["note"]
    assert "no sources" in result.content[0].text  # type: ignore[union-attr]


async def test_submit_async_then_get_result(client: Client, emulator: Emulator) -> None:
    emulator.config.async_delay = 0.4
    submitted = ok(await client.call_tool("submit_async", {"prompt": "Write a haiku about rain."}))
    assert submitted["status"] == "running" and submitted["model"] == "glm-4.6"
    submit = upstream_calls(emulator, "/async/chat/completions")[-1]
    assert submitted["task_id"] == submit.response["id"]
    assert "stream" not in submit.body

    pending = ok(await client.call_tool("get_result", {"task_id": submitted["task_id"], "wait_seconds": 0}))
    assert pending["status"] == "running" and "result" not in pending and pending["kind"] == "async_task"

    # With a wait, get_result long-polls until the task ends, at a growing interval.
    done = ok(await client.call_tool("get_result", {"task_id": submitted["task_id"], "wait_seconds": 10}))
    polls = upstream_calls(emulator, "/async-result/" + submitted["task_id"])
    assert 2 <= len(polls) <= 4
    poll = upstream_calls(emulator, "/async-result/" + submitted["task_id"])[-1].response
    assert done["status"] == "completed"
    assert done["result"]["text"] == poll["choices"][0]["message"]["content"]
    assert done["result"]["usage"]["completion_tokens"] == poll["usage"]["completion_tokens"]

    # The same prompt through chat gives the same answer: one generation, two ways to get it.
    direct = ok(await client.call_tool("chat", {"prompt": "Write a haiku about rain."}))
    assert direct["text"] == done["result"]["text"]


async def test_get_result_reports_a_failed_task(client: Client, emulator: Emulator) -> None:
    emulator.config.async_delay = 0.0
    submitted = ok(await client.call_tool("submit_async", {"prompt": "Break please [emulator:fail]"}))
    await anyio.sleep(0.05)
    result = await client.call_tool("get_result", {"task_id": submitted["task_id"]})
    out = ok(result)
    assert out["status"] == "failed" and "result" not in out
    assert "failed" in result.content[0].text  # type: ignore[union-attr]


async def test_get_result_of_an_unknown_task_says_it_is_unknown_and_where_ids_are(
    client: Client, emulator: Emulator
) -> None:
    result = await client.call_tool("get_result", {"task_id": "no-such-task"})
    out = failed(result)
    poll = upstream_calls(emulator, "/async-result/no-such-task")[-1]
    assert poll.status == 400 and poll.response["error"]["code"] == "1210"  # how the platform answers it
    assert out["error"] == "unknown_job" and out["retryable"] is False
    assert "no-such-task is unknown" in out["message"] and "list_jobs" in out["hint"]
    text = result.content[0].text  # type: ignore[union-attr]
    assert "list_jobs" in text and "parameters" not in text


# --- errors ------------------------------------------------------------------------------------


async def test_without_a_key_tools_list_and_every_call_says_which_variable(emulator: Emulator) -> None:
    settings = Settings.from_env({"GLM_BASE_URL": emulator.base_url})
    arguments = {
        "chat": {"prompt": "hi"},
        "web_search_chat": {"question": "q"},
        "submit_async": {"prompt": "hi"},
    }  # get_result of a task never submitted asks nothing of the platform: it is unknown_job, key or not
    async with Client(create_server(settings)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == set(TOOLS)
        for name in arguments:
            result = await client.call_tool(name, arguments[name])
            out = failed(result)
            assert out["error"] == "missing_api_key"
            assert "GLM_API_KEY" in result.content[0].text  # type: ignore[union-attr]
    assert emulator.state.exchanges == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "42"}]}, "tool_call_id"),
        ({"prompt": "hi", "temperature": 1.5}, "temperature"),
        ({"prompt": "hi", "temperature": "hot"}, "temperature"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "hi", "thinking": "maybe"}, "thinking"),
        ({"prompt": "hi", "system": "a", "messages": None}, None),
    ],
)
async def test_bad_arguments_are_refused_before_any_upstream_call(
    client: Client, emulator: Emulator, arguments: dict[str, Any], field: str | None
) -> None:
    result = await client.call_tool("chat", arguments)
    if field is None:  # the control case: valid arguments do reach the upstream
        ok(result)
        assert len(emulator.state.exchanges) == 1
        return
    assert result.is_error
    assert field in result.content[0].text  # type: ignore[union-attr]
    assert emulator.state.exchanges == []


async def test_bad_arguments_of_the_other_tools(client: Client, emulator: Emulator) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("web_search_chat", {"question": " "}, "question"),
        ("web_search_chat", {"question": "q", "count": 99}, "count"),
        ("web_search_chat", {"question": "q", "recency": "oneDecade"}, "recency"),
        ("get_result", {"task_id": ""}, "task_id"),
        ("get_result", {"task_id": "../../etc/passwd"}, "task_id"),
        ("submit_async", {"prompt": "hi", "top_p": -1}, "top_p"),
    ]
    for name, arguments, field in cases:
        result = await client.call_tool(name, arguments)
        assert result.is_error, (name, arguments)
        assert field in result.content[0].text, (name, result.content)  # type: ignore[union-attr]
    assert emulator.state.exchanges == []


async def test_unknown_model_lists_the_models_the_key_can_use(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool("chat", {"prompt": "hi", "model": "glm-9000"})
    out = failed(result)
    assert out["error"] == "upstream_error" and out["glm_code"] == "1211" and out["http_status"] == 400
    assert out["retryable"] is False
    assert "glm-9000" in out["message"]
    assert "glm-4.6" in out["hint"] and "glm-4.5-air" in out["hint"]
    assert len(upstream_calls(emulator, "/chat/completions")) == 1


async def test_coding_key_on_the_general_endpoint_names_the_setting_that_chooses_it(emulator: Emulator) -> None:
    settings = Settings.from_env({"GLM_API_KEY": CODING_KEY, "GLM_BASE_URL": emulator.base_url})
    async with Client(create_server(settings)) as client:
        out = failed(await client.call_tool("chat", {"prompt": "hi"}))
    assert out["glm_code"] == "1113" and out["http_status"] == 429 and out["retryable"] is False
    # GLM_BASE_URL chooses the endpoint here, so GLM_PLAN would change nothing.
    assert "make GLM_BASE_URL end with /api/coding/paas/v4" in out["hint"] and "GLM_PLAN" not in out["hint"]
    without_override = describe_failure(GLMAPIError("no balance", status_code=429, code="1113"), Settings())
    assert "set GLM_PLAN=coding" in (without_override.hint or "")


async def test_a_base_url_without_the_api_path_gets_a_tool_result_naming_the_path(emulator: Emulator) -> None:
    settings = Settings.from_env({"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.origin})
    async with Client(create_server(settings)) as client:
        out = failed(await client.call_tool("chat", {"prompt": "hi"}))
    assert out["http_status"] == 404 and out["retryable"] is False
    assert f"GLM_BASE_URL ({emulator.origin}) lacks the API path: it must end with /api/paas/v4" in out["hint"]


async def test_a_refused_key_names_its_variable_never_its_value(emulator: Emulator) -> None:
    key = "unknownid.not-a-real-secret-value"
    settings = Settings.from_env({"ZAI_API_KEY": key, "GLM_BASE_URL": emulator.base_url})
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("chat", {"prompt": "hi"})
    out = failed(result)
    assert out["glm_code"] == "1000" and out["http_status"] == 401
    assert "ZAI_API_KEY" in out["hint"]
    assert "not-a-real-secret-value" not in json.dumps(out) + result.content[0].text  # type: ignore[union-attr]


async def test_content_filter_error(client: Client, emulator: Emulator) -> None:
    """Mid-stream, the filter shows as finish_reason sensitive: an error, with what came before it."""
    out = failed(await client.call_tool("chat", {"prompt": "something [emulator:sensitive]"}))
    assert out["error"] == "content_blocked" and "content filter" in out["hint"] and out["retryable"] is False
    streamed = upstream_calls(emulator, "/chat/completions")[-1].response["choices"][0]["message"]["content"]
    assert out["partial_text"] == streamed and streamed
    # Submitted as a job, the platform refuses it outright with code 1301.
    refused = failed(await client.call_tool("submit_async", {"prompt": "something [emulator:sensitive]"}))
    assert refused["glm_code"] == "1301" and "content filter" in refused["hint"]


async def test_unreachable_upstream_is_a_clear_error() -> None:
    settings = Settings.from_env({"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": "http://127.0.0.1:9/api/paas/v4"})
    async with Client(create_server(settings)) as client:
        out = failed(await client.call_tool("chat", {"prompt": "hi"}))
    assert out["error"] == "upstream_unreachable" and out["retryable"] is True
    assert "127.0.0.1:9" in out["hint"]


async def test_jwt_auth_mode_is_accepted_by_the_platform(emulator: Emulator) -> None:
    async with Client(create_server(settings_for(emulator, GLM_AUTH_MODE="jwt"))) as client:
        ok(await client.call_tool("chat", {"prompt": "hi"}))
        ok(await client.call_tool("chat", {"prompt": "again"}))
    first, second = (e.headers["authorization"] for e in upstream_calls(emulator, "/chat/completions"))
    assert first.startswith("Bearer ey") and GENERAL_KEY.split(".")[1] not in first
    assert first == second  # signed once, reused


# --- icons ----------------------------------------------------------------------------------------


async def test_the_server_carries_the_projects_icon_inline_once(client: Client) -> None:
    tools = (await client.list_tools()).tools
    server_icons = client.server_info.icons if client.server_info else None
    assert server_icons, "the server announces no icon"
    (icon,) = server_icons
    assert icon.mime_type == "image/svg+xml"
    assert icon.src.startswith("data:image/svg+xml;base64,"), "an inline icon: nothing fetched from anywhere"
    svg = ElementTree.fromstring(base64.b64decode(icon.src.partition(",")[2]))
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox")
    # The same icon on every tool cost each tools/list ~480 bytes a tool, and said nothing the server's does not.
    assert all(tool.icons is None for tool in tools)


# --- start --------------------------------------------------------------------------------------


def test_the_listing_read_at_start_is_the_one_the_table_makes() -> None:
    made = json.loads(json.dumps(listing()))
    assert json.loads(LISTING_FILE.read_text()) == made, "listing.json is stale: run scripts/sync-manifests"


START_AND_LIST = """
import json, sys, anyio
from pydantic import BaseModel
from glm_mcp.app import create_server
from glm_mcp.config import Settings

server = create_server(Settings.from_env({"GLM_API_KEY": "key.secret", "GLM_MCP_TOOLSETS": "all"}))
listed = anyio.run(server.list_tools)

def every(model):
    for sub in model.__subclasses__():
        yield sub
        yield from every(sub)

built = {f"{m.__module__}.{m.__qualname__}" for m in every(BaseModel) if m.__module__.startswith("glm_mcp.")
         and m.__module__ != "glm_mcp.config" and m.__pydantic_complete__}
first_call = sorted(name for name in sys.modules if name.startswith("glm_mcp.tools.") or name == "glm_mcp.glm.types")
print(json.dumps({"tools": len(listed), "built": sorted(built), "imported": first_call}))
"""


def test_start_imports_no_room_and_builds_no_model(data_dir: Any) -> None:
    """Building a pydantic model costs about a millisecond, and importing the rooms tens more: start built all ~100
    of ours and made every schema from them, most of what made cold start dearer than the SDK's own. Start lists
    the tools from their listing, and leaves the rooms and the GLM wire types (even unbuilt, ~50 classes to
    define) to the first call; settings are read at start (those excepted)."""
    env = {"GLM_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", START_AND_LIST], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    started = json.loads(run.stdout)
    assert started == {"tools": len(TOOL_TABLE), "built": [], "imported": []}, started


async def test_the_sdk_seam(emulator: Emulator, data_dir: Any) -> None:
    """The one place glm-mcp builds on the SDK's tool internals (`tooling.sdk_tool`) still works as it assumes.

    Each check says which assumption broke, so an SDK release that renames these fields fails here, by name,
    rather than as a confusing failure elsewhere.
    """
    from mcp.server.mcpserver.tools import Tool
    from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

    for model, fields in (
        (Tool, {"fn", "parameters", "fn_metadata", "is_async", "context_kwarg", "annotations"}),
        (FuncMetadata, {"arg_model", "output_schema"}),
    ):
        missing = fields - set(model.model_fields)
        assert not missing, f"the SDK's {model.__name__} no longer has {sorted(missing)}: update tooling.sdk_tool"

    server = create_server(settings_for(emulator, GLM_DATA_DIR=str(data_dir)))
    async with Client(server) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["chat"].input_schema["properties"]["prompt"]["type"] == "string", "input schema not ours"
        assert "anyOf" in listed["chat"].output_schema or "properties" in listed["chat"].output_schema  # type: ignore[operator]
        # The arguments reach our own model untouched: an unknown name is our invalid_argument, not the SDK's error.
        refused = failed(await client.call_tool("chat", {"promt": "hi"}))
        assert refused["error"] == "invalid_argument" and "Did you mean `prompt`?" in refused["message"], (
            "the SDK no longer passes the arguments through `_AsGiven.model_dump_one_level`"
        )
        answer = ok(await client.call_tool("chat", {"prompt": "hi"}))
        assert answer["text"], "the SDK no longer calls the tool with the context as `ctx`"
