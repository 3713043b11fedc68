"""The SQLite registry runs what callers queue together as one batch, and one failing write in a batch
takes nothing of the others with it (glm_mcp/jobs/worker.py, `SQLiteJobStore._run_batch`)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from glm_mcp.jobs import RegistryUnavailable, SQLiteJobStore
from glm_mcp.jobs.worker import BatchThread, Work

pytestmark = pytest.mark.anyio


def _names(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM meta WHERE name LIKE 'test-%' ORDER BY name")]


async def test_writes_queued_together_share_one_batch_and_a_failing_one_takes_nothing_with_it(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.sqlite3", retention_days=7)
    started = threading.Event()
    threads: set[str] = set()

    def slow(db: sqlite3.Connection) -> None:  # holds the thread, so the writes below queue up behind it
        started.set()
        time.sleep(0.3)

    def good(db: sqlite3.Connection, name: str) -> None:
        threads.add(threading.current_thread().name)
        assert db.in_transaction  # the batch's, which each write shares in a savepoint of its own
        db.execute("INSERT INTO meta (name, value) VALUES (?, 'x')", (name,))

    def half_then_fails(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO meta (name, value) VALUES ('test-half', 'x')")
        db.execute("INSERT INTO meta (name, value) VALUES ('test-a', 'again')")  # test-a is taken: IntegrityError

    failures: list[BaseException] = []

    async def write(operation: object, *args: object) -> None:
        try:
            await store.run(operation, *args, write=True)  # type: ignore[arg-type]
        except RegistryUnavailable as exc:
            failures.append(exc)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(write, slow)
            await anyio.to_thread.run_sync(started.wait)
            group.start_soon(write, good, "test-a")
            await anyio.sleep(0.05)
            group.start_soon(write, half_then_fails)
            group.start_soon(write, good, "test-b")
        assert len(failures) == 1, failures
        assert "UNIQUE constraint failed" in str(failures[0].__cause__)
        names = await store.run(_names)
        # test-a and test-b were written in the batch the failing write shared, and its first insert was undone.
        assert names == ["test-a", "test-b"]
        assert threads == {"glm-mcp-registry"}
    finally:
        await store.aclose()


async def test_a_closed_registry_refuses_new_work_and_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SQLiteJobStore(path, retention_days=7)
    await store.run(lambda db: db.execute("INSERT INTO meta (name, value) VALUES ('test-kept', 'x')"), write=True)
    await store.aclose()
    with pytest.raises(RegistryUnavailable, match="is closed"):
        await store.run(_names)
    with sqlite3.connect(path) as db:
        assert _names(db) == ["test-kept"]


async def test_what_is_queued_while_the_thread_works_runs_as_one_batch() -> None:
    sizes: list[int] = []

    def run_batch(works: list[Work[Any]]) -> None:
        sizes.append(len(works))
        for work in works:
            work.succeed(work.operation(None))

    worker = BatchThread(run_batch, closed=lambda: RuntimeError("closed"), name="test-batches")
    started = threading.Event()

    def slow(_: object) -> str:
        started.set()
        time.sleep(0.3)
        return "slow"

    results: list[object] = []

    async def submit(operation: Any) -> None:
        results.append(await worker.submit(operation, write=True))

    async with anyio.create_task_group() as group:
        group.start_soon(submit, slow)
        await anyio.to_thread.run_sync(started.wait)
        for n in range(10):
            group.start_soon(submit, lambda _, n=n: n)
    thread = worker.stop(lambda: None)
    assert thread is not None
    thread.join()
    assert sizes == [1, 10]
    assert sorted(r for r in results if isinstance(r, int)) == list(range(10))
