"""Long calls as MCP tasks in the 2025-11-25 form, which VS Code speaks: a server middleware, no SDK patch.

The 2025-11-25 protocol had its own tasks: the server declares `capabilities.tasks` at `initialize`,
tools carry `execution.taskSupport`, the client asks for a task with `params.task` on `tools/call`
and reads it with `tasks/get`, `tasks/result` (which blocks until the result), `tasks/list` and
`tasks/cancel`. mcp 2.3 dropped these from its method tables, so `LegacyTasks` serves them as a
`Server.middleware`, above the SDK's method lookup, for sessions that speak 2025-11-25.

It needs a session: whether a client declared `capabilities.tasks` is known only from its
`initialize`, so the server carries it switched off (`glm_mcp.app` adds it with the tool table) and
it is switched on for stdio and sessionful HTTP only (`install`). A stateless POST is a session of its
own, so there it never advertises tasks and never puts an `execution` field on a tool (some clients
drop every tool of a server whose tools carry one).

A task is the same job as in `server/tasks.py` (same ids, registry row, principal, final result);
only the shapes differ: `ttl` and `pollInterval` instead of `ttlMs` and `pollIntervalMs`, and a
tool result with `isError` makes the task `failed`, as that version says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS

from glm_mcp.jobs import RegistryUnavailable
from glm_mcp.jobs.store import Position
from glm_mcp.server.task_offer import offering_task
from glm_mcp.server.tasks import NOT_FOUND, TaskRef, TaskTable, app_state

__all__ = ["CAPABILITY", "EXECUTION", "VERSION", "LegacyTasks", "install"]

logger = logging.getLogger(__name__)

VERSION = "2025-11-25"
CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
EXECUTION: dict[str, Any] = {"taskSupport": "optional"}
RELATED_TASK = "io.modelcontextprotocol/related-task"
LIST_PAGE = 50
TERMINAL = "Cannot cancel task: already in terminal status"
RESULT_POLL_S = 1.0
"""How often tasks/result reads the registry for a task another process generates."""


def install(server: MCPServer[Any]) -> None:
    """Serve the 2025-11-25 tasks on this server (once): only where a connection is a client's session.

    The server carries its `LegacyTasks` switched off; switched on, it moves to the inside of the middleware
    installed so far (the HTTP app's `StopCalls` then wraps it, as it wraps every call).
    """
    for middleware in list(server.middleware):
        if isinstance(middleware, LegacyTasks) and not middleware.serving:
            server.middleware.remove(middleware)
            middleware.serving = True
            server.middleware.append(middleware)


class LegacyTasks:
    """`initialize`, `tools/list`, `tools/call` rewritten and `tasks/*` served for 2025-11-25 sessions, once
    switched on (`install`); the tools whose calls may become tasks are those of `table`."""

    def __init__(self, table: TaskTable) -> None:
        self._table = table
        self.serving = False

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if not self.serving:
            return await call_next(ctx)
        method = ctx.method
        if method == "initialize":
            return _advertised(await call_next(ctx), ctx.params)
        if not _declares(ctx):
            return await call_next(ctx)
        params = dict(ctx.params or {})
        if method == "tools/list":
            return _with_execution(await call_next(ctx), self._table.tools)
        if method == "tools/call" and isinstance(params.get("task"), dict) and params.get("name") in self._table.tools:
            return await self._create(ctx, call_next)
        if method == "tasks/get":
            return _legacy(await self._task(ctx, params))
        if method == "tasks/result":
            return await self._result(ctx, params)
        if method == "tasks/list":
            return await self._list(ctx, params)
        if method == "tasks/cancel":
            return await self._cancel(ctx, params)
        return await call_next(ctx)

    async def _create(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """The call handed off at once, answered with its task (`CreateTaskResult`).

        A call that cannot become a task (its arguments refused, a job already ended, a hand-off the
        registry could not record) is answered with its ordinary result, which says why.
        """
        with offering_task(0.0) as offer:
            result = await call_next(ctx)
        ref = self._table.handed_off(offer)
        if ref is None:
            return result
        app = app_state(ctx).for_http(ctx.request)
        try:
            task = await self._table.read(app, ref)
        except RegistryUnavailable as exc:
            logger.warning("task %s could not be read back: %s", ref.task_id, exc)
            return result
        return result if task is None else {"task": _legacy(task)}

    def _ref(self, params: dict[str, Any]) -> TaskRef:
        task_id = params.get("taskId")
        ref = self._table.parse(task_id) if isinstance(task_id, str) else None
        if ref is None:
            raise MCPError(INVALID_PARAMS, NOT_FOUND)
        return ref

    async def _task(self, ctx: ServerRequestContext[Any, Any], params: dict[str, Any]) -> dict[str, Any]:
        """The task as `server/tasks.py` reads it (2026 shape, result included); -32602 for none of the caller's."""
        app = app_state(ctx).for_http(ctx.request)
        return await self._table.read_or_fail(app, self._ref(params))

    async def _result(self, ctx: ServerRequestContext[Any, Any], params: dict[str, Any]) -> dict[str, Any]:
        """tasks/result: waits for the task to end, then the tool's own `CallToolResult`."""
        app = app_state(ctx).for_http(ctx.request)
        ref = self._ref(params)
        task = await self._table.read_or_fail(app, ref)
        while task["status"] == "working":
            job = app.jobs.get(ref.job_id, app.principal)
            if job is not None and not job.done:
                await job.wait()
            else:
                await anyio.sleep(RESULT_POLL_S)
            task = await self._table.read_or_fail(app, ref)
        related = {RELATED_TASK: {"taskId": ref.task_id}}
        if "result" in task:
            return {**task["result"], "_meta": {**task["result"].get("_meta", {}), **related}}
        # cancelled: no tool result exists; the version asks for a successful answer that says so
        return {"content": [{"type": "text", "text": task["statusMessage"]}], "isError": True, "_meta": related}

    async def _list(self, ctx: ServerRequestContext[Any, Any], params: dict[str, Any]) -> dict[str, Any]:
        """The caller's chat tasks, newest first, a page at a time (`nextCursor`)."""
        app = app_state(ctx).for_http(ctx.request)
        cursor = params.get("cursor")
        try:
            after = Position.parse(cursor) if isinstance(cursor, str) else None
        except ValueError:
            raise MCPError(INVALID_PARAMS, f"Invalid cursor: {cursor!r}") from None
        try:
            records = await app.store.page(principal=app.principal, status=None, limit=LIST_PAGE, after=after)
            tasks = []
            for record in records:
                ref = self._table.started(record)
                task = await self._table.read(app, ref) if ref is not None else None
                if task is not None:
                    tasks.append(_legacy(task))
        except RegistryUnavailable as exc:
            raise MCPError(INTERNAL_ERROR, f"Failed to list tasks: {exc} {exc.fix}") from exc
        page: dict[str, Any] = {"tasks": tasks}
        if len(records) == LIST_PAGE:
            page["nextCursor"] = str(Position(records[-1].created_at, records[-1].id))
        return page

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Stops the generation (its upstream stream closed at once); the task as it then is.

        -32602 for a task already ended, as that version asks. A job generated by another live
        process cannot be reached from here: its task is answered as it stands, still working.
        """
        app = app_state(ctx).for_http(ctx.request)
        ref = self._ref(params)
        task = await self._table.read_or_fail(app, ref)
        if task["status"] != "working":
            raise MCPError(INVALID_PARAMS, TERMINAL)
        if not await self._table.stop(app, ref):
            logger.info("tasks/cancel of %s, which this process does not generate: it goes on", ref.task_id)
        return _legacy(await self._table.read_or_fail(app, ref))


def _declares(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this session speaks 2025-11-25 and its client declared `capabilities.tasks` at `initialize`."""
    client = ctx.session.client_params
    return ctx.session.protocol_version == VERSION and client is not None and client.capabilities.tasks is not None


def _advertised(result: HandlerResult, params: Mapping[str, Any] | None) -> HandlerResult:
    """The `initialize` result with `capabilities.tasks`, when it settles on 2025-11-25 for a client
    that declared tasks: nothing changes for one that did not."""
    capabilities = (params or {}).get("capabilities")
    declared = isinstance(capabilities, dict) and isinstance(capabilities.get("tasks"), dict)
    if not declared or not isinstance(result, dict) or result.get("protocolVersion") != VERSION:
        return result
    capabilities = dict(result.get("capabilities") or {})
    return {**result, "capabilities": {**capabilities, "tasks": CAPABILITY}}


def _with_execution(result: HandlerResult, task_tools: frozenset[str]) -> HandlerResult:
    if not isinstance(result, dict):
        return result
    tools = [
        {**tool, "execution": EXECUTION} if isinstance(tool, dict) and tool.get("name") in task_tools else tool
        for tool in result.get("tools") or []
    ]
    return {**result, "tools": tools}


def _legacy(task: dict[str, Any]) -> dict[str, Any]:
    """A 2026 task as the 2025-11-25 `Task`: its own field names, and `failed` for an `isError` result."""
    status = task["status"]
    if status == "completed" and task.get("result", {}).get("isError"):
        status = "failed"
    return {
        "taskId": task["taskId"],
        "status": status,
        "statusMessage": task["statusMessage"],
        "createdAt": task["createdAt"],
        "lastUpdatedAt": task["lastUpdatedAt"],
        "ttl": task["ttlMs"],
        "pollInterval": task["pollIntervalMs"],
    }
