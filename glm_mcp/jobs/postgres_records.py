"""Conversations and usage in the replicas' PostgreSQL database, beside the jobs (`postgres.py`).

A conversation started through one replica is continued through any other, and `usage` on any of
them counts the calls all of them served: the same steps as on SQLite (`records.py`), run on the
job store's pool, in the tables of its migration 2. A write is one transaction; a turn's number is
taken under the lock of its conversation's row, so continuations from several replicas at once get
1, 2, 3 … with none lost. Failures are the job store's: `RegistryUnavailable`, after at most
`ACQUIRE_TIMEOUT_S` when the database is away.
"""

from __future__ import annotations

import contextlib
from typing import TypeVar

from glm_mcp.jobs.conversations import ConversationRecords
from glm_mcp.jobs.postgres import Connection, PostgresJobStore
from glm_mcp.jobs.records import Rows, Steps
from glm_mcp.jobs.usage import UsageRecords

_T = TypeVar("_T")


class PostgresDatabase:
    """Steps run on a connection of the PostgreSQL job store's pool."""

    def __init__(self, jobs: PostgresJobStore) -> None:
        self._jobs = jobs

    async def run(self, steps: Steps[_T], *, write: bool) -> _T:
        return await self._jobs.run(_run, steps, write, write=write)


async def _run(db: Connection, steps: Steps[_T], write: bool) -> _T:
    async with db.transaction() if write else contextlib.nullcontext():
        try:
            sql, parameters = next(steps)
            while True:
                cursor = await db.execute(_placeholders(sql), parameters)
                rows: Rows = await cursor.fetchall() if cursor.description is not None else []
                sql, parameters = steps.send(rows)
        except StopIteration as done:
            result: _T = done.value
    return result


def _placeholders(sql: str) -> str:
    """SQL written with `?` (records.py), as psycopg takes it: `%s`, and a literal `%` doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresConversationStore(ConversationRecords):
    """Conversations every replica sharing the database sees alike."""

    def __init__(self, jobs: PostgresJobStore, *, retention_days: float) -> None:
        super().__init__(PostgresDatabase(jobs), retention_days=retention_days)


class PostgresUsageStore(UsageRecords):
    """Every replica's calls, counted together."""

    def __init__(self, jobs: PostgresJobStore) -> None:
        super().__init__(PostgresDatabase(jobs))
