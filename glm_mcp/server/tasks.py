"""Long calls as MCP tasks: the `io.modelcontextprotocol/tasks` extension of the 2026-07-28 protocol.

Many agents never call `get_result` on a `status: running` hand-off, and the answer is lost to the
conversation. A client that declares this extension in a request's capabilities makes polling its
own job instead: a `chat`, `web_search_chat` or `get_result` call that is not done within
GLM_TASK_THRESHOLD_SECONDS is answered with a task handle (`resultType: "task"`), and `tasks/get`
answers with the very tool result the call would have returned once it is there.

A task IS a job (`glm_mcp.jobs`): the chat's hand-off records it in the registry before the
handle is sent, and `tasks/get` reads the running job (in this process) or its record (another
process, or after a restart: interrupted, with its partial text). So tasks outlive the process,
belong to the caller's principal, and `get_result` / `list_jobs` see them. The task of a
`get_result` call has the job's id plus GET_RESULT_SUFFIX: its result is get_result's, not chat's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, RequestParams
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.jobs import JOB_ID_PREFIX, Job, RegistryUnavailable
from glm_mcp.server.arguments import lone_surrogate
from glm_mcp.server.progress import describe_job
from glm_mcp.server.results import TaskResult, ToolFailure
from glm_mcp.server.state import AppState
from glm_mcp.server.task_wait import waiting_for_task
from glm_mcp.server.tooling import tool_result
from glm_mcp.server.tools import _job_result

logger = logging.getLogger(__name__)

EXTENSION = "io.modelcontextprotocol/tasks"
CHAT_TOOLS = frozenset({"chat", "web_search_chat"})
GET_RESULT = "get_result"
GET_RESULT_SUFFIX = ".get_result"
"""A `get_result` call's task: the job's id and this, because its result is get_result's own."""
POLL_MIN_MS = 1_000
POLL_MAX_MS = 10_000
POLL_FRACTION = 0.1
"""pollIntervalMs: a tenth of the time the task has run, within [POLL_MIN_MS, POLL_MAX_MS]: a long
generation is polled less often, and a task ending soon after its handle is seen within a second."""
CANCEL_WAIT_S = 2.0
"""How long tasks/cancel waits for the generation to stop before acknowledging (it takes moments)."""
NOT_FOUND = "Failed to retrieve task: Task not found"

TaskStatus = Literal["working", "completed", "cancelled"]
View = Literal["chat", "get_result"]


class TaskParams(RequestParams):
    """The params of tasks/get and tasks/cancel."""

    model_config = ConfigDict(extra="allow")
    task_id: str = Field(alias="taskId")


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task id, read: the job it follows, and whose result it ends with."""

    task_id: str
    job_id: str
    view: View

    @classmethod
    def parse(cls, task_id: str) -> TaskRef | None:
        """The task a task id names, or None for an id no task of ours could have (also one that is not Unicode
        text, which the registry could not even look up)."""
        job_id = task_id.removesuffix(GET_RESULT_SUFFIX)
        if not job_id.startswith(JOB_ID_PREFIX) or lone_surrogate(task_id) is not None:
            return None
        return cls(task_id, job_id, "get_result" if job_id != task_id else "chat")


class TasksExtension(Extension):
    """`tools/call` answered with a task past the threshold, and tasks/get, tasks/update, tasks/cancel."""

    identifier = EXTENSION

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", TaskParams, self._get),
            MethodBinding("tasks/update", UpdateParams, self._update),
            MethodBinding("tasks/cancel", TaskParams, self._cancel),
        )

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """The call as it is, with a short wait; a task handle instead of its hand-off when it outlives it.

        Only for a request that declares the extension (on the 2026-07-28 wire, where `resultType`
        exists): every other request is left exactly as it was, its wait included.
        """
        if not (_may_become_task(params) and _declares(ctx)):
            return await call_next(ctx)
        app = _app(ctx)
        with waiting_for_task(app.settings.task_threshold_seconds):
            result = await call_next(ctx)
        ref = _handed_off(params.name, result)
        if ref is None:
            return result
        try:
            task = await _read(app.for_http(ctx.request), ref)
        except RegistryUnavailable as exc:  # recorded a moment ago, so unreadable now: the hand-off says it all
            logger.warning("task %s could not be read back: %s", ref.task_id, exc)
            return result
        if task is None:
            return result
        return {**task, "resultType": "task"}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        app, ref = _task_request(ctx, params)
        return {**await read_or_fail(app, ref), "resultType": "complete"}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateParams) -> dict[str, Any]:
        """Acknowledged: no task here ever asks for input, so there is nothing to apply."""
        app, ref = _task_request(ctx, params)
        await _known(app, ref)
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        """Stops the generation (its upstream stream is closed at once) when this process runs it.

        A job generated by another live process cannot be reached from here: the request is
        acknowledged (cancellation is cooperative) and the job goes on there.
        """
        app, ref = _task_request(ctx, params)
        job = app.jobs.get(ref.job_id, app.principal)
        if job is not None:
            job.cancel()
            with anyio.move_on_after(CANCEL_WAIT_S):
                await job.wait()  # the stream is closed under a shielded scope: moments
            return {"resultType": "complete"}
        await _known(app, ref)
        logger.info("tasks/cancel of %s, which this process does not generate: it goes on", ref.task_id)
        return {"resultType": "complete"}


def _may_become_task(params: CallToolRequestParams) -> bool:
    if params.name in CHAT_TOOLS:
        return True
    task_id = (params.arguments or {}).get("task_id")
    return params.name == GET_RESULT and isinstance(task_id, str) and task_id.startswith(JOB_ID_PREFIX)


def _declares(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client capabilities include the extension (per request on 2026-07-28)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and EXTENSION in (capabilities.extensions or {})


def _app(ctx: ServerRequestContext[Any, Any]) -> AppState:
    return cast(AppState, ctx.lifespan_context)


def _task_request(ctx: ServerRequestContext[Any, Any], params: TaskParams) -> tuple[AppState, TaskRef]:
    """The caller's state and the task asked for; -32021 for a request without the extension."""
    require_client_extension(ctx, EXTENSION)
    ref = TaskRef.parse(params.task_id)
    if ref is None:
        raise MCPError(INVALID_PARAMS, NOT_FOUND)
    return _app(ctx).for_http(ctx.request), ref


async def _known(app: AppState, ref: TaskRef) -> None:
    """-32602 unless the caller has this task: another's reads exactly like one that never was."""
    if app.jobs.get(ref.job_id, app.principal) is not None:
        return
    try:
        record = await app.store.get(ref.job_id, principal=app.principal)
    except RegistryUnavailable as exc:
        raise MCPError(INTERNAL_ERROR, f"Failed to retrieve task: {exc} {exc.fix}") from exc
    if record is None or record.kind == "async_task":
        raise MCPError(INVALID_PARAMS, NOT_FOUND)


def _handed_off(tool: str, result: HandlerResult) -> TaskRef | None:
    """The task to answer with when the call's result is a recorded hand-off; None to answer it as is."""
    dumped = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    if not isinstance(dumped, dict) or dumped.get("is_error") or dumped.get("isError"):
        return None
    content = dumped.get("structured_content") or dumped.get("structuredContent") or {}
    if content.get("not_recorded"):  # not durable: the classic hand-off, which says so, is the honest answer
        return None
    if tool in CHAT_TOOLS and content.get("status") == "running":
        return TaskRef.parse(str(content.get("job_id")))
    if tool == GET_RESULT and content.get("status") == "running" and content.get("kind") in CHAT_TOOLS:
        return TaskRef.parse(str(content.get("task_id")) + GET_RESULT_SUFFIX)
    return None


async def read_or_fail(app: AppState, ref: TaskRef) -> dict[str, Any]:
    """The caller's task as tasks/get answers it; the documented JSON-RPC errors for an unknown or foreign
    id (-32602, the same for both) and for a registry that cannot be read (-32603, with its fix)."""
    try:
        task = await _read(app, ref)
    except RegistryUnavailable as exc:
        raise MCPError(INTERNAL_ERROR, f"Failed to retrieve task: {exc} {exc.fix}") from exc
    if task is None:
        raise MCPError(INVALID_PARAMS, NOT_FOUND)
    return task


async def _read(app: AppState, ref: TaskRef) -> dict[str, Any] | None:
    """The task as tasks/get answers it (a `DetailedTask`), or None when the caller has no such task."""
    job = app.jobs.get(ref.job_id, app.principal)
    if job is not None and not job.done:
        return _working(app, ref, job.created_at, job.updated_at, describe_job(job, job_elapsed(job)))
    record = await app.store.get(ref.job_id, principal=app.principal)
    if record is not None and record.kind == "async_task":
        return None  # platform tasks are polled with get_result, not as MCP tasks
    if job is not None and (record is None or record.result is None):  # ended; its result not stored yet
        await app.jobs.settled(job)  # what its end writes (usage, the turn's answer) is readable after this
        return _ended(app, ref, job.created_at, job.updated_at, await _job_result(app, job))
    if record is None:
        return None
    updated = record.updated_at or record.created_at
    if record.status == "running":
        chars = len(record.partial_text or "")
        message = f"generating in another glm-mcp process: {chars:,} chars so far"
        return _working(app, ref, record.created_at, updated, message)
    return _ended(app, ref, record.created_at, updated, TaskResult.from_record(record))


def job_elapsed(job: Job) -> float:
    return time.time() - job.created_at


def _working(app: AppState, ref: TaskRef, created: float, updated: float, message: str) -> dict[str, Any]:
    return _task(app, ref, "working", created, updated, message)


def _ended(app: AppState, ref: TaskRef, created: float, updated: float, outcome: TaskResult) -> dict[str, Any]:
    """A job that has ended, as its task: completed with the tool's own result, or cancelled."""
    if outcome.status == "running":  # a stored result never says so; kept safe all the same
        return _working(app, ref, created, updated, "generating")
    failure = outcome.error
    if failure is not None and failure.error == "cancelled":
        return _task(app, ref, "cancelled", created, updated, failure.message)
    if ref.view == "get_result":
        result = tool_result(
            outcome.shaped(full_reasoning=False, wait_seconds=app.settings.wait_seconds), is_error=False
        )
        message = f"get_result: {outcome.status}"
    elif outcome.result is not None:
        result = tool_result(outcome.result.shaped(full_reasoning=False), is_error=False)
        message = "answer complete"
    else:
        failure = failure or ToolFailure(error="internal_error", message="The generation failed; no reason was kept.")
        failure = failure.model_copy(update={"partial_text": failure.partial_text or outcome.partial_text})
        result = tool_result(failure, is_error=True)
        message = f"ended with an error result ({failure.error})"
    task = _task(app, ref, "completed", created, updated, message)
    task["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return task


def _task(
    app: AppState, ref: TaskRef, status: TaskStatus, created: float, updated: float, message: str
) -> dict[str, Any]:
    lived_ms = max(0, math.ceil((updated - created) * 1000))
    running_ms = (time.time() - created) * 1000
    return {
        "taskId": ref.task_id,
        "status": status,
        "statusMessage": message,
        "createdAt": _iso(created),
        "lastUpdatedAt": _iso(max(updated, created)),
        # From creation: the time it has lived so far, then the registry keeps it GLM_JOB_RETENTION_DAYS.
        "ttlMs": lived_ms + app.settings.job_retention_days * 86_400_000,
        "pollIntervalMs": int(min(POLL_MAX_MS, max(POLL_MIN_MS, running_ms * POLL_FRACTION))),
    }


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
