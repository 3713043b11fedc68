"""What the tools return: result models (their schemas become each tool's `outputSchema`) and
the short text copy that clients which ignore `structuredContent` show to the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field

from glm_mcp.glm.types import AsyncTask, AsyncTaskResult, ChatCompletion, TaskStatus, WebSearchItem, split_answer
from glm_mcp.jobs import Job, JobKind, JobRecord, JobState
from glm_mcp.server.answers import ConversationNotes, Paged, SentFiles


class TokenUsage(BaseModel):
    prompt_tokens: int = Field(description="Tokens read, including cached ones.")
    completion_tokens: int = Field(description="Tokens written, including reasoning.")
    total_tokens: int
    cached_tokens: int = Field(0, description="Prompt tokens served from the platform's cache (cheaper).")
    reasoning_tokens: int = Field(0, description="Completion tokens spent on reasoning.")


class ToolCallRequest(BaseModel):
    """A function call the model wants made (only when a conversation declared function tools)."""

    id: str
    name: str
    arguments: str = Field(description="JSON text as the model wrote it; it may be invalid JSON.")


class RegistryNotes(BaseModel):
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

    status: Literal["completed", "running"] = Field(
        "completed",
        description="completed: the whole answer is here. running: the wait ran out first; `text` is the answer "
        "so far and the generation goes on: call get_result with `job_id` for the rest.",
    )
    job_id: str | None = Field(None, description="With status running: pass it to get_result as task_id.")
    text: str = Field(description="The answer (so far, when status is running).")
    reasoning: str | None = Field(None, description="The model's reasoning, when thinking was on.")
    model: str = Field(description="The model that answered.")
    finish_reason: str | None = Field(
        None,
        description="Why generation stopped: stop, length (max_tokens reached), tool_calls, sensitive "
        "(content filter), network_error, model_context_window_exceeded.",
    )
    usage: TokenUsage | None = None
    request_id: str | None = Field(None, description="The platform's request id, for support and tracing.")
    tool_calls: list[ToolCallRequest] | None = Field(None, description="Function calls the model asked for.")
    attempts: int = Field(1, description="Requests sent to the platform for this answer (more than 1 after retries).")

    @classmethod
    def from_completion(cls, completion: ChatCompletion, attempts: int = 1) -> Self:
        return cls(**_answer_fields(completion), attempts=attempts)

    @classmethod
    def running(cls, job: Job, registry_notice: str | None = None) -> Self:
        """The partial answer of a job that outlived the call's wait."""
        fields = _answer_fields(job.accumulator.completion())
        # Before the first chunk the stream has named no model yet: the request's model is the one answering.
        fields.update(status="running", job_id=job.id, model=job.model, finish_reason=None, usage=None)
        fields.update(cls._running_extras())
        fields.update(attempts=job.attempts.count, not_recorded=job.not_recorded, registry_notice=registry_notice)
        return cls(**fields)

    @classmethod
    def _running_extras(cls) -> dict[str, object]:
        return {}

    def to_text(self) -> str:
        if self.status == "running":
            return _join(
                "Still generating when this call's wait ran out; the answer goes on in the background. "
                f'Call get_result with task_id="{self.job_id}" to get the rest.',
                self._registry_text(),
                self._files_text(),
                self._conversation_text(),
                "Answer so far:\n" + self.text if self.text else "",
            )
        return _join(self.text, self._page_text(), _tool_calls_text(self.tool_calls), self._workspace_footer())

    def _workspace_footer(self) -> str:
        return _join(self._files_text(), self._conversation_text(), self._footer())

    def _footer(self) -> str:
        parts = [f"model {self.model}"]
        if self.finish_reason and self.finish_reason != "stop":
            parts.append(f"finish_reason {self.finish_reason}")
        if self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        if self.usage:
            cached = f", {self.usage.cached_tokens} cached" if self.usage.cached_tokens else ""
            parts.append(f"tokens {self.usage.prompt_tokens} in{cached} / {self.usage.completion_tokens} out")
        if self.reasoning:
            parts.append(f"reasoning {len(self.reasoning)} chars in structured output")
        return "[" + " · ".join(parts) + "]"


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

    sources: list[Source] = Field(description="The search results the model was given, in rank order.")
    note: str | None = Field(None, description="Said when the search found nothing.")

    @classmethod
    def from_completion(cls, completion: ChatCompletion, attempts: int = 1) -> Self:
        sources = [Source.from_item(item) for item in completion.web_search or ()]
        return cls(
            **_answer_fields(completion), attempts=attempts, sources=sources, note=None if sources else NO_SOURCES
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

    task_id: str = Field(description="Pass this to get_result.")
    status: TaskStatus = Field(description="PROCESSING, SUCCESS or FAIL.")
    model: str
    request_id: str | None = None
    attempts: int = Field(1, description="Requests sent to the platform to submit it (more than 1 after retries).")

    @classmethod
    def from_task(cls, task: AsyncTask, attempts: int = 1) -> SubmittedTask:
        return cls(
            task_id=task.id, status=task.task_status, model=task.model, request_id=task.request_id, attempts=attempts
        )

    def to_text(self) -> str:
        return _join(
            f"Task {self.task_id} submitted ({self.status}, model {self.model}). "
            f"Call get_result with task_id={self.task_id!r} to fetch the answer.",
            self._files_text(),
            self._registry_text(),
        )


class TaskResult(RegistryNotes):
    """The state of a job, and its answer once it has one."""

    task_id: str
    kind: JobKind = Field(
        description="async_task: started by submit_async. chat / web_search_chat: a call that outlived its wait."
    )
    status: TaskStatus = Field(description="PROCESSING (still running: ask again), SUCCESS or FAIL.")
    model: str
    request_id: str | None = None
    result: WebSearchResult | ChatResult | None = Field(
        None, description="The answer, on SUCCESS: the same fields chat (or web_search_chat) returns."
    )
    partial_text: str | None = Field(
        None, description="A chat job's answer so far: while it runs, or when it failed or was interrupted."
    )
    error: ToolFailure | None = Field(None, description="Why the job failed, on FAIL when known.")

    @classmethod
    def from_poll(cls, task_id: str, poll: AsyncTaskResult) -> TaskResult:
        result = ChatResult.from_completion(poll) if poll.task_status == "SUCCESS" else None
        return cls(
            task_id=task_id,
            kind="async_task",
            status=poll.task_status,
            model=poll.model,
            request_id=poll.request_id,
            result=result,
        )

    @classmethod
    def from_job(cls, job: Job, result_type: type[ChatResult], error: ToolFailure | None) -> TaskResult:
        """A job this process generates; what went wrong recording it is said too."""
        status: TaskStatus = {"running": "PROCESSING", "completed": "SUCCESS"}.get(job.status, "FAIL")  # type: ignore[assignment]
        partial = job.answer_so_far or None
        return cls(
            task_id=job.id,
            kind="web_search_chat" if result_type is WebSearchResult else "chat",
            status=status,
            model=job.model,
            request_id=job.request.request_id,
            result=result_type.from_completion(job.completion, job.attempts.count) if job.completion else None,
            partial_text=partial if status != "SUCCESS" else None,
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
            status="FAIL" if interrupted else "PROCESSING",
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
        if self.status == "FAIL":
            reason = self.error.to_text() if self.error else "submit it again if needed."
            return _join(
                f"Task {self.task_id} failed (model {self.model}).",
                reason,
                self._registry_text(),
                _partial(self.partial_text),
            )
        return _join(
            f"Task {self.task_id} is still {self.status}; call get_result again to wait for it.",
            self._registry_text(),
            _partial(self.partial_text),
        )


ErrorKind = Literal[
    "invalid_argument",
    "missing_api_key",
    "unknown_job",
    "upstream_error",
    "upstream_unreachable",
    "stream_broken",
    "deadline_exceeded",
    "upstream_too_large",
    "answer_cut",
    "submit_uncertain",
    "registry_unavailable",
    "content_blocked",
    "cancelled",
    "interrupted",
    "internal_error",
]


class ToolFailure(BaseModel):
    """Why a call failed and what to do; sent as `structuredContent` of an `isError` result."""

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


class JobSummary(BaseModel):
    """One job of the registry."""

    job_id: str = Field(description="Pass it to get_result as task_id.")
    kind: JobKind = Field(
        description="async_task: started by submit_async. chat / web_search_chat: a call that outlived its wait."
    )
    status: JobState = Field(
        description="running, completed, failed, or interrupted: the server generating it stopped first "
        "(get_result gives the partial text)."
    )
    model: str
    summary: str = Field(description="The start of the prompt or question.")
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

    jobs: list[JobSummary]
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


def _answer_fields(completion: ChatCompletion) -> dict[str, object]:
    message = completion.message
    text, reasoning = split_answer(message.content, message.reasoning_content)
    usage = completion.usage
    return {
        "text": text,
        "reasoning": reasoning,
        "model": completion.model,
        "finish_reason": completion.finish_reason,
        "usage": None
        if usage is None
        else TokenUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        ),
        "request_id": completion.request_id or completion.id or None,
        "tool_calls": [
            ToolCallRequest(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in message.tool_calls
        ]
        if message.tool_calls
        else None,
    }


def _tool_calls_text(calls: list[ToolCallRequest] | None) -> str:
    if not calls:
        return ""
    return "The model asks to call:\n" + "\n".join(f"- {c.name}({c.arguments}) [id {c.id}]" for c in calls)


def _partial(text: str | None) -> str:
    return "Partial answer:\n" + text if text else ""


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)
