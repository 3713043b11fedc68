"""The one persistence layer of the registry: every operation on jobs, conversations and usage is written once,
as steps, and SQLite or PostgreSQL runs it.

Each operation is a generator of *steps*: it yields the statements it needs, one by one, and is sent back
each one's rows, so its logic (which statements, in which order, what the rows become, when old records
are deleted) exists once. A `Database` runs the steps: `SQLiteDatabase` (`sqlite.py`) in the registry
file's worker thread, `PostgresDatabase` (`postgres.py`) on the replicas' pool. A write runs as one
transaction and completes even when its caller is cancelled; whatever fails raises `RegistryUnavailable`.

Statements are written with `?` placeholders and only SQL both databases speak the same way; the schema
they run on is declared once too (`schema.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeVar, cast

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
    """When to delete what is older than `days`: checked when a record is added, at most once per `PRUNE_EVERY_S`.

    The one retention of jobs, conversations and usage: each store asks it inside the write that adds a record,
    and deletes what is older than the cutoff it gets."""

    def __init__(self, days: float) -> None:
        self._seconds = days * 86_400
        self._pruned_at = -math.inf

    def cutoff(self, now: float) -> float | None:
        """The time before which records go, when a pruning is due now (it then counts as done); else None."""
        if now - self._pruned_at <= PRUNE_EVERY_S:
            return None
        self._pruned_at = now
        return now - self._seconds


def drive(steps: Steps[_T], execute: Callable[[str, tuple[object, ...]], Rows]) -> _T:
    """Run `steps` with `execute(sql, parameters) -> rows`, synchronously."""
    try:
        statement = next(steps)
        while True:
            statement = steps.send(execute(*statement))
    except StopIteration as done:
        return cast(_T, done.value)


def one(statement: Statement) -> Steps[Rows]:
    """An operation of one statement: its rows."""
    return (yield statement)
