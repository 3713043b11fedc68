"""Where a call's server CPU goes: the upstream client against a bare httpx2 loop, and the server's CPU per
call against a bare SDK server's (`python -m bench --only breakdown`): a chat against the bare server making
the same streamed request, over stdio and over HTTP one call at a time (raw JSON-RPC clients, so the client's
own cost is not in the way), and against the bare server's trivial tool.

The per-call wall figures over stdio compare glm-mcp with a direct streamed request, which has no
MCP in it at all; these say how much of the difference is the SDK's own per-call cost (a bare
`MCPServer` answering a trivial tool), how much the upstream client (in process: `GLMClient` against
the loop the bare HTTP server uses), and so how much is the rest of glm-mcp's chat path.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import httpx2
from mcp import Client, StdioServerParameters

from bench.bare_server import streamed_text
from bench.clients import PROMPT, RawMCP, RawStdio
from bench.figures import Figure
from bench.measure import bare_chat_env, pooled_client, upstream_body
from bench.processes import (
    BARE_SERVER,
    EMULATOR_KEY,
    GLM_MCP,
    PYTHON,
    Running,
    cpu_seconds,
    emulator,
    free_port,
    http_server,
    running,
    server_env,
    shown,
)

ROUNDS = 5
CPU_BUDGET_MS = 0.5
"""Server CPU per chat at most this much over the bare server making the same streamed request (issue 25)."""


async def breakdown(calls: int, warmup: int) -> list[Figure]:
    with emulator() as emu:
        env = server_env(emu.origin)
        client = await _client_cpu(emu.origin, env, calls, warmup)
        ours_stdio = await _stdio_cpu(GLM_MCP, env, "chat", {"prompt": PROMPT}, calls, warmup)
        ours_cheap = await _stdio_cpu(GLM_MCP, env, "list_jobs", {}, calls, warmup)
        bare_stdio = await _stdio_cpu(BARE_SERVER, env, "echo", {"text": PROMPT}, calls, warmup)
        bare_command = [*BARE_SERVER, "--upstream", emu.origin]
        bare_env = bare_chat_env(emu.origin, env)
        stdio_ours, stdio_bare = await _raw_stdio_cpu(GLM_MCP, env, bare_command, bare_env, calls, warmup)
        port = free_port()
        # Both stateless (glm-mcp's default over HTTP): a stateless POST sets up a session of its own, which a
        # sessionful bare server would not pay for (the load section measures both modes, each against its own).
        bare_http = [*bare_command, "--http", str(port), "--stateless"]
        with http_server(env) as ours, running(bare_http, port, bare_env) as bare:
            http_ours, http_bare = await _raw_http_cpu(ours, bare, calls, warmup)
    glm_ms, loop_ms = client
    sdk = shown(BARE_SERVER) + " over stdio: tools/call echo (mcp.Client)"
    same = "its chat tool makes the same streamed request (utime+stime from /proc)"
    return [
        Figure(
            "server cpu per chat over a bare server, stdio (raw JSON-RPC)",
            stdio_ours,
            stdio_bare,
            "ms",
            f"raw JSON-RPC lines to {shown(GLM_MCP)}: tools/call chat, one at a time",
            f"the same to {shown(bare_command)}: {same}",
            f"<= floor +{CPU_BUDGET_MS} ms",
            stdio_ours - stdio_bare <= CPU_BUDGET_MS,
            f"difference {stdio_ours - stdio_bare:+.2f} ms; {ROUNDS} interleaved rounds of {calls // ROUNDS}",
        ),
        Figure(
            "server cpu per chat over a bare server, http 1 at a time, stateless (raw JSON-RPC)",
            http_ours,
            http_bare,
            "ms",
            f"raw JSON-RPC POSTs to {shown(ours.command)}: tools/call chat, one at a time",
            f"the same to {shown(bare.command)}: {same}",
            f"<= floor +{CPU_BUDGET_MS} ms",
            http_ours - http_bare <= CPU_BUDGET_MS,
            f"difference {http_ours - http_bare:+.2f} ms; {ROUNDS} interleaved rounds of {calls // ROUNDS}",
        ),
        Figure(
            "upstream client cpu per call (in process)",
            glm_ms,
            loop_ms,
            "ms",
            "GLMClient.stream_chat (typed chunks, bounds, deadline, retries, auth) read to the end",
            "httpx2 client.stream + aiter_lines + json.loads (bench/bare_server.py's chat tool)",
            detail=f"difference {glm_ms - loop_ms:+.2f} ms; median of {ROUNDS} interleaved rounds of {calls // ROUNDS}",
        ),
        Figure(
            "server cpu per call, stdio: chat",
            ours_stdio,
            bare_stdio,
            "ms",
            shown(GLM_MCP) + " over stdio: tools/call chat (mcp.Client), utime+stime from /proc",
            sdk,
            detail=f"difference {ours_stdio - bare_stdio:+.2f} ms, of which the upstream client in process "
            f"{glm_ms:.2f} ms",
        ),
        Figure(
            "server cpu per call, stdio: list_jobs",
            ours_cheap,
            bare_stdio,
            "ms",
            shown(GLM_MCP) + " over stdio: tools/call list_jobs (mcp.Client)",
            sdk,
            detail=f"difference {ours_cheap - bare_stdio:+.2f} ms: a call with no upstream request",
        ),
    ]


async def _client_cpu(origin: str, env: dict[str, str], calls: int, warmup: int) -> tuple[float, float]:
    from glm_mcp.config import Settings
    from glm_mcp.glm.types import ChatRequest
    from glm_mcp.upstream import open_glm_client

    settings = Settings.from_env(env)
    built = upstream_body(env)  # what the server sends for chat(prompt=PROMPT), by its own code
    request = ChatRequest.model_validate(built)
    body = json.dumps({**built, "stream": True}).encode()
    headers = {"Authorization": f"Bearer {EMULATOR_KEY}", "Content-Type": "application/json"}
    url = origin.rstrip("/") + "/chat/completions"
    async with httpx2.AsyncClient(timeout=300, trust_env=False) as http, open_glm_client(settings) as glm:

        async def loop() -> None:
            await streamed_text(http, url, body, headers)

        async def ours() -> None:
            async with glm.stream_chat(request) as chunks:
                async for _ in chunks:
                    pass

        return await _interleaved([ours, loop], calls, warmup)


async def _interleaved(ways: list[Callable[[], Awaitable[None]]], calls: int, warmup: int) -> tuple[float, float]:
    for way in ways:
        for _ in range(warmup):
            await way()
    rounds: list[list[float]] = [[] for _ in ways]
    per_round = max(calls // ROUNDS, 1)
    for _ in range(ROUNDS):
        for i, way in enumerate(ways):
            start = time.process_time()
            for _ in range(per_round):
                await way()
            rounds[i].append((time.process_time() - start) * 1000 / per_round)
    first, second = (statistics.median(r) for r in rounds)
    return first, second


async def _raw_stdio_cpu(
    ours: list[str], env: dict[str, str], bare: list[str], bare_env: dict[str, str], calls: int, warmup: int
) -> tuple[float, float]:
    """CPU ms per chat of each server over stdio (raw JSON-RPC), in interleaved rounds: (ours, bare)."""
    with tempfile.TemporaryDirectory() as data_dir:
        clients = [RawStdio(ours, {**env, "GLM_DATA_DIR": data_dir}), RawStdio(bare, bare_env)]
        for client in clients:
            await client.open()
        try:
            ways = [(client.pid, partial(client.call_tool, "chat", {"prompt": PROMPT})) for client in clients]
            return await _cpu_rounds(ways, calls, warmup)
        finally:
            for client in clients:
                await client.close()


async def _raw_http_cpu(ours: Running, bare: Running, calls: int, warmup: int) -> tuple[float, float]:
    """CPU ms per chat of each HTTP server, one call at a time (raw JSON-RPC POSTs): (ours, bare)."""
    async with pooled_client() as http:
        ways: list[tuple[int, Callable[[], Awaitable[object]]]] = []
        for server in (ours, bare):
            client = RawMCP(http, server.origin + "/mcp")
            await client.open()
            ways.append((server.process.pid, partial(client.call_tool, "chat", {"prompt": PROMPT})))
        return await _cpu_rounds(ways, calls, warmup)


async def _cpu_rounds(
    ways: Sequence[tuple[int, Callable[[], Awaitable[object]]]], calls: int, warmup: int
) -> tuple[float, float]:
    """The median over `ROUNDS` interleaved rounds of each way's server CPU ms per call (its process's, from /proc)."""
    for _, call in ways:
        for _ in range(warmup):
            await call()
    rounds: list[list[float]] = [[] for _ in ways]
    per_round = max(calls // ROUNDS, 1)
    for _ in range(ROUNDS):
        for i, (pid, call) in enumerate(ways):
            before = cpu_seconds(pid)
            for _ in range(per_round):
                await call()
            rounds[i].append((cpu_seconds(pid) - before) * 1000 / per_round)
    first, second = (statistics.median(r) for r in rounds)
    return first, second


async def _stdio_cpu(
    command: list[str], env: dict[str, str], tool: str, arguments: dict[str, object], calls: int, warmup: int
) -> float:
    """The server process's CPU ms per `tool` call, over stdio through the SDK Client, in a data dir of its own."""
    with tempfile.TemporaryDirectory() as data_dir:
        params = StdioServerParameters(
            command=PYTHON, args=command[1:], env={**env, "GLM_DATA_DIR": data_dir}, cwd=os.getcwd()
        )
        async with Client(params) as client:
            for _ in range(warmup):
                await client.call_tool(tool, arguments)
            pid = _server_pid(command)
            before = cpu_seconds(pid)
            for _ in range(calls):
                await client.call_tool(tool, arguments)
            return (cpu_seconds(pid) - before) * 1000 / calls


def _server_pid(command: list[str]) -> int:
    """The newest child of this process running `command` (the SDK Client does not say which pid it started)."""
    mine = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = stat.read().rpartition(")")[2].split()[1]
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
        except OSError:
            continue
        if parent == mine and command[-1].encode() in args:
            found.append(int(entry))
    if not found:
        raise RuntimeError(f"no child process runs {shown(command)}")
    return max(found)
