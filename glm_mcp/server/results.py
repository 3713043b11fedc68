"""What the tools return: result models (their schemas become each tool's `outputSchema`) and
the short text copy that clients which ignore `structuredContent` show to the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, Field

from glm_mcp.errors import Advice, ErrorKind
from glm_mcp.glm.errors import GLMAnswerCutError
from glm_mcp.glm.types import AsyncTask, AsyncTaskResult, ChatCompletion, WebSearchItem, split_answer
from glm_mcp.jobs import Job, JobKind, JobRecord, JobState
from glm_mcp.server.answers import ConversationNotes, Paged, SentFiles
from glm_mcp.tools.functions import FunctionCallRequest, feed_back
from glm_mcp.tools.media_files import ImageFile, VideoFile, media_of

REASONING_PREVIEW_CHARS = 300
"""How much of the model's reasoning a result shows unless the call asks for all of it (`include_reasoning`)."""


class Result(BaseModel):
    """A tool's result, as a language model reads it.

    Claude Code hands its model only `structuredContent`, so that is written for the model: no null,
    empty or default-valued fields (the output schema leaves them optional), and the keys in a useful
    order, what to read or do first (`FIRST`) ahead of the rest.
    """

    FIRST: ClassVar[tuple[str, ...]] = ()

    def structured(self) -> dict[str, Any]:
        """The `structuredContent` of this result."""
        dumped = _pruned(self.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
        first = {key: dumped.pop(key) for key in self.FIRST if key in dumped}
        return {**first, **dumped}

    def to_text(self) -> str:  # pragma: no cover - each result says itself
        raise NotImplementedError


class TokenUsage(BaseModel):
    prompt_tokens: int = Field(description="Tokens read, including cached ones.")
    completion_tokens: int = Field(description="Tokens written, including reasoning.")
    cached_tokens: int = Field(0, description="Prompt tokens served from the platform's cache (cheaper).")


class RegistryNotes(Result):
    """What a result says about the job registry when something there went wrong: never kept quiet."""

    not_recorded: str | None = Field(
        None,
        description="Present when this job is not in the job registry: why, and what to fix. Keep its id: "
        "list_jobs does not show it, and only this server process can answer get_result for it, until it stops.",
    )
    registry_notice: str | None = Field(
        None, description="Something that happened to the job registry, for example a corrupt file moved aside."
    )

    def _registry_text(self) -> str:
        return _join(
            f"NOTE: {self.not_recorded}" if self.not_recorded else "",
            f"NOTE: {self.registry_notice}" if self.registry_notice else "",
        )


class ChatResult(RegistryNotes, ConversationNotes, Paged):
    """An answer from a GLM model, or the start of one that is still being generated."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "job_id", "text")

    status: Literal["completed", "running"] = Field(
        "completed",
        description="Absent when the whole answer is here. running: the wait ran out first; `text` is the answer "
        "so far and the generation goes on: `next` says how to get the rest.",
    )
    next: str | None = Field(
        None, description="With status running: the exact call that gets the rest; with tool_calls: how to answer them."
    )
    job_id: str | None = Field(None, description="With status running: pass it to get_result as task_id.")
    text: str = Field("", description="The answer (so far, when status is running).")
    tool_calls: list[FunctionCallRequest] | None = Field(None, description="Function calls the model asked for.")
    reasoning: str | None = Field(
        None,
        description="The model's reasoning, when thinking was on: its beginning, ending in …, unless the call "
        "set include_reasoning.",
    )
    reasoning_tokens: int | None = Field(
        None, description="How long the reasoning is, in tokens (part of usage.completion_tokens)."
    )
    model: str = Field("", description="The model that answered.")
    finish_reason: str | None = Field(
        None,
        description="Why generation stopped, when not simply at the end: length (max_tokens reached), tool_calls, "
        "model_context_window_exceeded.",
    )
    usage: TokenUsage | None = None
    request_id: str | None = Field(None, description="The platform's request id, for support and tracing.")
    attempts: int = Field(1, description="Requests sent to the platform for this answer, when more than one.")

    @classmethod
    def from_completion(cls, completion: ChatCompletion, attempts: int = 1, *, model: str = "") -> Self:
        """The result for a whole completion; `model` names the model when the platform did not."""
        return cls(**_answer_fields(completion, model), attempts=attempts)

    @classmethod
    def running(cls, job: Job, *, wait_seconds: float, registry_notice: str | None = None) -> Self:
        """The partial answer of a job that outlived the call's wait, with the call that gets the rest."""
        fields = _answer_fields(job.accumulator.completion(), job.model)
        # Before the first chunk the stream has named no model yet: the request's model is the one answering.
        fields.update(status="running", job_id=job.id, model=job.model, finish_reason=None, usage=None)
        fields.update(next=next_call(job.id, wait_seconds, "for the rest of the answer"))
        fields.update(cls._running_extras())
        fields.update(attempts=job.attempts.count, not_recorded=job.not_recorded, registry_notice=registry_notice)
        return cls(**fields)

    @classmethod
    def _running_extras(cls) -> dict[str, object]:
        return {}

    def shaped(self, *, full_reasoning: bool) -> Self:
        """This result as the call asked for it: the reasoning whole, or its beginning (its length is said)."""
        if full_reasoning or self.reasoning is None or len(self.reasoning) <= REASONING_PREVIEW_CHARS:
            return self
        return self.model_copy(update={"reasoning": self.reasoning[:REASONING_PREVIEW_CHARS].rstrip() + "…"})

    def to_text(self) -> str:
        if self.status == "running":
            return _join(
                f"Still generating when this call's wait ran out; the answer goes on in the background. {self.next}",
                self._registry_text(),
                self._files_text(),
                self._conversation_text(),
                "Answer so far:\n" + self.text if self.text else "",
            )
        return _join(
            self.text, self._page_text(), _tool_calls_text(self.tool_calls, self.next), self._workspace_footer()
        )

    def _workspace_footer(self) -> str:
        return _join(self._files_text(), self._conversation_text(), self._footer())

    def _footer(self) -> str:
        parts = [f"model {self.model}"]
        if self.finish_reason:
            parts.append(f"finish_reason {self.finish_reason}")
        if self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        if self.usage:
            cached = f", {self.usage.cached_tokens} cached" if self.usage.cached_tokens else ""
            parts.append(f"tokens {self.usage.prompt_tokens} in{cached} / {self.usage.completion_tokens} out")
        if self.reasoning_tokens:
            parts.append(f"reasoning {self.reasoning_tokens} tokens in structured output")
        return "[" + " · ".join(parts) + "]"


def next_call(task_id: str, wait_seconds: float, what: str) -> str:
    """The one sentence a result gives for what to do next: the exact call, and how long it will wait."""
    return (
        f'Call get_result with task_id="{task_id}" {what}; it waits up to {wait_seconds:g} s for the job to end '
        "and can be called again."
    )


class Source(BaseModel):
    """One web page the answer drew on; the answer cites it as `[ref]`."""

    ref: str | None = Field(None, description="The citation mark used in the answer, e.g. ref_1.")
    title: str | None = None
    url: str | None = None
    media: str | None = Field(None, description="The site or publication.")
    publish_date: str | None = None
    snippet: str | None = Field(None, description="The text of the page the model read.")

    @classmethod
    def from_item(cls, item: WebSearchItem) -> Source:
        return cls(
            ref=item.refer,
            title=item.title,
            url=item.link,
            media=item.media,
            publish_date=item.publish_date,
            snippet=item.content,
        )


NO_SOURCES = "The web search found no sources; the answer comes from the model alone."


class WebSearchResult(ChatResult):
    """An answer researched on the web, with the sources it cites."""

    sources: list[Source] = Field(
        default_factory=list, description="The search results the model was given, in rank order."
    )
    note: str | None = Field(None, description="Said when the search found nothing.")

    FIRST: ClassVar[tuple[str, ...]] = (*ChatResult.FIRST, "note", "sources")

    @classmethod
    def from_completion(cls, completion: ChatCompletion, attempts: int = 1, *, model: str = "") -> Self:
        sources = [Source.from_item(item) for item in completion.web_search or ()]
        return cls(
            **_answer_fields(completion, model),
            attempts=attempts,
            sources=sources,
            note=None if sources else NO_SOURCES,
        )

    @classmethod
    def _running_extras(cls) -> dict[str, object]:
        return {"sources": [], "note": "The sources arrive with the end of the answer."}

    def to_text(self) -> str:
        if self.status == "running":
            return super().to_text()
        listing = "\n".join(
            f"[{s.ref or i}] {s.title or '(untitled)'} — {s.url or 'no link'}"
            + (f" ({s.media}, {s.publish_date})" if s.media and s.publish_date else "")
            for i, s in enumerate(self.sources, 1)
        )
        return _join(
            self.text,
            self._page_text(),
            "Sources:\n" + listing if listing else self.note or "",
            self._workspace_footer(),
        )


class SubmittedTask(RegistryNotes, SentFiles):
    """An async chat job the platform accepted."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "task_id")

    status: JobState = Field(description="running: the platform generates it; `next` says how to get the answer.")
    next: str = Field(description="The exact call that gets the answer.")
    task_id: str = Field(description="Pass this to get_result.")
    model: str = ""
    request_id: str | None = None
    attempts: int = Field(1, description="Requests sent to the platform to submit it, when more than one.")

    @classmethod
    def from_task(cls, task: AsyncTask, attempts: int, *, wait_seconds: float, model: str) -> SubmittedTask:
        return cls(
            task_id=task.id,
            status=task.state,
            next=next_call(task.id, wait_seconds, "for the answer"),
            model=task.model or model,
            request_id=task.request_id,
            attempts=attempts,
        )

    def to_text(self) -> str:
        summary = f"Task {self.task_id} submitted ({self.status}, model {self.model}). {self.next}"
        return _join(summary, self._files_text(), self._registry_text())


class TaskResult(RegistryNotes):
    """The state of a job, and its answer once it has one."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "result", "videos", "images", "error", "partial_text")

    task_id: str
    kind: JobKind = Field(
        description="async_task: started by submit_async. chat / web_search_chat: a call that outlived its wait. "
        "image_task / video_task: generate_image / generate_video."
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

    def shaped(self, *, full_reasoning: bool, wait_seconds: float) -> TaskResult:
        """As the call asked for it: the answer's reasoning whole or its beginning, and what to do next."""
        update: dict[str, object] = {}
        if self.result is not None:
            update["result"] = self.result.shaped(full_reasoning=full_reasoning)
        if self.status == "running":
            update["next"] = next_call(self.task_id, wait_seconds, "again")
        return self.model_copy(update=update) if update else self

    @classmethod
    def from_poll(cls, task_id: str, poll: AsyncTaskResult) -> TaskResult:
        """A platform task as polled; one the platform stopped (finish_reason sensitive or network_error) has
        failed, with what it wrote, as a streamed answer stopped the same way does."""
        cut = GLMAnswerCutError.of(poll.finish_reason) if poll.state == "completed" else None
        if cut is not None:
            return cls(
                task_id=task_id,
                kind="async_task",
                status="failed",
                model=poll.model,
                request_id=poll.request_id,
                partial_text=split_answer(poll.message.content, None)[0] or None,
                error=ToolFailure(
                    error=cut.error_kind, message=cut.message, hint=cut.advice(Advice()), retryable=cut.retryable
                ),
            )
        images, videos = media_of(poll) if poll.state == "completed" else ([], [])
        if images or videos:  # an image or video task: its files are its answer
            return cls(
                task_id=task_id,
                kind="video_task" if videos else "image_task",
                status="completed",
                model=poll.model,
                request_id=poll.request_id,
                images=images,
                videos=videos,
            )
        result = ChatResult.from_completion(poll, model=poll.model) if poll.state == "completed" else None
        return cls(
            task_id=task_id,
            kind="async_task",
            status=poll.state,
            model=poll.model,
            request_id=poll.request_id,
            result=result,
        )

    @classmethod
    def from_job(cls, job: Job, result_type: type[ChatResult], error: ToolFailure | None) -> TaskResult:
        """A job this process generates; what went wrong recording it is said too."""
        status = job.status
        partial = job.answer_so_far or None
        return cls(
            task_id=job.id,
            kind="web_search_chat" if result_type is WebSearchResult else "chat",
            status=status,
            model=job.model,
            request_id=job.request.request_id,
            result=result_type.from_completion(job.completion, job.attempts.count, model=job.model)
            if job.completion
            else None,
            partial_text=partial if status != "completed" else None,
            error=error,
            not_recorded=job.not_recorded,
            registry_notice=job.registry_problem,
        )

    @classmethod
    def from_record(cls, record: JobRecord) -> TaskResult:
        """A chat job known from the job registry: its stored result, or how far it got."""
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

    def to_text(self) -> str:
        if self.result is not None:
            return _join(self.result.to_text(), self._registry_text())
        if self.images or self.videos:
            files = [f"- image {i.url} (expires {i.expires_at})" for i in self.images]
            files += [f"- video {v.url} (cover {v.cover_url}, expires {v.expires_at})" for v in self.videos]
            return _join(f"Task {self.task_id} completed (model {self.model}):\n" + "\n".join(files))
        if self.status in ("failed", "cancelled", "interrupted"):
            reason = self.error.to_text() if self.error else "submit it again if needed."
            return _join(
                f"Task {self.task_id} {self.status} (model {self.model}).",
                reason,
                self._registry_text(),
                _partial(self.partial_text),
            )
        return _join(
            f"Task {self.task_id} is still running. {self.next or ''}".strip(),
            self._registry_text(),
            _partial(self.partial_text),
        )


class ToolFailure(Result):
    """Why a call failed and what to do; sent as `structuredContent` of an `isError` result (clients such
    as Claude Code show the model the text copy instead: it starts with what went wrong and what to do)."""

    FIRST: ClassVar[tuple[str, ...]] = ("error", "message", "hint")

    error: ErrorKind
    message: Annotated[str, Field(description="What went wrong.")]
    hint: str | None = Field(None, description="What to do about it.")
    field: str | None = Field(None, description="The argument at fault, for invalid_argument.")
    http_status: int | None = None
    glm_code: str | None = Field(None, description="The platform's error code, e.g. 1113 or 1211.")
    request_id: str | None = None
    retryable: bool | None = Field(None, description="Whether the same call may succeed if tried again later.")
    partial_text: str | None = Field(None, description="What the model had written before the failure.")
    attempts: int | None = Field(None, description="Requests sent to the platform before giving up.")

    def to_text(self) -> str:
        details = ", ".join(
            f"{name} {value}"
            for name, value in (("HTTP", self.http_status), ("code", self.glm_code), ("request", self.request_id))
            if value
        )
        return _join(
            f"Error: {self.message}" + (f" ({details})" if details else ""),
            self.hint or "",
            _partial(self.partial_text),
        )


class JobSummary(Result):
    """One job of the registry."""

    job_id: str = Field(description="Pass it to get_result as task_id.")
    kind: JobKind = Field(
        description="async_task: started by submit_async. chat / web_search_chat: a call that outlived its wait. "
        "image_task / video_task: generate_image / generate_video."
    )
    status: JobState = Field(
        description="interrupted: the server generating it stopped first (get_result gives the partial text)."
    )
    model: str = ""
    summary: str = Field("", description="The start of the prompt or question.")
    created_at: str = Field(description="When it started, ISO 8601 UTC.")

    @classmethod
    def from_record(cls, record: JobRecord) -> JobSummary:
        return cls(
            job_id=record.id,
            kind=record.kind,
            status=record.status,
            model=record.model,
            summary=record.summary,
            created_at=datetime.fromtimestamp(record.created_at, UTC).isoformat(timespec="seconds"),
        )


class JobList(RegistryNotes):
    """A page of the job registry, newest first."""

    jobs: list[JobSummary] = Field(default_factory=list, description="Absent when there are none.")
    next_cursor: str | None = Field(
        None, description="There are older jobs: pass this as `cursor` to list them. Absent on the last page."
    )

    @classmethod
    def from_records(cls, records: list[JobRecord], limit: int) -> JobList:
        """The first `limit` of `records`; one more than `limit` means there is a next page."""
        page = records[:limit]
        more = len(records) > limit
        return cls(jobs=[JobSummary.from_record(r) for r in page], next_cursor=str(page[-1].position) if more else None)

    def to_text(self) -> str:
        if not self.jobs:
            return _join("No jobs.", self._registry_text())
        lines = [
            f"- {job.job_id} · {job.kind} · {job.status} · {job.model} · {job.created_at} · {job.summary}"
            for job in self.jobs
        ]
        more = f'Older jobs: call list_jobs with cursor="{self.next_cursor}".' if self.next_cursor else ""
        return _join(
            "Jobs, newest first (pass an id to get_result as task_id):\n" + "\n".join(lines),
            more,
            self._registry_text(),
        )


def _answer_fields(completion: ChatCompletion, model: str) -> dict[str, object]:
    message = completion.message
    text, reasoning = split_answer(message.content, message.reasoning_content)
    usage = completion.usage
    reasoning_tokens = (usage.reasoning_tokens if usage else 0) or (_estimated_tokens(reasoning) if reasoning else 0)
    return {
        "text": text,
        "reasoning": reasoning,
        "reasoning_tokens": reasoning_tokens or None,
        "model": completion.model or model,
        "finish_reason": None if completion.finish_reason == "stop" else completion.finish_reason,
        "usage": None
        if usage is None
        else TokenUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
        ),
        "request_id": completion.request_id or completion.id or None,
        "tool_calls": [FunctionCallRequest.from_call(call) for call in message.tool_calls]
        if message.tool_calls
        else None,
        "next": feed_back("chat") if message.tool_calls else None,
    }


def _estimated_tokens(text: str) -> int:
    """About four characters a token, when the platform did not count (a stream cut before its usage)."""
    return max(1, round(len(text) / 4))


def _pruned(value: Any) -> Any:
    """`value` without its empty strings, lists and objects, at any depth: they tell a model nothing."""
    if isinstance(value, dict):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ("", [], {})}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _tool_calls_text(calls: list[FunctionCallRequest] | None, next_step: str | None) -> str:
    if not calls:
        return ""
    return _join("The model asks to call:\n" + "\n".join(call.to_text() for call in calls), next_step or "")


def _partial(text: str | None) -> str:
    return "Partial answer:\n" + text if text else ""


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)
