"""What every call cost: its model and tokens, recorded in the job registry's database, owned like jobs.

`UsageStore` is the interface; `UsageRecords` implements it once, as steps (`records.py`) run in the job
registry's own database (`JobRecords.database`): the SQLite file of the jobs, through its worker thread, so
it shares its behaviour on full, read-only and corrupt files, or the replicas' shared PostgreSQL database.
What cannot be done raises `RegistryUnavailable`. A record belongs to the principal whose key paid for it;
`totals` answers only with that principal's. Records older than `USAGE_RETENTION_DAYS` are deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

from glm_mcp.jobs.behind import WriteBehind
from glm_mcp.jobs.principal import Principal
from glm_mcp.jobs.records import Database, Retention, Steps

USAGE_RETENTION_DAYS = 400

Grouping = Literal["day", "model", "day_model"]


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One call's cost."""

    principal: Principal
    tool: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 1
    at: float = 0.0
    """Unix time; 0 means now."""


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """The calls of one day (UTC, `YYYY-MM-DD`, "" when not grouped by day) and one model ("" likewise)."""

    day: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


class UsageStore(Protocol):
    async def record(self, record: UsageRecord) -> None:
        """Add one call's cost."""
        ...

    async def totals(self, *, principal: Principal, since: float, by: Grouping) -> list[UsageTotal]:
        """`principal`'s calls since `since` (unix time), summed by day and/or model, newest day first."""
        ...


class UsageRecords:
    """A `UsageStore` on a SQL `Database`: the one implementation, for SQLite and PostgreSQL alike."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._retention = Retention(USAGE_RETENTION_DAYS)

    async def record(self, record: UsageRecord) -> None:
        await self._database.run(self._insert(record), write=True)

    async def totals(self, *, principal: Principal, since: float, by: Grouping) -> list[UsageTotal]:
        return await self._database.run(self._totals(principal, since, by), write=False)

    def _insert(self, record: UsageRecord) -> Steps[None]:
        now = time.time()
        yield (
            "INSERT INTO usage (principal, at, tool, model, prompt_tokens, completion_tokens, cached_tokens, calls) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.principal,
                record.at or now,
                record.tool,
                record.model,
                record.prompt_tokens,
                record.completion_tokens,
                record.cached_tokens,
                record.calls,
            ),
        )
        if (cutoff := self._retention.cutoff(now)) is not None:
            yield ("DELETE FROM usage WHERE at < ?", (cutoff,))

    def _totals(self, principal: Principal, since: float, by: Grouping) -> Steps[list[UsageTotal]]:
        rows = yield (
            "SELECT at, model, calls, prompt_tokens, completion_tokens, cached_tokens FROM usage "
            "WHERE principal = ? AND at >= ?",
            (principal, since),
        )
        sums: dict[tuple[str, str], list[int]] = {}
        for at, model, *counts in rows:
            day = datetime.fromtimestamp(at, UTC).date().isoformat() if by != "model" else ""
            key = (day, model if by != "day" else "")
            total = sums.setdefault(key, [0, 0, 0, 0])
            for i, count in enumerate(counts):
                total[i] += count
        ordered = sorted(sums.items(), key=lambda item: (item[0][0], -sum(item[1][1:3]), item[0][1]), reverse=False)
        ordered.sort(key=lambda item: item[0][0], reverse=True)  # newest day first, stable within a day
        return [UsageTotal(day, model, *counts) for (day, model), counts in ordered]


class BatchedUsage(UsageRecords):
    """A `UsageStore` whose records leave the call's path: queued to a `WriteBehind`, written together. `totals`
    writes what is queued first, so a report counts every call this process has answered."""

    def __init__(self, database: Database, *, behind: WriteBehind) -> None:
        super().__init__(database)
        self._behind = behind

    async def record(self, record: UsageRecord) -> None:
        stamped = record if record.at else replace(record, at=time.time())  # the call's time, not the write's
        await self._behind.write(lambda: self._insert(stamped), settled=_nothing)

    async def totals(self, *, principal: Principal, since: float, by: Grouping) -> list[UsageTotal]:
        await self._behind.settle()
        return await super().totals(principal=principal, since=since, by=by)


def _nothing() -> None:
    """A usage record has no view to forget it from."""
