"""The measurements. Each returns figures whose floor was measured in the same run, interleaved
with the measured thing where that is possible, so the machine's noise falls on both alike."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters

from bench.clients import PROMPT, CallFailed, Direct, RawMCP, RawStdio, cold_start
from bench.figures import Figure, median, percentile
from bench.peers import ROUNDS, CpuRounds, Other, others
from bench.processes import (
    BARE_SERVER,
    EMULATOR_KEY,
    GLM_MCP,
    PYTHON,
    bytecode_written,
    emulator,
    http_server,
    server_env,
    shown,
)
from glm_mcp.config import Settings
from glm_mcp.tools.chat import ChatArguments

STDIO_BUDGET_MS = 0.8
"""Per-call wall p50 over stdio (raw JSON-RPC) at most this much over the bare server's (issue 25)."""
NO_UPSTREAM = "http://127.0.0.1:9/api/paas/v4"
"""Cold start never reaches the upstream: the URL only has to be valid."""


def upstream_body(env: dict[str, str]) -> dict[str, Any]:
    """The request body the server sends for `chat(prompt=PROMPT)`, built by the server's own code."""
    request = ChatArguments(prompt=PROMPT).chat_request(Settings.from_env(env))
    body: dict[str, Any] = json.loads(request.to_json())
    return body


def bare_chat_env(origin: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of `python -m bench.bare_server --upstream`: the request glm-mcp sends, and the key."""
    body = json.dumps({**upstream_body(env), "stream": True})
    return server_env(origin, BENCH_UPSTREAM_BODY=body, BENCH_UPSTREAM_KEY=EMULATOR_KEY)


def pooled_client(connections: int = 100) -> httpx2.AsyncClient:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(300.0), trust_env=False)


def cold_starts(runs: int, with_others: bool = True) -> tuple[list[Figure], dict[str, float], list[str]]:
    """Spawn → initialize → tools/list over stdio, glm-mcp and the bare server alternately (and the peer and the
    Node server after them, unless `with_others` is false); median of `runs`."""
    env = server_env(NO_UPSTREAM)
    compared, notes = _others(NO_UPSTREAM, env, with_others)  # each started once: the page cache warm
    notes += bytecode_written()  # both start from bytecode, as installed packages do
    ours: list[tuple[float, int]] = []
    bare: list[tuple[float, int]] = []
    theirs: list[list[tuple[float, int]]] = [[] for _ in compared]
    cold_start(GLM_MCP, env), cold_start(BARE_SERVER, None)  # page cache warm for both
    for _ in range(runs):
        ours.append(cold_start(GLM_MCP, env))
        bare.append(cold_start(BARE_SERVER, None))
        for other, times in zip(compared, theirs, strict=True):
            times.append(cold_start(other.command, other.env))
    ours_s, bare_s = median([t for t, _ in ours]), median([t for t, _ in bare])
    ours_mib, bare_mib = median([m for _, m in ours]) / 1024, median([m for _, m in bare]) / 1024
    figures = [
        Figure(
            f"cold start (stdio, median of {runs})",
            ours_s,
            bare_s,
            "s",
            shown(GLM_MCP),
            shown(BARE_SERVER),
            "<= 1.1x",
            ours_s <= 1.1 * bare_s,
            f"spawn -> initialize -> tools/list; fastest {min(t for t, _ in ours):.3f} s "
            f"vs {min(t for t, _ in bare):.3f} s",
        ),
        Figure(
            "idle rss (stdio, after tools/list)",
            ours_mib,
            bare_mib,
            "MiB",
            shown(GLM_MCP),
            shown(BARE_SERVER),
            "<= 1.1x",
            ours_mib <= 1.1 * bare_mib,
            "VmRSS from /proc, median of the cold-start runs",
        ),
    ]
    for other, times in zip(compared, theirs, strict=True):
        their_s, their_mib = median([t for t, _ in times]), median([m for _, m in times]) / 1024
        figures += [
            Figure(
                f"cold start, {other.label} (stdio, median of {runs})",
                their_s,
                bare_s,
                "s",
                other.shown,
                shown(BARE_SERVER),
                detail=f"spawn -> initialize -> tools/list, alternating with the others; fastest "
                f"{min(t for t, _ in times):.3f} s; glm-mcp {ours_s:.3f} s; for comparison, no target",
            ),
            Figure(
                f"idle rss, {other.label} (stdio, after tools/list)",
                their_mib,
                bare_mib,
                "MiB",
                other.shown,
                shown(BARE_SERVER),
                detail=f"VmRSS from /proc, median of the cold-start runs; glm-mcp {ours_mib:.1f} MiB; "
                "for comparison, no target",
            ),
        ]
    return figures, {"bare_rss_mib": bare_mib}, notes


def _others(origin: str, env: dict[str, str], wanted: bool) -> tuple[list[Other], list[str]]:
    """The peer and the Node server against `origin` (bench/peers.py), or none with a note saying why."""
    if not wanted:
        return [], ["Peers: the peer glm-mcp 0.8.1 and the Node TS SDK server are left out of --quick."]
    return others(origin, env, bare_chat_env(origin, env), str(upstream_body(env)["model"]))


@dataclass
class Series:
    """Latencies of one way of making the call, in seconds."""

    name: str
    call: Callable[[], Awaitable[Any]]
    times: list[float]

    async def once(self) -> None:
        start = time.perf_counter()
        await self.call()
        self.times.append(time.perf_counter() - start)


async def per_call(calls: int, warmup: int, with_others: bool = True) -> tuple[list[Figure], list[str]]:
    """`chat` at zero upstream latency: through the server (stdio, HTTP) vs straight to the emulator, and over
    stdio with a raw JSON-RPC client vs a bare `MCPServer` making the same streamed request; the peer glm-mcp
    0.8.1 and a Node TS SDK server likewise over stdio (unless `with_others` is false), their wall per call and
    their CPU per call beside the bare server's.

    The ways are interleaved call by call, so a noisy moment hits all of them.
    """
    with emulator() as emu:
        env = server_env(emu.origin)
        bare_command = [*BARE_SERVER, "--upstream", emu.origin]
        raw_ours, raw_bare = RawStdio(GLM_MCP, env), RawStdio(bare_command, bare_chat_env(emu.origin, env))
        compared, notes = _others(emu.origin, env, with_others)
        raw_others = [RawStdio(other.command, other.env) for other in compared]
        with http_server(env) as server:
            async with (
                pooled_client() as http,
                Client(StdioServerParameters(command=PYTHON, args=GLM_MCP[1:], env=env)) as stdio_sdk,
                Client(server.origin + "/mcp") as http_sdk,
            ):
                direct = Direct(http, emu.origin, upstream_body(env))
                raw = RawMCP(http, server.origin + "/mcp")
                await raw.open()
                await raw_ours.open()
                await raw_bare.open()
                for client in raw_others:
                    await client.open()
                arguments = {"prompt": PROMPT}

                async def sdk_call(client: Client) -> None:
                    result = await client.call_tool("chat", arguments)
                    if result.is_error:
                        raise CallFailed(str(result.structured_content))

                series = [
                    Series("direct streamed", direct.streamed, []),
                    Series("direct non-stream", direct.whole, []),
                    Series("stdio SDK Client", lambda: sdk_call(stdio_sdk), []),
                    Series("http raw JSON-RPC", lambda: raw.call_tool("chat", arguments), []),
                    Series("http SDK Client", lambda: sdk_call(http_sdk), []),
                    Series("stdio raw JSON-RPC", lambda: raw_ours.call_tool("chat", arguments), []),
                    Series("stdio raw JSON-RPC, bare", lambda: raw_bare.call_tool("chat", arguments), []),
                ]
                series += [
                    Series(other.label, partial(client.call_tool, other.tool, other.arguments), [])
                    for other, client in zip(compared, raw_others, strict=True)
                ]
                cpu = CpuRounds({"ours": raw_ours.pid, "bare": raw_bare.pid})
                cpu.pids.update((other.label, client.pid) for other, client in zip(compared, raw_others, strict=True))
                per_round, since = max(calls // ROUNDS, 1), 0
                try:
                    for i in range(warmup + calls):
                        if i == warmup:
                            for s in series:
                                s.times.clear()
                            cpu.start()
                        for s in series:
                            await s.once()
                        if i >= warmup:
                            since += 1
                            if since == per_round or i == warmup + calls - 1:
                                cpu.end_round(since)
                                since = 0
                finally:
                    for client in (raw_ours, raw_bare, *raw_others):
                        await client.close()
    floor, whole, stdio, raw_http, sdk_http, raw_stdio, raw_stdio_bare = series[:7]
    ms = 1000.0
    floor_cmd = f"httpx2 POST {emu.origin}/chat/completions (stream: true, read to the end)"
    stdio_cmd = f"mcp.Client(StdioServerParameters: {shown(GLM_MCP)}).call_tool('chat')"
    raw_cmd = f"raw JSON-RPC POST /mcp (httpx2) to {shown(server.command)}"
    sdk_cmd = f"mcp.Client('{server.origin}/mcp').call_tool('chat')"

    def figure(name: str, s: Series, command: str, q: float, budget_ms: float | None) -> Figure:
        value, base = percentile(s.times, q) * ms, percentile(floor.times, q) * ms
        return Figure(
            name,
            value,
            base,
            "ms",
            command,
            floor_cmd,
            f"+{budget_ms:g} ms" if budget_ms else "",
            None if budget_ms is None else value - base < budget_ms,
            f"difference {value - base:+.2f} ms over {len(s.times)} calls",
        )

    def over_bare(q: float, budget_ms: float | None) -> Figure:
        value, base = percentile(raw_stdio.times, q) * ms, percentile(raw_stdio_bare.times, q) * ms
        return Figure(
            f"per-call stdio p{round(q * 100)} (raw JSON-RPC) over a bare server",
            value,
            base,
            "ms",
            f"raw JSON-RPC lines to {shown(GLM_MCP)}: tools/call chat",
            f"the same to {shown(bare_command)}: its chat tool makes the same streamed request",
            f"+{budget_ms:g} ms" if budget_ms else "",
            None if budget_ms is None else value - base <= budget_ms,
            f"difference {value - base:+.2f} ms over {len(raw_stdio.times)} calls; "
            f"over the direct request {value - percentile(floor.times, q) * ms:+.2f} ms",
        )

    def other_figures(other: Other, s: Series) -> list[Figure]:
        value, base = percentile(s.times, 0.5) * ms, percentile(raw_stdio_bare.times, 0.5) * ms
        cpu_value, cpu_base = cpu.ms_per_call(other.label), cpu.ms_per_call("bare")
        command = f"raw JSON-RPC lines to {other.shown}: {other.how}"
        floor_command = f"the same to {shown(bare_command)}: its chat tool makes the same streamed request"
        return [
            Figure(
                f"per-call stdio p50 (raw JSON-RPC), {other.label}",
                value,
                base,
                "ms",
                command,
                floor_command,
                detail=f"difference {value - base:+.2f} ms; p99 {percentile(s.times, 0.99) * ms:.2f} ms vs "
                f"{percentile(raw_stdio_bare.times, 0.99) * ms:.2f} ms over {len(s.times)} calls; "
                f"glm-mcp p50 {percentile(raw_stdio.times, 0.5) * ms:.2f} ms; for comparison, no target",
            ),
            Figure(
                f"server cpu per chat, stdio (raw JSON-RPC), {other.label}",
                cpu_value,
                cpu_base,
                "ms",
                command + ", utime+stime from /proc",
                floor_command,
                detail=f"difference {cpu_value - cpu_base:+.2f} ms; glm-mcp {cpu.ms_per_call('ours'):.2f} ms; median "
                f"of {cpu.rounds('bare')} rounds of {per_round} calls, interleaved call by call (/proc counts "
                f"{cpu.tick_ms:g} ms ticks: {cpu.tick_ms / per_round:.2f} ms a call); for comparison, no target",
            ),
        ]

    return [
        over_bare(0.5, STDIO_BUDGET_MS),
        over_bare(0.99, None),
        figure("per-call stdio p50 (SDK Client)", stdio, stdio_cmd, 0.5, 1.5),
        figure("per-call stdio p99 (SDK Client)", stdio, stdio_cmd, 0.99, None),
        figure("per-call http p50 (raw JSON-RPC)", raw_http, raw_cmd, 0.5, 4.0),
        figure("per-call http p99 (raw JSON-RPC)", raw_http, raw_cmd, 0.99, None),
        figure("per-call http p50 (SDK Client)", sdk_http, sdk_cmd, 0.5, None),
        figure("per-call http p99 (SDK Client)", sdk_http, sdk_cmd, 0.99, None),
        figure(
            "per-call direct non-stream p50",
            whole,
            floor_cmd.replace("stream: true, read to the end", "stream: false"),
            0.5,
            None,
        ),
        *(f for other, s in zip(compared, series[7:], strict=True) for f in other_figures(other, s)),
    ], notes


class FirstText:
    """A progress callback noting when the first notification about answer text (not "waiting") came."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.at: float | None = None

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        if self.at is None and message and not message.startswith("waiting"):
            self.at = time.perf_counter() - self._start


async def first_progress(runs: int, latency: float = 0.1, chunk_delay: float = 0.05) -> list[Figure]:
    """Time to the first progress notification that carries answer text, vs the first chunk read directly.

    The emulator does not record when it sent a chunk, so the floor is the first chunk of a direct
    streamed request in the same run: `first progress - first direct chunk` is how much later a
    client learns of the first words through the server (an upper bound: it includes the MCP request).
    """
    delays: list[float] = []
    firsts: list[float] = []
    progress_at: list[float] = []
    with emulator(latency=latency, chunk_delay=chunk_delay) as emu:
        env = server_env(emu.origin)
        async with (
            pooled_client() as http,
            Client(StdioServerParameters(command=PYTHON, args=GLM_MCP[1:], env=env)) as client,
        ):
            direct = Direct(http, emu.origin, upstream_body(env))
            await client.call_tool("chat", {"prompt": PROMPT})  # warm-up
            for _ in range(runs):
                first = await direct.streamed()
                assert first is not None
                watch = FirstText()
                await client.call_tool("chat", {"prompt": PROMPT}, progress_callback=watch)
                if watch.at is not None:
                    firsts.append(first)
                    progress_at.append(watch.at)
                    delays.append(watch.at - first)
    if not delays:
        raise RuntimeError("no progress notification with answer text arrived")
    delay_ms = median(delays) * 1000
    return [
        Figure(
            f"first progress after first chunk (stdio, median of {len(delays)})",
            median(progress_at) * 1000,
            median(firsts) * 1000,
            "ms",
            f"mcp.Client(StdioServerParameters: {shown(GLM_MCP)}).call_tool('chat', progress_callback)",
            "httpx2 streamed POST to the emulator: first data line",
            "+20 ms",
            delay_ms <= 20,
            f"first progress {delay_ms:+.1f} ms after the first chunk (median; max {max(delays) * 1000:+.1f} ms); "
            f"emulator latency {latency * 1000:.0f} ms, chunk_delay {chunk_delay * 1000:.0f} ms",
        )
    ]
