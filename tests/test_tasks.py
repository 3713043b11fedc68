"""Long calls as MCP tasks, on the 2026-07-28 wire: raw JSON-RPC to real server processes over stdio and
Streamable HTTP (stateless and sessionful), every task message checked against the published JSON Schema
of the tasks extension, against a slow emulator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx2
import pytest
from anyio.abc import Process
from jsonschema import Draft202012Validator

from glm_mcp.emulator import Emulator
from glm_mcp.server.auth import CLIENT_KEY_HEADER
from glm_mcp.server.tasks import EXTENSION
from glm_mcp.tools.jobs import GET_RESULT_SUFFIX
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import COMMAND, RawStdio, http_server, scratch_dir, server_env

pytestmark = pytest.mark.anyio

SCHEMA_FILE = Path(
    os.environ.get("GLM_MCP_TASKS_SCHEMA")
    or Path(__file__).resolve().parents[2] / "shared" / "reference" / "mcp-tasks-extension" / "schema.json"
)
"""The extension's published JSON Schema (ext-tasks commit e4345978), read where the project's references
are kept beside the checkout (CI lays them there); it is reference material, not copied into the project."""
SCHEMA_SHA256 = "10933a5003097bbccb03d964e6a5f7a2819cc4d7a1d07e27c6765cbf5da35c5c"
VERSION = "2026-07-28"
CHUNK_DELAY_S = 0.12
"""Between two chunks: a glm-4-flash answer then takes ~2-3 s, well past the threshold below."""
THRESHOLD = "0.5"
PROMPT = {"prompt": "Write about rivers and their deltas.", "model": "glm-4-flash"}
TOKEN = "tasks-tests-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SECOND_KEY = "second.key-general-of-another-caller"


def _schema() -> dict[str, Any]:
    if not SCHEMA_FILE.exists():
        pytest.skip(
            f"the Tasks extension's schema.json is not at {SCHEMA_FILE}: set GLM_MCP_TASKS_SCHEMA to it",
            allow_module_level=True,
        )
    raw = SCHEMA_FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256  # the published file, byte for byte
    return dict(json.loads(raw))


SCHEMA = _schema()


def conforms(definition: str, message: dict[str, Any]) -> None:
    """`message` validates against `definition` of the extension's schema (with its `$defs`)."""
    Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": SCHEMA["$defs"]}).validate(message)


def meta(*, tasks: bool) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"extensions": {EXTENSION: {}}} if tasks else {}
    return {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-tasks-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


class Wire(Protocol):
    """One way of sending raw JSON-RPC requests to a server, one at a time; answers the whole response."""

    async def __call__(
        self, method: str, params: dict[str, Any], *, tasks: bool = True, headers: dict[str, str] | None = None
    ) -> dict[str, Any]: ...


class StdioWire:
    def __init__(self, process: Process) -> None:
        self._raw = RawStdio(process)
        self._ids = iter(range(1, 1_000_000))

    async def __call__(
        self, method: str, params: dict[str, Any], *, tasks: bool = True, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta(tasks=tasks)}}
        await self._raw.send(body)
        return await self._raw.answer(request_id, timeout=60)


class HttpWire:
    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http
        self._ids = iter(range(1, 1_000_000))
        self.sent_headers: list[dict[str, str]] = []

    async def __call__(
        self, method: str, params: dict[str, Any], *, tasks: bool = True, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta(tasks=tasks)}}
        name = params.get("name") if method == "tools/call" else params.get("taskId")
        sent = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": VERSION,
            "Mcp-Method": method,
            **({"Mcp-Name": str(name)} if name else {}),  # tasks/*: the task id, for routing to its replica
            **(headers or {}),
        }
        self.sent_headers.append(sent)
        # Non-ASCII text escaped, as json.dumps writes it: a lone surrogate a test sends is then valid JSON.
        response = await self._http.post("/mcp", content=json.dumps(body), headers=sent)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    message = json.loads(line[5:])
                    if message.get("id") == request_id:
                        return dict(message)
            raise AssertionError(f"no answer to {method} in {response.text[:500]}")
        return dict(response.json())


def slow_env(emulator: Emulator, data_dir: str | None = None, **variables: str) -> dict[str, str]:
    emulator.config.chunk_delay = CHUNK_DELAY_S
    return server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_TASK_THRESHOLD_SECONDS=THRESHOLD,
        GLM_DATA_DIR=data_dir or scratch_dir(),
        **variables,
    )


@asynccontextmanager
async def stdio_server(env: dict[str, str]) -> AsyncIterator[tuple[StdioWire, Process]]:
    async with await anyio.open_process(COMMAND, env=env, stderr=subprocess.DEVNULL) as process:
        try:
            yield StdioWire(process), process
        finally:
            if process.returncode is None:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()


@contextmanager
def http_origin(mode: str, env: dict[str, str]) -> Iterator[str]:
    with http_server(f"--{mode}", env={**env, "GLM_MCP_HTTP_TOKEN": TOKEN}) as origin:
        yield origin


@asynccontextmanager
async def wire_for(transport: str, env: dict[str, str]) -> AsyncIterator[Wire]:
    if transport == "stdio":
        async with stdio_server(env) as (wire, _):
            yield wire
        return
    with http_origin(transport, env) as origin:
        async with httpx2.AsyncClient(base_url=origin, headers=BEARER, timeout=60) as http:
            yield HttpWire(http)


TRANSPORTS = ["stdio", "stateless", "sessionful"]


async def poll(wire: Wire, task_id: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every tasks/get answer until the task is terminal, each checked against the schema."""
    states: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        while True:
            answer = await wire("tasks/get", {"taskId": task_id}, headers=headers)
            assert "result" in answer, answer
            conforms("GetTaskResult", answer["result"])
            states.append(answer["result"])
            if answer["result"]["status"] not in ("working", "input_required"):
                return states
            await anyio.sleep(0.3)  # faster than pollIntervalMs, to see the progress


PER_CALL = re.compile(r"glm-mcp-[0-9a-f]{32}|conv_[0-9a-f]+")
"""What is new for every call (the platform's request id, the conversation it starts), left out to compare two."""


def without_request_id(result: dict[str, Any]) -> dict[str, Any]:
    """A tool result with what is new for every call left out, to compare two calls."""
    structured = {k: v for k, v in result["structuredContent"].items() if k not in ("request_id", "conversation_id")}
    content = [{**block, "text": PER_CALL.sub("…", block.get("text", ""))} for block in result["content"]]
    return {"content": content, "structuredContent": structured, "isError": result.get("isError", False)}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_slow_chat_becomes_a_task_whose_result_is_the_calls_own(transport: str, emulator: Emulator) -> None:
    async with wire_for(transport, slow_env(emulator)) as wire:
        discover = await wire("server/discover", {})
        assert discover["result"]["capabilities"]["extensions"] == {EXTENSION: {}}

        created = await wire("tools/call", {"name": "chat", "arguments": PROMPT})
        handle = created["result"]
        conforms("CreateTaskResult", handle)
        assert handle["resultType"] == "task" and handle["status"] == "working"
        assert handle["taskId"].startswith("job_") and handle["pollIntervalMs"] >= 1000
        assert handle["ttlMs"] >= 7 * 86_400_000  # GLM_JOB_RETENTION_DAYS from creation, at least

        states = await poll(wire, handle["taskId"])
        working = [s for s in [handle, *states] if s["status"] == "working"]
        final = states[-1]
        assert final["status"] == "completed"
        assert len({s["statusMessage"] for s in working}) >= 2  # the polled states progress
        assert "chars" in working[-1]["statusMessage"]
        stamps = [s["lastUpdatedAt"] for s in [handle, *states]]
        assert stamps == sorted(stamps) and len(set(stamps)) >= 2
        assert {s["createdAt"] for s in states} == {handle["createdAt"]}

        # The same call without tasks, waiting as long as it takes: the very result the task ended with.
        emulator.state.prompt_cache.clear()  # so that it is not answered from the platform's cache either
        direct = await wire("tools/call", {"name": "chat", "arguments": {**PROMPT, "wait_seconds": 60}}, tasks=False)
        assert direct["result"]["resultType"] == "complete" and "taskId" not in direct["result"]
        assert without_request_id(final["result"]) == without_request_id(direct["result"])
        assert "status" not in final["result"]["structuredContent"]  # a whole answer says no status
        assert final["result"]["structuredContent"]["text"]

        # The task is the job: get_result finds it.
        fetched = await wire("tools/call", {"name": "get_result", "arguments": {"task_id": handle["taskId"]}})
        assert fetched["result"]["structuredContent"]["status"] == "completed"
        assert fetched["result"]["structuredContent"]["result"] == final["result"]["structuredContent"]


async def test_a_quick_answer_comes_back_directly(emulator: Emulator) -> None:
    async with wire_for("stdio", server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)) as wire:
        answer = await wire("tools/call", {"name": "chat", "arguments": PROMPT})
        assert answer["result"]["resultType"] == "complete"
        assert "status" not in answer["result"]["structuredContent"]  # a whole answer says no status
        assert answer["result"]["structuredContent"]["text"]


async def test_get_result_of_a_running_job_becomes_a_task_ending_with_get_results_own_result(
    emulator: Emulator,
) -> None:
    async with wire_for("stdio", slow_env(emulator)) as wire:
        handed = await wire("tools/call", {"name": "chat", "arguments": {**PROMPT, "wait_seconds": 0.3}}, tasks=False)
        job_id = handed["result"]["structuredContent"]["job_id"]
        created = await wire("tools/call", {"name": "get_result", "arguments": {"task_id": job_id}})
        conforms("CreateTaskResult", created["result"])
        assert created["result"]["taskId"] == job_id + GET_RESULT_SUFFIX
        final = (await poll(wire, created["result"]["taskId"]))[-1]
        assert final["status"] == "completed"
        direct = await wire("tools/call", {"name": "get_result", "arguments": {"task_id": job_id}}, tasks=False)
        assert final["result"]["structuredContent"]["status"] == "completed"
        assert final["result"] == {k: v for k, v in direct["result"].items() if k != "_meta"}


@pytest.mark.parametrize("transport", ["stdio", "stateless"])
async def test_cancel_stops_the_generation_and_closes_the_upstream_stream(transport: str, emulator: Emulator) -> None:
    async with wire_for(transport, slow_env(emulator)) as wire:
        handle = (await wire("tools/call", {"name": "chat", "arguments": PROMPT}))["result"]
        assert emulator.state.disconnects == 0
        start = time.monotonic()
        ack = await wire("tasks/cancel", {"taskId": handle["taskId"]})
        conforms("CancelTaskResult", ack["result"])
        with anyio.fail_after(5):
            while emulator.state.disconnects == 0:
                await anyio.sleep(0.01)
        assert time.monotonic() - start < 1.5  # the upstream saw its stream closed within 1 s (and some slack)
        final = (await poll(wire, handle["taskId"]))[-1]
        assert final["status"] == "cancelled"
        conforms("CancelledTask", {k: v for k, v in final.items() if k not in ("resultType", "_meta")})


async def test_update_is_acknowledged_and_unknown_ids_get_the_documented_error(emulator: Emulator) -> None:
    async with wire_for("stdio", slow_env(emulator)) as wire:
        handle = (await wire("tools/call", {"name": "chat", "arguments": PROMPT}))["result"]
        ack = await wire("tasks/update", {"taskId": handle["taskId"], "inputResponses": {}})
        conforms("UpdateTaskResult", ack["result"])
        made_up = "job_0123456789abcdef0123456789abcdef"
        for method in ("tasks/get", "tasks/update", "tasks/cancel"):
            answer = await wire(method, {"taskId": made_up, "inputResponses": {}})
            assert answer["error"]["code"] == -32602, answer
            answer = await wire(method, {"taskId": handle["taskId"], "inputResponses": {}}, tasks=False)
            assert answer["error"]["code"] == -32021, answer  # the request did not declare the extension
            assert answer["error"]["data"]["requiredCapabilities"] == {"extensions": {EXTENSION: {}}}
        await wire("tasks/cancel", {"taskId": handle["taskId"]})


async def test_an_id_or_argument_that_is_not_unicode_text_is_answered_as_any_bad_one(emulator: Emulator) -> None:
    """Over HTTP a lone surrogate (`"\\udce9"`, valid JSON) reaches the server: a task id holding one is not found,
    as other unknown ids, and a tool argument holding one is an invalid argument naming it."""
    with http_origin("stateless", slow_env(emulator)) as origin:
        async with httpx2.AsyncClient(base_url=origin, headers=BEARER, timeout=60) as http:
            wire = HttpWire(http)
            routing = {"Mcp-Name": "job_\\udce9"}  # a header is ASCII: the id as the client escapes it
            for method in ("tasks/get", "tasks/update", "tasks/cancel"):
                answer = await wire(method, {"taskId": "job_\udce9", "inputResponses": {}}, headers=routing)
                assert answer["error"] == {"code": -32602, "message": "Failed to retrieve task: Task not found"}
            for arguments, field in (
                ({"prompt": "caf\udce9"}, "prompt"),
                ({"prompt": "hi", "conversation_id": "conv_\udce9"}, "conversation_id"),
                ({"messages": [{"role": "user", "content": "x\ud800y"}]}, "messages[0].content"),
            ):
                answer = await wire("tools/call", {"name": "chat", "arguments": arguments})
                refused = answer["result"]["structuredContent"]
                assert answer["result"]["isError"] and refused["error"] == "invalid_argument", refused
                assert refused["field"] == field and "lone surrogate" in refused["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_another_callers_task_reads_as_unknown(emulator: Emulator) -> None:
    keys = emulator.config.api_keys
    emulator.config.api_keys = (*keys, SECOND_KEY)
    try:
        env = slow_env(emulator, GLM_MCP_ALLOW_CLIENT_KEYS="true")
        with http_origin("stateless", env) as origin:
            async with httpx2.AsyncClient(base_url=origin, headers=BEARER, timeout=60) as http:
                wire = HttpWire(http)
                own = {CLIENT_KEY_HEADER: SECOND_KEY}
                handle = (await wire("tools/call", {"name": "chat", "arguments": PROMPT}, headers=own))["result"]
                conforms("CreateTaskResult", handle)
                for method in ("tasks/get", "tasks/update", "tasks/cancel"):
                    theirs = await wire(method, {"taskId": handle["taskId"], "inputResponses": {}})
                    assert theirs["error"] == {"code": -32602, "message": "Failed to retrieve task: Task not found"}
                assert (await poll(wire, handle["taskId"], headers=own))[-1]["status"] == "completed"
                routed = [h for h in wire.sent_headers if h["Mcp-Method"].startswith("tasks/")]
                assert routed and all(h["Mcp-Name"] == handle["taskId"] for h in routed)
    finally:
        emulator.config.api_keys = keys


@pytest.mark.parametrize("stop", ["clean", "sigkill"])
async def test_a_task_outlives_a_restart(stop: str, emulator: Emulator) -> None:
    data_dir = scratch_dir()
    env = slow_env(emulator, data_dir)
    async with stdio_server(env) as (wire, process):
        finished = (await wire("tools/call", {"name": "chat", "arguments": PROMPT}))["result"]
        assert (await poll(wire, finished["taskId"]))[-1]["status"] == "completed"
        cut = await wire("tools/call", {"name": "chat", "arguments": {**PROMPT, "prompt": "Write about lakes."}})
        cut_id = cut["result"]["taskId"]
        await anyio.sleep(1.5)  # some text arrives, and is saved (every second)
        if stop == "sigkill":
            process.send_signal(signal.SIGKILL)
        else:
            assert process.stdin is not None
            await process.stdin.aclose()
        with anyio.fail_after(10):
            await process.wait()
    async with stdio_server(env) as (wire, _):
        kept = (await poll(wire, finished["taskId"]))[-1]
        assert kept["status"] == "completed" and not kept["result"].get("isError")
        assert "status" not in kept["result"]["structuredContent"]  # a whole answer says no status
        assert kept["result"]["structuredContent"]["text"]
        interrupted = (await poll(wire, cut_id))[-1]
        assert interrupted["status"] == "completed"
        result = interrupted["result"]
        assert result["isError"] is True
        assert result["structuredContent"]["error"] == "interrupted"
        assert result["structuredContent"]["partial_text"]
        assert "stopped" in result["content"][0]["text"]
        assert result["structuredContent"]["partial_text"] in result["content"][0]["text"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_client_without_the_capability_never_sees_a_task(transport: str, emulator: Emulator) -> None:
    env = slow_env(emulator, GLM_WAIT_SECONDS="0.5")
    async with wire_for(transport, env) as wire:
        tools = (await wire("tools/list", {}, tasks=False))["result"]["tools"]
        assert tools and not any("execution" in tool for tool in tools)
        assert "execution" not in json.dumps((await wire("tools/list", {}))["result"])
        answer = await wire("tools/call", {"name": "chat", "arguments": PROMPT}, tasks=False)
        result = answer["result"]
        assert result["resultType"] == "complete" and "taskId" not in result
        assert result["structuredContent"]["status"] == "running"  # the classic hand-off, as before
        job_id = result["structuredContent"]["job_id"]
        fetched = await wire("tools/call", {"name": "get_result", "arguments": {"task_id": job_id}}, tasks=False)
        assert fetched["result"]["resultType"] == "complete" and "taskId" not in fetched["result"]
