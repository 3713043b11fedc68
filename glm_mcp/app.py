"""Building the MCP server: its identity, its lifespan (the pooled GLM client, the job registry) and its tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from weakref import WeakKeyDictionary

import anyio
from mcp.server.mcpserver import Context, MCPServer

from glm_mcp import __version__
from glm_mcp.config import Settings
from glm_mcp.jobs import JobRunner, JobStore
from glm_mcp.jobs.open import JOBS_FILE, open_job_store, record_stores
from glm_mcp.server.icons import ICONS
from glm_mcp.server.state import AppState, principal_secret
from glm_mcp.server.tasks import TasksExtension
from glm_mcp.server.tools import build_tools
from glm_mcp.tools.media import model_list
from glm_mcp.upstream import open_glm_client

INSTRUCTIONS = """GLM models (Zhipu / Z.ai) as tools.
- chat: ask a model (second opinion, draft, translation, an image with a vision model); web_search_chat: an answer \
from a live web search, with its sources.
- A call waits up to wait_seconds (default {wait:g}). A longer answer comes back with status "running", a job_id, \
the text so far and, in `next`, the exact get_result call that gets the rest: make it. Clients that speak MCP \
tasks poll instead, with no get_result needed.
- submit_async starts a chat as a platform job and returns a task_id at once; get_result waits for it.
- files: paths or globs the server reads and sends (no pasting). Each answer has a conversation_id: pass it to \
continue that conversation (it survives restarts); list_conversations finds them. A long answer comes in pages: \
get_result with read_more and next_offset reads on.
- list_jobs finds job ids again, also after a restart. Errors say what went wrong and what to do."""
MODELS_URI = "glm://models{?kind}"
"""The models resource: a template only because the SDK gives a request's context (its key) to templates alone."""
__all__ = ["JOBS_FILE", "create_server", "registry_of"]

_REGISTRIES: WeakKeyDictionary[MCPServer[Any], JobStore] = WeakKeyDictionary()
"""The job store each serving server has open, for the HTTP readiness probe (which has no MCP context)."""


def registry_of(server: MCPServer[Any]) -> JobStore | None:
    """The job store `server` has open while it serves; None before and after."""
    return _REGISTRIES.get(server)


def create_server(settings: Settings) -> MCPServer[AppState]:
    """The MCP server for `settings`; the GLM client is opened when the server starts serving."""

    @asynccontextmanager
    async def lifespan(this: MCPServer[Any]) -> AsyncIterator[AppState]:
        async with (
            open_job_store(settings) as store,
            open_glm_client(settings) as glm,
            anyio.create_task_group() as background,
        ):
            jobs = JobRunner(background, store)
            _REGISTRIES[this] = store
            try:
                secret = await principal_secret(store, settings)
                conversations, usage = record_stores(settings, store)
                yield AppState(
                    settings=settings,
                    glm=glm,
                    jobs=jobs,
                    store=store,
                    conversations=conversations,
                    usage=usage,
                    principal_secret=secret,
                )
            finally:
                _REGISTRIES.pop(this, None)
                await jobs.interrupt_running()  # recorded with their partial text, for after the restart
                background.cancel_scope.cancel()  # jobs still running end with the server

    server: MCPServer[AppState] = MCPServer(
        "glm-mcp",
        title="GLM (Zhipu / Z.ai)",
        version=__version__,
        instructions=INSTRUCTIONS.format(wait=settings.wait_seconds),
        website_url="https://github.com/glm-mcp/glm-mcp",
        icons=ICONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        tools=build_tools(settings.toolsets),
        extensions=[TasksExtension()],
    )

    @server.resource(
        MODELS_URI,
        name="models",
        title="GLM models",
        description="The models this key can use, each with what it can do (the list_models tool's answer).",
        mime_type="application/json",
    )
    async def models(ctx: Context, kind: str = "") -> str:
        state = cast(AppState, ctx.request_context.lifespan_context).for_request(ctx)
        return json.dumps((await model_list(state, kind or None)).structured(), ensure_ascii=False)

    return server
