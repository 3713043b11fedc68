"""The tools: each handler turns its arguments into a GLM request and the answer into a result model.

Everything around them (flat parameters, structured output, error results) is done once by
`glm_mcp.server.tooling`.
"""

from __future__ import annotations

import logging
import time

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

from glm_mcp.errors import GenerationFailed, JobCancelledError, SubmitUncertainError, UnknownJobError
from glm_mcp.glm import Attempts, GLMAPIError, GLMTransportError
from glm_mcp.glm.types import AsyncTaskResult
from glm_mcp.jobs import JOB_ID_PREFIX, ChatKind, Job, JobRecord, RegistryUnavailable, poll_task
from glm_mcp.server.arguments import (
    ChatArguments,
    ListConversationsArguments,
    ListJobsArguments,
    ResultArguments,
    SubmitArguments,
    WebSearchArguments,
)
from glm_mcp.server.icons import ICONS
from glm_mcp.server.platform_args import (
    ImageArguments,
    ModelsArguments,
    ReadArguments,
    SearchArguments,
    UsageArguments,
    VideoArguments,
)
from glm_mcp.server.platform_results import ImageResult, ModelList, PageResult, SearchResults, UsageReport, VideoJob
from glm_mcp.server.progress import ProgressReporter, follow_job
from glm_mcp.server.results import ChatResult, JobList, SubmittedTask, TaskResult, WebSearchResult
from glm_mcp.server.state import AppState
from glm_mcp.server.task_wait import task_wait
from glm_mcp.server.tooling import ToolSpec, register
from glm_mcp.tools import accounting, workspace
from glm_mcp.tools import media as platform_tools

logger = logging.getLogger(__name__)

RESULT_TYPES: dict[ChatKind, type[ChatResult]] = {"chat": ChatResult, "web_search_chat": WebSearchResult}
UNKNOWN_TASK_CODE = "1210"
"""What the platform answers when polling an async task id it does not know ("parameters rejected")."""
TASK_TOOLS = {"async_task": "submit_async", "image_task": "generate_image"}
"""Platform tasks whose cost is recorded when get_result first sees them completed, and the tool they count for."""


async def chat(app: AppState, ctx: Context, args: ChatArguments) -> ChatResult:
    prepared = await workspace.prepare(app, ctx, args, args.chat_request(app.settings))
    result = await _generate(app, ctx, "chat", prepared, task_wait(args.wait(app.settings.wait_seconds)))
    return result.shaped(full_reasoning=args.include_reasoning)


async def web_search_chat(app: AppState, ctx: Context, args: WebSearchArguments) -> ChatResult:
    prepared = await workspace.prepare(app, ctx, args, args.chat_request(app.settings))
    result = await _generate(app, ctx, "web_search_chat", prepared, task_wait(args.wait(app.settings.wait_seconds)))
    return result.shaped(full_reasoning=args.include_reasoning)


async def _generate(
    app: AppState, ctx: Context, kind: ChatKind, prepared: workspace.Prepared, wait_seconds: float
) -> ChatResult:
    """Stream the answer with progress; past `wait_seconds`, hand back a job that carries on."""
    request = prepared.request
    job = app.jobs.start(kind, request, app.glm, principal=app.principal)
    try:
        finished = await follow_job(job, ProgressReporter(ctx, total=wait_seconds), wait_seconds)
    except BaseException:  # the caller cancelled: stop generating, close the upstream stream
        job.cancel()
        app.jobs.release(job)
        raise
    if not finished:
        await workspace.record_turn(app, prepared)  # awaiting the answer the job will keep
        job.result_notes = prepared.notes()
        await app.jobs.hand_off(job, lambda ended: _prepared_job_result(app, ended, prepared))
        notice = app.store.take_notice()
        running = RESULT_TYPES[kind].running(job, wait_seconds=app.settings.wait_seconds, registry_notice=notice)
        return workspace.running(prepared, running)
    app.jobs.release(job)
    await _record_usage(app, job)
    return await workspace.finish(app, prepared, _outcome(job))


async def _prepared_job_result(app: AppState, job: Job, prepared: workspace.Prepared) -> TaskResult:
    await workspace.finished_job(app, prepared, job)
    await _record_usage(app, job)
    return await _job_result(app, job)


async def _record_usage(app: AppState, job: Job) -> None:
    """The tokens a chat job cost, once it has ended (also when stopped: what was generated was paid for)."""
    completion = job.completion or job.accumulator.completion()
    if completion.usage is not None or job.completion is not None:
        await accounting.record(app, job.kind, completion.model or job.model, completion.usage, principal=job.principal)


def _outcome(job: Job) -> ChatResult:
    if job.completion is not None:
        return RESULT_TYPES[job.kind].from_completion(job.completion, job.attempts.count, model=job.model)
    cause = job.error or JobCancelledError("the generation was stopped before it ended")
    raise GenerationFailed(cause, partial_text=job.accumulator.text)


async def submit_async(app: AppState, ctx: Context, args: SubmitArguments) -> SubmittedTask:
    """Start a platform job; a submit that may have arrived is never re-sent, and one the registry cannot record still
    returns its id, saying so."""
    prepared = await workspace.prepare(app, ctx, args, args.chat_request(app.settings))
    request = prepared.request
    attempts = Attempts()
    try:
        task = await app.glm.submit_async(request, attempts=attempts)
    except GLMTransportError as exc:
        if exc.maybe_delivered:
            raise SubmitUncertainError(request.request_id or "", exc, exc.attempts) from exc
        raise
    record = JobRecord.of_request(
        task.id, "async_task", request, model=task.model, created_at=time.time(), principal=app.principal
    )
    not_recorded = await app.jobs.record_task(record)
    submitted = SubmittedTask.from_task(
        task, attempts.count, wait_seconds=app.settings.wait_seconds, model=request.model
    )
    notes = {"not_recorded": not_recorded, "registry_notice": app.store.take_notice(), "files": prepared.files or None}
    return submitted.model_copy(update=notes)


async def get_result(app: AppState, ctx: Context, args: ResultArguments) -> TaskResult:
    """The caller's own job (or conversation turn), its answer paged from `offset`.

    Another's id reads exactly like an unknown one, and is never polled. A task id nobody in the
    registry has (submitted elsewhere, or by a submit whose answer was lost) is asked of the platform
    with the caller's own key, which scopes what it can see.
    """
    if workspace.is_turn(args.task_id):
        result = await workspace.turn_result(app, args.task_id, args.offset)
    else:
        result = workspace.paged_task(await _job_state(app, ctx, args), args.offset, app.settings.max_result_chars)
    return result.shaped(full_reasoning=args.include_reasoning, wait_seconds=app.settings.wait_seconds)


async def _job_state(app: AppState, ctx: Context, args: ResultArguments) -> TaskResult:
    """The job asked for, as it stands once it has ended or `wait_seconds` have passed."""
    wait_seconds = task_wait(args.wait(app.settings.wait_seconds))
    reporter = ProgressReporter(ctx, total=wait_seconds)
    if args.task_id.startswith(JOB_ID_PREFIX):
        job = app.jobs.get(args.task_id, app.principal)
        if job is None:
            return await _recorded_job(app, args.task_id, wait_seconds, reporter)
        await follow_job(job, reporter, wait_seconds)
        return await _job_result(app, job)

    record = app.jobs.unrecorded_task(args.task_id, app.principal)
    if record is None:
        record = await app.store.get(args.task_id, principal=app.principal)
    if record is None and await app.store.known(args.task_id):
        raise _unknown(app, args.task_id)  # another caller's task
    if record is not None and record.result is not None:  # fetched before: the platform is not asked again
        return _noted(app, TaskResult.from_record(record))

    async def report(polls: int, state: AsyncTaskResult) -> None:
        await reporter.send(f"task {state.task_status.lower()} after {polls} poll(s) ({reporter.elapsed:.0f} s)")

    try:
        state = await poll_task(app.glm, args.task_id, wait_seconds, report)
    except GLMAPIError as exc:
        if exc.code != UNKNOWN_TASK_CODE:
            raise
        # The platform answers an id it does not know as a bad parameter (1210): say what is really wrong.
        raise _unknown(app, args.task_id) from exc
    result = TaskResult.from_poll(args.task_id, state)
    if record is not None and record.kind != result.kind:
        result = result.model_copy(update={"kind": record.kind})
    if result.status == "completed" and record is not None and record.kind in TASK_TOOLS:  # video: at submit
        await accounting.record(app, TASK_TOOLS[record.kind], state.model or record.model, state.usage)
    if app.jobs.unrecorded_task(args.task_id, app.principal) is not None:
        return result.model_copy(update={"not_recorded": "This task is not in the job registry: see its submit."})
    if record is not None and result.status != "running":
        try:
            await app.store.finish(args.task_id, result.status, result=result.model_dump_json(), partial_text=None)
        except RegistryUnavailable as exc:  # nothing is lost: the next get_result asks the platform again
            logger.warning("the end of task %s is not recorded: %s %s", args.task_id, exc, exc.fix)
    return _noted(app, result)


async def _job_result(app: AppState, job: Job) -> TaskResult:
    cause = job.error
    if cause is None and job.status == "cancelled":  # said as such, so that a task reads as cancelled
        cause = JobCancelledError("the generation was stopped before it ended (tasks/cancel)")
    error = await app.describe_failure(cause) if cause is not None else None
    return workspace.with_notes(TaskResult.from_job(job, RESULT_TYPES[job.kind], error), job.result_notes)


async def _recorded_job(app: AppState, job_id: str, wait_seconds: float, reporter: ProgressReporter) -> TaskResult:
    """A chat job this process is not generating: as the registry has it, waiting while another process works on it."""
    deadline = time.monotonic() + wait_seconds
    async with app.store.watch(job_id) as changes:  # woken by its next change (PostgreSQL), or read every second
        while (record := await app.store.get(job_id, principal=app.principal)) is not None:
            remaining = deadline - time.monotonic()
            if record.status != "running" or remaining <= 0:
                return _noted(app, TaskResult.from_record(record))
            chars = len(record.partial_text or "")
            await reporter.send(
                f"generating in another glm-mcp process: {chars:,} chars so far ({reporter.elapsed:.0f} s)"
            )
            await changes.wait(remaining)
    raise _unknown(app, job_id)


def _unknown(app: AppState, job_id: str) -> UnknownJobError:
    """The one answer for an id the caller has no job under: never started, forgotten, or someone else's."""
    notice = app.store.take_notice()
    where = "" if job_id.startswith(JOB_ID_PREFIX) else ", and the GLM platform has no task by that id for your key"
    message = f"{job_id} is unknown: no job of yours with that id runs here or is in the job registry{where}."
    return UnknownJobError(f"{message} {notice}" if notice else message)


def _noted(app: AppState, result: TaskResult) -> TaskResult:
    """`result`, with what happened to the registry since the last result said so."""
    notice = app.store.take_notice()
    return result.model_copy(update={"registry_notice": notice}) if notice else result


async def list_jobs(app: AppState, ctx: Context, args: ListJobsArguments) -> JobList:
    """The caller's own jobs, and nobody else's."""
    records = await app.store.page(
        principal=app.principal, status=args.status, limit=args.limit + 1, after=args.after()
    )
    listing = JobList.from_records(records, args.limit)
    return listing.model_copy(update={"registry_notice": app.store.take_notice()})


async def list_conversations(
    app: AppState, ctx: Context, args: ListConversationsArguments
) -> workspace.ConversationList:
    """The caller's own conversations, and nobody else's."""
    records = await app.conversations.recent(principal=app.principal, limit=args.limit + 1, before=args.before())
    return workspace.conversation_list(records, args.limit)


ASKS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
"""Asks the platform and changes nothing (each answer may differ)."""
STARTS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
"""Starts work on the platform: calling twice starts it twice."""
LOOKS_UP = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
"""Reads a job's state, here or on the platform."""
LISTS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
"""Reads this server's own records only."""

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "chat",
        "Ask a GLM model",
        "Ask a GLM model (Zhipu / Z.ai) and get its answer: a second opinion, a draft, a translation (GLM is strong "
        "in Chinese), or a question about an image with a vision model. Give `prompt` for one message or `messages` "
        "for a whole conversation; `tools` lets it call your functions. Returns the answer, the model's reasoning "
        "when thinking is on, token usage and the request id.",
        chat,
        ChatArguments,
        ChatResult,
        ASKS,
    ),
    ToolSpec(
        "web_search_chat",
        "Answer with GLM web search",
        "Answer a question from a live web search on the GLM platform: the model searches, reads the results and "
        "answers citing them as [ref_N]. Returns the answer and its sources (title, URL, site, date, snippet), and "
        "says so plainly when the search found nothing.",
        web_search_chat,
        WebSearchArguments,
        WebSearchResult,
        ASKS,
    ),
    ToolSpec(
        "submit_async",
        "Start a GLM chat job",
        "Start a chat as a background job on the GLM platform and return at once with its task_id; fetch the answer "
        "later with get_result. For long generations that should not hold up the conversation. Takes the same "
        "inputs as chat.",
        submit_async,
        SubmitArguments,
        SubmittedTask,
        STARTS,
    ),
    ToolSpec(
        "get_result",
        "Get a GLM job's result",
        "The status of a job started with submit_async (or a chat that outlived its wait) and, once completed, its "
        "answer (the same fields chat returns). status running means it is not done: ask again in a few seconds.",
        get_result,
        ResultArguments,
        TaskResult,
        LOOKS_UP,
    ),
    ToolSpec(
        "list_jobs",
        "List GLM jobs",
        "The jobs started here, newest first: submit_async tasks, and chat / web_search_chat calls that outlived "
        "their wait. Each with its id, status (running, completed, failed, cancelled, interrupted), model and the "
        "start of its prompt. Jobs survive a server restart: use this to find a job id again, then get_result for "
        "its answer.",
        list_jobs,
        ListJobsArguments,
        JobList,
        LISTS,
    ),
    ToolSpec(
        "list_conversations",
        "List GLM conversations",
        "Your recent conversations with GLM, most recently continued first, each with its first question and number "
        "of turns. Conversations survive a server restart: pass an id to chat or web_search_chat as "
        "conversation_id to continue it.",
        list_conversations,
        ListConversationsArguments,
        workspace.ConversationList,
        LISTS,
    ),
    ToolSpec(
        "web_search",
        "Search the web",
        "Search the web with the GLM platform's search engine and get the results themselves (title, URL, site, "
        "date, text), with no model's answer: cheaper than web_search_chat, for an agent that reads sources "
        "itself. Follow up with read_url for a whole page.",
        platform_tools.web_search,
        SearchArguments,
        SearchResults,
        ASKS,
        toolset="search",
    ),
    ToolSpec(
        "read_url",
        "Read a web page",
        "Fetch a web page through the GLM platform's reader and get it as clean markdown (or text), with its "
        "title, description and metadata; optionally its links and images. A long page comes in parts: `next` "
        "says how to read on.",
        platform_tools.read_url,
        ReadArguments,
        PageResult,
        ASKS,
        toolset="search",
    ),
    ToolSpec(
        "generate_image",
        "Generate an image",
        "Draw an image from a prompt with CogView-4 or glm-image. Returns the image itself (to show), its URL "
        "and when that URL expires, and over stdio the path of a saved copy. A long glm-image generation comes "
        "back as status running with `next`.",
        platform_tools.generate_image,
        ImageArguments,
        ImageResult,
        STARTS,
        toolset="images",
    ),
    ToolSpec(
        "generate_video",
        "Generate a video",
        "Make a short video from a prompt and/or a first image with CogVideoX or Vidu. It takes minutes: the "
        "call returns a job (status running, task_id, `next`); get_result gives the video and cover URLs.",
        platform_tools.generate_video,
        VideoArguments,
        VideoJob,
        STARTS,
        toolset="video",
    ),
    ToolSpec(
        "list_models",
        "List GLM models",
        "The models this key can use, each with what it can do (chat, image or video; vision, reasoning, context "
        "window, output limit) from glm-mcp's model table; a model the table does not know is marked so.",
        platform_tools.list_models,
        ModelsArguments,
        ModelList,
        LOOKS_UP,
        toolset="models",
    ),
    ToolSpec(
        "usage",
        "GLM usage and cost",
        "Tokens and calls made through this server, by day and model, with an estimated cost (a price table, "
        "GLM_PRICES overrides it); yours only when you use your own key. For a GLM Coding Plan key, the plan's "
        "quota windows too.",
        platform_tools.usage,
        UsageArguments,
        UsageReport,
        LISTS,
        toolset="usage",
    ),
)
"""Every tool the server offers, in the order clients list them, each in its toolset (GLM_MCP_TOOLSETS)."""


def build_tools(toolsets: tuple[str, ...] | None = None) -> list[Tool]:
    """The tools of `toolsets` (all of them when None)."""
    return [register(spec, icons=ICONS) for spec in TOOLS if toolsets is None or spec.toolset in toolsets]
