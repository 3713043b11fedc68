"""A process that records jobs in a PostgreSQL registry as fast as it can: several at once test it shared.

    python -m tests.pg_job_writer URL NAME COUNT [hold]

Records COUNT jobs of its own (added, partial text saved, finished) and adds and finishes the
COUNT jobs every writer shares, then prints a JSON line. With `hold`, it then adds one running
job of its own (`job_<NAME>_held`, partial text "held so far"), prints "held" and waits to be killed.
"""

from __future__ import annotations

import json
import sys
import time

import anyio

from glm_mcp.jobs import JobRecord
from glm_mcp.jobs.postgres import PostgresJobStore
from tests.job_writer import write_jobs


async def write(url: str, name: str, count: int, hold: bool) -> None:
    async with PostgresJobStore(url, retention_days=7, lease_seconds=1.5) as store:
        await write_jobs(store, name, count)
        print(json.dumps({"name": name, "done": count}), flush=True)
        if hold:
            held = JobRecord(f"job_{name}_held", "chat", "glm-4.6", "held", time.time(), partial_text="held so far")
            await store.add(held, runs_here=True)
            print("held", flush=True)
            await anyio.sleep_forever()


if __name__ == "__main__":
    url, name, count, *rest = sys.argv[1:]
    anyio.run(write, url, name, int(count), rest == ["hold"])
