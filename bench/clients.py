"""Lean clients: raw JSON-RPC over stdio and HTTP, and the direct call to the emulator (the floor).

The SDK `Client` is measured too, but its own per-call cost is part of what it reports; these
clients do as little as the protocol allows, so what they measure is the server.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import anyio
import httpx2
from anyio.abc import Process

from bench.processes import EMULATOR_KEY, memory_kib

PROTOCOL_VERSION = "2025-11-25"
INITIALIZE = {
    "protocolVersion": PROTOCOL_VERSION,
    "capabilities": {},
    "clientInfo": {"name": "glm-mcp-bench", "version": "0"},
}
PROMPT = "Say hello in one short sentence."


class CallFailed(Exception):
    """A call that answered with a JSON-RPC error or an `isError` result."""


def cold_start(command: list[str], env: dict[str, str] | None) -> tuple[float, int]:
    """Seconds from spawn to `tools/list` answered over stdio, and the resident KiB just after."""
    start = time.perf_counter()
    pipe = subprocess.PIPE
    process = subprocess.Popen(command, env=env, stdin=pipe, stdout=pipe, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    try:

        def ask(message: dict[str, Any]) -> None:
            process.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]

        def answer(request_id: int) -> dict[str, Any]:
            while line := process.stdout.readline():  # type: ignore[union-attr]
                message: dict[str, Any] = json.loads(line)
                if message.get("id") == request_id:
                    return message
            raise RuntimeError(f"{command} closed stdout before answering request {request_id}")

        ask({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
        answer(1)
        ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
        ask({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        if not answer(2)["result"]["tools"]:
            raise RuntimeError(f"{command} listed no tools")
        elapsed = time.perf_counter() - start
        return elapsed, memory_kib(process.pid, "VmRSS")
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RawStdio:
    """MCP over stdio as bare JSON-RPC lines to a server process this starts: one request at a time, its answer
    found by id (notifications before it skipped)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self._command = command
        self._env = env
        self._process: Process | None = None
        self._buffer = b""
        self._next_id = 0

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def open(self) -> None:
        self._process = await anyio.open_process(self._command, env=self._env, stderr=subprocess.DEVNULL)
        await self._ask("initialize", INITIALIZE)
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            await self._process.stdin.aclose()
            with anyio.move_on_after(10):
                await self._process.wait()
            if self._process.returncode is None:
                self._process.kill()
                await self._process.wait()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's result; raises `CallFailed` on an error answer."""
        return _result(await self._ask("tools/call", {"name": name, "arguments": arguments}))

    async def _ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        while True:
            message: dict[str, Any] = json.loads(await self._line())
            if message.get("id") == request_id:
                return message

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        await self._process.stdin.send(json.dumps(message).encode() + b"\n")

    async def _line(self) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        while b"\n" not in self._buffer:
            self._buffer += await self._process.stdout.receive()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


class RawMCP:
    """MCP over Streamable HTTP as bare JSON-RPC POSTs on one pooled client, one session for all calls."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self._headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        self._next_id = 0

    async def open(self) -> None:
        response = await self._http.post(self._url, json=self._request("initialize", INITIALIZE), headers=self._headers)
        response.raise_for_status()
        session = response.headers.get("mcp-session-id")
        self._headers["mcp-protocol-version"] = PROTOCOL_VERSION
        if session:
            self._headers["mcp-session-id"] = session
        notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        (await self._http.post(self._url, json=notification, headers=self._headers)).raise_for_status()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's result; raises `CallFailed` on an error answer."""
        body = self._request("tools/call", {"name": name, "arguments": arguments})
        async with self._http.stream("POST", self._url, json=body, headers=self._headers) as response:
            response.raise_for_status()
            if response.headers.get("content-type", "").startswith("application/json"):
                return _result(json.loads(await response.aread()))
            answer: dict[str, Any] | None = None
            # SSE: notifications first, the answer last. Read to the end, as clients do, so that the connection
            # goes back to the pool (left half-read, it would be closed, and every call would pay a new one).
            async for line in response.aiter_lines():
                if answer is None and line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("id") == body["id"]:
                        answer = message
        if answer is None:
            raise CallFailed("the response stream ended without an answer")
        return _result(answer)

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        return {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}


def _result(message: dict[str, Any]) -> dict[str, Any]:
    if "error" in message:
        raise CallFailed(str(message["error"]))
    result: dict[str, Any] = message["result"]
    if result.get("isError"):
        raise CallFailed(str(result.get("structuredContent") or result))
    return result


class Direct:
    """The same chat request sent straight to the emulator: the floor of every per-call figure."""

    def __init__(self, http: httpx2.AsyncClient, base_url: str, body: dict[str, Any]) -> None:
        self._http = http
        self._url = base_url + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {EMULATOR_KEY}", "Content-Type": "application/json"}
        self._streamed = json.dumps({**body, "stream": True}).encode()
        self._whole = json.dumps({**body, "stream": False}).encode()

    async def streamed(self) -> float | None:
        """Read the streamed answer to its end (as the server does); seconds to the first chunk."""
        start = time.perf_counter()
        first: float | None = None
        async with self._http.stream("POST", self._url, content=self._streamed, headers=self._headers) as response:
            if response.status_code != 200:
                raise CallFailed(f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if first is None and line.startswith("data:"):
                    first = time.perf_counter() - start
        return first

    async def whole(self) -> None:
        """The non-streamed answer, for comparison."""
        response = await self._http.post(self._url, content=self._whole, headers=self._headers)
        if response.status_code != 200:
            raise CallFailed(f"HTTP {response.status_code}")
