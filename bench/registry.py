"""Job registry latency: writes (add, save partial, finish) and reads (get, page) through the real stores.

On SQLite (a file in a temporary directory, opened by `SQLiteJobStore` as a server opens it) and on
PostgreSQL (a server started for the run on a loopback port, in a temporary directory, fsync on,
removed afterwards; `PostgresJobStore` with its own pool). Each worker takes its jobs one by one
through a hand-off's life: add, a floor, save partial, get, finish, a floor, page; so the writes,
the reads and their floor are interleaved call by call and a noisy moment falls on all of them.

The floor is the same engine's bare round trip by the same way in: on SQLite `SELECT 1` through
`SQLiteJobStore.run` (the same worker-thread hop, lock and error mapping as every statement); on
PostgreSQL `SELECT 1` through the same pool (`PostgresJobStore.check`: a connection borrowed and
checked, the schema check, `SELECT 1`). What a figure adds to its floor is then the statements
themselves (and, on PostgreSQL, the lease renewed in `add`'s transaction and the NOTIFY trigger).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio

from bench.figures import Figure, percentile
from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.principal import SERVER
from glm_mcp.jobs.sqlite import SQLiteJobStore
from glm_mcp.jobs.store import JobRecord, JobStore

RETENTION_DAYS = 7.0
LEASE_S = 2.0
"""A short lease, so the store sweeps lapsed leases (as a replica long up does, on every page) within seconds."""
PAGE = 20
WRITES = ("add", "save_partial", "finish")
READS = ("get", "page")
COMMAND = "python -m bench --only registry"


@dataclass
class Ops:
    """The latencies of one phase, by operation; failures by cause; this process's CPU over it."""

    times: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in (*WRITES, *READS, "floor")})
    errors: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def of(self, ops: tuple[str, ...]) -> list[float]:
        return [t for op in ops for t in self.times[op]]

    def count(self) -> int:
        return sum(len(t) for t in self.times.values()) + sum(self.errors.values())


class Floor(Protocol):
    def __call__(self) -> Awaitable[object]: ...


async def _timed(ops: Ops, name: str, call: Awaitable[object]) -> None:
    start = time.perf_counter()
    try:
        await call
    except RegistryUnavailable as exc:
        ops.errors[f"{name}: {exc.reason[:60]}"] += 1
    else:
        ops.times[name].append(time.perf_counter() - start)


async def exercise(store: JobStore, floor: Floor, prefix: str, jobs: int, workers: int) -> Ops:
    """`jobs` hand-offs through `store` by `workers` concurrent workers, each op timed, the floor between."""
    ops = Ops()
    remaining = iter(range(jobs))
    text = "Some of the answer so far. " * 20

    async def worker() -> None:
        for i in remaining:
            job_id = f"{prefix}-{i}"
            record = JobRecord(job_id, "chat", "glm-4.5", f"Bench job {i}", time.time(), partial_text="")
            await _timed(ops, "add", store.add(record, runs_here=True))
            await _timed(ops, "floor", floor())
            await _timed(ops, "save_partial", store.save_partial(job_id, text))
            await _timed(ops, "get", store.get(job_id, principal=SERVER))
            await _timed(ops, "finish", store.finish(job_id, "completed", result='{"text": "done"}', partial_text=None))
            await _timed(ops, "floor", floor())
            await _timed(ops, "page", store.page(principal=SERVER, status=None, limit=PAGE, after=None))

    cpu, start = time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)
    ops.wall_s, ops.cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return ops


@contextlib.asynccontextmanager
async def sqlite_store() -> AsyncIterator[tuple[JobStore, Floor, str]]:
    with tempfile.TemporaryDirectory(prefix="glm-mcp-bench-registry-") as directory:
        path = Path(directory) / "jobs.sqlite3"
        store = SQLiteJobStore(path, retention_days=RETENTION_DAYS)

        async def floor() -> object:
            return await store.run(lambda db: db.execute("SELECT 1").fetchone())

        try:
            await floor()  # the file is opened (and migrated) at the first statement: not part of the figures
            where = f"SQLiteJobStore({path}) on {_filesystem(path)}"
            yield store, floor, where
        finally:
            await store.aclose()


@contextlib.asynccontextmanager
async def postgres_store(url: str, shown: str) -> AsyncIterator[tuple[JobStore, Floor, str]]:
    from glm_mcp.jobs.postgres import ACQUIRE_TIMEOUT_S, PostgresJobStore

    async with PostgresJobStore(url, retention_days=RETENTION_DAYS, lease_seconds=LEASE_S) as store:
        await store.check()  # the pool's first connection and the schema's migration: not part of the figures
        await anyio.sleep(2 * LEASE_S + ACQUIRE_TIMEOUT_S + 0.5)  # past the settling time: every page sweeps
        yield store, store.check, f"PostgresJobStore({shown}, lease {LEASE_S:g} s)"


def postgres_missing() -> str | None:
    """Why the PostgreSQL part cannot run here, or None."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not installed ({exc}): pip install glm-mcp-server[postgres]"
    from rigs.postgres_server import available

    return available()


async def registry(jobs: int, concurrent_jobs: int, concurrency: int) -> tuple[list[Figure], list[str]]:
    """The figures on SQLite, then on PostgreSQL (skipped, and said, when it cannot run here)."""
    figures: list[Figure] = []
    notes: list[str] = []
    async with sqlite_store() as (store, floor, where):
        figures += await _engine("sqlite", store, floor, where, jobs, concurrent_jobs, concurrency)
    why_not = postgres_missing()
    if why_not is not None:
        print(f"  registry postgresql: skipped: {why_not}", flush=True)
        notes.append(f"Registry on PostgreSQL: skipped: {why_not}.")
        return figures, notes
    from rigs.postgres_server import postgres_server

    with postgres_server(fsync=True) as server:
        shown = f"postgresql://127.0.0.1:{server.port} (throwaway server, fsync on)"
        async with postgres_store(server.url, shown) as (store, floor, where):
            figures += await _engine("postgresql", store, floor, where, jobs, concurrent_jobs, concurrency)
    notes.append(
        f"Registry: {jobs} jobs one at a time, then {concurrent_jobs} by {concurrency} concurrent workers, through "
        f"the real stores; each job added, saved, read, finished, paged ({PAGE} a page); the floor, the engine's "
        "SELECT 1 by the same way in, twice per job between them. PostgreSQL with fsync on; SQLite in WAL mode, "
        "synchronous NORMAL, as the store opens it."
    )
    return figures, notes


async def _engine(
    engine: str, store: JobStore, floor: Floor, where: str, jobs: int, concurrent_jobs: int, concurrency: int
) -> list[Figure]:
    floor_command = (
        "SELECT 1 through SQLiteJobStore.run (the same worker-thread hop and lock)"
        if engine == "sqlite"
        else "SELECT 1 through PostgresJobStore.check (the same pool)"
    )
    figures: list[Figure] = []
    for label, count, workers in (("sequential", jobs, 1), (f"{concurrency} concurrent", concurrent_jobs, concurrency)):
        ops = await exercise(store, floor, f"{engine}-{workers}", count, workers)
        print(f"  registry {engine} {label}: {_summary(ops)}", flush=True)
        command = f"{count} jobs by {workers} worker(s) through {where} ({COMMAND})"
        for kind, names in (("write", WRITES), ("read", READS)):
            values = ops.of(names)
            for q, tag in ((0.5, "p50"), (0.99, "p99")):
                figures.append(
                    Figure(
                        f"registry {engine} {kind} {tag} ({label})",
                        _ms(values, q),
                        _ms(ops.times["floor"], q),
                        "ms",
                        f"{'/'.join(names)}: {command}",
                        floor_command + " (interleaved with them)",
                        detail=", ".join(f"{name} {tag} {_ms(ops.times[name], q):.3f} ms" for name in names)
                        + f"; {_summary(ops)}",
                    )
                )
    return figures


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000 if values else float("nan")


def _summary(ops: Ops) -> str:
    errors = sum(ops.errors.values())
    causes = f" ({', '.join(f'{c} {n}' for c, n in ops.errors.most_common())})" if errors else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    count = max(1, ops.count())
    return (
        f"{ops.count()} operations in {ops.wall_s:.2f} s, this process's cpu {ops.cpu_s * 1000 / count:.3f} "
        f"ms/operation, {errors} errors{causes}; load average {load}"
    )


def _filesystem(path: Path) -> str:
    """The type of the file system holding `path` (from /proc/mounts): fsync costs what it is."""
    best, kind = "", "an unknown file system"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) > 2 and str(path).startswith(parts[1].rstrip("/") + "/") and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


__all__ = ["postgres_missing", "registry"]
