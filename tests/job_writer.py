"""A process that records jobs as fast as it can: two of them at once test a shared job registry.

    python -m tests.job_writer DB NAME COUNT START_AT

From unix time START_AT on (the database may not exist yet: the writers create it together),
records COUNT jobs of its own (added, partial text saved, finished) and adds and finishes the
COUNT jobs every writer shares, listing a page now and then. Prints when it started and ended, as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio

from glm_mcp.jobs import SERVER, JobRecord, JobStore, SQLiteJobStore


async def write_jobs(store: JobStore, name: str, count: int) -> None:
    """COUNT jobs of this writer's own (added, partial text saved, finished) and the COUNT every writer shares."""
    for i in range(count):
        own, shared = f"job_{name}_{i}", f"shared_{i}"
        await store.add(JobRecord(own, "chat", "glm-4.6", f"{name} {i}", time.time()), runs_here=True)
        await store.add(JobRecord(shared, "async_task", "glm-4.6", f"shared {i}", time.time()), runs_here=False)
        await store.save_partial(own, f"partial {i}")
        await store.finish(own, "completed", result=json.dumps({"by": name, "n": i}), partial_text=None)
        await store.finish(shared, "completed", result=json.dumps({"by": name, "n": i}), partial_text=None)
        if i % 10 == 0:
            await store.page(principal=SERVER, status="running", limit=50, after=None)


async def write(path: Path, name: str, count: int, start_at: float) -> None:
    store = SQLiteJobStore(path, retention_days=7)
    await anyio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    await write_jobs(store, name, count)
    ended = time.time()
    await store.aclose()
    print(json.dumps({"started": started, "ended": ended}))


if __name__ == "__main__":
    db, name, count, start_at = sys.argv[1:]
    anyio.run(write, Path(db), name, int(count), float(start_at))
