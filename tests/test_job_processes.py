"""The job registry across real processes: a server killed with SIGKILL and started again, two
servers sharing one registry, and two processes writing to it at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.emulator import Emulator
from glm_mcp.jobs import SERVER, SQLiteJobStore
from tests.conftest import GENERAL_KEY
from tests.processes import http_server_process, server_env
from tests.test_tools import ok

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
LONG = {"thinking": "disabled", "wait_seconds": 0.3}
"""A chat handed off at once, its answer arriving from the first chunk on."""


async def _list(client: Client) -> dict[str, dict[str, Any]]:
    return {job["job_id"]: job for job in ok(await client.call_tool("list_jobs", {"limit": 100}))["jobs"]}


async def test_after_a_sigkill_a_new_server_has_every_job_and_result(emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.25  # ~8 s an answer: the kill comes halfway
    emulator.config.async_delay = 4.0  # still running when the server dies
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    with http_server_process(env=env) as (process, origin):
        async with Client(origin + "/mcp") as client:
            tasks = [
                ok(await client.call_tool("submit_async", {"prompt": f"A story about ship {i}"}))["task_id"]
                for i in range(2)
            ]
            cut = [
                ok(await client.call_tool("chat", {"prompt": "An essay on tea", **LONG}))["job_id"],
                ok(await client.call_tool("web_search_chat", {"question": "History of tea", **LONG}))["job_id"],
            ]
            short = ok(await client.call_tool("chat", {"prompt": "Hi", "max_tokens": 8, **LONG}))["job_id"]
            finished = ok(await client.call_tool("get_result", {"task_id": short, "wait_seconds": 30}))
            await anyio.sleep(2.5)  # the answers so far are saved every second
        process.kill()
        process.wait()
    with anyio.fail_after(5):  # the emulator records the streams the kill cut once it sees them closed
        while emulator.state.open_streams:
            await anyio.sleep(0.01)
    await anyio.sleep(0.1)  # closed, then recorded
    polled_before = len(emulator.state.exchanges)

    with http_server_process(env=env) as (_, origin):
        async with Client(origin + "/mcp") as client:
            listed = await _list(client)
            assert set(listed) == {*tasks, *cut, short}
            assert [listed[job]["status"] for job in cut] == ["interrupted", "interrupted"]
            assert listed[short]["status"] == "completed"
            assert ok(await client.call_tool("get_result", {"task_id": short})) == finished
            assert len(emulator.state.exchanges) == polled_before  # answered from the registry

            partial = {}
            for job in cut:
                out = ok(await client.call_tool("get_result", {"task_id": job, "wait_seconds": 5}))
                assert out["status"] == "interrupted" and out["error"]["error"] == "interrupted"
                partial[job] = out["partial_text"]
            for task in tasks:
                out = ok(await client.call_tool("get_result", {"task_id": task, "wait_seconds": 30}))
                assert out["status"] == "completed" and out["result"]["text"]
            assert {job["status"] for job in (await _list(client)).values()} == {"completed", "interrupted"}

            emulator.config.chunk_delay = 0
            whole = ok(await client.call_tool("chat", {"prompt": "An essay on tea", "thinking": "disabled"}))
    assert len(partial[cut[0]]) > 40 and whole["text"].startswith(partial[cut[0]])
    assert partial[cut[1]]


async def test_two_live_servers_share_jobs_and_only_a_dead_ones_become_interrupted(emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.2
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    with http_server_process(env=env) as (_, origin_a), http_server_process(env=env) as (process_b, origin_b):
        async with Client(origin_a + "/mcp") as a, Client(origin_b + "/mcp") as b:
            started: dict[str, list[str]] = {"a": [], "b": []}

            async def start(name: str, client: Client) -> None:
                for i in range(3):
                    task = ok(await client.call_tool("submit_async", {"prompt": f"{name} task {i}"}))
                    started[name].append(task["task_id"])
                    job = ok(await client.call_tool("chat", {"prompt": f"{name} essay {i}", **LONG}))
                    started[name].append(job["job_id"])

            async with anyio.create_task_group() as group:  # both servers write at once
                group.start_soon(start, "a", a)
                group.start_soon(start, "b", b)
            in_a, in_b = await _list(a), await _list(b)
            assert set(in_a) == set(in_b) == {*started["a"], *started["b"]}
            assert {job["status"] for job in in_a.values()} == {"running"}  # b's jobs are alive: not interrupted

            process_b.kill()
            process_b.wait()
            after = await _list(a)
    b_chats = [job for job in started["b"] if job.startswith("job_")]
    assert {after[job]["status"] for job in b_chats} == {"interrupted"}
    assert {after[job]["status"] for job in started["a"]} <= {"running", "completed"}


async def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    db, count = tmp_path / "jobs.sqlite3", 300
    start_at = time.time() + 3
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.job_writer", str(db), name, str(count), str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [writer.communicate(timeout=120) for writer in writers]
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0 and "could not record" not in stderr, stderr
    spans = [json.loads(stdout) for stdout, _ in outputs]
    assert max(s["started"] for s in spans) < min(s["ended"] for s in spans), "the writers did not overlap"

    store = SQLiteJobStore(db, retention_days=7)
    try:
        records = await store.page(principal=SERVER, status=None, limit=10 * count, after=None)
    finally:
        await store.aclose()
    assert len(records) == len({r.id for r in records}) == 3 * count
    by_id = {r.id: r for r in records}
    for name in ("a", "b"):
        for i in range(count):
            own = by_id[f"job_{name}_{i}"]
            assert own.status == "completed" and json.loads(own.result or "") == {"by": name, "n": i}
    for i in range(count):
        shared = by_id[f"shared_{i}"]
        assert shared.status == "completed" and json.loads(shared.result or "")["n"] == i
