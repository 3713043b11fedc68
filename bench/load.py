"""Concurrent `chat` calls over HTTP: the server's CPU per call beside a bare SDK server doing the same work.

For each transport mode (stateless, sessionful) and each load level, three runs against one emulator
answering after 200 ms: straight to the emulator (the wall-time floor), through a bare `MCPServer`
whose one tool makes the same streamed request (`python -m bench.bare_server --http`: the CPU floor),
and through glm-mcp. The figure is the server process's CPU (utime + stime from /proc) over the run,
per call: on a shared 2-core machine, wall time measures the machine as much as the server.

The generator spreads its workers over small pools (`POOL` connections each, fresh for every run, one
set for each target): one big pool costs the generator O(N²) CPU per burst (see
docs/httpcore2-pool-repro.py), and a pool kept from one run to the next reuses connections that the
servers' keep-alive has closed. Between runs it waits longer than uvicorn's keep-alive, so every idle
connection of the servers' own upstream pools is closed and seen as closed before the next burst.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

from bench.clients import PROMPT, CallFailed, Direct, RawMCP
from bench.figures import Figure, percentile
from bench.processes import (
    EMULATOR_KEY,
    PYTHON,
    Running,
    cpu_seconds,
    emulator,
    free_port,
    http_server,
    memory_kib,
    running,
    server_env,
    shown,
)

LATENCY_S = 0.2
CONCURRENCY = 1000
WAIT_S = 600
POOL = 32
"""Connections per pool of the load generator."""
KEEP_ALIVE_S = 5.0
"""uvicorn's keep-alive (`timeout_keep_alive`), which the emulator, glm-mcp and the bare server all keep."""
CPU_BUDGET_MS = 0.5
"""Server CPU per call at most this much over the bare server's, at every level (issue 25)."""
FLAT_RATIO = 1.3
MODES = ("stateless", "sessionful")


@dataclass
class Run:
    """One burst: its wall time, the latencies of the calls that succeeded, the failures by cause, and CPU."""

    calls: int
    wall: float = 0.0
    times: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu_s: float | None = None

    @property
    def cpu_ms_per_call(self) -> float:
        return (self.cpu_s or 0.0) * 1000 / self.calls

    def summary(self) -> str:
        done = len(self.times)
        rate = done / self.wall if self.wall else 0.0
        p50 = percentile(self.times, 0.5) * 1000 if done else float("nan")
        p99 = percentile(self.times, 0.99) * 1000 if done else float("nan")
        errors = sum(self.errors.values())
        causes = f" ({', '.join(f'{cause} {n}' for cause, n in self.errors.most_common())})" if errors else ""
        cpu = f", server cpu {self.cpu_ms_per_call:.2f} ms/call" if self.cpu_s is not None else ""
        return (
            f"{rate:.0f} calls/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms, wall {self.wall:.2f} s, "
            f"{errors} errors{causes}{cpu}"
        )


def _cause(exc: Exception) -> str:
    if isinstance(exc, CallFailed):
        return f"CallFailed: {str(exc)[:80]}"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


Call = Callable[[], Awaitable[Any]]


async def burst(calls: list[Call], total: int, pid: int | None) -> Run:
    """`total` calls by `len(calls)` workers started together (worker i uses `calls[i]`); CPU of `pid` over it."""
    run = Run(total)
    remaining = total

    async def worker(call: Call) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                await call()
            except (CallFailed, httpx2.HTTPError, json.JSONDecodeError) as exc:
                run.errors[_cause(exc)] += 1
            else:
                run.times.append(time.perf_counter() - start)

    before = cpu_seconds(pid) if pid is not None else 0.0
    start = time.perf_counter()
    async with anyio.create_task_group() as workers:
        for call in calls:
            workers.start_soon(worker, call)
    run.wall = time.perf_counter() - start
    if pid is not None:
        run.cpu_s = cpu_seconds(pid) - before
    return run


async def _open_pools(stack: AsyncExitStack, level: int) -> list[httpx2.AsyncClient]:
    """Fresh small pools for `level` workers: `POOL` connections each."""
    limits = httpx2.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    return [
        await stack.enter_async_context(
            httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(300.0), trust_env=False)
        )
        for _ in range(-(-level // POOL))
    ]


async def run_direct(origin: str, body: dict[str, Any], level: int, total: int) -> Run:
    async with AsyncExitStack() as stack:
        pools = await _open_pools(stack, level)
        directs = [Direct(pool, origin, body) for pool in pools]
        return await burst([directs[i // POOL].streamed for i in range(level)], total, None)


async def run_mcp(server: Running, level: int, total: int) -> Run:
    """The calls as raw JSON-RPC POSTs, one MCP session per pool (sessionful mode), CPU of `server`."""
    async with AsyncExitStack() as stack:
        pools = await _open_pools(stack, level)
        clients = [RawMCP(pool, server.origin + "/mcp") for pool in pools]
        for client in clients:
            await client.open()
        arguments = {"prompt": PROMPT}
        calls: list[Call] = [
            (lambda c: lambda: c.call_tool("chat", arguments))(clients[i // POOL]) for i in range(level)
        ]
        return await burst(calls, total, server.process.pid)


def bare_http(origin: str, body: dict[str, Any], stateless: bool) -> tuple[list[str], int, dict[str, str]]:
    port = free_port()
    command = [PYTHON, "-m", "bench.bare_server", "--http", str(port), "--upstream", origin]
    command += ["--max-connections", str(CONCURRENCY)] + (["--stateless"] if stateless else [])
    env = server_env(origin, BENCH_UPSTREAM_BODY=json.dumps({**body, "stream": True}), BENCH_UPSTREAM_KEY=EMULATOR_KEY)
    return command, port, env


async def load(
    levels: tuple[int, ...], min_calls: int, pause_s: float, upstream_body: Callable[[dict[str, str]], dict[str, Any]]
) -> tuple[list[Figure], dict[str, float]]:
    """The load figures for every mode and level, and glm-mcp's memory before and after (stateless)."""
    figures: list[Figure] = []
    memory: dict[str, float] = {}
    with emulator(latency=LATENCY_S) as emu:
        for mode in MODES:
            stateless = mode == "stateless"
            env = server_env(
                emu.origin,
                GLM_MAX_CONCURRENCY=str(CONCURRENCY),
                GLM_WAIT_SECONDS=str(WAIT_S),
                GLM_MCP_STATELESS=str(stateless).lower(),
            )
            body = upstream_body(env)
            bare_command, bare_port, bare_env = bare_http(emu.origin, body, stateless)
            with http_server(env) as ours, running(bare_command, bare_port, bare_env) as bare:
                if stateless:
                    memory["http_idle_mib"] = memory_kib(ours.process.pid, "VmRSS") / 1024
                for server in (ours, bare):  # warm-up: imports and first-call work are not in the figures
                    await run_mcp(server, 2, 2)
                await run_direct(emu.origin, body, 2, 2)
                per_level: dict[int, tuple[Run, Run, Run]] = {}
                for level in levels:
                    total = max(level, min_calls)
                    runs: list[Run] = []
                    for target in ("direct", "bare", "ours"):
                        await anyio.sleep(pause_s)
                        if target == "direct":
                            runs.append(await run_direct(emu.origin, body, level, total))
                        else:
                            runs.append(await run_mcp(ours if target == "ours" else bare, level, total))
                    direct, floor, mine = runs
                    per_level[level] = (direct, floor, mine)
                    print(f"  load {level} {mode}: ours {mine.summary()}", flush=True)
                    figures += _level_figures(mode, level, ours, bare, direct, floor, mine)
                if stateless:
                    memory["http_peak_mib"] = memory_kib(ours.process.pid, "VmHWM") / 1024
            figures += _flatness(mode, per_level, ours)
    return figures, memory


def _level_figures(
    mode: str, level: int, ours: Running, bare: Running, direct: Run, floor: Run, mine: Run
) -> list[Figure]:
    errors = sum(mine.errors.values())
    load_average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    details = (
        f"glm-mcp: {mine.summary()}; bare: {floor.summary()}; direct: {direct.summary()}; "
        f"load average after it {load_average}"
    )
    command = (
        f"{mine.calls} raw JSON-RPC tools/call chat, {level} at once, to {shown(ours.command)} "
        f"(GLM_MAX_CONCURRENCY={CONCURRENCY}, GLM_WAIT_SECONDS={WAIT_S}, {mode})"
    )
    gap = mine.cpu_ms_per_call - floor.cpu_ms_per_call
    return [
        Figure(
            f"load {level} concurrent ({mode}): server cpu per call",
            mine.cpu_ms_per_call,
            floor.cpu_ms_per_call,
            "ms",
            command,
            f"the same calls to {shown(bare.command)} (utime+stime from /proc over the run)",
            f"<= floor +{CPU_BUDGET_MS} ms, no errors",
            gap <= CPU_BUDGET_MS and errors == 0,
            f"difference {gap:+.2f} ms; " + details,
        ),
        Figure(
            f"load {level} concurrent ({mode}): wall",
            mine.wall,
            direct.wall,
            "s",
            command,
            f"the same load as httpx2 streamed POSTs straight to the emulator (latency {LATENCY_S} s)",
            detail=f"bare server wall {floor.wall:.2f} s; {mine.calls / mine.wall:.0f} calls/s",
        ),
    ]


def _flatness(mode: str, per_level: dict[int, tuple[Run, Run, Run]], ours: Running) -> list[Figure]:
    """CPU per call at the highest level against the level 64 (the lowest, in a quick run)."""
    base = 64 if 64 in per_level else min(per_level)
    top = max(per_level)
    if top == base:
        return []
    high, low = per_level[top][2], per_level[base][2]
    bare_high, bare_low = per_level[top][1], per_level[base][1]
    ratio = high.cpu_ms_per_call / low.cpu_ms_per_call if low.cpu_ms_per_call else float("inf")
    return [
        Figure(
            f"load cpu per call, {top} vs {base} concurrent ({mode})",
            high.cpu_ms_per_call,
            low.cpu_ms_per_call,
            "ms",
            f"{shown(ours.command)}: server cpu per call at {top} concurrent",
            f"the same server at {base} concurrent",
            f"<= {FLAT_RATIO}x",
            ratio <= FLAT_RATIO,
            f"bare server: {bare_high.cpu_ms_per_call:.2f} vs {bare_low.cpu_ms_per_call:.2f} ms",
        )
    ]


__all__ = ["CONCURRENCY", "KEEP_ALIVE_S", "WAIT_S", "load"]
