"""Platform batches that outlive the call that started them: each followed by one server process until it ends.

A batch job (`JobKind` "batch") is recorded once the platform has accepted the batch, owned by the process that
follows it (`BatchFollowers.add`). That process polls the batch at a growing interval, saves its progress (a
`BatchProgress`, the running job's partial text) when it changes, and once the batch has ended reads its output
and error files, finishes the job with its `BatchOutcome` (the job's result), records the tokens at the batch
price (usage model `<model>@batch`, `glm.models.BATCH_PRICED`), and deletes those files from the platform (an
account keeps at most 1,000). A job's end is written before its cost, so a crash between the two undercounts,
and never counts twice.

When the following process is gone (stopped, killed, a replica whose lease lapsed) the job is not interrupted,
as a chat that process generated would be: another process takes it over (`JobStore.adopt`, one winner) and
follows it on. Batches made with the server's key are taken over at start and every RESUME_EVERY_S
(`BatchFollowers.run`); one made with a caller's own key only when that caller asks for it (`follow`, from
get_result or a cancel), since no other key can read it.

Nothing here knows of MCP: the batch tool (`glm_mcp/tools/batch.py`) starts batches and get_result presents them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.glm import GLMClient, GLMError
from glm_mcp.glm.errors import GLMAnswerCutError
from glm_mcp.jobs.principal import Principal
from glm_mcp.jobs.store import JobRecord, JobState, JobStore, RegistryProblem
from glm_mcp.jobs.usage import UsageRecord, UsageStore

if TYPE_CHECKING:  # the wire types are imported where a batch is read: not at start
    from glm_mcp.glm.types import Batch, BatchLine

__all__ = [
    "BATCH_KIND",
    "BatchFollowers",
    "BatchItem",
    "BatchOutcome",
    "BatchProgress",
    "ItemOutcome",
    "batch_outcome",
    "batch_progress",
    "outcome_of",
]

logger = logging.getLogger(__name__)

BATCH_KIND: Literal["batch"] = "batch"
FIRST_POLL_S = 1.0
POLL_GROWTH = 1.5
MAX_POLL_S = 30.0
"""A batch is polled 1 s after it is followed, then ever less often, at least every 30 s: the platform takes
minutes to hours, and a batch that has ended is seen within 30 s."""
RESUME_EVERY_S = 15.0
"""How often a process looks for batches of the server's key whose follower is gone."""
RESUME_FIRST_S = 2.0
"""When it first looks: after the start-up a client waits for (the registry is opened then, off the event loop)."""
GIVE_UP_S = 8 * 86_400.0
"""A batch the platform still cannot be asked about this long after it started is given up: the platform cancels
a batch not done in 7 days, and keeps its files 30 days."""
FINISH_RETRY_S = 600.0
ERROR_CHARS = 300


class BatchItem(BaseModel):
    """One request of a batch: its `custom_id` in the input file, and what it was (a prompt's start, a file)."""

    model_config = ConfigDict(defer_build=True)

    custom_id: str
    label: str


class BatchProgress(BaseModel):
    """A running batch job as the registry keeps it (its partial text)."""

    model_config = ConfigDict(defer_build=True)

    batch_id: str
    model: str
    items: list[BatchItem]
    server_key: bool = True
    """Made with the server's key: any process of this server may follow it (a caller's key is never kept)."""
    status: str = "validating"
    """The platform's status, as last seen."""
    completed: int = 0
    failed: int = 0
    notice: str | None = None
    """Why the last look at the batch failed, while it keeps failing."""


class ItemOutcome(BaseModel):
    """What became of one request of a batch."""

    model_config = ConfigDict(defer_build=True)

    custom_id: str
    label: str
    status: Literal["answered", "failed", "not_run"]
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None


class BatchOutcome(BaseModel):
    """An ended batch job as the registry keeps it (its result): every item, and what it cost."""

    model_config = ConfigDict(defer_build=True)

    batch_id: str
    model: str
    status: str
    """The platform's final status: completed, failed, expired or cancelled."""
    items: list[ItemOutcome]
    problems: list[str] = Field(default_factory=list)
    """What the platform found wrong with the input file (the batch then failed)."""
    answered: int = 0
    """Requests the platform answered, which it bills (those with a completion, cut ones included)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    notice: str | None = None


def batch_progress(record: JobRecord) -> BatchProgress | None:
    """The progress of a running batch job as recorded; None for another kind of job."""
    if record.kind != BATCH_KIND or not record.partial_text:
        return None
    return BatchProgress.model_validate_json(record.partial_text)


def batch_outcome(record: JobRecord) -> BatchOutcome | None:
    """The outcome of an ended batch job as recorded; None while it runs, or for another kind of job."""
    if record.kind != BATCH_KIND or not record.result:
        return None
    return BatchOutcome.model_validate_json(record.result)


_STATES: dict[str, JobState] = {"completed": "completed", "cancelled": "cancelled"}
_NOT_RUN = {
    "cancelled": "The batch was cancelled before this request ran.",
    "expired": "The batch expired (not done within the platform's window) before this request ran.",
    "failed": "The batch failed before this request ran.",
}


def outcome_of(progress: BatchProgress, batch: Batch, lines: Iterable[BatchLine], notice: str | None) -> BatchOutcome:
    """An ended batch as its items' answers and errors, from its output and error files' lines."""
    from glm_mcp.glm.types import split_answer

    by_id = {line.custom_id: line for line in lines}
    items: list[ItemOutcome] = []
    prompt = completion_tokens = cached = answered = 0
    for item in progress.items:
        line = by_id.get(item.custom_id)
        if line is None:
            reason = _NOT_RUN.get(batch.status, "The batch's files hold no answer for this request.")
            items.append(ItemOutcome(custom_id=item.custom_id, label=item.label, status="not_run", error=reason))
            continue
        completion = line.completion()
        if completion is None:
            code, message = line.failure()
            error = f"{code}: {message}" if code else message
            items.append(
                ItemOutcome(custom_id=item.custom_id, label=item.label, status="failed", error=error[:ERROR_CHARS])
            )
            continue
        answered += 1
        if completion.usage is not None:
            prompt += completion.usage.prompt_tokens
            completion_tokens += completion.usage.completion_tokens
            cached += completion.usage.cached_tokens
        text = split_answer(completion.message.content, completion.message.reasoning_content)[0]
        cut = GLMAnswerCutError.of(completion.finish_reason)
        items.append(
            ItemOutcome(
                custom_id=item.custom_id,
                label=item.label,
                status="failed" if cut is not None else "answered",
                text=text,
                finish_reason=completion.finish_reason,
                error=cut.message if cut is not None else None,
            )
        )
    problems = [
        f"line {p.line}: {p.message}" if p.line is not None else (p.message or "")
        for p in (batch.errors.data if batch.errors is not None else [])
    ]
    return BatchOutcome(
        batch_id=progress.batch_id,
        model=progress.model,
        status=batch.status,
        items=items,
        problems=[problem[:ERROR_CHARS] for problem in problems],
        answered=answered,
        prompt_tokens=prompt,
        completion_tokens=completion_tokens,
        cached_tokens=cached,
        notice=notice,
    )


@dataclass(eq=False)
class _Following:
    """One batch this process follows: its record as last written, and a wake-up for a poll now (a cancel)."""

    record: JobRecord
    progress: BatchProgress
    glm: GLMClient
    recorded: bool = True
    """False: the registry could not take it; only this process knows it (`unrecorded`)."""
    wake: anyio.Event = field(default_factory=anyio.Event)


class BatchFollowers:
    """The batches this process follows, in the server's task group; `glm` is the server's own client."""

    def __init__(self, task_group: TaskGroup, store: JobStore, usage: UsageStore, glm: GLMClient) -> None:
        self._task_group = task_group
        self._store = store
        self._usage = usage
        self._glm = glm
        self._following: dict[str, _Following] = {}

    def is_server_key(self, glm: GLMClient) -> bool:
        """Whether `glm` sends the server's own key (not a caller's)."""
        return glm.credentials is self._glm.credentials

    async def add(self, record: JobRecord, progress: BatchProgress, glm: GLMClient) -> RegistryProblem | None:
        """Record a batch the platform has just accepted, owned by this process, and follow it with `glm` (the
        key it was made with). None once it is in the registry, else why not (it is then followed here all the
        same, and only this process knows it)."""
        record = replace(record, partial_text=progress.model_dump_json())
        problem = None
        try:
            await self._store.add(record, runs_here=True)
        except RegistryUnavailable as exc:
            logger.warning("batch job %s is not recorded: %s %s", record.id, exc, exc.fix)
            problem = RegistryProblem("not_recorded", exc)
        self._start(_Following(record, progress, glm, recorded=problem is None))
        return problem

    def unrecorded(self, job_id: str, principal: Principal) -> JobRecord | None:
        """A batch job of `principal` that the registry could not take, as this process knows it."""
        following = self._following.get(job_id)
        if following is None or following.recorded or following.record.principal != principal:
            return None
        return following.record

    async def follow(self, record: JobRecord, glm: GLMClient) -> bool:
        """Follow a running batch job here if nobody does: taken over from a process that is gone. A batch of the
        server's key is followed with the server's client, whoever asks. True when this process follows it."""
        progress = batch_progress(record)
        if progress is None or record.status != "running":
            return False
        if record.id in self._following:
            return True
        if not await self._store.adopt(record.id):
            return False
        if record.id in self._following:  # adopted meanwhile by another call of this process
            return True
        logger.info("following batch job %s (batch %s), taken over", record.id, progress.batch_id)
        self._start(_Following(record, progress, self._glm if progress.server_key else glm))
        return True

    async def cancel(self, record: JobRecord, glm: GLMClient) -> Batch:
        """Ask the platform to cancel the job's batch; its follower (here, or taken over now) records the end."""
        progress = batch_progress(record)
        if progress is None:
            raise ValueError(f"{record.id} is not a batch job")
        batch = await (self._glm if progress.server_key else glm).cancel_batch(progress.batch_id)
        following = self._following.get(record.id)
        if following is None and await self.follow(record, glm):
            following = self._following.get(record.id)
        if following is not None:
            following.wake.set()
        return batch

    async def resume(self) -> None:
        """Follow the running batches of the server's key whose follower is gone."""
        for record in await self._store.running(BATCH_KIND):
            progress = batch_progress(record)
            if progress is not None and progress.server_key and record.id not in self._following:
                await self.follow(record, self._glm)

    async def run(self) -> None:
        """`resume` RESUME_FIRST_S after the start, then every RESUME_EVERY_S, for as long as the server serves; a
        registry that cannot be read is logged once, until it can again."""
        await anyio.sleep(RESUME_FIRST_S)
        failing = False
        while True:
            try:
                await self.resume()
            except RegistryUnavailable as exc:
                if not failing:
                    logger.warning("batches whose follower is gone cannot be looked for: %s %s", exc, exc.fix)
                failing = True
            else:
                failing = False
            await anyio.sleep(RESUME_EVERY_S)

    # --- following one batch ----------------------------------------------------------------------

    def _start(self, following: _Following) -> None:
        self._following[following.record.id] = following
        self._task_group.start_soon(self._follow, following, name=f"glm-mcp batch {following.record.id}")

    async def _follow(self, following: _Following) -> None:
        try:
            await self._poll_until_ended(following)
        except Exception:  # a bug of ours must end this follower, not the server's task group
            logger.exception("following batch job %s failed", following.record.id)
        finally:
            if following.recorded:
                self._following.pop(following.record.id, None)

    async def _poll_until_ended(self, following: _Following) -> None:
        interval = FIRST_POLL_S
        while True:
            with anyio.move_on_after(interval):
                await following.wake.wait()
            following.wake = anyio.Event()
            interval = min(interval * POLL_GROWTH, MAX_POLL_S)
            progress = following.progress
            try:
                batch = await following.glm.retrieve_batch(progress.batch_id)
                lines = await self._files(following.glm, batch) if batch.state != "running" else []
            except GLMError as exc:
                await self._save(following, _updated(progress, notice=f"The last look at the batch failed: {exc}"))
                if time.time() - following.record.created_at > GIVE_UP_S:
                    await self._end(following, None, [], f"Given up: the platform could not be asked about it ({exc}).")
                    return
                continue
            if batch.state != "running":
                await self._end(following, batch, lines, None)
                return
            counts = batch.request_counts
            await self._save(
                following,
                _updated(
                    progress,
                    status=batch.status,
                    completed=(counts.completed or 0) if counts else 0,
                    failed=(counts.failed or 0) if counts else 0,
                    notice=None,
                ),
            )

    @staticmethod
    async def _files(glm: GLMClient, batch: Batch) -> list[BatchLine]:
        lines: list[BatchLine] = []
        for file_id in (batch.output_file, batch.error_file):
            if file_id is not None:
                lines += await glm.batch_file(file_id)
        return lines

    async def _save(self, following: _Following, progress: BatchProgress) -> None:
        """Keep the batch's progress, in the registry when it changed."""
        if progress == following.progress:
            return
        following.progress = progress
        text = progress.model_dump_json()
        following.record = replace(following.record, partial_text=text, updated_at=time.time())
        if following.recorded:
            try:
                await self._store.save_partial(following.record.id, text)
            except RegistryUnavailable as exc:
                logger.warning(
                    "batch job %s: its progress could not be saved: %s %s", following.record.id, exc, exc.fix
                )

    async def _end(
        self, following: _Following, batch: Batch | None, lines: list[BatchLine], notice: str | None
    ) -> None:
        """Record how the batch ended, then what it cost, then delete its files from the platform."""
        from glm_mcp.glm.models import BATCH_PRICED  # the model table: not imported at start (cold start)
        from glm_mcp.glm.types import Batch

        progress = following.progress
        ended = batch or Batch(id=progress.batch_id, status="failed")
        outcome = outcome_of(progress, ended, lines, notice)
        status: JobState = _STATES.get(ended.status, "failed")
        result = outcome.model_dump_json()
        following.record = replace(following.record, status=status, result=result, partial_text=None)
        if following.recorded and not await self._finish(following.record.id, status, result):
            return  # another process takes it over later, and reads the files again
        if outcome.answered:
            entry = UsageRecord(
                principal=following.record.principal,
                tool=BATCH_KIND,
                model=progress.model + BATCH_PRICED,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                cached_tokens=outcome.cached_tokens,
                calls=outcome.answered,
            )
            try:
                await self._usage.record(entry)
            except RegistryUnavailable as exc:
                logger.warning("the usage of batch job %s is not recorded: %s %s", following.record.id, exc, exc.fix)
        if batch is not None:
            for file_id in (batch.output_file, batch.error_file):
                if file_id is not None:
                    try:
                        await following.glm.delete_file(file_id)
                    except GLMError as exc:
                        logger.info("batch %s: its file %s is left on the platform: %s", batch.id, file_id, exc)

    async def _finish(self, job_id: str, status: JobState, result: str) -> bool:
        """Record the job's end, offered again while the registry is away (a database restarting)."""
        deadline = time.monotonic() + FINISH_RETRY_S
        delay = 1.0
        while True:
            try:
                await self._store.finish(job_id, status, result=result, partial_text=None)
                return True
            except RegistryUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    logger.warning("batch job %s: its end could not be recorded: %s %s", job_id, exc, exc.fix)
                    return False
                await anyio.sleep(delay)
                delay = min(delay * 2, 30.0)


def _updated(progress: BatchProgress, **changes: object) -> BatchProgress:
    return progress.model_copy(update=changes)
