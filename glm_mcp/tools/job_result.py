"""A job as a result says it (`TaskResult`, what get_result returns), and what a handed-off chat leaves beside its job.

A job is read from wherever it is: generated in this process (`Job`), recorded in the registry
(`JobRecord`, its stored result or how far it got), or polled from the platform. Each gives a whole
`TaskResult`, which is what the registry keeps; `TaskResult.read` makes of it what a reader asked for
(a page of the answer, the reasoning whole or cut, the call that waits again).

A chat handed off past its wait leaves a `ChatOutcome` beside its job (`JobRunner.hand_off`): what its
result says of the files and the conversation, kept up to date when the job ends and its answer is kept.
The job itself carries nothing of how a result presents it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mcp.types import ContentBlock
from pydantic import Field, model_validator

from glm_mcp.errors import Advice, JobCancelledError
from glm_mcp.glm.errors import GLMAnswerCutError
from glm_mcp.glm.types import AsyncTaskResult, split_answer
from glm_mcp.jobs import Job, JobKind, JobRecord, JobState
from glm_mcp.jobs.batches import batch_outcome, batch_progress
from glm_mcp.server.failures import ToolFailure
from glm_mcp.server.media import MediaLink
from glm_mcp.server.registration import TaskState
from glm_mcp.server.result import paragraphs, partial_answer
from glm_mcp.server.state import AppState
from glm_mcp.tools.accounting import record_stream
from glm_mcp.tools.answer import (
    RESULT_TYPES,
    Answer,
    ChatResult,
    ConversationNote,
    RegistryNote,
    RegistryNotes,
    SentFile,
    WebSearchResult,
    next_call,
    page_of,
)
from glm_mcp.tools.batch_result import BatchReport
from glm_mcp.tools.media_files import ImageFile, VideoFile, file_links, media_of, offer_files
from glm_mcp.tools.workspace import keep_answer

__all__ = ["ChatOutcome", "TaskResult", "job_outcome", "job_result", "task_ended"]


class TaskResult(RegistryNotes):
    """The state of a job, and its answer once it has one."""

    FIRST: ClassVar[tuple[str, ...]] = (
        "status",
        "next",
        "result",
        "batch",
        "videos",
        "images",
        "error",
        "partial_text",
    )

    task_id: str
    kind: JobKind = Field(
        description="async_task: started by submit_async. chat / web_search_chat: a call that outlived its wait. "
        "image_task / video_task: generate_image / generate_video. batch: the batch tool."
    )
    status: JobState = Field(
        description="running (ask again), completed (`result` has the answer), failed (`error` says why), cancelled, "
        "or interrupted (the server generating it stopped first; `partial_text` has what had arrived)."
    )
    model: str = ""
    request_id: str | None = None
    result: WebSearchResult | ChatResult | None = Field(
        None, description="The answer, once completed: the same fields chat (or web_search_chat) returns."
    )
    partial_text: str | None = Field(
        None, description="A chat job's answer so far: while it runs, or when it failed or was interrupted."
    )
    error: ToolFailure | None = Field(None, description="Why the job failed or was interrupted, when known.")
    next: str | None = Field(None, description="While it runs: the exact call to wait for it again.")
    images: list[ImageFile] = Field(default_factory=list, description="An image task's images, once completed.")
    videos: list[VideoFile] = Field(default_factory=list, description="A video task's video, once completed.")
    batch: BatchReport | None = Field(
        None, description="A batch: its progress, then each item's answer or error (paged by `offset`)."
    )
    content: list[Any] = Field(default_factory=list, exclude=True)
    """The MCP content blocks sent beside the text (the links of its images and videos), as the request allows."""

    def extra_content(self) -> list[ContentBlock]:
        return list(self.content)

    async def with_media(self, app: AppState) -> TaskResult:
        """This result with its images and videos offered to the caller as resources (`media_files.offer_files`)."""
        if not (self.images or self.videos):
            return self
        images, videos = await offer_files(app, self.images, self.videos, self.model)
        return self.model_copy(update={"images": images, "videos": videos})

    def media_links(self) -> list[MediaLink]:
        """The links of its images and videos offered as resources."""
        return file_links(self.images, self.videos, self.model)

    @model_validator(mode="before")
    @classmethod
    def _answer_of_its_kind(cls, data: Any) -> Any:
        """A stored result read back as the answer of its job's kind: the union alone would read any chat's answer
        as a web search's (no sources, and its text copy without the function calls asked for)."""
        if isinstance(data, dict) and isinstance(data.get("result"), dict):
            result_type = WebSearchResult if data.get("kind") == "web_search_chat" else ChatResult
            return {**data, "result": result_type.model_validate(data["result"])}
        return data

    @classmethod
    def from_poll(
        cls, task_id: str, poll: AsyncTaskResult, *, kind: JobKind | None = None, registry: RegistryNote | None = None
    ) -> TaskResult:
        """A platform task as polled (`kind`: as the registry recorded it, when it did); one the platform stopped
        (finish_reason sensitive or network_error) has failed, with what it wrote, as a streamed answer stopped
        the same way does."""
        registry = registry or RegistryNote()
        cut = GLMAnswerCutError.of(poll.finish_reason) if poll.state == "completed" else None
        if cut is not None:
            return cls(
                task_id=task_id,
                kind=kind or "async_task",
                status="failed",
                model=poll.model,
                request_id=poll.request_id,
                partial_text=split_answer(poll.message.content, None)[0] or None,
                error=ToolFailure(
                    error=cut.error_kind, message=cut.message, hint=cut.advice(Advice()), retryable=cut.retryable
                ),
                not_recorded=registry.not_recorded,
                registry_notice=registry.notice,
            )
        images, videos = media_of(poll) if poll.state == "completed" else ([], [])
        if images or videos:  # an image or video task: its files are its answer
            return cls(
                task_id=task_id,
                kind=kind or ("video_task" if videos else "image_task"),
                status="completed",
                model=poll.model,
                request_id=poll.request_id,
                images=images,
                videos=videos,
                not_recorded=registry.not_recorded,
                registry_notice=registry.notice,
            )
        completed = poll.state == "completed"
        return cls(
            task_id=task_id,
            kind=kind or "async_task",
            status=poll.state,
            model=poll.model,
            request_id=poll.request_id,
            result=ChatResult.compose(Answer.of_completion(poll, model=poll.model)) if completed else None,
            not_recorded=registry.not_recorded,
            registry_notice=registry.notice,
        )

    @classmethod
    def of_job(
        cls,
        job: Job,
        error: ToolFailure | None,
        *,
        files: Sequence[SentFile] = (),
        conversation: ConversationNote | None = None,
    ) -> TaskResult:
        """A job this process generates, with what its call said of its files and conversation; what went wrong
        recording it is said too."""
        registry = RegistryNote.of_job(job)
        stream = job.stream
        status = stream.status
        partial = stream.answer_so_far or None
        result = None
        if stream.completion is not None:
            answer = Answer.of_completion(stream.completion, stream.attempts.count, model=stream.model)
            result = RESULT_TYPES[job.kind].compose(answer, files=files, conversation=conversation)
        return cls(
            task_id=job.id,
            kind=job.kind,
            status=status,
            model=stream.model,
            request_id=stream.request.request_id,
            result=result,
            partial_text=partial if status != "completed" else None,
            error=error,
            not_recorded=registry.not_recorded,
            registry_notice=registry.notice,
        )

    @classmethod
    def from_record(cls, record: JobRecord) -> TaskResult:
        """A chat job known from the job registry: its stored result, or how far it got. A batch job: its progress,
        or its whole outcome."""
        if record.kind == "batch":
            return cls.of_batch(record)
        if record.result is not None:
            return cls.model_validate_json(record.result)
        interrupted = record.status == "interrupted"
        return cls(
            task_id=record.id,
            kind=record.kind,
            status=record.status,
            model=record.model,
            request_id=record.request_id,
            partial_text=record.partial_text or None,
            error=ToolFailure(
                error="interrupted",
                message="The server process generating this answer stopped (a restart or a crash) before it ended.",
                hint="partial_text has what had arrived; call chat again for the whole answer.",
                retryable=True,
            )
            if interrupted
            else None,
        )

    @classmethod
    def of_batch(cls, record: JobRecord) -> TaskResult:
        """A batch job as the registry keeps it: its progress while the platform runs it, then every item."""
        outcome = batch_outcome(record)
        progress = batch_progress(record)
        report = BatchReport.ended(outcome) if outcome is not None else None
        if report is None and progress is not None:
            report = BatchReport.running(progress)
        return cls(
            task_id=record.id,
            kind=record.kind,
            status=record.status,
            model=record.model,
            request_id=record.request_id,
            batch=report,
        )

    def read(
        self,
        *,
        full_reasoning: bool,
        wait_seconds: float,
        offset: int = 0,
        limit: int | None = None,
        notice: str | None = None,
    ) -> TaskResult:
        """This (whole) result as a reader asked for it: its answer from `offset`, at most `limit` characters (the
        rest is read again under the job's id), the reasoning whole or its beginning, the call that waits again
        while it runs, and `notice` from the registry when there is one."""
        result = None
        if self.result is not None:
            page = page_of(self.result.text, offset, limit, self.task_id) if limit is not None else None
            result = self.result.read(page, full_reasoning=full_reasoning)
        return TaskResult(
            task_id=self.task_id,
            kind=self.kind,
            status=self.status,
            model=self.model,
            request_id=self.request_id,
            result=result,
            partial_text=self.partial_text,
            error=self.error,
            next=next_call(self.task_id, wait_seconds, "again") if self.status == "running" else self.next,
            images=self.images,
            videos=self.videos,
            batch=self.batch.page(offset, limit) if self.batch is not None else None,
            not_recorded=self.not_recorded,
            registry_notice=notice or self.registry_notice,
        )

    def handed_off(self) -> str | None:
        chat_job = self.kind in RESULT_TYPES
        return self.task_id if self.status == "running" and chat_job and not self.not_recorded else None

    def to_text(self) -> str:
        if self.result is not None:
            return paragraphs(self.result.to_text(), self.registry_text())
        if self.batch is not None:
            running = f"Job {self.task_id} is running. {self.next or ''}".strip() if self.status == "running" else ""
            return paragraphs(self.batch.to_text(), running, self.registry_text())
        if self.images or self.videos:
            files = [f"- image {i.url} (expires {i.expires_at})" for i in self.images]
            files += [f"- video {v.url} (cover {v.cover_url}, expires {v.expires_at})" for v in self.videos]
            return paragraphs(f"Task {self.task_id} completed (model {self.model}):\n" + "\n".join(files))
        if self.status in ("failed", "cancelled", "interrupted"):
            reason = self.error.to_text() if self.error else "submit it again if needed."
            return paragraphs(
                f"Task {self.task_id} {self.status} (model {self.model}).",
                reason,
                self.registry_text(),
                partial_answer(self.partial_text),
            )
        return paragraphs(
            f"Task {self.task_id} is still running. {self.next or ''}".strip(),
            self.registry_text(),
            partial_answer(self.partial_text),
        )


@dataclass(slots=True)
class ChatOutcome:
    """What a chat handed off past its wait leaves beside its job (a `jobs.Outcome`): what its result says of the
    files sent and of its conversation, brought up to date once the job's answer is kept."""

    app: AppState
    files: tuple[SentFile, ...]
    conversation: ConversationNote

    async def settle(self, job: Job) -> None:
        """Once the job has ended: its answer kept in its conversation, and its cost counted."""
        completion = job.stream.completion
        if completion is not None:
            message = completion.message
            answer = split_answer(message.content, message.reasoning_content)[0]
            self.conversation = await keep_answer(self.app, self.conversation, answer)
        await record_stream(self.app, job.stream)

    async def result(self, job: Job) -> TaskResult:
        return await job_result(self.app, job, self)


async def job_result(app: AppState, job: Job, handed: ChatOutcome | None = None) -> TaskResult:
    """A job this process generates, whole, as the registry keeps it; `handed` is what its call left beside it
    (by default, what the runner keeps)."""
    if handed is None:
        kept = app.jobs.outcome(job)
        handed = kept if isinstance(kept, ChatOutcome) else None
    cause = job.stream.error
    if cause is None and job.stream.status == "cancelled":  # said as such, so that a task reads as cancelled
        cause = JobCancelledError("the generation was stopped before it ended (tasks/cancel)")
    error = await app.describe_failure(cause) if cause is not None else None
    if handed is None:
        return TaskResult.of_job(job, error)
    return TaskResult.of_job(job, error, files=handed.files, conversation=handed.conversation)


async def job_outcome(app: AppState, job: Job | JobRecord) -> TaskResult:
    """A chat job that has ended, whole: as this process has it (`Job`), or as the registry does (its record)."""
    return await job_result(app, job) if isinstance(job, Job) else TaskResult.from_record(job)


def task_ended(outcome: TaskResult) -> TaskState | None:
    """The task of a job that did not end with a result of its own: still working (a stored result never says
    so; kept safe all the same), or cancelled; None for one that did."""
    if outcome.status == "running":
        return TaskState("working", "generating")
    if outcome.error is not None and outcome.error.error == "cancelled":
        return TaskState("cancelled", outcome.error.message)
    return None
