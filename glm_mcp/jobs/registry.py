"""Where running and handed-off jobs live while the server runs, and how handed-off ones are recorded.

A job whose call got the whole answer is never written anywhere. A job handed off past its
deadline is added to the `JobStore` before its id is returned, its answer so far is saved while
it runs, and its result once it ends, so that neither a restart nor another server process loses it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel

from glm_mcp.glm import GLMClient
from glm_mcp.glm.types import ChatRequest
from glm_mcp.jobs.job import Job
from glm_mcp.jobs.store import ChatKind, JobRecord, JobState, JobStore

MAX_KEPT_JOBS = 1000
"""Finished handed-off jobs kept in memory for `get_result`; the oldest are forgotten first (the store keeps them)."""
SAVE_EVERY_S = 1.0
"""How often a handed-off job's answer so far is saved: what a crash can lose."""

Outcome = Callable[[Job], Awaitable[BaseModel]]
"""What `get_result` answers for a job that has ended; it is stored as JSON."""


class JobRegistry:
    """Starts jobs in the server's task group, so a job can outlive the call that started it."""

    def __init__(self, glm: GLMClient, task_group: TaskGroup, store: JobStore) -> None:
        self._glm = glm
        self._task_group = task_group
        self._store = store
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def start(self, kind: ChatKind, request: ChatRequest, glm: GLMClient | None = None) -> Job:
        job = Job(kind=kind, request=request)
        self._jobs[job.id] = job
        self._task_group.start_soon(job.run, glm or self._glm, name=f"glm-mcp {kind} {job.id}")
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def release(self, job: Job) -> None:
        """Forget a job nobody will ask about again (its call got the whole answer)."""
        self._jobs.pop(job.id, None)

    async def hand_off(self, job: Job, outcome: Outcome) -> None:
        """Keep a job for `get_result`: its call returns before the job finishes.

        The job is in the store when this returns (a client may restart the moment it has the id);
        from then on its progress and finally `outcome(job)` are saved in the background.
        """
        job.handed_off = True
        record = JobRecord.of_request(
            job.id, job.kind, job.request, model=job.model, created_at=job.created_at, partial_text=job.answer_so_far
        )
        await self._store.add(record, runs_here=True)
        self._task_group.start_soon(self._record, job, outcome, name=f"glm-mcp record {job.id}")
        while len(self._jobs) > MAX_KEPT_JOBS:
            oldest = next((j for j in self._jobs.values() if j.done), None)
            if oldest is None:
                break
            self._jobs.pop(oldest.id)

    async def interrupt_running(self) -> None:
        """Record the handed-off jobs still running as interrupted, with their answer so far: the server stops."""
        for job in list(self._jobs.values()):
            if job.handed_off and not job.done:
                await self._store.finish(job.id, "interrupted", result=None, partial_text=job.answer_so_far)

    async def _record(self, job: Job, outcome: Outcome) -> None:
        """Save the answer so far while the job runs (when it grew), then how it ended."""
        saved = job.accumulator.content_chars
        while not job.done:
            with anyio.move_on_after(SAVE_EVERY_S):
                await job.wait()
            if not job.done and job.accumulator.content_chars != saved:
                saved = job.accumulator.content_chars
                await self._store.save_partial(job.id, job.answer_so_far)
        result = (await outcome(job)).model_dump_json()
        status: JobState = "completed" if job.status == "completed" else "failed"
        await self._store.finish(job.id, status, result=result, partial_text=None)

    def __len__(self) -> int:
        return len(self._jobs)
