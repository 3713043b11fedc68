"""get_result, list_jobs and list_conversations: the jobs and conversations a caller has, read again.

`get_result` reads a job wherever it is (generated here, recorded in the registry by another process or
before a restart, or run by the platform) or a kept conversation turn, and returns it as the job's
`TaskResult` (`job_result.py`), its answer paged from `offset`. A chat job it follows past the task
threshold becomes an MCP task of its own (`RESULT_TASK`): its id is the job's plus GET_RESULT_SUFFIX,
since it ends with get_result's result rather than chat's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.errors import ArgumentError, UnknownJobError
from glm_mcp.glm import GLMAPIError
from glm_mcp.glm.types import AsyncTaskResult
from glm_mcp.jobs import JOB_ID_PREFIX, Job, JobKind, JobRecord, JobState, Position, RegistryUnavailable, poll_task
from glm_mcp.jobs.batches import batch_progress
from glm_mcp.jobs.conversations import Conversation
from glm_mcp.server.media import link_blocks
from glm_mcp.server.progress import ProgressReporter, follow
from glm_mcp.server.registration import LISTS, LOOKS_UP, TaskForm, TaskState, ToolSpec, tool_result
from glm_mcp.server.result import Result, paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.server.task_offer import task_wait
from glm_mcp.tools import accounting
from glm_mcp.tools.answer import (
    Answer,
    ChatResult,
    ConversationNote,
    RegistryNote,
    RegistryNotes,
    page_of,
    problem_text,
    registry_note,
)
from glm_mcp.tools.arguments import Arguments, JobWaiting, Paging, Reasoning
from glm_mcp.tools.job_result import TaskResult, job_outcome, job_result, task_ended
from glm_mcp.tools.workspace import is_turn

__all__ = [
    "GET_RESULT",
    "GET_RESULT_SUFFIX",
    "LIST_CONVERSATIONS",
    "LIST_JOBS",
    "RESULT_TASK",
    "ConversationList",
    "JobList",
    "ListConversationsArguments",
    "ListJobsArguments",
    "ResultArguments",
    "get_result",
    "list_conversations",
    "list_jobs",
]

logger = logging.getLogger(__name__)

UNKNOWN_TASK_CODE = "1210"
"""What the platform answers when polling an async task id it does not know ("parameters rejected")."""
TASK_TOOLS = {"async_task": "submit_async", "image_task": "generate_image"}
"""Platform tasks whose cost is recorded when get_result first sees them completed, and the tool they count for."""
GET_RESULT_SUFFIX = ".get_result"
"""A `get_result` call's task: the job's id and this, because its result is get_result's own."""


# --- arguments ----------------------------------------------------------------------------------------------


class TaskReference(Arguments):
    task_id: Annotated[
        str,
        Field(
            description="submit_async's task_id, or a running chat's job_id.",
            min_length=1,
            max_length=200,
            pattern=r"^[\w.:-]+$",
        ),
    ]


class ResultArguments(Reasoning, Paging, JobWaiting, TaskReference):
    """`get_result`: which job to look at, and how long to wait for it to finish."""


class ListJobsArguments(Arguments):
    """`list_jobs`: which jobs, and which page of them."""

    status: Annotated[
        JobState | None,
        Field(description="Only jobs in this state."),
    ] = None
    limit: Annotated[int, Field(description="Jobs per page, 1 to 100.", ge=1, le=100)] = 20
    cursor: Annotated[
        str,
        Field(description="The last page's next_cursor.", max_length=200),
    ] = ""

    def after(self) -> Position | None:
        """Where the page starts; raises `ArgumentError` for a cursor list_jobs did not give."""
        if not self.cursor:
            return None
        try:
            return Position.parse(self.cursor)
        except ValueError:
            raise ArgumentError("cursor", "it is not a next_cursor that list_jobs returned.") from None


class ListConversationsArguments(Arguments):
    """`list_conversations`: which page of the caller's conversations."""

    limit: Annotated[int, Field(description="Conversations per page, 1 to 100.", ge=1, le=100)] = 20
    cursor: Annotated[str, Field(description="The last page's next_cursor. Empty: the latest.", max_length=200)] = ""

    def before(self) -> tuple[float, str] | None:
        """Where the page starts; raises `ArgumentError` for a cursor list_conversations did not give."""
        if not self.cursor:
            return None
        updated_at, _, conversation_id = self.cursor.partition(":")
        try:
            return float(updated_at), conversation_id
        except ValueError:
            raise ArgumentError("cursor", "it is not a next_cursor that list_conversations returned.") from None


# --- results ------------------------------------------------------------------------------------------------


class JobSummary(Result):
    """One job of the registry."""

    job_id: str = Field(description="Pass it to get_result as task_id.")
    kind: JobKind = Field(
        description="async_task: started by submit_async. chat / web_search_chat: a call that outlived its wait. "
        "image_task / video_task: generate_image / generate_video. batch: the batch tool."
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
    def from_records(cls, records: list[JobRecord], limit: int, *, registry: RegistryNote) -> JobList:
        """The first `limit` of `records`; one more than `limit` means there is a next page."""
        page = records[:limit]
        more = len(records) > limit
        return cls(
            jobs=[JobSummary.from_record(r) for r in page],
            next_cursor=str(page[-1].position) if more else None,
            not_recorded=registry.not_recorded,
            registry_notice=registry.notice,
        )

    def to_text(self) -> str:
        if not self.jobs:
            return paragraphs("No jobs.", self.registry_text())
        lines = [
            f"- {job.job_id} · {job.kind} · {job.status} · {job.model} · {job.created_at} · {job.summary}"
            for job in self.jobs
        ]
        more = f'Older jobs: call list_jobs with cursor="{self.next_cursor}".' if self.next_cursor else ""
        return paragraphs(
            "Jobs, newest first (pass an id to get_result as task_id):\n" + "\n".join(lines),
            more,
            self.registry_text(),
        )


class ConversationSummary(BaseModel):
    model_config = ConfigDict(defer_build=True)

    conversation_id: str = Field(description="Pass it to chat or web_search_chat as conversation_id.")
    question: str = Field(description="The start of its first question.")
    turns: int
    updated_at: str = Field(description="Its last turn, ISO 8601 UTC.")
    branched_from: str | None = Field(None, description="`<conversation_id>:<turn>` it branched from.")


class ConversationList(RegistryNotes):
    """A page of the caller's conversations, most recently continued first."""

    conversations: list[ConversationSummary] = Field(default_factory=list, description="Absent when there are none.")
    next_cursor: str | None = Field(None, description="There are older ones: pass this as `cursor`.")

    def to_text(self) -> str:
        if not self.conversations:
            return "No conversations."
        lines = [
            f"- {c.conversation_id} · {c.turns} turn(s) · {c.updated_at} · {c.question}" for c in self.conversations
        ]
        more = f'\n\nOlder ones: call list_conversations with cursor="{self.next_cursor}".' if self.next_cursor else ""
        return "Conversations, most recent first (pass an id as conversation_id):\n" + "\n".join(lines) + more


def _conversation_list(records: list[Conversation], limit: int) -> ConversationList:
    """The first `limit` of `records`; one more than `limit` means there is a next page."""
    page = records[:limit]
    cursor = f"{page[-1].updated_at!r}:{page[-1].id}" if len(records) > limit else None
    return ConversationList(
        conversations=[
            ConversationSummary(
                conversation_id=c.id,
                question=c.summary,
                turns=c.turns,
                updated_at=datetime.fromtimestamp(c.updated_at, UTC).isoformat(timespec="seconds"),
                branched_from=c.branched_from,
            )
            for c in page
        ],
        next_cursor=cursor,
    )


# --- get_result ---------------------------------------------------------------------------------------------


async def get_result(app: AppState, ctx: Context, args: ResultArguments) -> TaskResult:
    """The caller's own job (or conversation turn), its answer paged from `offset`.

    Another's id reads exactly like an unknown one, and is never polled. A task id nobody in the
    registry has (submitted elsewhere, or by a submit whose answer was lost) is asked of the platform
    with the caller's own key, which scopes what it can see.
    """
    if is_turn(args.task_id):
        return await _turn_result(app, args.task_id, args.offset, full_reasoning=args.include_reasoning)
    state, notice = await _job_state(app, ctx, args)
    result = state.read(
        full_reasoning=args.include_reasoning,
        wait_seconds=app.settings.results.wait_seconds,
        offset=args.offset,
        limit=app.settings.results.max_chars,
        notice=notice,
    )
    result.content = link_blocks(ctx, result.media_links())  # an image or video task's files, linked
    return result


async def _job_state(app: AppState, ctx: Context, args: ResultArguments) -> tuple[TaskResult, str | None]:
    """The job asked for, whole, as it stands once it has ended or `wait_seconds` have passed, and the
    registry's notice when the answer came from the registry or the platform."""
    wait_seconds = task_wait(args.wait(app.settings.results.wait_seconds))
    reporter = ProgressReporter(ctx, total=wait_seconds)
    if args.task_id.startswith(JOB_ID_PREFIX):
        job = app.jobs.get(args.task_id, app.principal)
        if job is None:
            return await _recorded_job(app, args.task_id, wait_seconds, reporter)
        if await follow(job.stream, reporter, wait_seconds):
            await app.jobs.settled(job)  # its usage and turn are written: read after this, they are there
        return await job_result(app, job), None

    unrecorded = app.jobs.unrecorded_task(args.task_id, app.principal)
    record = unrecorded.record if unrecorded is not None else None
    if record is None:
        record = await app.store.get(args.task_id, principal=app.principal)
    if record is None and await app.store.known(args.task_id):
        raise _unknown(app, args.task_id)  # another caller's task
    if record is not None and record.result is not None:  # fetched before: the platform is not asked again
        return TaskResult.from_record(record), registry_note(app).notice

    async def report(polls: int, state: AsyncTaskResult) -> None:
        await reporter.send(f"task {state.task_status.lower()} after {polls} poll(s) ({reporter.elapsed:.0f} s)")

    try:
        state = await poll_task(app.glm, args.task_id, wait_seconds, report)
    except GLMAPIError as exc:
        if exc.code != UNKNOWN_TASK_CODE:
            raise
        # The platform answers an id it does not know as a bad parameter (1210): say what is really wrong.
        raise _unknown(app, args.task_id) from exc
    kind = record.kind if record is not None else None
    if unrecorded is not None:
        registry = RegistryNote(problem_text(unrecorded.problem))
        result = TaskResult.from_poll(args.task_id, state, kind=kind, registry=registry)
        await _record_cost(app, result, record, state)
        return await result.with_media(app), None
    result = await TaskResult.from_poll(args.task_id, state, kind=kind).with_media(app)
    await _record_cost(app, result, record, state)
    if record is not None and result.status != "running":
        try:
            await app.store.finish(args.task_id, result.status, result=result.model_dump_json(), partial_text=None)
        except RegistryUnavailable as exc:  # nothing is lost: the next get_result asks the platform again
            logger.warning("the end of task %s is not recorded: %s %s", args.task_id, exc, exc.fix)
    return result, registry_note(app).notice


async def _record_cost(app: AppState, result: TaskResult, record: JobRecord | None, state: AsyncTaskResult) -> None:
    """A platform task's cost, when get_result first sees it completed (a video's was counted at its submit)."""
    if result.status == "completed" and record is not None and record.kind in TASK_TOOLS:
        await accounting.record(app, TASK_TOOLS[record.kind], state.model or record.model, state.usage)


async def _recorded_job(
    app: AppState, job_id: str, wait_seconds: float, reporter: ProgressReporter
) -> tuple[TaskResult, str | None]:
    """A job this process is not generating: as the registry has it, waiting while another process works on it (a
    chat), or while the platform runs it (a batch, then followed here if no live process follows it)."""
    deadline = time.monotonic() + wait_seconds
    looked = False
    async with app.store.watch(job_id) as changes:  # woken by its next change (PostgreSQL), or read every second
        while (record := await _record(app, job_id)) is not None:
            remaining = deadline - time.monotonic()
            if record.status != "running" or remaining <= 0:
                return TaskResult.from_record(record), registry_note(app).notice
            progress = batch_progress(record)
            if progress is not None:
                if not looked:  # once a call: its follower may be gone (a caller's own key, after a restart)
                    looked = True
                    await app.batches.follow(record, app.glm)
                done = f"{progress.completed + progress.failed:,} of {len(progress.items):,} done"
                await reporter.send(f"batch {progress.status}: {done} ({reporter.elapsed:.0f} s)")
            else:
                chars = len(record.partial_text or "")
                await reporter.send(
                    f"generating in another glm-mcp process: {chars:,} chars so far ({reporter.elapsed:.0f} s)"
                )
            await changes.wait(remaining)
    raise _unknown(app, job_id)


async def _record(app: AppState, job_id: str) -> JobRecord | None:
    """The caller's job as the registry has it, or as this process alone knows it (a batch it could not record)."""
    return await app.store.get(job_id, principal=app.principal) or app.batches.unrecorded(job_id, app.principal)


def _unknown(app: AppState, job_id: str) -> UnknownJobError:
    """The one answer for an id the caller has no job under: never started, forgotten, or someone else's."""
    notice = registry_note(app).notice
    where = "" if job_id.startswith(JOB_ID_PREFIX) else ", and the GLM platform has no task by that id for your key"
    message = f"{job_id} is unknown: no job of yours with that id runs here or is in the job registry{where}."
    return UnknownJobError(f"{message} {notice}" if notice else message)


async def _turn_result(app: AppState, ref: str, offset: int, *, full_reasoning: bool) -> TaskResult:
    """The answer of a kept turn (`<conversation_id>:<turn>`), from `offset`."""
    conversation_id, _, number = ref.rpartition(":")
    turns = await app.conversations.turns(conversation_id, principal=app.principal) if number.isdigit() else []
    turn = next((t for t in turns if t.number == int(number)), None)
    if turn is None:
        raise UnknownJobError(
            f"{ref} is unknown: no turn of a conversation of yours has that id (`<conversation_id>:<turn>`)."
        )
    if turn.answer is None:
        raise UnknownJobError(
            f"Turn {turn.number} of {conversation_id} has no answer kept: it failed, or is still being generated "
            "(get_result on its job_id says which)."
        )
    chat = ChatResult.compose(
        Answer(text=turn.answer, model=turn.model),
        conversation=ConversationNote(conversation_id, turn.number),
        page=page_of(turn.answer, offset, app.settings.results.max_chars, ref),
        full_reasoning=full_reasoning,
    )
    return TaskResult(task_id=ref, kind="chat", status="completed", model=turn.model, result=chat)


def _follows_a_chat_job(arguments: Mapping[str, Any]) -> bool:
    task_id = arguments.get("task_id")
    return isinstance(task_id, str) and task_id.startswith(JOB_ID_PREFIX)


async def _result_task(app: AppState, job: Job | JobRecord) -> TaskState:
    """A get_result call's task once the job it follows has ended: get_result's own result."""
    outcome = await job_outcome(app, job)
    ended = task_ended(outcome)
    if ended is not None:
        return ended
    result = outcome.read(full_reasoning=False, wait_seconds=app.settings.results.wait_seconds)
    return TaskState("completed", f"get_result: {outcome.status}", tool_result(result, is_error=False))


RESULT_TASK = TaskForm(suffix=GET_RESULT_SUFFIX, offered=_follows_a_chat_job, final=_result_task)
"""A get_result call following a chat job past the task threshold becomes a task that ends with get_result's result."""


# --- list_jobs, list_conversations ------------------------------------------------------------------------


async def list_jobs(app: AppState, ctx: Context, args: ListJobsArguments) -> JobList:
    """The caller's own jobs, and nobody else's."""
    records = await app.store.page(
        principal=app.principal, status=args.status, limit=args.limit + 1, after=args.after()
    )
    return JobList.from_records(records, args.limit, registry=registry_note(app))


async def list_conversations(app: AppState, ctx: Context, args: ListConversationsArguments) -> ConversationList:
    """The caller's own conversations, and nobody else's."""
    records = await app.conversations.recent(principal=app.principal, limit=args.limit + 1, before=args.before())
    return _conversation_list(records, args.limit)


# --- the tools ----------------------------------------------------------------------------------------------


GET_RESULT = ToolSpec(
    "get_result",
    "Get a GLM job's result",
    "The status of a job started with submit_async (or a chat that outlived its wait) and, once completed, its "
    "answer (the same fields chat returns). status running means it is not done: ask again in a few seconds.",
    get_result,
    ResultArguments,
    TaskResult,
    LOOKS_UP,
    task=RESULT_TASK,
)

LIST_JOBS = ToolSpec(
    "list_jobs",
    "List GLM jobs",
    "The jobs started here, newest first: submit_async tasks, and chat / web_search_chat calls that outlived "
    "their wait. Each with its id, status, model and the start of its prompt. Jobs survive a server restart: use "
    "this to find a job id again, then get_result for its answer.",
    list_jobs,
    ListJobsArguments,
    JobList,
    LISTS,
)

LIST_CONVERSATIONS = ToolSpec(
    "list_conversations",
    "List GLM conversations",
    "Your recent conversations with GLM, most recently continued first, each with its first question and number "
    "of turns. They survive a restart: pass an id to chat or web_search_chat as conversation_id to continue it.",
    list_conversations,
    ListConversationsArguments,
    ConversationList,
    LISTS,
)
