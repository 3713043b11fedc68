"""The records kept beside the jobs (conversations, usage), written once for SQLite and PostgreSQL.

Each operation of those stores is a generator of *steps*: it yields the statements it needs, one by
one, and is sent back each one's rows, so its logic (which statements, in which order, what the rows
become, when old records are deleted) exists once. A `Database` runs the steps: `SQLiteDatabase`
in the SQLite job store's worker thread (below), `PostgresDatabase` (`postgres_records.py`) on the
PostgreSQL job store's pool. A write runs as one transaction and completes even when its caller is
cancelled; whatever fails raises `RegistryUnavailable`, as the job store it runs through does.

Statements are written with `?` placeholders and only SQL both databases speak the same way.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from glm_mcp.jobs.sqlite import SQLiteJobStore

PRUNE_EVERY_S = 3600.0
_T = TypeVar("_T")

Statement = tuple[str, tuple[object, ...]]
"""SQL with `?` placeholders, and its parameters."""
Rows = list[tuple[Any, ...]]
Steps = Generator[Statement, Rows, _T]
"""An operation: yields each statement, is sent its rows (none for a statement that returns none), returns its
result."""


class Database(Protocol):
    async def run(self, steps: Steps[_T], *, write: bool) -> _T:
        """Run `steps` to their end; a write as one transaction, completed even if the caller is cancelled."""
        ...


class Retention:
    """When to delete what is older than `days`: checked when a record is added, at most once per `PRUNE_EVERY_S`."""

    def __init__(self, days: float) -> None:
        self._seconds = days * 86_400
        self._pruned_at = -math.inf

    def cutoff(self, now: float) -> float | None:
        """The time before which records go, when a pruning is due now (it then counts as done); else None."""
        if now - self._pruned_at <= PRUNE_EVERY_S:
            return None
        self._pruned_at = now
        return now - self._seconds


class SQLiteDatabase:
    """Steps run in the SQLite job store's worker thread, in its file: they share its failures and its batches."""

    def __init__(self, jobs: SQLiteJobStore) -> None:
        self._jobs = jobs

    async def run(self, steps: Steps[_T], *, write: bool) -> _T:
        return await self._jobs.run(_run_in_sqlite, steps, write=write)


def _run_in_sqlite(db: sqlite3.Connection, steps: Steps[_T]) -> _T:
    """A write is already inside the batch's transaction, in a savepoint of its own (`SQLiteJobStore._run_batch`)."""

    def execute(sql: str, parameters: tuple[object, ...]) -> Rows:
        return db.execute(sql, parameters).fetchall()

    return drive(steps, execute)


def drive(steps: Steps[_T], execute: Callable[[str, tuple[object, ...]], Rows]) -> _T:
    """Run `steps` with `execute(sql, parameters) -> rows`, synchronously."""
    try:
        statement = next(steps)
        while True:
            statement = steps.send(execute(*statement))
    except StopIteration as done:
        return cast(_T, done.value)
