"""The job registry several replicas share: one PostgreSQL database (GLM_MCP_DATABASE_URL).

Behind a load balancer any replica may be asked about any job, so every replica reads and writes
the same tables through a psycopg 3 connection pool. Three things replace what one machine's
SQLite file and file locks gave:

- **The schema is versioned** (`glm_mcp_schema`, one row per migration applied) and migrated when
  the store opens, inside a transaction holding a transaction-level advisory lock: replicas
  starting together queue on the lock, and the second finds the work done. A migration is a new
  entry of `MIGRATIONS` (2 added the conversations' and usage tables, `postgres_records.py`).
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
import math
import re
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.owner import new_owner
from glm_mcp.jobs.principal import SECRET_BYTES, Principal
from glm_mcp.jobs.store import POLL_S, Changes, JobRecord, JobState, Position

logger = logging.getLogger(__name__)

CHANNEL = "glm_mcp_jobs"
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
PRUNE_EVERY_S = 3600.0
RELISTEN_S = 1.0
_T = TypeVar("_T")
Connection = psycopg.AsyncConnection[TupleRow]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: jobs (as in SQLite, times as unix seconds), meta (the principal secret), replicas' leases
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            summary TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            request_id TEXT,
            partial_text TEXT,
            result TEXT,
            owner TEXT,
            updated_at DOUBLE PRECISION NOT NULL,
            principal TEXT NOT NULL DEFAULT 'server'
        )""",
        "CREATE INDEX jobs_by_principal ON jobs (principal, created_at DESC, id DESC)",
        "CREATE INDEX jobs_running ON jobs (owner) WHERE status = 'running'",
        "CREATE INDEX jobs_ended ON jobs (updated_at) WHERE status <> 'running'",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE replicas (owner TEXT PRIMARY KEY, lease_until TIMESTAMPTZ NOT NULL, "
        "started_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        f"""CREATE FUNCTION glm_mcp_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{CHANNEL}', NEW.id); RETURN NULL; END $$""",
        "CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE ON jobs FOR EACH ROW "
        "EXECUTE FUNCTION glm_mcp_job_changed()",
    ),
    (  # 2: conversations and their turns, every call's usage (as in SQLite: conversations.py, usage.py)
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            principal TEXT NOT NULL,
            system TEXT NOT NULL,
            summary TEXT NOT NULL,
            branched_from TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX conversations_by_principal ON conversations (principal, updated_at DESC, id DESC)",
        "CREATE INDEX conversations_by_age ON conversations (updated_at)",
        """CREATE TABLE turns (
            conversation_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            model TEXT NOT NULL,
            messages TEXT NOT NULL,
            answer TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (conversation_id, number)
        )""",
        """CREATE TABLE usage (
            principal TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            tool TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            calls INTEGER NOT NULL
        )""",
        "CREATE INDEX usage_by_principal ON usage (principal, at)",
    ),
)
"""Migration N (1-based) is `MIGRATIONS[N - 1]`; the schema's version is the number of them applied."""
SCHEMA_VERSION = len(MIGRATIONS)

_RECORD_FIELDS = "id, kind, model, summary, created_at, status, request_id, partial_text, result, principal, updated_at"
_LAPSED = (
    "UPDATE jobs SET status = 'interrupted', updated_at = %(now)s WHERE status = 'running' AND owner IS NOT NULL "
    "AND owner <> %(me)s AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.owner = jobs.owner AND r.lease_until > now())"
)
"""Running jobs whose owner holds no live lease become interrupted (their partial text is kept)."""
_SECRET_NAME = "principal_secret"


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


class PostgresJobStore:
    """A `JobStore` in the PostgreSQL database at `url`, shared by every replica; used as `async with`."""

    def __init__(self, url: str, *, retention_days: float, lease_seconds: float) -> None:
        self._url = url
        self._where = f"at {redacted(url)}"
        self._owner = new_owner()
        self._retention_s = retention_days * 86_400
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
        self._pruned_at = -math.inf
        self._closed = False

    @property
    def owner(self) -> str:
        return self._owner

    async def __aenter__(self) -> PostgresJobStore:
        self._running = self._run()
        return await self._running.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self._running.__aexit__(*exc)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[PostgresJobStore]:
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
                        await self._do(self._release_lease)  # the others need not wait for it to lapse
        finally:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await pool.close()

    async def aclose(self) -> None:
        """Refuse further calls; the pool is closed when the `async with` block ends."""
        self._closed = True

    # --- the JobStore interface -------------------------------------------------------------------

    async def add(self, record: JobRecord, *, runs_here: bool) -> None:
        await self._write(self._add, record, runs_here)

    async def save_partial(self, job_id: str, partial_text: str) -> None:
        await self._write(self._update, job_id, {"partial_text": partial_text})

    async def finish(self, job_id: str, status: JobState, *, result: str | None, partial_text: str | None) -> None:
        await self._write(self._update, job_id, {"status": status, "result": result, "partial_text": partial_text})

    async def get(self, job_id: str, *, principal: Principal) -> JobRecord | None:
        return await self._do(self._get, job_id, principal)

    async def known(self, job_id: str) -> bool:
        return await self._do(self._known, job_id)

    async def page(
        self, *, principal: Principal, status: JobState | None, limit: int, after: Position | None
    ) -> list[JobRecord]:
        return await self._do(self._page, principal, status, limit, after)

    async def principal_secret(self) -> bytes:
        return await self._do(self._secret)

    def take_notice(self) -> str | None:
        return None

    def watch(self, job_id: str) -> AbstractAsyncContextManager[Changes]:
        return self._watch(job_id)

    async def run(self, operation: Callable[..., Coroutine[Any, Any, _T]], *args: Any, write: bool = False) -> _T:
        """`await operation(connection, *args)` on a pooled connection, its failures said as `RegistryUnavailable`:
        for the conversations and usage kept in the same database. A write completes even when its caller is
        cancelled."""
        if not write:
            return await self._do(operation, *args)
        with anyio.CancelScope(shield=True):
            result = await self._do(operation, *args)
        return result

    async def check(self) -> None:
        async def ping(db: Connection) -> None:
            await db.execute("SELECT 1")

        await self._do(ping, timeout=READY_TIMEOUT_S)

    # --- the statements ---------------------------------------------------------------------------

    async def _add(self, db: Connection, record: JobRecord, runs_here: bool) -> None:
        now = time.time()
        async with db.transaction():
            if runs_here:  # its lease first: a job must never be recorded under an owner without one
                await self._renew(db)
            await db.execute(
                f"INSERT INTO jobs ({_RECORD_FIELDS}, owner) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    record.id,
                    record.kind,
                    record.model,
                    record.summary,
                    record.created_at,
                    record.status,
                    record.request_id,
                    record.partial_text,
                    record.result,
                    record.principal,
                    now,
                    self._owner if runs_here else None,
                ),
            )
        if now - self._pruned_at > PRUNE_EVERY_S:
            await db.execute(
                "DELETE FROM jobs WHERE status <> 'running' AND updated_at < %s", (now - self._retention_s,)
            )
            self._pruned_at = now

    async def _update(self, db: Connection, job_id: str, changes: dict[str, object]) -> None:
        assignments = ", ".join(f"{column} = %s" for column in changes)
        await db.execute(
            f"UPDATE jobs SET {assignments}, updated_at = %s WHERE id = %s AND status = 'running'",
            (*changes.values(), time.time(), job_id),
        )

    async def _get(self, db: Connection, job_id: str, principal: Principal) -> JobRecord | None:
        select = f"SELECT {_RECORD_FIELDS}, owner FROM jobs WHERE id = %s AND principal = %s"
        row = await (await db.execute(select, (job_id, principal))).fetchone()
        if row is None:
            return None
        if row[5] == "running" and row[-1] not in (None, self._owner):
            await self._sweep(db)
            row = await (await db.execute(select, (job_id, principal))).fetchone()
        return None if row is None else JobRecord(*row[:-1])

    async def _known(self, db: Connection, job_id: str) -> bool:
        return await (await db.execute("SELECT 1 FROM jobs WHERE id = %s", (job_id,))).fetchone() is not None

    async def _page(
        self, db: Connection, principal: Principal, status: JobState | None, limit: int, after: Position | None
    ) -> list[JobRecord]:
        await self._sweep(db)
        conditions = ["principal = %s"]
        parameters: list[object] = [principal]
        if status is not None:
            conditions.append("status = %s")
            parameters.append(status)
        if after is not None:
            conditions.append("(created_at, id) < (%s, %s)")
            parameters += [after.created_at, after.id]
        cursor = await db.execute(
            f"SELECT {_RECORD_FIELDS} FROM jobs WHERE {' AND '.join(conditions)} "
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            (*parameters, limit),
        )
        return [JobRecord(*row) for row in await cursor.fetchall()]

    async def _secret(self, db: Connection) -> bytes:
        """The registry's secret, made by the first replica to ask (the others read the same row)."""
        await db.execute(
            "INSERT INTO meta (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (_SECRET_NAME, secrets.token_hex(SECRET_BYTES)),
        )
        row = await (await db.execute("SELECT value FROM meta WHERE name = %s", (_SECRET_NAME,))).fetchone()
        assert row is not None  # inserted just above, or there already
        return bytes.fromhex(row[0])

    async def _sweep(self, db: Connection) -> None:
        """Interrupt the jobs of lapsed leases; only once this replica has itself kept its lease for `_settle_s`.

        A lease also lapses while the database is down, for every replica alike: right after it returns,
        the live owners have not renewed yet, and must not lose their running jobs to the first sweeper."""
        if self._healthy_since is None or time.monotonic() - self._healthy_since < self._settle_s:
            return
        await db.execute(_LAPSED, {"now": time.time(), "me": self._owner})

    async def _renew(self, db: Connection) -> None:
        await db.execute(
            "INSERT INTO replicas (owner, lease_until) VALUES (%s, now() + make_interval(secs => %s)) "
            "ON CONFLICT (owner) DO UPDATE SET lease_until = EXCLUDED.lease_until",
            (self._owner, self._lease_s),
        )

    async def _release_lease(self, db: Connection) -> None:
        """On a clean stop, after the runner recorded its jobs as interrupted: nothing of ours runs on."""
        await db.execute("DELETE FROM replicas WHERE owner = %s", (self._owner,))

    # --- connections, schema, failures ------------------------------------------------------------

    async def _do(
        self, operation: Callable[..., Coroutine[Any, Any, _T]], *args: Any, timeout: float = ACQUIRE_TIMEOUT_S
    ) -> _T:
        if self._pool is None or self._closed:
            raise RegistryUnavailable(
                self._where, "is closed: the server is stopping", "Call again once the server has restarted."
            )
        try:
            async with self._pool.connection(timeout=timeout) as db:
                if not self._migrated:
                    await self._migrate(db)
                return await operation(db, *args)
        except PoolTimeout as exc:
            raise self._unavailable(f"cannot be reached within {timeout:g} s") from exc
        except psycopg.Error as exc:
            raise self._unavailable(f"failed: {_first_line(exc)}") from exc

    async def _write(self, operation: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        await self.run(operation, *args, write=True)  # a job id must not be returned, or lost, unrecorded

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
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[number - 1]:
                        await db.execute(statement)
                    await db.execute("INSERT INTO glm_mcp_schema (version) VALUES (%s)", (number,))
                    logger.info("job registry %s: schema migrated to version %d", self._where, number)
            self._migrated = True

    # --- the lease and the listener, in the background ----------------------------------------------

    async def _keep_lease(self) -> None:
        """Renew this replica's lease every third of it, and interrupt the jobs of replicas whose lease lapsed
        (whose readers are woken by the trigger's notices)."""
        lapsed_since: float | None = None
        while True:
            try:
                await self._do(self._renew)
                if self._healthy_since is None:
                    self._healthy_since = time.monotonic()
                await self._do(self._sweep)
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

    @property
    def listening(self) -> bool:
        return self._listening


class _Watch:
    """One reader's wait on one job: woken by its notice, or every POLL_S while notices cannot come."""

    def __init__(self, store: PostgresJobStore) -> None:
        self._store = store
        self._event = anyio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        if not self._store.listening:
            timeout = min(timeout, POLL_S)
        with anyio.move_on_after(max(0.0, timeout)):
            await self._event.wait()
        if self._event.is_set():
            self._event = anyio.Event()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
