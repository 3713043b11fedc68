"""The chat streams this process runs, in the server's task group, and the jobs they become once handed off.

(The *job registry* is the durable `JobStore`; this is the process's own view of what it runs.)

A stream whose call got the whole answer is never a job: it is kept nowhere and written nowhere.
One handed off past its call's wait becomes a job, added to the `JobStore` before its id is
returned; its answer so far is saved while it runs, and its result once it ends, so that neither a
restart nor another server process loses it. A job the store cannot record is kept here all the
same, and says so: its id is never returned as if it were safe.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.glm import GLMClient
from glm_mcp.jobs.job import ChatStream, Job
from glm_mcp.jobs.principal import SERVER, Principal
from glm_mcp.jobs.store import ChatKind, JobRecord, JobState, JobStore, RegistryProblem

if TYPE_CHECKING:
    from glm_mcp.glm.types import ChatRequest

logger = logging.getLogger(__name__)

MAX_KEPT_JOBS = 1000
"""Finished handed-off jobs kept in memory for `get_result`; the oldest are forgotten first (the store keeps them)."""
MAX_UNRECORDED_TASKS = 10_000
"""Submitted tasks the store could not record, kept in memory for `get_result`; the oldest are forgotten first."""
SAVE_EVERY_S = 1.0
"""How often a handed-off job's answer so far is saved: what a crash can lose."""
SETTLE_TIMEOUT_S = 5.0
"""How long a call that saw a job end waits for what the job's end writes (one registry batch, normally)."""
FINISH_RETRY_S = 600.0
"""How long a job's end that the registry could not take is offered again (a database restarting)."""


class Outcome(Protocol):
    """What the call that handed a job off leaves beside it: how the job is answered for once it ends."""

    async def settle(self, job: Job) -> None:
        """Done once, when the job has ended, before its result is recorded (its answer kept, its cost counted)."""
        ...

    async def result(self, job: Job) -> BaseModel:
        """What `get_result` answers for the job: recorded as JSON once it has ended."""
        ...


@dataclass(frozen=True, slots=True)
class UnrecordedTask:
    """A submitted task the store could not record, kept in this process, and why it is not recorded."""

    record: JobRecord
    problem: RegistryProblem


class JobRunner:
    """Starts streams in the server's task group, so one can outlive the call that started it, and keeps the
    jobs they become."""

    def __init__(self, task_group: TaskGroup, store: JobStore) -> None:
        self._task_group = task_group
        self._store = store
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._outcomes: dict[str, Outcome] = {}
        self._settled: dict[str, anyio.Event] = {}
        """Handed-off jobs whose outcome is still being made (their usage and conversation turn written)."""
        self._unrecorded: OrderedDict[str, UnrecordedTask] = OrderedDict()

    def start(
        self, kind: ChatKind, request: ChatRequest, glm: GLMClient, *, principal: Principal = SERVER
    ) -> ChatStream:
        """Generate `request` with `glm`: the client of the call's own key (the server's or the caller's),
        never one of the runner's, so a stream spends exactly the key its call was made with.

        The stream is not kept here: a call that gets its whole answer leaves nothing behind, and one that
        does not hands it off (`hand_off`). A call that stops waiting otherwise cancels it.
        """
        stream = ChatStream(kind=kind, request=request, accumulator=glm.accumulator(), principal=principal)
        self._task_group.start_soon(stream.run, glm, name=f"glm-mcp {kind}")
        return stream

    def get(self, job_id: str, principal: Principal) -> Job | None:
        """The job, if `principal` started it: another's job is as unknown as one that never was."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.principal == principal else None

    def outcome(self, job: Job) -> Outcome | None:
        """What the call that handed `job` off left beside it (`hand_off`)."""
        return self._outcomes.get(job.id)

    async def record_task(self, record: JobRecord) -> RegistryProblem | None:
        """Add a submitted task to the store; None once it is there, else why not (it is then kept here)."""
        try:
            await self._store.add(record, runs_here=False)
        except RegistryUnavailable as exc:
            logger.warning("task %s is not recorded: %s %s", record.id, exc, exc.fix)
            problem = RegistryProblem("not_recorded", exc)
            self._unrecorded[record.id] = UnrecordedTask(record, problem)
            while len(self._unrecorded) > MAX_UNRECORDED_TASKS:
                self._unrecorded.popitem(last=False)
            return problem
        return None

    def unrecorded_task(self, task_id: str, principal: Principal) -> UnrecordedTask | None:
        """A task of `principal` that the store could not record, while this process runs."""
        task = self._unrecorded.get(task_id)
        return task if task is not None and task.record.principal == principal else None

    async def hand_off(self, stream: ChatStream, outcome: Outcome) -> Job:
        """Make a stream a job kept for `get_result`: its call returns before it finishes.

        The stream goes on as it was, never stopped or restarted: the job is what is added around it. It is in
        the store when this returns, with the answer so far (a client may restart the moment it has the id), or
        `job.not_recorded` says why not; from then on its progress and finally its outcome's result are saved in
        the background. The outcome is kept beside the job for as long as the job is.
        """
        job = Job(stream)
        record = JobRecord.of_request(
            job.id,
            stream.kind,
            stream.request,
            model=stream.model,
            created_at=stream.created_at,
            principal=stream.principal,
            partial_text=stream.answer_so_far,
        )
        try:
            await self._store.add(record, runs_here=True)
        except RegistryUnavailable as exc:
            logger.warning("job %s is not recorded: %s %s", job.id, exc, exc.fix)
            job.not_recorded = RegistryProblem("not_recorded", exc)
        else:
            self._settled[job.id] = anyio.Event()
            self._task_group.start_soon(self._record, job, outcome, name=f"glm-mcp record {job.id}")
        self._jobs[job.id] = job
        self._outcomes[job.id] = outcome
        while len(self._jobs) > MAX_KEPT_JOBS:
            # Jobs only this process knows of are forgotten last: nothing else can answer for them.
            done = [j for j in self._jobs.values() if j.done]
            oldest = next((j for j in done if j.not_recorded is None), done[0] if done else None)
            if oldest is None:
                break
            self._jobs.pop(oldest.id)
            self._outcomes.pop(oldest.id, None)
        return job

    async def settled(self, job: Job, timeout: float = SETTLE_TIMEOUT_S) -> None:
        """Wait (at most `timeout`) until an ended job's outcome is made: what it wrote on the way (its usage, its
        turn's answer) is then readable, so a `usage` or `get_result` right after its end sees it."""
        event = self._settled.get(job.id)
        if event is not None:
            with anyio.move_on_after(timeout):
                await event.wait()

    async def interrupt_running(self) -> None:
        """Record the handed-off jobs still running as interrupted, with their answer so far: the server stops."""
        for job in list(self._jobs.values()):
            if not job.done and job.not_recorded is None:
                try:
                    await self._store.finish(job.id, "interrupted", result=None, partial_text=job.stream.answer_so_far)
                except RegistryUnavailable as exc:
                    logger.warning("job %s could not be recorded as interrupted: %s", job.id, exc)

    async def _record(self, job: Job, outcome: Outcome) -> None:
        """Save the answer so far while the job runs (when it grew), then how it ended.

        A save that fails is logged once per job and said in its result; the job goes on.
        """
        stream = job.stream
        saved = stream.accumulator.content_chars
        while not stream.done:
            with anyio.move_on_after(SAVE_EVERY_S):
                await stream.wait()
            if not stream.done and stream.accumulator.content_chars != saved:
                saved = stream.accumulator.content_chars
                try:
                    await self._store.save_partial(job.id, stream.answer_so_far)
                except RegistryUnavailable as exc:
                    if job.registry_problem is None:
                        logger.warning("job %s: its answer so far could not be saved: %s %s", job.id, exc, exc.fix)
                        job.registry_problem = RegistryProblem("progress_not_saved", exc)
        try:
            await outcome.settle(job)
            result = (await outcome.result(job)).model_dump_json()
        finally:
            self._settled.pop(job.id, anyio.Event()).set()
        status: JobState = stream.status
        deadline = time.monotonic() + FINISH_RETRY_S
        delay = 1.0
        while True:
            try:
                await self._store.finish(job.id, status, result=result, partial_text=None)
            except RegistryUnavailable as exc:
                if job.not_recorded is None:
                    logger.warning("job %s: its result could not be recorded yet: %s %s", job.id, exc, exc.fix)
                    job.not_recorded = RegistryProblem("end_not_recorded", exc)
                if time.monotonic() + delay > deadline:
                    return
                await anyio.sleep(delay)  # a shared database restarting: the end is recorded once it is back
                delay = min(delay * 2, 30.0)
            else:
                if job.not_recorded is not None:
                    logger.info("job %s: its result is recorded after all", job.id)
                    job.not_recorded = None
                return

    def __len__(self) -> int:
        return len(self._jobs)
