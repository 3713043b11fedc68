"""The default job registry: one SQLite file that every glm-mcp process of the user shares.

Claude Desktop and an IDE each start a server of their own, so two processes may write at once.
The database is in WAL mode (readers never block the writer), a writer waits up to
`BUSY_TIMEOUT_S` for another process's write instead of failing, and every change is one short
statement that commits on its own. All of it runs in worker threads, one statement at a time per
process, so the event loop never waits on the disk. The file is opened at the first job recorded
or looked up, never at start-up; a chat that ends within its wait never gets here. Finished jobs
are deleted once `retention_days` have passed since they ended (checked at most hourly, when a
job is recorded).

A running chat job belongs to the process generating it, and `owner.py` tells whether that
process is alive. A read that comes across running jobs of an owner that is gone records them as
`interrupted`, with the partial text last saved.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple
from pathlib import Path
from typing import Any, TypeVar

import anyio

from glm_mcp.jobs.owner import OwnerLock, new_owner, owner_gone
from glm_mcp.jobs.store import JobRecord, JobState, Position

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
PRUNE_EVERY_S = 3600.0
_T = TypeVar("_T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,           -- async_task | chat | web_search_chat
    model TEXT NOT NULL,
    summary TEXT NOT NULL,        -- the start of the prompt or question
    created_at REAL NOT NULL,     -- unix time
    status TEXT NOT NULL,         -- running | completed | failed | interrupted
    request_id TEXT,
    partial_text TEXT,            -- a chat job's answer so far
    result TEXT,                  -- the get_result JSON, once it ended
    owner TEXT,                   -- the process generating a chat job (pid-token); NULL for async tasks
    updated_at REAL NOT NULL      -- unix time of the last change
);
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_running ON jobs (status, owner);
PRAGMA user_version = 1;
"""
_RECORD_COLUMNS = "id, kind, model, summary, created_at, status, request_id, partial_text, result"
"""The columns of a `JobRecord`, in the order of its fields."""
_RUNNING_OWNERS = "SELECT DISTINCT owner FROM jobs WHERE status = 'running'"


class SQLiteJobStore:
    """A `JobStore` in the SQLite file at `path`; a finished job is deleted `retention_days` after it ended."""

    def __init__(self, path: Path, *, retention_days: float) -> None:
        self._path = path
        self._owner = new_owner()
        self._owners_dir = path.parent / "owners"
        self._retention_s = retention_days * 86_400
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._owner_lock: OwnerLock | None = None
        self._pruned_at = -math.inf
        self._closed = False

    async def add(self, record: JobRecord, *, runs_here: bool) -> None:
        await self._write(record.id, self._add, record, self._owner if runs_here else None)

    async def save_partial(self, job_id: str, partial_text: str) -> None:
        await self._write(job_id, self._update, job_id, {"partial_text": partial_text})

    async def finish(self, job_id: str, status: JobState, *, result: str | None, partial_text: str | None) -> None:
        changes = {"status": status, "result": result, "partial_text": partial_text}
        await self._write(job_id, self._update, job_id, changes)

    async def get(self, job_id: str) -> JobRecord | None:
        return await self._run(self._get, job_id)

    async def page(self, *, status: JobState | None, limit: int, after: Position | None) -> list[JobRecord]:
        return await self._run(self._page, status, limit, after)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):  # a server stopping on a cancellation still lets go of its lock
            await anyio.to_thread.run_sync(self._close)

    async def _run(self, operation: Callable[..., _T], *args: Any) -> _T:
        def locked() -> _T:
            with self._lock:
                return operation(self._connection(), *args)

        return await anyio.to_thread.run_sync(locked)

    async def _write(self, job_id: str, operation: Callable[..., None], *args: Any) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self._run(operation, *args)
        except (sqlite3.Error, OSError) as exc:
            logger.warning("could not record job %s in %s: %s", job_id, self._path, exc)

    # --- in a worker thread, holding the lock ------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the job store is closed")
        if self._db is None:
            self._db = self._open()
            self._recover(self._db, self._db.execute(_RUNNING_OWNERS))
        return self._db

    def _open(self) -> sqlite3.Connection:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = _prepared(str(self._path), shared=True)
            self._owner_lock = OwnerLock(self._owners_dir, self._owner)
            return db
        except (OSError, sqlite3.Error) as exc:
            logger.warning(
                "no job registry at %s (%s): this process keeps its jobs in memory, and they end with it. "
                "Set GLM_DATA_DIR to a writable directory.",
                self._path,
                exc,
            )
            return _prepared(":memory:", shared=False)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
            if self._owner_lock is not None:
                self._owner_lock.release()

    def _add(self, db: sqlite3.Connection, record: JobRecord, owner: str | None) -> None:
        now = time.time()
        db.execute(
            f"INSERT OR IGNORE INTO jobs ({_RECORD_COLUMNS}, owner, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*astuple(record), owner, now),
        )
        if now - self._pruned_at > PRUNE_EVERY_S:
            self._prune(db, now)

    def _update(self, db: sqlite3.Connection, job_id: str, changes: dict[str, object]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        db.execute(
            f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ? AND status = 'running'",
            (*changes.values(), time.time(), job_id),
        )

    def _get(self, db: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = db.execute(f"SELECT {_RECORD_COLUMNS}, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        record, owner = JobRecord(*row[:-1]), row[-1]
        if record.status == "running" and self._recover(db, [(owner,)]):
            return self._get(db, job_id)
        return record

    def _page(
        self, db: sqlite3.Connection, status: JobState | None, limit: int, after: Position | None
    ) -> list[JobRecord]:
        self._recover(db, db.execute(_RUNNING_OWNERS))
        conditions: list[str] = []
        parameters: list[object] = []
        if status is not None:
            conditions.append("status = ?")
            parameters.append(status)
        if after is not None:
            conditions.append("(created_at, id) < (?, ?)")
            parameters += [after.created_at, after.id]
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        rows = db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*parameters, limit),
        )
        return [JobRecord(*row) for row in rows]

    def _recover(self, db: sqlite3.Connection, owners: Iterable[tuple[str | None]]) -> bool:
        """Record the running jobs of each owner in `owners` that is gone as interrupted; True if one was."""
        others = {owner for (owner,) in owners if owner not in (None, self._owner)}
        gone = [owner for owner in others if owner_gone(self._owners_dir, owner)]
        for owner in gone:
            db.execute(
                "UPDATE jobs SET status = 'interrupted', updated_at = ? WHERE owner = ? AND status = 'running'",
                (time.time(), owner),
            )
        return bool(gone)

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM jobs WHERE status != 'running' AND updated_at < ?", (now - self._retention_s,))
        self._pruned_at = now


def _prepared(target: str, *, shared: bool) -> sqlite3.Connection:
    """A connection to `target` with the schema in place, set up for other processes when `shared`."""
    # isolation_level=None: every statement commits on its own, so no transaction is ever left open.
    db = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        if shared:
            _use_wal(db)
            # A commit then survives a crash of the process (not of the machine), and costs no fsync.
            db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode, which it keeps: only its first opener changes anything.

    The change needs the file to itself and fails at once, without the busy timeout, while
    other processes open it too; so it is tried again for as long as a busy write would wait.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        with contextlib.suppress(sqlite3.OperationalError):
            if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked: could not switch it to WAL mode")
        time.sleep(0.01)
