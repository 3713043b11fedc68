"""batch: many requests as one platform batch, at half the price of chat, answered at once with a job id.

The requests are many prompts, or one instruction over many files (one request per file, read from the workspace
as `files` always is: `workspace.read_each`). They become the batch's JSONL input, uploaded to the platform's
Files API, and the batch is created on it; the job is recorded (owned by the caller, followed by this process
until it ends: `glm_mcp.jobs.batches`) before its id is returned. `get_result` reports its progress, then each
item's answer or error, paged; `list_jobs` lists it; a client that speaks MCP tasks gets a task (`BATCH_TASK`),
and `tasks/cancel`, or this tool's `cancel`, cancels the batch on the platform. A batch's tokens are recorded at
the batch price (docs/usage.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import Context
from pydantic import Field

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError, SubmitUncertainError, UnknownJobError
from glm_mcp.glm import Attempts, GLMTransportError
from glm_mcp.glm.types import BATCH_ENDPOINT, BatchRequest, ChatRequest, Message, ResponseFormat
from glm_mcp.jobs import JOB_ID_PREFIX, Job, JobRecord
from glm_mcp.jobs.batches import BATCH_KIND, BatchItem, BatchProgress, batch_outcome, batch_progress
from glm_mcp.jobs.job import new_job_id
from glm_mcp.server.registration import STARTS, TaskForm, TaskState, ToolSpec, tool_result
from glm_mcp.server.result import paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.tools.answer import RegistryNote, RegistryNotes, SentFile, SentFiles, next_call, registry_note
from glm_mcp.tools.arguments import Conversation, Generation
from glm_mcp.tools.batch_result import BatchReport
from glm_mcp.tools.job_result import TaskResult
from glm_mcp.tools.workspace import check_size, read_each

__all__ = ["BATCH", "BATCH_TASK", "MAX_ITEMS", "BatchArguments", "BatchJob", "batch"]

MAX_ITEMS = 1000
"""Requests one batch call may send (the platform takes up to 50,000 a file; a tool call's arguments are the limit
here, and every item's answer comes back through get_result)."""
LABEL_CHARS = 80
BATCH_SUFFIX = ".batch"
"""A batch call's task: the job's id and this, as it ends with the batch's answers rather than a chat's."""


# --- arguments ----------------------------------------------------------------------------------------------


class BatchArguments(Generation):
    """`batch`: the requests (prompts, or one instruction over files), how to answer each; or a batch to cancel."""

    prompts: Annotated[
        list[str] | None,
        Field(description="The requests, one prompt each (or `instruction` with `files`).", max_length=MAX_ITEMS),
    ] = None
    instruction: Annotated[str, Field(description="With `files`: what to do with each file.")] = ""
    files: Annotated[
        list[str] | None,
        Field(description="Paths or globs: one request per file, `instruction` then the file."),
    ] = None
    json_output: Annotated[bool, Field(description="Answer each as a JSON object.")] = False
    cancel: Annotated[
        str,
        Field(description="A batch's job_id: cancel that batch instead of starting one.", max_length=200),
    ] = ""

    def chat_request(self, messages: list[Message], settings: Settings) -> ChatRequest:
        request = self.to_request(messages, settings)
        if self.json_output:
            request.response_format = ResponseFormat(type="json_object")
        return request


# --- results ------------------------------------------------------------------------------------------------


class BatchJob(RegistryNotes, SentFiles):
    """A batch on the platform: started, or asked to stop."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "job_id", "batch")

    status: str = Field(
        description="running: the platform works on it, `next` says how to get the answers; or how it ended."
    )
    next: str = Field(description="The exact call that gets the progress, and the answers once it has ended.")
    batch: BatchReport | None = Field(
        None, description="Once it has ended (a task's result): its answers' first page, as get_result gives it."
    )
    job_id: str = Field(description="Pass this to get_result (and to `cancel`, to stop it).")
    batch_id: str = Field(description="The platform's id of the batch.")
    platform_status: str = Field(description="validating, in_progress, …, cancelling, cancelled.")
    items: int = Field(description="Requests in the batch.")
    model: str = ""
    note: str | None = None

    def handed_off(self) -> str | None:
        started = self.status == "running" and self.platform_status == "validating"
        return self.job_id if started and not self.not_recorded else None

    def to_text(self) -> str:
        summary = (
            f"Batch job {self.job_id} ({self.items} request(s), model {self.model}, platform batch {self.batch_id}, "
            f"{self.platform_status}). {self.next}"
        )
        report = self.batch.to_text() if self.batch is not None else ""
        return paragraphs(summary, report, self.note or "", self.files_text(), self.registry_text())


# --- the handler --------------------------------------------------------------------------------------------


async def batch(app: AppState, ctx: Context, args: BatchArguments) -> BatchJob:
    """Start a batch of the requests (or cancel one): answered at once, never waiting for the platform's work."""
    if args.cancel.strip():
        return await _cancel(app, args)
    requests, labels, files = await _requests(app, ctx, args)
    job_id = new_job_id()
    lines = [
        json.dumps({"custom_id": custom_id, "method": "POST", "url": BATCH_ENDPOINT, "body": body}, ensure_ascii=False)
        for custom_id, body in requests
    ]
    model = args.chat_request([Message(role="user", content="-")], app.settings).model
    uploaded = await app.glm.upload_file(("\n".join(lines) + "\n").encode(), filename=f"glm-mcp-{job_id}.jsonl")
    attempts = Attempts()
    try:
        created = await app.glm.create_batch(
            BatchRequest(input_file_id=uploaded.id, completion_window="24h", metadata={"glm_mcp_job": job_id}),
            attempts=attempts,
        )
    except GLMTransportError as exc:
        if exc.maybe_delivered:
            raise SubmitUncertainError(job_id, exc, exc.attempts) from exc
        raise
    items = [BatchItem(custom_id=request[0], label=label) for request, label in zip(requests, labels, strict=True)]
    progress = BatchProgress(
        batch_id=created.id,
        model=model,
        items=items,
        server_key=app.batches.is_server_key(app.glm),
        status=created.status,
    )
    record = JobRecord(
        id=job_id,
        kind=BATCH_KIND,
        model=model,
        summary=f"{len(items)} request(s): {labels[0]}",
        created_at=time.time(),
        request_id=created.id,
        principal=app.principal,
    )
    registry = registry_note(app, await app.batches.add(record, progress, app.glm))
    return _job(app, job_id, progress, files=files, registry=registry)


async def _requests(
    app: AppState, ctx: Context, args: BatchArguments
) -> tuple[list[tuple[str, dict[str, Any]]], list[str], list[SentFile]]:
    """Each request's custom_id and body, what it was, and the files read; `ArgumentError` before anything is sent."""
    prompts = [p for p in args.prompts or [] if p.strip()]
    if args.prompts is not None and len(prompts) != len(args.prompts):
        raise ArgumentError("prompts", "one of them is empty; give each request's text.")
    if prompts and (args.files or args.instruction.strip()):
        raise ArgumentError("prompts", "give either `prompts`, or `instruction` with `files`, not both.")
    bodies: list[ChatRequest] = []
    labels: list[str] = []
    files: list[SentFile] = []
    if prompts:
        for prompt in prompts:
            bodies.append(args.chat_request(Conversation(prompt=prompt).conversation(args.system), app.settings))
            labels.append(_label(prompt))
    elif args.files:
        instruction = args.instruction.strip()
        if not instruction:
            raise ArgumentError("instruction", "it is empty; say what to do with each file.")
        model = args.chat_request([Message(role="user", content="-")], app.settings).model
        for attachments in await read_each(app, ctx, args.files, model):
            messages = attachments.attach(Conversation(prompt=instruction).conversation(args.system))
            bodies.append(args.chat_request(messages, app.settings))
            labels.append(f"file {attachments.sent[0].path}")
            files += attachments.sent
    else:
        raise ArgumentError("prompts", "give the requests: `prompts`, or `instruction` with `files`.")
    if len(bodies) > MAX_ITEMS:
        raise ArgumentError("files", f"they are {len(bodies):,} files; one batch takes at most {MAX_ITEMS:,}.")
    for body in bodies:
        check_size(body.messages, app.settings.upstream.max_prompt_chars)
    requests = [(f"item-{index:04d}", json.loads(body.to_json())) for index, body in enumerate(bodies, start=1)]
    return requests, labels, files


async def _cancel(app: AppState, args: BatchArguments) -> BatchJob:
    """Cancel the caller's batch job on the platform; its follower records the end."""
    others = args.prompts or args.files or args.instruction.strip()
    if others:
        raise ArgumentError("cancel", "it cancels a batch: give it alone, without requests.")
    job_id = args.cancel.strip()
    record = None
    if job_id.startswith(JOB_ID_PREFIX):
        record = await app.store.get(job_id, principal=app.principal) or app.batches.unrecorded(job_id, app.principal)
    if record is None or record.kind != BATCH_KIND:
        raise UnknownJobError(f"{job_id[:200]} is unknown: no batch job of yours has that id (list_jobs lists yours).")
    outcome = batch_outcome(record)
    if record.status != "running" and outcome is not None:
        ended = BatchProgress(batch_id=outcome.batch_id, model=outcome.model, items=[], status=outcome.status)
        note = f"It has already ended ({record.status}): get_result has its answers."
        return _job(app, job_id, ended, items=len(outcome.items), note=note)
    progress = batch_progress(record)
    if progress is None:
        raise UnknownJobError(f"{job_id[:200]} has no batch recorded: it cannot be cancelled from here.")
    batch = await app.batches.cancel(record, app.glm)
    stopping = progress.model_copy(update={"status": batch.status})
    return _job(app, job_id, stopping, note="Asked the platform to cancel it: the requests already done stay answered.")


def _job(
    app: AppState,
    job_id: str,
    progress: BatchProgress,
    *,
    files: list[SentFile] | None = None,
    registry: RegistryNote | None = None,
    note: str | None = None,
    items: int | None = None,
) -> BatchJob:
    registry = registry or registry_note(app)
    wait_seconds = app.settings.results.wait_seconds
    ended = progress.status in ("completed", "failed", "expired", "cancelled")
    return BatchJob(
        status=progress.status if ended else "running",
        next=next_call(job_id, wait_seconds, "for its progress, and its answers once it has ended"),
        job_id=job_id,
        batch_id=progress.batch_id,
        platform_status=progress.status,
        items=len(progress.items) if items is None else items,
        model=progress.model,
        note=note,
        files=files or None,
        not_recorded=registry.not_recorded,
        registry_notice=registry.notice,
    )


def _label(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


# --- as an MCP task -----------------------------------------------------------------------------------------


def _starts_a_batch(arguments: Mapping[str, Any]) -> bool:
    return not arguments.get("cancel")


async def _batch_task(app: AppState, job: Job | JobRecord) -> TaskState:
    """A batch's task: working while the platform runs it, then completed with get_result's first page of it (or
    cancelled)."""
    if isinstance(job, Job):  # never: a batch is no stream of this process
        return TaskState("working", "generating")
    result = TaskResult.from_record(job)
    report = result.batch
    if result.status == "running":
        done = f"{report.answered + report.failed} of {report.total} done" if report is not None else "started"
        status = report.platform_status if report is not None else "validating"
        return TaskState("working", f"batch {status}: {done}")
    if result.status == "cancelled":  # a cancelled task carries no result: get_result has the answers done before
        answered = report.answered if report is not None else 0
        return TaskState("cancelled", f"batch cancelled: {answered} request(s) answered before; get_result has them")
    settings = app.settings.results
    page = report.page(0, settings.max_chars) if report is not None else None
    more = f" and offset={page.next_offset}" if page is not None and page.next_offset is not None else ""
    ended = BatchJob(
        status=result.status,
        next=f'Call get_result with task_id="{job.id}"{more} for its answers: they stay in the job registry '
        f"{app.settings.registry.job_retention_days:g} days (GLM_JOB_RETENTION_DAYS).",
        job_id=job.id,
        batch_id=page.batch_id if page is not None else job.request_id or "",
        platform_status=page.platform_status if page is not None else result.status,
        items=page.total if page is not None else 0,
        model=job.model,
        batch=page,
    )
    return TaskState("completed", f"batch {ended.platform_status}", tool_result(ended, is_error=False))


async def _cancel_task(app: AppState, record: JobRecord) -> None:
    await app.batches.cancel(record, app.glm)


BATCH_TASK = TaskForm(
    suffix=BATCH_SUFFIX,
    offered=_starts_a_batch,
    final=_batch_task,
    follows=frozenset({BATCH_KIND}),
    cancel=_cancel_task,
)
"""A batch call becomes a task at once (it never waits for the platform): working while the platform runs the
batch, completed with its answers' first page; tasks/cancel cancels the batch on the platform."""


# --- the tool -----------------------------------------------------------------------------------------------


BATCH = ToolSpec(
    "batch",
    "Run many GLM requests as a batch",
    "Run many requests at once as one GLM platform batch, at half the price of chat and without its rate limits, "
    "for work that can wait (minutes to hours): many `prompts`, or one `instruction` over many `files` (one request "
    "per file). Returns at once with a job_id; get_result reports progress and, when the batch ends, each item's "
    "answer or error, paged. `cancel` with a job_id stops a batch.",
    batch,
    BatchArguments,
    BatchJob,
    STARTS,
    toolset="batch",
    task=BATCH_TASK,
)
