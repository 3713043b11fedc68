"""Scale-out: concurrent `chat` calls to one glm-mcp replica on PostgreSQL, and to three behind a round-robin proxy.

Every run has its floor in the same run: the bare server (`python -m bench.bare_server --http`,
whose one tool makes the same streamed upstream request), one alone, and three behind the same
proxy (`python -m rigs.round_robin`, a process of its own). The figure is the CPU of the server
processes (utime + stime from /proc, summed over the replicas) per call; the proxy's own CPU is a
figure apart, since a real deployment's load balancer is not ours. Calls are raw JSON-RPC POSTs,
stateless, from pools of `load.POOL` connections, as in bench/load.py.

Every call asks with a prompt of its own (`call<n>-<run>` first), which the emulator quotes in its
answer: an answer that does not carry its own tag, or carries another's, is counted as misrouted;
a call with no answer at all is lost (and counted by cause).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from bench import load
from bench.clients import PROMPT, RawMCP
from bench.figures import Figure
from bench.processes import PYTHON, Running, cpu_seconds, emulator, free_port, http_server, running, server_env, shown
from bench.registry import postgres_missing

PROXY = [PYTHON, "-m", "rigs.round_robin"]
REPLICAS = 3
PROXY_CONNECT_S = 60
"""A burst of 1000 new connections to replicas that share 2 cores is accepted slowly: not a failure of theirs."""
TAG = re.compile(r"call\d+-r\d+")


@dataclass
class Target:
    """What a run is sent to: `origin`, the server processes behind it, and the proxy's process when there is one."""

    name: str
    origin: str
    servers: list[Running]
    proxy: Running | None = None

    def command(self) -> str:
        server = shown(self.servers[0].command)
        if self.proxy is None:
            return server
        server = re.sub(r"(--port|--http) \d+", r"\1 PORT", server)  # each replica has a port of its own
        return f"{len(self.servers)} x {server} behind {shown(self.proxy.command[:3])} (round robin)"


@dataclass
class Result:
    run: load.Run
    proxy_cpu_s: float | None
    misrouted: Counter[str] = field(default_factory=Counter)

    @property
    def lost(self) -> int:
        return sum(self.run.errors.values())

    def proxy_ms_per_call(self) -> float:
        return (self.proxy_cpu_s or 0.0) * 1000 / self.run.calls

    def summary(self) -> str:
        wrong = sum(self.misrouted.values())
        proxy = f", proxy cpu {self.proxy_ms_per_call():.2f} ms/call" if self.proxy_cpu_s is not None else ""
        causes = f" ({', '.join(f'{c} {n}' for c, n in self.misrouted.most_common())})" if wrong else ""
        return f"{self.run.summary()}{proxy}; {self.lost} lost, {wrong} misrouted{causes}"


def _answer_text(result: dict[str, Any]) -> str:
    return " ".join(str(part.get("text", "")) for part in result.get("content", []))


async def run_calls(target: Target, level: int, total: int, run_id: int) -> Result:
    """`total` calls, `level` at once, each with its own tag; CPU of the servers and of the proxy over the burst."""
    counter = iter(range(total))
    misrouted: Counter[str] = Counter()
    async with AsyncExitStack() as stack:
        pools = await load._open_pools(stack, level)
        clients = [RawMCP(pool, target.origin + "/mcp") for pool in pools]
        for client in clients:
            await client.open()

        def call(client: RawMCP) -> load.Call:
            async def one() -> None:
                tag = f"call{next(counter)}-r{run_id}"
                result = await client.call_tool("chat", {"prompt": f"{tag} {PROMPT}"})
                found = set(TAG.findall(_answer_text(result)))
                if tag not in found:
                    misrouted["answer without its own tag"] += 1
                elif found != {tag}:
                    misrouted["answer with another call's tag"] += 1

            return one

        calls = [call(clients[i // load.POOL]) for i in range(level)]
        pids = [server.process.pid for server in target.servers]
        before = sum(cpu_seconds(pid) for pid in pids)
        proxy_before = cpu_seconds(target.proxy.process.pid) if target.proxy else 0.0
        run = await load.burst(calls, total, None)
        run.cpu_s = sum(cpu_seconds(pid) for pid in pids) - before
        proxy_cpu = cpu_seconds(target.proxy.process.pid) - proxy_before if target.proxy else None
    return Result(run, proxy_cpu, misrouted)


@contextmanager
def _proxy(backends: list[Running]) -> Iterator[Running]:
    port = free_port()
    command = [*PROXY, str(port), *(b.origin for b in backends), "--max-connections", str(load.CONCURRENCY + 24)]
    command += ["--connect-timeout", str(PROXY_CONNECT_S)]
    with running(command, port) as proxy:
        yield proxy


async def replicas(
    calls: int, pause_s: float, upstream_body: Callable[[dict[str, str]], dict[str, Any]]
) -> tuple[list[Figure], list[str]]:
    """The figures, or none and a note saying why when PostgreSQL cannot run here."""
    why_not = postgres_missing()
    if why_not is not None:
        print(f"  replicas: skipped: {why_not}", flush=True)
        return [], [f"Replicas: skipped: {why_not}."]
    from rigs.postgres_server import postgres_server

    results: dict[str, Result] = {}
    with postgres_server(fsync=True) as database, emulator(latency=load.LATENCY_S) as emu, ExitStack() as stack:

        def env() -> dict[str, str]:
            return server_env(
                emu.origin,
                GLM_MAX_CONCURRENCY=str(load.CONCURRENCY),
                GLM_WAIT_SECONDS=str(load.WAIT_S),
                GLM_MCP_STATELESS="true",
                GLM_MCP_DATABASE_URL=database.url,
            )

        body = upstream_body(env())
        ours = [stack.enter_context(http_server(env())) for _ in range(REPLICAS)]
        bare = []
        for _ in range(REPLICAS):
            command, port, bare_env = load.bare_http(emu.origin, body, stateless=True)
            bare.append(stack.enter_context(running(command, port, bare_env)))
        targets = {
            "bare 1": Target("bare 1", bare[0].origin, bare[:1]),
            "ours 1": Target("ours 1", ours[0].origin, ours[:1]),
        }
        for name, servers in (("bare 3", bare), ("ours 3", ours)):
            proxy = stack.enter_context(_proxy(servers))
            targets[name] = Target(name, proxy.origin, servers, proxy)
        for target in targets.values():  # warm-up: imports and first-call work are not in the figures
            await run_calls(target, REPLICAS, 2 * REPLICAS, 0)
        for run_id, (name, target) in enumerate(targets.items(), start=1):
            await anyio.sleep(pause_s)
            results[name] = await run_calls(target, calls, calls, run_id)
            print(f"  replicas {name}: {results[name].summary()}", flush=True)
    figures = _figures(targets, results, calls)
    note = (
        f"Replicas: {calls} stateless chat calls at once, emulator latency {load.LATENCY_S} s, servers with "
        f"GLM_MAX_CONCURRENCY={load.CONCURRENCY} and GLM_WAIT_SECONDS={load.WAIT_S}; glm-mcp on one PostgreSQL "
        f"(a throwaway server, fsync on); the proxy a process of its own (python -m rigs.round_robin); runs "
        f"{pause_s:g} s apart."
    )
    return figures, [note]


def _figures(targets: dict[str, Target], results: dict[str, Result], calls: int) -> list[Figure]:
    load_average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    figures: list[Figure] = []
    for count in (1, REPLICAS):
        mine, floor = results[f"ours {count}"], results[f"bare {count}"]
        ours, bare = targets[f"ours {count}"], targets[f"bare {count}"]
        where = "one replica" if count == 1 else f"{count} replicas behind the proxy"
        command = f"{calls} raw JSON-RPC tools/call chat at once (stateless) to {ours.command()}, on PostgreSQL"
        floor_command = f"the same calls to {bare.command()}"
        wrong = sum(mine.misrouted.values()) + sum(floor.misrouted.values())
        details = f"glm-mcp: {mine.summary()}; bare: {floor.summary()}; load average after it {load_average}"
        summed = " (summed over the replicas)" if count > 1 else ""
        figures.append(
            Figure(
                f"replicas: {where}, server cpu per call{summed}",
                mine.run.cpu_ms_per_call,
                floor.run.cpu_ms_per_call,
                "ms",
                command,
                floor_command + " (utime+stime from /proc over the run)",
                "no call lost or misrouted (here or in the floor)",
                mine.lost + floor.lost == 0 and wrong == 0,
                details,
            )
        )
        figures.append(
            Figure(
                f"replicas: {where}, wall",
                mine.run.wall,
                floor.run.wall,
                "s",
                command,
                floor_command,
                detail=f"{mine.run.calls / mine.run.wall:.0f} calls/s vs {floor.run.calls / floor.run.wall:.0f}",
            )
        )
        if count > 1:
            figures.append(
                Figure(
                    f"replicas: {where}, proxy cpu per call",
                    mine.proxy_ms_per_call(),
                    floor.proxy_ms_per_call(),
                    "ms",
                    f"the proxy's process while {command}",
                    f"the proxy's process while {floor_command}",
                    detail="the balancer's own cost, apart from the replicas'",
                )
            )
    one, three = results["ours 1"], results[f"ours {REPLICAS}"]
    figures.append(
        Figure(
            f"replicas: server cpu per call, {REPLICAS} replicas vs 1",
            three.run.cpu_ms_per_call,
            one.run.cpu_ms_per_call,
            "ms",
            f"{targets[f'ours {REPLICAS}'].command()}: cpu per call summed over the replicas",
            f"{targets['ours 1'].command()}: cpu per call of the one replica",
            detail=f"bare server: {results[f'bare {REPLICAS}'].run.cpu_ms_per_call:.2f} vs "
            f"{results['bare 1'].run.cpu_ms_per_call:.2f} ms",
        )
    )
    return figures


__all__ = ["replicas"]
