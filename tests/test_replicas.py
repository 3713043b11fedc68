"""Three real `glm-mcp --transport http` replicas on one PostgreSQL registry, behind a round-robin balancer:
any replica answers for any job, a killed replica's jobs read interrupted once its lease lapses, the
database restarting mid-run loses nothing, and a conversation and the usage are the same on every replica."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client

from glm_mcp.emulator import Emulator
from rigs.round_robin import RoundRobin, round_robin
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import http_server_process, scratch_dir, server_env
from tests.test_tasks import HttpWire, poll
from tests.test_tools import ok

pytestmark = pytest.mark.anyio
HANDED_OFF = {"thinking": "disabled", "wait_seconds": 0.3}
LEASE_S = 2


@contextlib.contextmanager
def replicas(emulator: Emulator, url: str, count: int = 3, **more: str) -> Iterator[tuple[str, RoundRobin, list[Any]]]:
    """`count` replicas behind one balancer."""
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_MCP_DATABASE_URL=url,
        GLM_MCP_LEASE_SECONDS=str(LEASE_S),
        GLM_TASK_THRESHOLD_SECONDS="1",
        **more,
    )
    with contextlib.ExitStack() as stack:
        # A data directory each, as pods on different machines have: nothing is shared but the database.
        started = [
            stack.enter_context(http_server_process(env={**env, "GLM_DATA_DIR": scratch_dir()})) for _ in range(count)
        ]
        origin, balancer = stack.enter_context(round_robin([o for _, o in started]))
        yield origin, balancer, [p for p, _ in started]


def owner_pid(url: str, job_id: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT owner FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None and row[0]
    return int(str(row[0]).split("-")[0])


async def test_a_mixed_load_lands_on_random_replicas_with_nothing_lost_or_misrouted(
    emulator: Emulator, postgres: Any
) -> None:
    emulator.config.chunk_delay = 0.05
    with replicas(emulator, postgres.url) as (origin, balancer, _):
        async with Client(origin + "/mcp") as client:
            prompts = [f"An essay on the river number {i}" for i in range(9)]
            jobs = {}
            for prompt in prompts:
                jobs[ok(await client.call_tool("chat", {"prompt": prompt, **HANDED_OFF}))["job_id"]] = prompt
            tasks = {ok(await client.call_tool("submit_async", {"prompt": f"Poem {i}"}))["task_id"] for i in range(3)}
            results = {}
            for job in jobs:  # each poll lands on another replica than the one generating it, most of the time
                results[job] = ok(await client.call_tool("get_result", {"task_id": job, "wait_seconds": 60}))
            listed = {j["job_id"]: j for j in ok(await client.call_tool("list_jobs", {"limit": 100}))["jobs"]}
            for task in tasks:
                assert ok(await client.call_tool("get_result", {"task_id": task, "wait_seconds": 60}))["status"] == (
                    "completed"
                )
            emulator.config.chunk_delay = 0
            for job, prompt in jobs.items():
                assert results[job]["status"] == "completed", results[job]
                assert listed[job]["summary"] == prompt  # its own record, not another's
                whole = ok(await client.call_tool("chat", {"prompt": prompt, "thinking": "disabled"}))
                assert results[job]["result"]["text"] == whole["text"]  # the whole answer, nothing lost
            assert set(listed) == {*jobs, *tasks}
        assert all(landed > 5 for landed in balancer.landed), balancer.landed

        # A task: created on one replica, its tasks/get polled round-robin over all three.
        emulator.config.chunk_delay = 0.12
        async with httpx2.AsyncClient(base_url=origin, timeout=60) as http:
            wire = HttpWire(http)
            created = await wire(
                "tools/call", {"name": "chat", "arguments": {"prompt": "A long tale", "thinking": "disabled"}}
            )
            assert created["result"]["resultType"] == "task", created
            states = await poll(wire, created["result"]["taskId"])
        assert states[-1]["status"] == "completed" and states[-1]["result"]["content"][0]["text"]
        working = [s["statusMessage"] for s in states if s["status"] == "working"]
        assert any("chars" in message for message in working), working  # progress seen from other replicas


async def test_a_sigkilled_replicas_job_reads_interrupted_everywhere_once_its_lease_lapses(
    emulator: Emulator, postgres: Any
) -> None:
    emulator.config.chunk_delay = 0.3
    with replicas(emulator, postgres.url) as (origin, _, processes):
        async with Client(origin + "/mcp") as client:
            job = ok(await client.call_tool("chat", {"prompt": "An essay on salt", **HANDED_OFF}))["job_id"]
            await anyio.sleep(2.5)  # some text saved
            os.kill(owner_pid(postgres.url, job), signal.SIGKILL)
            out = ok(await client.call_tool("get_result", {"task_id": job, "wait_seconds": 30}))
            assert out["status"] == "interrupted" and out["partial_text"], out
            again = [ok(await client.call_tool("get_result", {"task_id": job})) for _ in range(3)]
            assert {a["status"] for a in again} == {"interrupted"}  # on every replica left
            assert {a["partial_text"] for a in again} == {out["partial_text"]}
        assert sum(p.poll() is not None for p in processes) == 1


async def test_the_database_restarting_mid_run_loses_nothing(emulator: Emulator, postgres: Any) -> None:
    emulator.config.chunk_delay = 0.2
    with replicas(emulator, postgres.url) as (origin, _, _):
        async with Client(origin + "/mcp") as client:
            job = ok(await client.call_tool("chat", {"prompt": "An essay on stone", **HANDED_OFF}))["job_id"]
            postgres.stop()
            try:
                async with httpx2.AsyncClient() as http:
                    ready = await http.get(origin + "/readyz")
                assert ready.status_code == 503 and ready.json()["error"] == "registry_unavailable"
                listing = await client.call_tool("list_jobs", {})
                assert listing.is_error and listing.structured_content is not None
                assert listing.structured_content["error"] == "registry_unavailable"
                quick = ok(await client.call_tool("chat", {"prompt": "Hi", "max_tokens": 8, "thinking": "disabled"}))
                assert quick["text"]  # needs no registry: still served
            finally:
                postgres.start()
            out = ok(await client.call_tool("get_result", {"task_id": job, "wait_seconds": 60}))
            assert out["status"] == "completed", out
            async with httpx2.AsyncClient() as http:
                with anyio.fail_after(30):
                    while (await http.get(origin + "/readyz")).status_code != 200:
                        await asyncio.sleep(0.2)
            for _ in range(3):
                again = ok(await client.call_tool("get_result", {"task_id": job}))
                assert again["status"] == "completed" and again["result"]["text"] == out["result"]["text"]


def last_exchange(emulator: Emulator) -> tuple[list[tuple[str, Any]], str]:
    """The messages (role, content) of the last chat request the emulator received, and the answer it gave."""
    exchange = upstream_calls(emulator, "/chat/completions")[-1]
    assert exchange.body is not None and exchange.response is not None
    sent = [(m["role"], m["content"]) for m in exchange.body["messages"]]
    return sent, str(exchange.response["choices"][0]["message"]["content"])


async def test_a_conversation_and_the_usage_are_the_same_through_every_replica(
    emulator: Emulator, postgres: Any
) -> None:
    with replicas(emulator, postgres.url, GLM_MCP_TOOLSETS="all") as (origin, balancer, _):
        prompts = ["Name a long river.", "Which sea does it reach?", "How long is it?", "Who named it?"]
        # Turn 1 through the first replica, 2 through the second, 3 through the third, 4 through the balancer.
        through = [*balancer.backends, origin]
        history: list[tuple[str, Any]] = []
        conversation_id: str | None = None
        for turn, (address, prompt) in enumerate(zip(through, prompts, strict=True), start=1):
            continued = {"conversation_id": conversation_id} if conversation_id else {}
            async with Client(address + "/mcp") as client:
                out = ok(await client.call_tool("chat", {"prompt": prompt, "thinking": "disabled", **continued}))
            sent, answer = last_exchange(emulator)
            assert sent == [*history, ("user", prompt)]  # every earlier turn, whichever replica served it
            assert out["turn"] == turn and out["text"] == answer
            conversation_id = conversation_id or out["conversation_id"]
            assert out["conversation_id"] == conversation_id
            history += [("user", prompt), ("assistant", answer)]

        usages = [e.response["usage"] for e in upstream_calls(emulator, "/chat/completions") if e.response]
        for address in balancer.backends:  # each replica lists the conversation and counts every replica's calls
            async with Client(address + "/mcp") as client:
                listed = ok(await client.call_tool("list_conversations", {}))["conversations"]
                report = ok(await client.call_tool("usage", {"by": "day"}))
            assert [(c["conversation_id"], c["turns"]) for c in listed] == [(conversation_id, len(prompts))]
            [row] = report["rows"]
            assert row["calls"] == len(prompts) == len(usages)
            assert row["prompt_tokens"] == sum(u["prompt_tokens"] for u in usages)
            assert row["completion_tokens"] == sum(u["completion_tokens"] for u in usages)
