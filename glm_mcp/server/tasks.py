"""Long calls as MCP tasks: the `io.modelcontextprotocol/tasks` extension of the 2026-07-28 protocol.

Many agents never call `get_result` on a `status: running` hand-off, and the answer is lost to the
conversation. A client that declares this extension in a request's capabilities makes polling its
own job instead: a `chat`, `web_search_chat` or `get_result` call that is not done within
GLM_TASK_THRESHOLD_SECONDS is answered with a task handle (`resultType: "task"`), and `tasks/get`
answers with the very tool result the call would have returned once it is there.

A task IS a job (`glm_mcp.jobs`): the chat's hand-off records it in the registry before the
handle is sent, and `tasks/get` reads the running job (in this process) or its record (another
process, or after a restart: interrupted, with its partial text). So tasks outlive the process,
belong to the caller's principal, and `get_result` / `list_jobs` see them.

Which tools' calls may become tasks, and how each task's final result is built, is what their
`ToolSpec.task` declares (`registration.TaskForm`): this module knows no tool by name. A form may follow a
job no server process generates (`TaskForm.follows`: a platform batch): its task is read from the job's
record, and tasks/cancel stops it through the form (`TaskForm.cancel`), from any process. The
registration wrapper reports the job a call handed off (`task_offer.report_hand_off`); a task's id is
that job's id plus its form's suffix, "" for the tool that started the job, so that a task following
the job through another tool (get_result) ends with that tool's own result.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, RequestParams
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

from glm_mcp.errors import GlmMcpError
from glm_mcp.jobs import JOB_ID_PREFIX, Job, JobRecord, RegistryUnavailable
from glm_mcp.server.progress import describe
from glm_mcp.server.registration import CHAT_KINDS, TaskForm, TaskState, ToolTable, lone_surrogate
from glm_mcp.server.state import AppState
from glm_mcp.server.task_offer import TaskOffer, offering_task

__all__ = [
    "CANCEL_WAIT_S",
    "EXTENSION",
    "NOT_FOUND",
    "STREAMED_KINDS",
    "TaskParams",
    "TaskRef",
    "TaskTable",
    "TasksExtension",
    "app_state",
    "job_elapsed",
]

logger = logging.getLogger(__name__)

EXTENSION = "io.modelcontextprotocol/tasks"
STREAMED_KINDS: frozenset[str] = CHAT_KINDS
"""The jobs a server process generates; a task follows one of those, or a job its form names (`TaskForm.follows`: a
platform batch). A platform's async task is polled with get_result."""
POLL_MIN_MS = 1_000
POLL_MAX_MS = 10_000
POLL_FRACTION = 0.1
"""pollIntervalMs: a tenth of the time the task has run, within [POLL_MIN_MS, POLL_MAX_MS]: a long
generation is polled less often, and a task ending soon after its handle is seen within a second."""
CANCEL_WAIT_S = 2.0
"""How long tasks/cancel waits for the generation to stop before acknowledging (it takes moments)."""
NOT_FOUND = "Failed to retrieve task: Task not found"


class TaskParams(RequestParams):
    """The params of tasks/get and tasks/cancel."""

    model_config = ConfigDict(defer_build=True, extra="allow")
    task_id: str = Field(alias="taskId")


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task id, read: the job it follows, and the form that builds its final result."""

    task_id: str
    job_id: str
    form: TaskForm


class TaskTable:
    """The tools whose calls may become tasks, as their listings declare them, and the tasks they make.

    Which tools and which suffixes are known from the listing at start; a tool's `TaskForm` is its spec's,
    looked up when a call or a task id first needs it (`ToolTable.spec`)."""

    def __init__(self, tools: ToolTable) -> None:
        self._tools = tools
        self._offered = {listed.name: listed.task_suffix for listed in tools.listed if listed.task_suffix is not None}
        self._loaded: dict[str, TaskForm] | None = None

    @property
    def tools(self) -> frozenset[str]:
        """The names of the tools whose calls may become tasks."""
        return frozenset(self._offered)

    def offers(self, tool: str, arguments: Mapping[str, Any] | None) -> bool:
        """Whether a call of `tool` with `arguments` may be answered as a task."""
        return tool in self._offered and self._forms()[tool].offered(arguments or {})

    def parse(self, task_id: str) -> TaskRef | None:
        """The task a task id names, or None for an id no task of ours could have (also one that is not Unicode
        text, which the registry could not even look up)."""
        job_id, dot, rest = task_id.partition(".")
        suffix = dot + rest
        if suffix not in self._offered.values():
            return None
        if not job_id.startswith(JOB_ID_PREFIX) or lone_surrogate(task_id) is not None:
            return None
        form = next(form for form in self._forms().values() if form.suffix == suffix)
        return TaskRef(task_id, job_id, form)

    def started(self, record: JobRecord) -> TaskRef | None:
        """The task a job was started as: that of the first form, in the table's order, following its kind (the
        tool that starts a kind of job comes before those that follow one)."""
        form = next((f for f in self._forms().values() if record.kind in f.follows), None)
        return None if form is None else self.parse(record.id + form.suffix)

    def _forms(self) -> dict[str, TaskForm]:
        """Each offering tool's form, in the table's order: its spec's, looked up once a call or a task needs one."""
        if self._loaded is None:
            loaded: dict[str, TaskForm] = {}
            by_suffix: dict[str, TaskForm] = {}
            for tool in self._offered:
                form = self._tools.spec(tool).task
                if form is None:
                    raise ValueError(f"{tool} is listed with tasks, but its spec has no TaskForm")
                if by_suffix.setdefault(form.suffix, form) is not form:
                    raise ValueError(f"two task forms have the suffix {form.suffix!r}: a task id must name one")
                loaded[tool] = form
            self._loaded = loaded
        return self._loaded

    def handed_off(self, offer: TaskOffer) -> TaskRef | None:
        """The task to answer with when the call in `offer` handed off a job; None to answer it as is."""
        return None if offer.handed_off is None else self.parse(offer.handed_off.task_id)

    async def read(self, app: AppState, ref: TaskRef) -> dict[str, Any] | None:
        """The task as tasks/get answers it (a `DetailedTask`), or None when the caller has no such task."""
        job = app.jobs.get(ref.job_id, app.principal)
        if job is not None and not job.done:
            state = TaskState("working", describe(job.stream, job_elapsed(job)))
            return _task(app, ref, state, job.stream.created_at, job.stream.updated_at)
        record = await app.store.get(ref.job_id, principal=app.principal)
        if record is None:
            record = app.batches.unrecorded(ref.job_id, app.principal)
        if record is not None and record.kind not in ref.form.follows:
            return None  # platform tasks are polled with get_result, not as MCP tasks
        if job is not None and (record is None or record.result is None):  # ended; its result not stored yet
            await app.jobs.settled(job)  # what its end writes (usage, the turn's answer) is readable after this
            final = await ref.form.final(app, job)
            return _task(app, ref, final, job.stream.created_at, job.stream.updated_at)
        if record is None:
            return None
        updated = record.updated_at or record.created_at
        if record.status == "running" and record.kind in STREAMED_KINDS:
            chars = len(record.partial_text or "")
            state = TaskState("working", f"generating in another glm-mcp process: {chars:,} chars so far")
            return _task(app, ref, state, record.created_at, updated)
        return _task(app, ref, await ref.form.final(app, record), record.created_at, updated)

    async def read_or_fail(self, app: AppState, ref: TaskRef) -> dict[str, Any]:
        """The caller's task as tasks/get answers it; the documented JSON-RPC errors for an unknown or foreign
        id (-32602, the same for both) and for a registry that cannot be read (-32603, with its fix)."""
        try:
            task = await self.read(app, ref)
        except RegistryUnavailable as exc:
            raise MCPError(INTERNAL_ERROR, f"Failed to retrieve task: {exc} {exc.fix}") from exc
        if task is None:
            raise MCPError(INVALID_PARAMS, NOT_FOUND)
        return task

    async def known(self, app: AppState, ref: TaskRef) -> JobRecord | None:
        """-32602 unless the caller has this task: another's reads exactly like one that never was. Its record, when
        it is not a job this process generates."""
        if app.jobs.get(ref.job_id, app.principal) is not None:
            return None
        try:
            record = await app.store.get(ref.job_id, principal=app.principal)
        except RegistryUnavailable as exc:
            raise MCPError(INTERNAL_ERROR, f"Failed to retrieve task: {exc} {exc.fix}") from exc
        record = record or app.batches.unrecorded(ref.job_id, app.principal)
        if record is None or record.kind not in ref.form.follows:
            raise MCPError(INVALID_PARAMS, NOT_FOUND)
        return record

    async def stop(self, app: AppState, ref: TaskRef) -> bool:
        """Stop the task's job when this process can: one it generates (its stream closed at once, waited for up to
        CANCEL_WAIT_S), or one the platform runs whose form knows how (`TaskForm.cancel`). False when it cannot:
        a job another live process generates goes on there."""
        job = app.jobs.get(ref.job_id, app.principal)
        if job is not None:
            job.cancel()
            with anyio.move_on_after(CANCEL_WAIT_S):
                await job.wait()  # the stream is closed under a shielded scope: moments
            return True
        record = await self.known(app, ref)
        if record is None or ref.form.cancel is None or record.status != "running":
            return False
        try:
            await ref.form.cancel(app, record)
        except GlmMcpError as exc:
            raise MCPError(INTERNAL_ERROR, f"Failed to cancel task: {exc}") from exc
        return True


class TasksExtension(Extension):
    """`tools/call` answered with a task past the threshold, and tasks/get, tasks/update, tasks/cancel."""

    identifier = EXTENSION

    def __init__(self, table: TaskTable) -> None:
        self._table = table

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
        if not (self._table.offers(params.name, params.arguments) and _declares(ctx)):
            return await call_next(ctx)
        app = app_state(ctx)
        with offering_task(app.settings.results.task_threshold_seconds) as offer:
            result = await call_next(ctx)
        ref = self._table.handed_off(offer)
        if ref is None:
            return result
        try:
            task = await self._table.read(app.for_http(ctx.request), ref)
        except RegistryUnavailable as exc:  # recorded a moment ago, so unreadable now: the hand-off says it all
            logger.warning("task %s could not be read back: %s", ref.task_id, exc)
            return result
        if task is None:
            return result
        return {**task, "resultType": "task"}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        app, ref = self._task_request(ctx, params)
        return {**await self._table.read_or_fail(app, ref), "resultType": "complete"}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateParams) -> dict[str, Any]:
        """Acknowledged: no task here ever asks for input, so there is nothing to apply."""
        app, ref = self._task_request(ctx, params)
        await self._table.known(app, ref)
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        """Stops the generation (its upstream stream is closed at once) when this process runs it.

        A job generated by another live process cannot be reached from here: the request is
        acknowledged (cancellation is cooperative) and the job goes on there.
        """
        app, ref = self._task_request(ctx, params)
        if not await self._table.stop(app, ref):
            logger.info("tasks/cancel of %s, which this process does not generate: it goes on", ref.task_id)
        return {"resultType": "complete"}

    def _task_request(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> tuple[AppState, TaskRef]:
        """The caller's state and the task asked for; -32021 for a request without the extension."""
        require_client_extension(ctx, EXTENSION)
        ref = self._table.parse(params.task_id)
        if ref is None:
            raise MCPError(INVALID_PARAMS, NOT_FOUND)
        return app_state(ctx).for_http(ctx.request), ref


def _declares(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client capabilities include the extension (per request on 2026-07-28)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and EXTENSION in (capabilities.extensions or {})


def app_state(ctx: ServerRequestContext[Any, Any]) -> AppState:
    """The server's state, from a lowlevel request's context (the process-wide one, not yet the caller's view)."""
    return cast(AppState, ctx.lifespan_context)


def job_elapsed(job: Job) -> float:
    return time.time() - job.stream.created_at


def _task(app: AppState, ref: TaskRef, state: TaskState, created: float, updated: float) -> dict[str, Any]:
    lived_ms = max(0, math.ceil((updated - created) * 1000))
    running_ms = (time.time() - created) * 1000
    task: dict[str, Any] = {
        "taskId": ref.task_id,
        "status": state.status,
        "statusMessage": state.message,
        "createdAt": _iso(created),
        "lastUpdatedAt": _iso(max(updated, created)),
        # From creation: the time it has lived so far, then the registry keeps it GLM_JOB_RETENTION_DAYS.
        "ttlMs": lived_ms + app.settings.registry.job_retention_days * 86_400_000,
        "pollIntervalMs": int(min(POLL_MAX_MS, max(POLL_MIN_MS, running_ms * POLL_FRACTION))),
    }
    if state.result is not None:
        task["result"] = state.result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return task


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
