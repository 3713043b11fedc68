"""The real command over its real transports: a stdio subprocess and a Streamable HTTP server."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from glm_mcp.emulator import Emulator
from tests.conftest import DEFAULT_TOOLS, GENERAL_KEY, upstream_calls
from tests.processes import COMMAND, RawStdio, free_port, http_server, listening, server_env

pytestmark = pytest.mark.anyio

TOOLS = set(DEFAULT_TOOLS)


def stdio(*args: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(command=COMMAND[0], args=[*COMMAND[1:], *args], env=server_env(**env))


async def test_stdio_subprocess_lists_tools_and_answers(emulator: Emulator) -> None:
    params = stdio(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    async with Client(params, mode="legacy") as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        result = await client.call_tool("chat", {"prompt": "Hello over stdio"})
    assert not result.is_error
    response = upstream_calls(emulator, "/chat/completions")[-1].response
    assert result.structured_content["text"] == response["choices"][0]["message"]["content"]


async def test_stdout_carries_nothing_but_json_rpc(emulator: Emulator) -> None:
    """Raw lines in, raw lines out: every line the server writes is a JSON-RPC message."""
    requests: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "chat", "arguments": {"prompt": "hi"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "chat", "arguments": {"prompt": ""}}},
    ]
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_LOG_LEVEL="DEBUG")
    async with await anyio.open_process(COMMAND, env=env) as process:
        raw = RawStdio(process)  # anything but JSON-RPC on stdout fails in there
        await raw.send(*requests)
        answers = {request_id: await raw.answer(request_id) for request_id in (1, 2, 3, 4)}
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(10):
            await process.wait()
    assert answers[3]["result"]["isError"] is False
    assert answers[4]["result"]["isError"] is True
    assert {t["name"] for t in answers[2]["result"]["tools"]} == TOOLS


async def test_a_request_holding_a_lone_surrogate_is_answered_with_its_own_id(emulator: Emulator) -> None:
    """`"\\udce9"` is valid JSON but no Unicode text, so the SDK's parser refuses the line: its sender still gets an
    answer carrying its id, saying where the surrogate is, instead of a parse error whose id is null."""
    call = {"name": "chat", "arguments": {"prompt": "caf\udce9"}}
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    async with await anyio.open_process(COMMAND, env=env) as process:
        raw = RawStdio(process)
        await raw.initialize()
        await raw.send(
            {"jsonrpc": "2.0", "id": "call-7", "method": "tools/call", "params": call},
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "x\udce9"}},
            {"jsonrpc": "2.0", "id": "\udce9", "method": "ping"},  # an id that cannot be sent back
            {"jsonrpc": "2.0", "id": 9, "method": "ping"},
        )
        refused = await raw.answer("call-7")
        unreadable = await raw.answer(None)
        await raw.answer(9)
        await raw.send({"jsonrpc": "2.0", "id": 10, "method": "ping"})
        await raw.answer(10)  # the server goes on, and the notification got no answer meanwhile
        await process.aclose()
    assert refused["error"]["code"] == -32602
    assert "`params.arguments.prompt` holds a lone surrogate (\\udce9)" in refused["error"]["message"]
    assert unreadable["error"]["code"] == -32600
    assert sorted(json.dumps(message.get("id")) for message in raw.seen) == [
        '"call-7"',
        '"initialize"',
        "10",
        "9",
        "null",
    ]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_demo_needs_no_key_and_answers_from_the_emulator() -> None:
    async with Client(stdio("demo")) as client:
        chat = await client.call_tool("chat", {"prompt": "Hello demo"})
        search = await client.call_tool("web_search_chat", {"question": "What is MCP?"})
    assert not chat.is_error and chat.structured_content["text"]
    assert not search.is_error and search.structured_content["sources"]
    for result in (chat, search):  # whoever reads a demo answer sees it is not GLM's
        assert result.structured_content["model"] == "glm-4.6 (demo: made up by the GLM emulator, not GLM)"
        assert "made up by the GLM emulator" in result.content[0].text  # type: ignore[union-attr]


async def test_streamable_http_server_serves_the_tools(emulator: Emulator) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    with http_server(env=env) as origin:
        health = httpx2.get(origin + "/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        for mode in ("auto", "legacy"):
            async with Client(origin + "/mcp", mode=mode) as client:
                assert {t.name for t in (await client.list_tools()).tools} == TOOLS
                result = await client.call_tool("web_search_chat", {"question": "Rust vs Go", "count": 2})
            assert not result.is_error
            response = upstream_calls(emulator, "/chat/completions")[-1].response
            assert [s["url"] for s in result.structured_content["sources"]] == [
                item["link"] for item in response["web_search"]
            ]


async def test_the_emulator_command_takes_its_timing_and_limit_flags() -> None:
    """`glm-mcp emulator` as users run it: a slow platform allowing one request in flight."""
    port = free_port()
    args = ["emulator", "--port", str(port), "--latency", "0.5", "--max-in-flight", "1"]
    with listening(args, port, env=server_env()) as (_, origin):
        body = {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}]}
        statuses: list[int] = []
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {GENERAL_KEY}"}, timeout=10) as http:

            async def post() -> None:
                response = await http.post(origin + "/api/paas/v4/chat/completions", json=body)
                statuses.append(response.status_code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(post)
                tg.start_soon(post)
    assert sorted(statuses) == [200, 429]


async def test_a_client_that_stops_reading_stdout_stalls_only_its_answers(emulator: Emulator) -> None:
    """Answers are written to a non-blocking pipe from the event loop: with the pipe full (the client reads
    nothing), the server goes on with the work it was sent (here a chat reaches the upstream), and every answer
    arrives, whole and in order, once the client reads again; stdin and stdout are left blocking at exit."""
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    async with await anyio.open_process(COMMAND, env=env) as process:
        raw = RawStdio(process)
        await raw.initialize()
        listings = list(range(1, 9))  # ~30 KB each: more than a pipe holds
        await raw.send(*({"jsonrpc": "2.0", "id": i, "method": "tools/list"} for i in listings))
        before = len(upstream_calls(emulator, "/chat/completions"))
        chat = {"name": "chat", "arguments": {"prompt": "Asked while nobody reads"}}
        await raw.send({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": chat})
        with anyio.fail_after(20):
            while len(upstream_calls(emulator, "/chat/completions")) == before:
                await anyio.sleep(0.05)
        answers = [await raw.answer(i) for i in listings]
        assert all(len(answer["result"]["tools"]) == len(TOOLS) for answer in answers)
        assert (await raw.answer(99))["result"]["isError"] is False
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(10):
            await process.wait()
    assert process.returncode == 0
