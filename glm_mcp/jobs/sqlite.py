"""The default job registry: one SQLite file that every glm-mcp process of the user shares.

Claude Desktop and an IDE each start a server of their own, so two processes may write at once.
The database is in WAL mode (readers never block the writer), a writer waits up to
`BUSY_TIMEOUT_S` for another process's write instead of failing. All of it runs in one thread of
the process (`worker.py`), so the event loop never waits on the disk: what callers queue together
runs as one batch, its writes in one short transaction (each in a savepoint of its own), and costs
one wake-up of the event loop however many calls it held. The file is opened at the first job recorded
or looked up, or about 2 s after start to take over platform batches when the `batch` toolset is
offered (off the event loop);
a chat that ends within its wait writes only its turn and usage, behind the answer. What runs there is
the registry's steps (`records.py`: jobs, conversations, usage, written once for SQLite and PostgreSQL),
on the schema declared in `schema.py`, whose version the file keeps in `PRAGMA user_version`.

A running chat job belongs to the process generating it (its *owner*), and `owner.py` tells
whether that process is alive: this is `SQLiteDatabase.interrupt_gone`, which `JobRecords` asks
when a read comes across running jobs of another owner (they are then recorded as `interrupted`,
with the partial text last saved).

What cannot be done raises `RegistryUnavailable`, with the path, the cause and the fix for that
cause: a full disk, a read-only file or directory, a file where a directory should be, a database
whose tables are not ours (another program's, or a newer glm-mcp's). A file that cannot be written
(a read-only mount, a file without write permission) is opened read-only: everything recorded stays
listed and readable, and only new records are refused. A file that is not a database, or whose
corruption SQLite finds only once it is open (garbage pages behind a valid header), is moved aside
as `jobs.sqlite3.corrupt-<UTC time>` (with its -wal and -shm) and a fresh one is started: in the
latter case the batch that found it runs again on the fresh file. The log names both files, and so
does the store's `replaced` (a `RegistryReplaced`), which the next result says.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.owner import OwnerLock, new_owner, owner_gone
from glm_mcp.jobs.records import Rows, Steps, drive
from glm_mcp.jobs.schema import SQLITE
from glm_mcp.jobs.store import NOT_FOLLOWED, Changes, JobRecords, RegistryReplaced, polling
from glm_mcp.jobs.worker import BatchThread, Work

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
SCHEMA_VERSION = SQLITE.version
_T = TypeVar("_T")

_RUNNING_OWNERS = "SELECT DISTINCT owner FROM jobs WHERE status = 'running'"


class SQLiteJobStore(JobRecords):
    """The job registry in the SQLite file at `path`; a finished job is deleted `retention_days` after it ended."""

    def __init__(self, path: Path, *, retention_days: float) -> None:
        self._file = SQLiteDatabase(path)
        super().__init__(self._file, retention_days=retention_days)

    async def run(self, operation: Callable[..., _T], *args: Any, write: bool = False) -> _T:
        """`operation(connection, *args)` in the file's worker thread, its failures said as `RegistryUnavailable`
        (the benchmark's floor, and tests). A write completes even when its caller is cancelled."""
        return await self._file.call(lambda db: operation(db, *args), write=write)


class SQLiteDatabase:
    """A `JobDatabase` in the SQLite file at `path`: the steps of jobs, conversations and usage run in its thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._owner = new_owner()
        self._owners_dir = path.parent / "owners"
        self._worker = BatchThread(self._run_batch, closed=self._closed_error, name="glm-mcp-registry")
        self._db: sqlite3.Connection | None = None
        self._owner_lock: OwnerLock | None = None
        self._read_only: str | None = None
        """Why the file is open read-only, when it is."""
        self._opened: int | None = None
        """The inode of the file open, to tell whether another process has replaced it since."""
        self._corrupt: sqlite3.Error | None = None
        """The corruption a statement found in the (writable) file open: it is moved aside after the batch."""
        self._principal_column = "principal"
        """What a record's principal is read from: "'server'" for a read-only file of schema 1 (`_read_as_schema_2`)."""
        self._replaced: RegistryReplaced | None = None
        self._closed = False

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def writable(self) -> bool:
        return self._read_only is None

    async def run(self, steps: Steps[_T], *, write: bool) -> _T:
        """`steps` in the worker thread; a write in its batch's transaction, in a savepoint of its own."""
        return await self.call(lambda db: drive(steps, _executor(db)), write=write)

    async def call(self, operation: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        """`operation(connection)` in the worker thread, its failures said as `RegistryUnavailable`. A write
        completes even when its caller is cancelled."""
        if not write:
            return await self._worker.submit(operation, write=False)
        with anyio.CancelScope(shield=True):
            result = await self._worker.submit(operation, write=True)
        return result

    def claim(self) -> Steps[None]:
        """Nothing to do: this process holds its owner lock from the file's opening on (`_with_lock`)."""
        yield from ()

    def interrupt_gone(self, owners: Collection[str | None] | None) -> Steps[set[str]]:
        """An owner is gone when its lock can be taken (`owner.py`). A read-only file is left as it is."""
        if owners is None:
            rows = yield (_RUNNING_OWNERS, ())
            owners = [owner for (owner,) in rows]
        gone = {o for o in owners if o is not None and o != self._owner and owner_gone(self._owners_dir, o)}
        if not self._read_only:
            for owner in gone:
                yield (
                    "UPDATE jobs SET status = 'interrupted', updated_at = ? "
                    f"WHERE owner = ? AND status = 'running' AND {NOT_FOLLOWED}",
                    (time.time(), owner),
                )
        return gone

    def gone(self, owners: Collection[str]) -> Steps[set[str]]:
        """An owner is gone when its lock can be taken."""
        yield from ()
        return {o for o in owners if o != self._owner and owner_gone(self._owners_dir, o)}

    @property
    def replaced(self) -> RegistryReplaced | None:
        return self._replaced

    def watch(self, job_id: str) -> AbstractAsyncContextManager[Changes]:
        """Read again every second: SQLite tells no other process of a change."""
        return polling(job_id)

    async def check(self) -> None:
        """Nothing to reach: the file is opened at the first job, and what fails then is said then."""

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):  # a server stopping on a cancellation still lets go of its lock
            thread = self._worker.stop(self._close)
            if thread is not None:
                await anyio.to_thread.run_sync(thread.join)

    # --- in the worker thread ---------------------------------------------------------------------

    def _run_batch(self, works: list[Work[Any]]) -> None:
        """What was queued together; when it found the file corrupt, the file is replaced by a fresh one and the
        batch's writes (kept in the file moved aside, if at all) and its failed reads run again on that."""
        self._run_works(works)
        if self._corrupt is None:
            return
        found, self._corrupt = self._corrupt, None
        again = [work for work in works if work.write or _corrupted(work.error)]
        try:
            self._replace_open(found)
        except RegistryUnavailable as exc:
            for work in again:
                work.fail(_caused(exc, found))
            return
        for work in again:
            work.again()
        self._run_works(again)

    def _replace_open(self, found: sqlite3.Error) -> None:
        """Close the corrupt file and open a fresh one in its place (this process keeps its owner lock)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._db = self._with_lock(self._replace_corrupt(found, self._opened))

    def _run_works(self, works: list[Work[Any]]) -> None:
        """The reads one by one, then the writes in one transaction, each in a savepoint of its own, so one
        that fails takes nothing of the others with it."""
        try:
            db = self._connection()
        except RegistryUnavailable as exc:
            for work in works:
                work.fail(exc)
            return
        writes = [work for work in works if work.write]
        for work in works:
            if not work.write:
                self._attempt(work, db)
        if not writes:
            return
        if self._read_only:
            for work in writes:
                work.fail(self._unavailable(f"cannot be written: {self._read_only}", self._fix_writable()))
            return
        try:
            db.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for another process's write
            for work in writes:
                db.execute("SAVEPOINT work")
                if not self._attempt(work, db):
                    db.execute("ROLLBACK TO work")
                db.execute("RELEASE work")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            for work in writes:  # nothing of the batch was kept; each caller gets its own exception
                if work.error is None:
                    work.fail(_caused(self._failure(exc), exc))

    def _attempt(self, work: Work[Any], db: sqlite3.Connection) -> bool:
        """Run `work` on `db`; whether it succeeded (its failure, said as `RegistryUnavailable`, is kept)."""
        try:
            work.succeed(work.operation(db))
        except sqlite3.Error as exc:
            work.fail(_caused(self._failure(exc), exc))
        except OSError as exc:  # an owner's lock file that cannot be read
            work.fail(_caused(self._os_failure("cannot be used", exc), exc))
        except Exception as exc:
            work.fail(exc)
        return work.error is None

    def _closed_error(self) -> RegistryUnavailable:
        return self._unavailable("is closed: the server is stopping", "Call again once the server has restarted.")

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise self._closed_error()
        if self._db is None:
            self._db = self._open()
            try:
                if self._principal_column != "principal":
                    _read_as_schema_2(self._db, self._principal_column)
                if not self._read_only:
                    drive(self.interrupt_gone(None), _executor(self._db))
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            except OSError as exc:
                raise self._os_failure("cannot be used", exc) from exc
        return self._db

    def _open(self) -> sqlite3.Connection:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._os_failure("cannot be created", exc) from exc
        if not self._writable():
            return self._open_read_only("the file or its directory is read-only")
        opened = _inode(self._path)
        if _not_a_database(self._path):  # before SQLite opens it: closing it would delete its -wal
            return self._with_lock(self._replace_corrupt(sqlite3.DatabaseError("file is not a database"), opened))
        try:
            db = self._open_shared()
            self._opened = opened
        except sqlite3.DatabaseError as exc:
            if _errorname(exc) in _CORRUPT:
                db = self._replace_corrupt(exc, opened)
            elif _errorname(exc).startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) and self._path.exists():
                return self._open_read_only(str(exc))
            else:
                raise self._failure(exc) from exc
        return self._with_lock(db)

    def _with_lock(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """`db`, once this process holds its owner lock (taken once, kept until the store closes): it may then
        record jobs it generates."""
        if self._owner_lock is not None:
            return db
        try:
            self._owner_lock = OwnerLock(self._owners_dir, self._owner)
        except OSError as exc:
            db.close()
            raise self._os_failure(f"cannot hold this process's lock in {self._owners_dir}", exc) from exc
        return db

    def _writable(self) -> bool:
        """Whether the file (or, for a new one, its directory) can be written: asked, not tried, so a
        read-only mount is known at once instead of after a busy timeout."""
        files = [self._path, _sibling(self._path, "-wal"), _sibling(self._path, "-shm")]
        return os.access(self._path.parent, os.W_OK) and all(os.access(f, os.W_OK) for f in files if f.exists())

    def _open_shared(self) -> sqlite3.Connection:
        db = _connect(str(self._path))
        try:
            _use_wal(db)
            # A commit then survives a crash of the process (not of the machine), and costs no fsync.
            db.execute("PRAGMA synchronous = NORMAL")
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _open_read_only(self, why: str) -> sqlite3.Connection:
        """The file as it is, for reading: a WAL database's -shm may not be creatable, so without one
        the file is read as immutable (a cleanly closed WAL database has everything in the file)."""
        if not self._path.exists():
            raise self._unavailable(f"does not exist and cannot be created ({why})", self._fix_writable())
        uri = self._path.resolve().as_uri()
        wal = _sibling(self._path, "-wal")
        try:
            try:
                db = _connect(f"{uri}?mode=ro", uri=True)
                version = _version(db)
            except sqlite3.OperationalError as exc:
                if not _errorname(exc).startswith("SQLITE_CANTOPEN") or (wal.exists() and wal.stat().st_size):
                    raise
                db = _connect(f"{uri}?mode=ro&immutable=1", uri=True)
                version = _version(db)
        except sqlite3.Error as exc:
            raise self._failure(exc, read_only=True) from exc
        if version == 0:
            db.close()
            raise self._unavailable(f"is empty and cannot be written ({why})", self._fix_writable())
        if version < 2:
            self._principal_column = "'server'"  # a file of schema 1: every job in it is the server's
        self._read_only = why
        logger.warning(
            "the job registry %s is read-only (%s): its jobs are listed and read, new ones are not recorded. %s",
            self._path,
            why,
            self._fix_writable(),
        )
        return db

    def _replace_corrupt(self, exc: sqlite3.Error, opened: int | None) -> sqlite3.Connection:
        """Move the unreadable file aside (with its -wal and -shm) under a name that says so, and start anew.

        `opened` is the file found corrupt: when another process sharing it has replaced it meanwhile,
        its fresh file is used, not moved aside in turn."""
        if _inode(self._path) != opened:
            self._opened = _inode(self._path)
            return self._open_shared()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self._path.with_name(f"{self._path.name}.corrupt-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(_sibling(self._path, suffix), _sibling(aside, suffix))
            opened = _inode(self._path)
            db = self._open_shared()
            self._opened = opened
        except (OSError, sqlite3.Error) as again:
            raise self._unavailable(
                f"is corrupt ({exc}) and could not be replaced ({again})",
                f"Stop the glm-mcp servers using it, move {self._path} aside, and start again.",
            ) from again
        # Set before the batch that found it gets its answers: the call that made it sees it.
        number = (self._replaced.number if self._replaced else 0) + 1
        self._replaced = RegistryReplaced(number, self._path, aside, str(exc))
        logger.error(
            "the job registry %s was corrupt (%s): it was moved aside to %s and a fresh one was started",
            self._path,
            exc,
            aside,
        )
        return db

    def _close(self) -> None:
        self._closed = True
        if self._db is not None:
            self._db.close()
        if self._owner_lock is not None:
            self._owner_lock.release()

    # --- what went wrong, and what to do ----------------------------------------------------------

    def _unavailable(self, reason: str, fix: str) -> RegistryUnavailable:
        return RegistryUnavailable(f"at {self._path}", reason, fix)

    def _fix_writable(self) -> str:
        return (
            f"Make {self._path.parent} writable (or set GLM_DATA_DIR to a writable directory) and restart the server."
        )

    def _os_failure(self, what: str, exc: OSError) -> RegistryUnavailable:
        """`exc`, raised by the file system while the registry `what`, with the fix for its cause."""
        if exc.errno in {errno.ENOTDIR, errno.EEXIST}:
            blocking = _file_in_the_way(Path(exc.filename)) if exc.filename else None
            where = str(blocking or exc.filename or self._path.parent)
            return self._unavailable(
                f"{what}: {where} is a file where a directory should be",
                f"Move {where} aside (or set GLM_DATA_DIR to a directory) and restart the server.",
            )
        if exc.errno in {errno.EROFS, errno.EACCES, errno.EPERM}:
            return self._unavailable(f"{what}: {exc.strerror or exc}", self._fix_writable())
        return self._unavailable(
            f"{what} ({exc})", f"Look at what is wrong with {self._path.parent}, mend it, and restart the server."
        )

    def _failure(self, exc: sqlite3.Error, *, read_only: bool = False) -> RegistryUnavailable:
        """`exc` as a `RegistryUnavailable` saying what to do about it."""
        name = _errorname(exc)
        if name.startswith("SQLITE_FULL"):
            return self._unavailable(
                "cannot be written: the disk is full",
                f"Free space on the disk of {self._path.parent} (or set GLM_DATA_DIR to a directory on another "
                "disk) and restart the server.",
            )
        if name.startswith("SQLITE_READONLY"):
            return self._unavailable(f"cannot be written ({exc})", self._fix_writable())
        if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
            return self._unavailable(
                f"was locked by another process for more than {BUSY_TIMEOUT_S:.0f} s",
                "Call again; if it lasts, look for a process holding the file (a database browser).",
            )
        if name in _CORRUPT:
            if read_only or self._read_only:
                return self._unavailable(
                    f"is corrupt ({exc}) and read-only, so it cannot be replaced",
                    f"Stop the glm-mcp servers using it, move {self._path} aside (or set GLM_DATA_DIR to a writable "
                    "directory), and start again.",
                )
            self._corrupt = exc  # moved aside once the batch has run, which then runs again on a fresh file
            return self._unavailable(f"is corrupt ({exc})", "Call again: it is moved aside and a fresh one started.")
        if name == "SQLITE_ERROR":  # a statement of ours that does not fit the tables there
            return self._unavailable(
                f"holds tables that are not this glm-mcp's ({exc}): another program's database, or a newer glm-mcp's",
                f"Move {self._path} aside (or set GLM_DATA_DIR to another directory) and restart the server; if a "
                "newer glm-mcp wrote it, upgrade this one instead.",
            )
        return self._unavailable(f"cannot be used ({exc})", self._fix_writable())


_CORRUPT = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})


def _caused(error: RegistryUnavailable, exc: BaseException) -> RegistryUnavailable:
    error.__cause__ = exc
    return error


def _corrupted(error: BaseException | None) -> bool:
    """Whether `error` is a registry failure caused by the file's corruption."""
    cause = error.__cause__ if isinstance(error, RegistryUnavailable) else None
    return isinstance(cause, sqlite3.Error) and _errorname(cause) in _CORRUPT


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest of `path` and its parents that exists and is not a directory."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


_MAGIC = b"SQLite format 3\0"


def _not_a_database(path: Path) -> bool:
    """Whether the file has content that does not start as every SQLite database does."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_MAGIC))
    except FileNotFoundError:
        return False
    return bool(head) and head != _MAGIC


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _errorname(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    # isolation_level=None: every statement commits on its own, so no transaction is ever left open.
    return sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=uri)


def _executor(db: sqlite3.Connection) -> Callable[[str, tuple[object, ...]], Rows]:
    """How steps run on `db` (`records.drive`)."""

    def execute(sql: str, parameters: tuple[object, ...]) -> Rows:
        return db.execute(sql, parameters).fetchall()

    return execute


def _read_as_schema_2(db: sqlite3.Connection, principal: str) -> None:
    """Let a read-only file of schema 1 be read as a current one, through temporary views that shadow its tables
    (SQLite looks a name up in `temp` first): its jobs, whose principal is read from `principal` (they were all
    the server's), and a `meta` with no secret, which such a file never had."""
    db.execute("PRAGMA temp_store = MEMORY")  # the file's directory cannot be written
    db.execute(f"CREATE TEMP VIEW jobs AS SELECT *, {principal} AS principal FROM main.jobs")
    if db.execute("SELECT 1 FROM main.sqlite_master WHERE name = 'meta'").fetchone() is None:
        db.execute("CREATE TEMP VIEW meta (name, value) AS SELECT NULL, NULL WHERE 0")


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to `SCHEMA_VERSION` in one transaction; of processes opening it together, one does."""
    if _version(db) >= SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for another process migrating it at the same time
    try:
        version = _version(db)
        for statement in SQLITE.migration(version):
            db.execute(statement)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode, which it keeps: only its first opener changes anything.

    The change needs the file to itself and fails at once, without the busy timeout, while
    other processes open it too; so it is tried again for as long as a busy write would wait.
    Any other failure (not a database, read-only, disk full) is raised at once.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if not _errorname(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked: could not switch it to WAL mode")
        time.sleep(0.01)
