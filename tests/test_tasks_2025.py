"""Long calls as MCP tasks in the 2025-11-25 form (VS Code's): raw JSON-RPC after an `initialize` on that
version, to real server processes over stdio and Streamable HTTP, and the TypeScript SDK's task client,
against a slow emulator."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest

from glm_mcp.emulator import Emulator
from rigs.node_tools import TS_SDK, node_env, node_modules
from tests.processes import COMMAND, RawStdio
from tests.test_tasks import BEARER, PROMPT, http_origin, slow_env, without_request_id

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"
CLIENT_TASKS: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {}}
TASK_TOOLS = {"chat", "web_search_chat", "get_result"}
RELATED = "io.modelcontextprotocol/related-task"


class Session:
    """One 2025-11-25 session: `initialize` (declaring tasks or not), then requests one at a time."""

    def __init__(self) -> None:
        self._ids = iter(range(1, 1_000_000))
        self.initialized: dict[str, Any] = {}

    async def send(self, message: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    async def __call__(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = await self.send({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        assert answer is not None
        return answer

    async def start(self, *, tasks: bool) -> None:
        capabilities = {"tasks": CLIENT_TASKS} if tasks else {}
        client = {"name": "raw-2025-tasks-test", "version": "0"}
        params = {"protocolVersion": VERSION, "capabilities": capabilities, "clientInfo": client}
        self.initialized = (await self("initialize", params))["result"]
        assert self.initialized["protocolVersion"] == VERSION
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})


class StdioSession(Session):
    def __init__(self, process: Any) -> None:
        super().__init__()
        self._raw = RawStdio(process)

    async def send(self, message: dict[str, Any]) -> dict[str, Any] | None:
        await self._raw.send(message)
        return await self._raw.answer(message["id"], timeout=60) if "id" in message else None


class HttpSession(Session):
    def __init__(self, http: httpx2.AsyncClient) -> None:
        super().__init__()
        self._http = http
        self._session_id: str | None = None

    async def send(self, message: dict[str, Any]) -> dict[str, Any] | None:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if message.get("method") != "initialize":
            headers["MCP-Protocol-Version"] = VERSION
        if self._session_id:
            headers["Mcp-Session-Id"] = self._session_id
        response = await self._http.post("/mcp", json=message, headers=headers)
        self._session_id = response.headers.get("mcp-session-id", self._session_id)
        if "id" not in message:
            assert response.status_code == 202, response.text
            return None
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    answer = json.loads(line[5:])
                    if answer.get("id") == message["id"]:
                        return dict(answer)
            raise AssertionError(f"no answer in {response.text[:500]}")
        return dict(response.json())


@asynccontextmanager
async def session(transport: str, env: dict[str, str], *, tasks: bool) -> AsyncIterator[Session]:
    if transport == "stdio":
        async with await anyio.open_process(COMMAND, env=env) as process:
            try:
                stdio = StdioSession(process)
                await stdio.start(tasks=tasks)
                yield stdio
            finally:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
        return
    with http_origin(transport, env) as origin:
        async with httpx2.AsyncClient(base_url=origin, headers=BEARER, timeout=60) as http:
            wire = HttpSession(http)
            await wire.start(tasks=tasks)
            yield wire


def same_call(result: dict[str, Any]) -> str:
    """A tool result without what differs between two calls: the platform's request id, the conversation id."""
    return re.sub(r"conv_[0-9a-f]+", "conv_…", json.dumps(without_request_id(result), sort_keys=True))


async def poll(wire: Session, task_id: str) -> list[dict[str, Any]]:
    states: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        while True:
            task = (await wire("tasks/get", {"taskId": task_id}))["result"]
            states.append(task)
            if task["status"] not in ("working", "input_required"):
                return states
            await anyio.sleep(0.3)


def is_task(task: dict[str, Any], status: str) -> None:
    """`task` has the 2025-11-25 `Task` fields, and no field of the 2026 extension's."""
    assert task["status"] == status and task["taskId"].startswith("job_")
    assert {"taskId", "status", "createdAt", "lastUpdatedAt", "ttl", "pollInterval"} <= task.keys()
    assert not {"ttlMs", "pollIntervalMs", "resultType", "result"} & task.keys()


@pytest.mark.parametrize("transport", ["stdio", "sessionful"])
async def test_a_client_declaring_tasks_gets_a_task_whose_result_is_the_calls_own(
    transport: str, emulator: Emulator
) -> None:
    async with session(transport, slow_env(emulator), tasks=True) as wire:
        assert wire.initialized["capabilities"]["tasks"]["requests"] == {"tools": {"call": {}}}
        tools = (await wire("tools/list", {}))["result"]["tools"]
        marked = {tool["name"] for tool in tools if tool.get("execution") == {"taskSupport": "optional"}}
        assert marked == TASK_TOOLS and all("execution" not in t for t in tools if t["name"] not in TASK_TOOLS)

        created = (await wire("tools/call", {"name": "chat", "arguments": PROMPT, "task": {"ttl": 60_000}}))["result"]
        assert created.keys() <= {"task", "_meta"}
        is_task(created["task"], "working")
        task_id = created["task"]["taskId"]

        listed = (await wire("tasks/list", {}))["result"]["tasks"]
        assert [t["taskId"] for t in listed] == [task_id]
        is_task(listed[0], "working")

        result = (await wire("tasks/result", {"taskId": task_id}))["result"]  # blocks until the answer is there
        assert result["_meta"][RELATED] == {"taskId": task_id}
        final = (await poll(wire, task_id))[-1]
        is_task(final, "completed")

        emulator.state.prompt_cache.clear()
        direct = (await wire("tools/call", {"name": "chat", "arguments": {**PROMPT, "wait_seconds": 60}}))["result"]
        assert "task" not in direct
        assert same_call(result) == same_call(direct)
        assert result["structuredContent"]["text"] and not result.get("isError")


@pytest.mark.parametrize("transport", ["stdio", "sessionful"])
async def test_cancel_stops_the_generation_and_closes_the_upstream_stream(transport: str, emulator: Emulator) -> None:
    async with session(transport, slow_env(emulator), tasks=True) as wire:
        created = (await wire("tools/call", {"name": "chat", "arguments": PROMPT, "task": {}}))["result"]
        task_id = created["task"]["taskId"]
        assert emulator.state.disconnects == 0
        cancelled = (await wire("tasks/cancel", {"taskId": task_id}))["result"]
        is_task(cancelled, "cancelled")
        with anyio.fail_after(5):
            while emulator.state.disconnects == 0:
                await anyio.sleep(0.01)
        is_task((await poll(wire, task_id))[-1], "cancelled")
        again = await wire("tasks/cancel", {"taskId": task_id})
        assert again["error"]["code"] == -32602
        assert (await wire("tasks/result", {"taskId": task_id}))["result"]["isError"] is True
        unknown = await wire("tasks/get", {"taskId": "job_0123456789abcdef0123456789abcdef"})
        assert unknown["error"]["code"] == -32602


@pytest.mark.parametrize(("transport", "tasks"), [("stdio", False), ("sessionful", False), ("stateless", True)])
async def test_no_execution_field_and_no_task_without_a_declared_session(
    transport: str, tasks: bool, emulator: Emulator
) -> None:
    async with session(transport, slow_env(emulator, GLM_WAIT_SECONDS="0.5"), tasks=tasks) as wire:
        assert "tasks" not in wire.initialized["capabilities"]
        assert "execution" not in json.dumps((await wire("tools/list", {}))["result"])
        answer = (await wire("tools/call", {"name": "chat", "arguments": PROMPT, "task": {"ttl": 1000}}))["result"]
        assert "task" not in answer
        assert answer["structuredContent"]["status"] == "running"  # the classic hand-off, as before
        refused = await wire("tasks/list", {})
        assert "error" in refused


TS_TASKS = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

(async () => {
  const [command, ...args] = JSON.parse(process.env.SERVER_COMMAND);
  const tasks = process.env.DECLARE_TASKS === "1";
  const capabilities = tasks ? { tasks: { list: {}, cancel: {}, requests: {} } } : {};
  const client = new Client({ name: "glm-mcp-tasks-2025-test", version: "0.0.0" }, { capabilities });
  await client.connect(new StdioClientTransport({ command, args, env: JSON.parse(process.env.SERVER_ENV) }));
  const out = (value) => console.log(JSON.stringify(value));
  out({ version: client.transport._protocolVersion ?? null, server: client.getServerCapabilities() });
  out({ tools: (await client.listTools()).tools });
  const stream = client.experimental.tasks.callToolStream(
    { name: "chat", arguments: JSON.parse(process.env.PROMPT) }, undefined, { timeout: 120000 });
  for await (const message of stream) out(message);
  await client.close();
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


@pytest.mark.parametrize("declare", [True, False])
async def test_the_typescript_sdk_drives_a_task_to_the_tools_result(declare: bool, emulator: Emulator) -> None:
    """The TS SDK (what VS Code is built on) speaks 2025-11-25: with `tasks` declared, its callToolStream makes
    the chat a task, follows it and ends with the tool's result; without, it never sees `execution` or a task."""
    env = node_env(
        {
            "NODE_PATH": str(node_modules(TS_SDK)),
            "SERVER_COMMAND": json.dumps(COMMAND),
            "SERVER_ENV": json.dumps(slow_env(emulator, GLM_WAIT_SECONDS="60")),
            "DECLARE_TASKS": "1" if declare else "0",
            "PROMPT": json.dumps(PROMPT),
        }
    )
    with anyio.fail_after(120):
        done = await anyio.run_process(["node", "-e", TS_TASKS], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    capabilities, tools, messages = lines[0]["server"], lines[1]["tools"], lines[2:]
    kinds = [message["type"] for message in messages]
    result = messages[-1]["result"]
    assert kinds[-1] == "result" and result["structuredContent"]["text"] and not result.get("isError")
    if declare:
        assert capabilities["tasks"]["requests"] == {"tools": {"call": {}}}
        assert {tool["name"] for tool in tools if "execution" in tool} == TASK_TOOLS
        assert kinds[0] == "taskCreated" and messages[0]["task"]["taskId"].startswith("job_")
    else:
        assert "tasks" not in capabilities and not any("execution" in tool for tool in tools)
        assert kinds == ["result"]
