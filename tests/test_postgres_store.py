"""The PostgreSQL job registry on a real server: schema migrated once under replicas starting together,
records and principals as on SQLite, readers woken by NOTIFY, leases, concurrent writers, the database
going away and coming back."""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import time
from typing import Any

import anyio
import psycopg
import pytest

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs import SERVER, JobRecord, Principal
from glm_mcp.jobs.postgres import SCHEMA_VERSION, PostgresJobStore, redacted

pytestmark = pytest.mark.anyio
ALICE = Principal("key:alice")


def opened(url: str, lease_seconds: float = 15) -> PostgresJobStore:
    return PostgresJobStore(url, retention_days=7, lease_seconds=lease_seconds)


def record(job_id: str, principal: Principal = SERVER, kind: Any = "chat") -> JobRecord:
    return JobRecord(job_id, kind, "glm-4.6", f"summary of {job_id}", time.time(), principal=principal)


async def test_replicas_starting_together_migrate_the_schema_once(postgres: Any) -> None:
    async with contextlib.AsyncExitStack() as stack:
        stores = [await stack.enter_async_context(opened(postgres.url)) for _ in range(6)]
        async with anyio.create_task_group() as tg:  # every one migrates at its first call, all at once
            for i, store in enumerate(stores):
                tg.start_soon(functools.partial(store.add, record(f"job_{i}"), runs_here=False))
    with psycopg.connect(postgres.url) as db:
        versions = db.execute("SELECT version FROM glm_mcp_schema ORDER BY version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert db.execute("SELECT count(*) FROM jobs").fetchone() == (6,)


async def test_records_principals_and_pages_as_on_sqlite(postgres: Any) -> None:
    async with opened(postgres.url) as store:
        await store.add(record("job_mine"), runs_here=True)
        await store.add(record("task_alice", ALICE, "async_task"), runs_here=False)
        await store.add(record("job_mine"), runs_here=True)  # twice: the first stays
        await store.save_partial("job_mine", "so far")
        got = await store.get("job_mine", principal=SERVER)
        assert got is not None and got.partial_text == "so far" and got.status == "running"
        assert await store.get("task_alice", principal=SERVER) is None  # another's reads as unknown
        assert await store.known("task_alice") and not await store.known("task_nobody")
        await store.finish("job_mine", "completed", result='{"ok": 1}', partial_text=None)
        await store.finish("job_mine", "failed", result="{}", partial_text=None)  # ended: left as it is
        ended = await store.get("job_mine", principal=SERVER)
        assert ended is not None and (ended.status, ended.result) == ("completed", '{"ok": 1}')
        assert [r.id for r in await store.page(principal=ALICE, status=None, limit=10, after=None)] == ["task_alice"]
        secret = await store.principal_secret()
    async with opened(postgres.url) as again:
        assert await again.principal_secret() == secret  # the same for every replica


async def test_a_reader_is_woken_by_the_change_not_by_polling(postgres: Any) -> None:
    async with opened(postgres.url) as writer, opened(postgres.url) as reader:
        await writer.add(record("job_watched"), runs_here=True)
        while not reader.listening:
            await anyio.sleep(0.05)
        async with reader.watch("job_watched") as changes:

            async def change_soon() -> None:
                await anyio.sleep(0.3)
                await writer.save_partial("job_watched", "a little more")

            async with anyio.create_task_group() as tg:
                tg.start_soon(change_soon)
                started = time.monotonic()
                await changes.wait(30)
                waited = time.monotonic() - started
        assert waited < 10, f"woken after {waited:.1f} s: the notice never came"
        got = await reader.get("job_watched", principal=SERVER)
        assert got is not None and got.partial_text == "a little more"


def writer(url: str, name: str, count: int, *more: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.pg_job_writer", url, name, str(count), *more]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


async def test_concurrent_writers_lose_nothing(postgres: Any) -> None:
    count = 300
    writers = [writer(postgres.url, name, count) for name in ("a", "b", "c")]
    for process in writers:
        out, _ = process.communicate(timeout=240)
        assert process.returncode == 0 and json.loads(out)["done"] == count
    with psycopg.connect(postgres.url) as db:
        rows = db.execute("SELECT id, status FROM jobs").fetchall()
    assert len(rows) == 3 * count + count  # each writer's own, and the shared ones once
    assert {status for _, status in rows} == {"completed"}


async def test_a_killed_replicas_jobs_read_interrupted_once_its_lease_lapses(postgres: Any) -> None:
    held = writer(postgres.url, "k", 1, "hold")
    assert held.stdout is not None
    try:
        for line in held.stdout:
            if line.strip() == "held":
                break
        async with opened(postgres.url, lease_seconds=1.5) as other:
            got = await other.get("job_k_held", principal=SERVER)
            assert got is not None and got.status == "running"  # its lease is live
            async with other.watch("job_k_held") as changes:
                held.kill()
                held.wait()
                deadline = time.monotonic() + 30
                while (got := await other.get("job_k_held", principal=SERVER)) and got.status == "running":
                    assert time.monotonic() < deadline, "the lease never lapsed"
                    await changes.wait(deadline - time.monotonic())
            assert got is not None and (got.status, got.partial_text) == ("interrupted", "held so far")
            listed = await other.page(principal=SERVER, status="interrupted", limit=10, after=None)
            assert [r.id for r in listed] == ["job_k_held"]
    finally:
        held.kill()


async def test_the_database_going_away_and_coming_back(postgres: Any) -> None:
    async with opened(postgres.url) as store:
        await store.add(record("job_before"), runs_here=False)
        await store.check()
        postgres.stop()
        try:
            with pytest.raises(RegistryUnavailable) as gone:
                await store.get("job_before", principal=SERVER)
            assert gone.value.kind == "registry_unavailable"
            assert "tests-only-password" not in str(gone.value) and "GLM_MCP_DATABASE_URL" in gone.value.fix
            with pytest.raises(RegistryUnavailable):
                await store.check()
        finally:
            postgres.start()
        deadline = time.monotonic() + 30
        while True:  # the pool reconnects by itself
            try:
                got = await store.get("job_before", principal=SERVER)
                break
            except RegistryUnavailable:
                assert time.monotonic() < deadline, "the pool never reconnected"
                await anyio.sleep(0.2)
        assert got is not None and got.id == "job_before"
        await store.check()


def test_the_password_is_never_shown() -> None:
    assert redacted("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redacted("postgresql://h/db") == "postgresql://h/db"
