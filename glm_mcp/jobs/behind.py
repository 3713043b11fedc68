"""Writes that leave the call's path: kept in this process a moment, then written together.

A chat's conversation turn and its usage record are two writes on every call. Awaited where they are
made, they cost the call a hop to the registry's thread and back, and a transaction each (issue 25:
0.3-0.8 ms of server CPU per call, plus the thread's contention for the GIL). `WriteBehind` takes them
instead: a write is queued and the call goes on; every `FLUSH_EVERY_S`, or as soon as `FLUSH_AT` are
queued, everything queued runs as one operation of the database (`Database.run`: one transaction).
What the stores queue stays readable in the meantime from their own view of it (`BatchedConversations`,
`BatchedUsage`), or by writing it first (`flush`), so a call sees what an earlier call of this process wrote.

A write is queued, not done, only while the database is known to take writes: the first write of the
process, and every write after a flush failed, is written at once and its failure raised to its caller,
who says so (a turn not kept), as before. Writes a failed flush leaves are offered again for
`RETRY_FOR_S`, then given up, logged. The last flush is made when the stores close (`open`), which the
server's lifespan does on every clean stop (SIGTERM, SIGINT, stdin closed, the HTTP server's shutdown); a
process killed outright (SIGKILL, a crash) loses what was queued: at most the last `FLUSH_EVERY_S`, or
what a failing database had not taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import anyio

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.records import Database, Steps

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.05
"""How long a write may wait to be written with others: what a killed process can lose."""
FLUSH_AT = 256
"""Queued writes that are written at once, without waiting out `FLUSH_EVERY_S`."""
RETRY_FOR_S = 600.0
"""How long writes a failed flush left are offered again (a database restarting, a disk freed)."""
LAST_FLUSH_S = 10.0
"""How long the last flush, at close, may take."""


@dataclass(eq=False, slots=True)
class Write:
    """One queued write: its steps (made anew for each attempt), and what to do once it is written or given up."""

    steps: Callable[[], Steps[object]]
    settled: Callable[[], None]
    """Called once, when the write is in the database or given up: the store's view forgets it."""
    queued_at: float = field(default_factory=time.monotonic)
    written: bool = False


class WriteBehind:
    """Writes queued by the stores of one database, written together (`open` runs it)."""

    def __init__(self, database: Database, *, every: float | None = None) -> None:
        self._database = database
        self._every = FLUSH_EVERY_S if every is None else every
        self._queue: list[Write] = []
        self._lock = anyio.Lock()
        self._queued = anyio.Event()
        self._full = anyio.Event()
        self._healthy = False
        """Whether the last write reached the database: only then are writes queued rather than done at once."""
        self._open = False

    async def write(self, steps: Callable[[], Steps[object]], *, settled: Callable[[], None]) -> None:
        """Queue a write, or (while the database is not known to take writes) write it now: `RegistryUnavailable`
        when it cannot, and it is then given up (`settled`)."""
        write = Write(steps, settled)
        self._queue.append(write)
        if self._open and self._healthy:
            self._queued.set()
            if len(self._queue) >= FLUSH_AT:
                self._full.set()
            return
        try:
            await self.flush()
        except RegistryUnavailable:
            if not write.written:  # another flush may have written it meanwhile
                self._give_up([write])
                raise

    async def flush(self) -> None:
        """Write everything queued so far, as one operation of the database; `RegistryUnavailable` when it cannot (the
        writes then stay queued, until `RETRY_FOR_S` has passed)."""
        async with self._lock:
            batch = self._queue[:]
            if not batch:
                return
            try:
                await self._database.run(_together(batch), write=True)
            except RegistryUnavailable as exc:
                if self._healthy:
                    logger.warning("conversation turns and usage are not written yet: %s %s", exc, exc.fix)
                self._healthy = False
                self._give_up([w for w in batch if time.monotonic() - w.queued_at > RETRY_FOR_S], exc)
                raise
            if not self._healthy and self._open:
                logger.info("conversation turns and usage are written again")
            self._healthy = True
            for write in batch:
                write.written = True
            self._queue = [w for w in self._queue if not w.written]
        for write in batch:
            write.settled()

    async def settle(self) -> None:
        """`flush`, for a reader about to read everything: what cannot be written stays queued, and the reader reads
        what the database has (and says so itself when it cannot read either)."""
        with suppress(RegistryUnavailable):
            await self.flush()

    @asynccontextmanager
    async def open(self) -> AsyncIterator[WriteBehind]:
        """Queue writes for the `async with` block, writing them every `FLUSH_EVERY_S`; at its end, the last ones."""
        try:
            async with anyio.create_task_group() as flusher:
                flusher.start_soon(self._flush_in_turn, name="glm-mcp write-behind")
                self._open = True
                try:
                    yield self
                finally:
                    self._open = False
                    flusher.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(LAST_FLUSH_S):
                try:
                    await self.flush()
                except RegistryUnavailable as exc:
                    logger.error(
                        "%d conversation turn(s) and usage record(s) were not written before the server stopped: %s",
                        len(self._queue),
                        exc,
                    )
            if self._queue:
                self._give_up(self._queue[:])

    async def _flush_in_turn(self) -> None:
        """Wait for a write, then `FLUSH_EVERY_S` (or until `FLUSH_AT` are queued), and write them; after a failure,
        again later (1 s, doubling to 30 s)."""
        delay = 1.0
        while True:
            await self._queued.wait()
            with anyio.move_on_after(self._every):
                await self._full.wait()
            self._queued, self._full = anyio.Event(), anyio.Event()
            try:
                await self.flush()
            except RegistryUnavailable:
                await anyio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                delay = 1.0
            if self._queue:
                self._queued.set()

    def _give_up(self, writes: list[Write], exc: RegistryUnavailable | None = None) -> None:
        if not writes:
            return
        if exc is not None:
            logger.error("%d conversation turn(s) and usage record(s) are given up: %s %s", len(writes), exc, exc.fix)
        given_up = set(map(id, writes))
        self._queue = [w for w in self._queue if id(w) not in given_up]
        for write in writes:
            write.settled()


def _together(writes: list[Write]) -> Steps[None]:
    """The steps of every write in `writes`, one after another: one operation, so one transaction."""
    for write in writes:
        yield from write.steps()
