"""A long generation two ways: held open (one tools/call streaming progress until the answer) and as an
MCP task (a task handle, then tasks/get at the pace the server's pollIntervalMs asks). Counted: the
client's round trips (HTTP requests), and the CPU seconds the server process spent (utime + stime)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2

from bench.figures import Figure
from bench.processes import GLM_MCP, cpu_seconds, emulator, http_server, server_env, shown

MODEL = "glm-4-flash"
PROMPT = "Write about rivers and their deltas."
EXTENSION = "io.modelcontextprotocol/tasks"
VERSION = "2026-07-28"


def _meta(tasks: bool) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}} if tasks else {},
        "progressToken": "bench",
    }


class Wire:
    """Raw JSON-RPC POSTs on the 2026-07-28 wire, counted."""

    def __init__(self, http: httpx2.Client) -> None:
        self._http = http
        self.round_trips = 0

    def __call__(self, method: str, params: dict[str, Any], *, tasks: bool, name: str) -> dict[str, Any]:
        self.round_trips += 1
        body = {"jsonrpc": "2.0", "id": self.round_trips, "method": method, "params": {**params, "_meta": _meta(tasks)}}
        headers = {
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": VERSION,
            "Mcp-Method": method,
            "Mcp-Name": name,
        }
        response = self._http.post("/mcp", json=body, headers=headers)
        answer: dict[str, Any] = {}
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                if message.get("id") == body["id"]:
                    answer = message
        if not answer and response.headers.get("content-type", "").startswith("application/json"):
            answer = response.json()
        if "result" not in answer:
            raise RuntimeError(f"{method} failed: {response.text[:300]}")
        return dict(answer["result"])


def _chunks() -> int:
    """How many chunks the emulator streams for the prompt (its answers are deterministic)."""
    with emulator() as emu:
        body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
        headers = {"Authorization": "Bearer emulator.key-general"}
        response = httpx2.post(emu.origin + "/chat/completions", json=body, headers=headers, timeout=30)
        return sum(1 for line in response.text.splitlines() if line.startswith("data:") and "[DONE]" not in line)


def _held_open(wire: Wire, seconds: float) -> dict[str, Any]:
    arguments = {"prompt": PROMPT, "model": MODEL, "wait_seconds": seconds * 2 + 30}
    return wire("tools/call", {"name": "chat", "arguments": arguments}, tasks=False, name="chat")


def _as_task(wire: Wire) -> dict[str, Any]:
    handle = wire(
        "tools/call", {"name": "chat", "arguments": {"prompt": PROMPT, "model": MODEL}}, tasks=True, name="chat"
    )
    if handle.get("resultType") != "task":
        raise RuntimeError(f"expected a task, got {json.dumps(handle)[:300]}")
    task = handle
    while task["status"] == "working":
        time.sleep(task.get("pollIntervalMs", 1000) / 1000)
        task = wire("tasks/get", {"taskId": handle["taskId"]}, tasks=True, name=handle["taskId"])
    return dict(task["result"])


def long_generation(seconds: float) -> list[Figure]:
    """Round trips and server CPU of a `seconds`-long generation, task path against held-open path."""
    delay = seconds / max(1, _chunks())
    threshold = min(5.0, seconds / 4)  # the default, or short enough that a tiny run still makes a task
    figures: dict[str, tuple[int, float]] = {}
    with emulator(chunk_delay=delay) as emu:
        for path in ("held-open", "task"):
            env = server_env(emu.origin, GLM_TASK_THRESHOLD_SECONDS=str(threshold))
            with http_server(env) as server, httpx2.Client(base_url=server.origin, timeout=seconds * 3 + 60) as http:
                wire = Wire(http)
                before = cpu_seconds(server.process.pid)
                result = _held_open(wire, seconds) if path == "held-open" else _as_task(wire)
                spent = cpu_seconds(server.process.pid) - before
                content = result.get("structuredContent") or {}
                if result.get("isError") or not content.get("text") or content.get("status") == "running":
                    raise RuntimeError(f"{path}: the answer did not come: {json.dumps(result)[:300]}")
                figures[path] = (wire.round_trips, spent)
    command = shown([*GLM_MCP, "--transport", "http"])
    detail = (
        f"a {seconds:.0f} s generation ({delay * 1000:.0f} ms between chunks), GLM_TASK_THRESHOLD_SECONDS={threshold:g}"
    )
    (held_trips, held_cpu), (task_trips, task_cpu) = figures["held-open"], figures["task"]
    return [
        Figure(
            "long generation client round trips (task path)",
            task_trips,
            held_trips,
            "requests",
            command + "  (tools/call as a task, then tasks/get at pollIntervalMs)",
            command + "  (one tools/call held open, progress streamed)",
            detail=detail,
        ),
        Figure(
            "long generation server cpu (task path)",
            task_cpu,
            held_cpu,
            "s",
            command + "  (tools/call as a task, then tasks/get at pollIntervalMs)",
            command + "  (one tools/call held open, progress streamed)",
            detail=detail + "; utime+stime of the server process from /proc",
        ),
    ]
