"""Building the MCP server: its identity, its lifespan (the pooled GLM client, the job registry) and its tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

import anyio
from mcp.server.mcpserver import MCPServer

from glm_mcp import __version__
from glm_mcp.config import Settings
from glm_mcp.jobs import JobRunner, JobStore
from glm_mcp.jobs.open import JOBS_FILE, open_job_store
from glm_mcp.server.icons import ICONS
from glm_mcp.server.state import AppState, principal_secret
from glm_mcp.server.tasks import TasksExtension
from glm_mcp.server.tools import build_tools
from glm_mcp.upstream import open_glm_client

INSTRUCTIONS = (
    "Tools for the GLM models of the Zhipu / Z.ai open platform. `chat` asks a model and returns its "
    "answer; `web_search_chat` answers from a live web search with cited sources; `submit_async` starts "
    "a long chat as a background job and `get_result` fetches its outcome; `list_jobs` finds jobs again, "
    "also after a restart."
)
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
                yield AppState(settings=settings, glm=glm, jobs=jobs, store=store, principal_secret=secret)
            finally:
                _REGISTRIES.pop(this, None)
                await jobs.interrupt_running()  # recorded with their partial text, for after the restart
                background.cancel_scope.cancel()  # jobs still running end with the server

    server: MCPServer[AppState] = MCPServer(
        "glm-mcp",
        title="GLM (Zhipu / Z.ai)",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/glm-mcp/glm-mcp",
        icons=ICONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        tools=build_tools(),
        extensions=[TasksExtension()],
    )
    return server
