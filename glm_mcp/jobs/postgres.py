"""The job registry several replicas share: one PostgreSQL database (GLM_MCP_DATABASE_URL).

Behind a load balancer any replica may be asked about any job, so every replica reads and writes
the same tables through a psycopg 3 connection pool (`PostgresDatabase`): the jobs, conversations
and usage are the steps SQLite runs too (`records.py`; `JobRecords`, `ConversationRecords`,
`UsageRecords`), written with `?`, which become psycopg's `%s` here. A write is one transaction. Three
things replace what one machine's SQLite file and file locks gave:

- **The schema is versioned** (`glm_mcp_schema`, one row per version) and migrated at the first
  call, inside a transaction holding a transaction-level advisory lock: replicas starting together
  queue on the lock, and the second finds the work done. The schema is declared once, for SQLite
  too (`schema.py`); a database of a newer version is refused.
- **Ownership is a lease.** Each replica has a row in `replicas` whose `lease_until` (the
  database's clock, so replicas' clocks never matter) it pushes `lease_seconds` ahead every third
  of that. A running chat job whose owner's lease has lapsed (killed, partitioned, frozen) is
  recorded as `interrupted`, keeping the partial text last saved, by whichever replica reads it or
  sweeps first (a replica sweeps only once it has kept its own lease unbroken for two leases and a
  connection timeout, so a database outage, during which every lease lapses, interrupts nobody);
  every update of a running job is `WHERE status = 'running'`, so a replica that comes back cannot
  revive it.
- **Readers are woken, not polling.** A trigger on `jobs` sends `NOTIFY glm_mcp_jobs, '<id>'` on
  every change; each replica keeps one listening connection and wakes the readers of that job
  (`watch`). While that connection is down, readers fall back to reading every second, and all are
  woken when it is back (notices sent meanwhile are lost).

The database going away takes nothing else down: what needs the registry gets `RegistryUnavailable`
after `ACQUIRE_TIMEOUT_S` (the pool tries to reconnect in the background, and checks each
connection before lending it, so the first call after a restart does not fail on a dead one);
everything else goes on. psycopg is an optional dependency (`glm-mcp-server[postgres]`), imported
only when the URL is set.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

import anyio
import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.owner import new_owner
from glm_mcp.jobs.records import Rows, Steps, one
from glm_mcp.jobs.schema import CHANNEL, POSTGRES
from glm_mcp.jobs.store import NOT_FOLLOWED, POLL_S, Changes, JobRecords, RegistryReplaced

logger = logging.getLogger(__name__)

ADVISORY_LOCK = 0x676C6D2D6D6370  # "glm-mcp": every replica migrating takes this one lock
ACQUIRE_TIMEOUT_S = 3.0
"""How long a call waits for a connection before the registry is reported unavailable."""
CONNECT_TIMEOUT_S = 3
READY_TIMEOUT_S = 1.0
POOL_SIZE = 10
RECONNECT_TIMEOUT_S = 5.0
"""How long one chain of the pool's reconnection attempts lasts: their delays double (1, 2, 4 … s), so a chain
left to its default five minutes would keep a replica away for as long after a long outage; cut short, the
next call starts a new chain at once, and a replica is back within about 2 s of its database."""
RELISTEN_S = 1.0
SCHEMA_VERSION = POSTGRES.version
_T = TypeVar("_T")
Connection = psycopg.AsyncConnection[TupleRow]

_LAPSED = (
    "UPDATE jobs SET status = 'interrupted', updated_at = ? WHERE status = 'running' AND owner IS NOT NULL "
    "AND owner <> ? AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.owner = jobs.owner AND r.lease_until > now()) "
    f"AND {NOT_FOLLOWED} RETURNING owner"
)
"""Running jobs whose owner holds no live lease become interrupted (their partial text is kept)."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    url = _PASSWORD_PARAMETER.sub(r"\1***", url)  # libpq takes ?password=… too
    scheme, separator, rest = url.partition("://")
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")  # by hand: urlsplit raises on a malformed URL
    if not separator or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostport}{rest[end:]}"


_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


class PostgresJobStore(JobRecords):
    """The job registry in the PostgreSQL database at `url`, shared by every replica; used as `async with`."""

    def __init__(self, url: str, *, retention_days: float, lease_seconds: float) -> None:
        self._shared = PostgresDatabase(url, lease_seconds=lease_seconds)
        super().__init__(self._shared, retention_days=retention_days)

    @property
    def listening(self) -> bool:
        return self._shared.listening

    async def __aenter__(self) -> PostgresJobStore:
        await self._shared.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._shared.__aexit__(*exc)


class PostgresDatabase:
    """A `JobDatabase` in the PostgreSQL database at `url`: steps run on a pool of connections; used as `async with`,
    which holds the pool, this replica's lease and the listener of change notices."""

    def __init__(self, url: str, *, lease_seconds: float) -> None:
        self._url = url
        self._where = f"at {redacted(url)}"
        self._owner = new_owner()
        self._lease_s = lease_seconds
        self._settle_s = 2 * lease_seconds + ACQUIRE_TIMEOUT_S
        """How long this replica must have renewed its own lease without a break before it interrupts others'
        jobs: time enough for every live replica to renew after the database came back."""
        self._healthy_since: float | None = None
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._schema_lock = anyio.Lock()
        self._migrated = False
        self._listening = False
        self._watchers: defaultdict[str, set[_Watch]] = defaultdict(set)
        self._closed = False

    async def __aenter__(self) -> PostgresDatabase:
        self._serving = self._serve()
        return await self._serving.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self._serving.__aexit__(*exc)

    @asynccontextmanager
    async def _serve(self) -> AsyncIterator[PostgresDatabase]:
        """The pool, and the lease and listener tasks, for the `async with` block."""
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            timeout=ACQUIRE_TIMEOUT_S,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            check=AsyncConnectionPool.check_connection,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True},
            name="glm-mcp-registry",
        )
        await pool.open(wait=False)  # a database down at start delays nothing: calls say so, readiness too
        self._pool = pool
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(self._keep_lease, name="glm-mcp registry lease")
                background.start_soon(self._listen, name="glm-mcp registry listener")
                try:
                    yield self
                finally:
                    background.cancel_scope.cancel()
                    shield, limit = anyio.CancelScope(shield=True), anyio.move_on_after(READY_TIMEOUT_S)
                    with shield, limit, contextlib.suppress(RegistryUnavailable):
                        # On a clean stop, after the runner recorded its jobs as interrupted: the others need not
                        # wait for the lease to lapse.
                        await self._run(one(("DELETE FROM replicas WHERE owner = ?", (self._owner,))), write=False)
        finally:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await pool.close()

    # --- the JobDatabase interface ----------------------------------------------------------------

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def writable(self) -> bool:
        return True

    @property
    def listening(self) -> bool:
        return self._listening

    async def run(self, steps: Steps[_T], *, write: bool) -> _T:
        if not write:
            return await self._run(steps, write=False)
        with anyio.CancelScope(shield=True):  # a job id must not be returned, or lost, unrecorded
            result = await self._run(steps, write=True)
        return result

    def claim(self) -> Steps[None]:
        """This replica's lease, renewed: a job must never be recorded under an owner without one."""
        yield (
            "INSERT INTO replicas (owner, lease_until) VALUES (?, now() + make_interval(secs => ?)) "
            "ON CONFLICT (owner) DO UPDATE SET lease_until = EXCLUDED.lease_until",
            (self._owner, self._lease_s),
        )

    def interrupt_gone(self, owners: Collection[str | None] | None) -> Steps[set[str]]:
        """Interrupt the jobs of every lapsed lease (of `owners` or not); only once this replica has itself kept its
        lease for `_settle_s`.

        A lease also lapses while the database is down, for every replica alike: right after it returns,
        the live owners have not renewed yet, and must not lose their running jobs to the first sweeper."""
        if self._healthy_since is None or time.monotonic() - self._healthy_since < self._settle_s:
            return set()
        rows = yield (_LAPSED, (time.time(), self._owner))
        return {owner for (owner,) in rows}

    def gone(self, owners: Collection[str]) -> Steps[set[str]]:
        """An owner without a live lease is gone; only once this replica has itself kept its lease for `_settle_s`
        (as for `interrupt_gone`: right after an outage, the live owners have not renewed theirs yet)."""
        if self._healthy_since is None or time.monotonic() - self._healthy_since < self._settle_s:
            return set()
        found: set[str] = set()
        for owner in owners:
            if owner == self._owner:
                continue
            rows = yield ("SELECT 1 FROM replicas WHERE owner = ? AND lease_until > now()", (owner,))
            if not rows:
                found.add(owner)
        return found

    @property
    def replaced(self) -> RegistryReplaced | None:
        """Never: a corrupt PostgreSQL database is its operator's to mend."""
        return None

    def watch(self, job_id: str) -> AbstractAsyncContextManager[Changes]:
        return self._watch(job_id)

    async def check(self) -> None:
        await self._run(one(("SELECT 1", ())), write=False, timeout=READY_TIMEOUT_S)

    async def aclose(self) -> None:
        """Refuse further calls; the pool is closed when the `async with` block ends."""
        self._closed = True

    # --- connections, schema, failures ------------------------------------------------------------

    async def _run(self, steps: Steps[_T], *, write: bool, timeout: float = ACQUIRE_TIMEOUT_S) -> _T:
        if self._pool is None or self._closed:
            raise RegistryUnavailable(
                self._where, "is closed: the server is stopping", "Call again once the server has restarted."
            )
        try:
            async with self._pool.connection(timeout=timeout) as db:
                if not self._migrated:
                    await self._migrate(db)
                async with db.transaction() if write else contextlib.nullcontext():
                    return await _drive(db, steps)
        except PoolTimeout as exc:
            raise self._unavailable(f"cannot be reached within {timeout:g} s") from exc
        except psycopg.Error as exc:
            raise self._unavailable(f"failed: {_first_line(exc)}") from exc

    def _unavailable(self, reason: str) -> RegistryUnavailable:
        return RegistryUnavailable(
            self._where,
            reason,
            "Check that the PostgreSQL server is up and reachable from this replica (GLM_MCP_DATABASE_URL); "
            "calls that need the registry work again as soon as it is, without a restart.",
        )

    async def _migrate(self, db: Connection) -> None:
        """Bring the schema to `SCHEMA_VERSION`; replicas doing it at once queue on the advisory lock."""
        async with self._schema_lock:
            if self._migrated:
                return
            async with db.transaction():
                await db.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
                await db.execute(
                    "CREATE TABLE IF NOT EXISTS glm_mcp_schema (version INTEGER PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                row = await (await db.execute("SELECT coalesce(max(version), 0) FROM glm_mcp_schema")).fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise psycopg.errors.FeatureNotSupported(
                        f"its schema is version {version}, newer than this glm-mcp's {SCHEMA_VERSION}: upgrade it"
                    )
                for statement in POSTGRES.migration(version):
                    await db.execute(statement)
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    await db.execute("INSERT INTO glm_mcp_schema (version) VALUES (%s)", (number,))
                if version < SCHEMA_VERSION:
                    logger.info("job registry %s: schema migrated to version %d", self._where, SCHEMA_VERSION)
            self._migrated = True

    # --- the lease and the listener, in the background ----------------------------------------------

    async def _keep_lease(self) -> None:
        """Renew this replica's lease every third of it, and interrupt the jobs of replicas whose lease lapsed
        (whose readers are woken by the trigger's notices)."""
        lapsed_since: float | None = None
        while True:
            try:
                await self._run(self.claim(), write=False)
                if self._healthy_since is None:
                    self._healthy_since = time.monotonic()
                await self._run(self.interrupt_gone(None), write=False)
            except RegistryUnavailable as exc:
                self._healthy_since = None
                if lapsed_since is None:
                    lapsed_since = time.monotonic()
                    logger.warning("%s: the lease of this replica cannot be renewed", exc)
            else:
                if lapsed_since is not None:
                    logger.info("job registry %s: reachable again, lease renewed", self._where)
                    lapsed_since = None
            await anyio.sleep(self._lease_s / 3)

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    self._wake_all()  # what changed while nobody listened
                    async for notice in conn.notifies():
                        for watcher in list(self._watchers.get(notice.payload, ())):
                            watcher.wake()
            except psycopg.Error as exc:
                if self._listening:
                    logger.warning("job registry %s: change notices lost (%s); reconnecting", self._where, exc)
            finally:
                self._listening = False
                self._wake_all()
            await anyio.sleep(RELISTEN_S)

    def _wake_all(self) -> None:
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.wake()

    @asynccontextmanager
    async def _watch(self, job_id: str) -> AsyncIterator[Changes]:
        watcher = _Watch(self)
        self._watchers[job_id].add(watcher)
        try:
            yield watcher
        finally:
            self._watchers[job_id].discard(watcher)
            if not self._watchers[job_id]:
                del self._watchers[job_id]


class _Watch:
    """One reader's wait on one job: woken by its notice, or every POLL_S while notices cannot come."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database
        self._event = anyio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        if not self._database.listening:
            timeout = min(timeout, POLL_S)
        with anyio.move_on_after(max(0.0, timeout)):
            await self._event.wait()
        if self._event.is_set():
            self._event = anyio.Event()


async def _drive(db: Connection, steps: Steps[_T]) -> _T:
    """Run `steps` on `db` (as `records.drive` does, awaiting each statement)."""
    try:
        sql, parameters = next(steps)
        while True:
            cursor = await db.execute(_placeholders(sql), parameters)
            rows: Rows = await cursor.fetchall() if cursor.description is not None else []
            sql, parameters = steps.send(rows)
    except StopIteration as done:
        return cast(_T, done.value)


def _placeholders(sql: str) -> str:
    """SQL written with `?` (records.py), as psycopg takes it: `%s`, and a literal `%` doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
