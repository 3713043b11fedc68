"""Batch jobs in the registry: followed by one process at a time, taken over (never interrupted) once that process
is gone, on SQLite (its owner's file lock) and on PostgreSQL (its replica's lease); of several taking one over at
once, exactly one does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from glm_mcp.jobs import SERVER, JobKind, JobRecord, JobStore, SQLiteJobStore
from glm_mcp.jobs.open import JOBS_FILE

pytestmark = pytest.mark.anyio
HANG_S = 60.0


def record(job_id: str, kind: JobKind) -> JobRecord:
    return JobRecord(job_id, kind, "glm-4.6", f"about {job_id}", time.time(), partial_text="{}")


@asynccontextmanager
async def sqlite(path: Path) -> AsyncIterator[SQLiteJobStore]:
    store = SQLiteJobStore(path, retention_days=7)
    try:
        yield store
    finally:
        await store.aclose()


async def adopted_at_once(stores: list[JobStore], job_id: str) -> list[bool]:
    won: list[bool] = [False] * len(stores)

    async def adopt(index: int) -> None:
        won[index] = await stores[index].adopt(job_id)

    async with anyio.create_task_group() as group:
        for index in range(len(stores)):
            group.start_soon(adopt, index)
    return won


async def test_a_batch_whose_follower_is_gone_is_taken_over_not_interrupted_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / JOBS_FILE
    async with sqlite(path) as second, sqlite(path) as third, sqlite(path) as fourth:
        first = SQLiteJobStore(path, retention_days=7)
        await first.add(record("job_batch", "batch"), runs_here=True)
        await first.add(record("job_chat", "chat"), runs_here=True)
        assert not await second.adopt("job_batch")  # its follower lives
        await first.aclose()  # its lock goes, as when its process is killed

        chat, batch = await second.get("job_chat", principal=SERVER), await second.get("job_batch", principal=SERVER)
        assert chat is not None and chat.status == "interrupted"
        assert batch is not None and batch.status == "running" and batch.partial_text == "{}"
        assert [r.id for r in await second.running("batch")] == ["job_batch"]

        assert await adopted_at_once([second, third], "job_batch") in ([True, False], [False, True])
        owner = second if await second.adopt("job_batch") else third
        assert await owner.adopt("job_batch")  # taken over already: still its own
        assert not await fourth.adopt("job_batch")  # while its new follower lives
        assert not await second.adopt("job_chat")  # a chat is never taken over

        await owner.finish("job_batch", "completed", result="{}", partial_text=None)
        assert not await fourth.adopt("job_batch") and await fourth.running("batch") == []


async def test_a_batch_is_taken_over_once_its_replicas_lease_has_lapsed_on_postgresql(postgres: Any) -> None:
    from glm_mcp.jobs.postgres import PostgresJobStore

    def opened() -> PostgresJobStore:
        return PostgresJobStore(postgres.url, retention_days=7, lease_seconds=1.0)

    async with AsyncExitStack() as stack:
        second = await stack.enter_async_context(opened())
        third = await stack.enter_async_context(opened())
        async with opened() as first:
            await first.add(record("job_batch", "batch"), runs_here=True)
            await first.add(record("job_chat", "chat"), runs_here=True)
            assert not await second.adopt("job_batch")  # its replica's lease is live
        # A clean stop deletes the replica's lease: its chat is interrupted, its batch waits to be taken over.
        with anyio.fail_after(HANG_S):
            while (chat := await second.get("job_chat", principal=SERVER)) and chat.status == "running":
                await anyio.sleep(0.2)
        batch = await second.get("job_batch", principal=SERVER)
        assert chat is not None and chat.status == "interrupted"
        assert batch is not None and batch.status == "running"
        assert await adopted_at_once([second, third], "job_batch") in ([True, False], [False, True])
        owner, other = (second, third) if await second.adopt("job_batch") else (third, second)
        assert not await other.adopt("job_batch")  # the new follower's lease is live
        await owner.finish("job_batch", "completed", result="{}", partial_text=None)
        assert await other.running("batch") == []
