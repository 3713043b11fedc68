"""Building the MCP server: its identity, its lifespan (the pooled GLM client, the job registry) and its tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from glm_mcp import __version__
from glm_mcp.config import Settings
from glm_mcp.jobs import JobRegistry, SQLiteJobStore
from glm_mcp.jobs.conversations import SQLiteConversationStore
from glm_mcp.server.icons import ICONS
from glm_mcp.server.state import AppState, principal_secret
from glm_mcp.server.tools import build_tools
from glm_mcp.upstream import open_glm_client

INSTRUCTIONS = (
    "Tools for the GLM models of the Zhipu / Z.ai open platform. `chat` asks a model and returns its "
    "answer; `web_search_chat` answers from a live web search with cited sources; `submit_async` starts "
    "a long chat as a background job and `get_result` fetches its outcome; `list_jobs` finds jobs again, "
    "also after a restart."
)
JOBS_FILE = "jobs.sqlite3"


def create_server(settings: Settings) -> MCPServer[AppState]:
    """The MCP server for `settings`; the GLM client is opened when the server starts serving."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[AppState]:
        store = SQLiteJobStore(settings.data_dir / JOBS_FILE, retention_days=settings.job_retention_days)
        async with (
            aclosing(store),
            open_glm_client(settings) as glm,
            anyio.create_task_group() as background,
        ):
            jobs = JobRegistry(glm, background, store)
            try:
                secret = await principal_secret(store, settings)
                conversations = SQLiteConversationStore(store, retention_days=settings.conversation_retention_days)
                yield AppState(
                    settings=settings,
                    glm=glm,
                    jobs=jobs,
                    store=store,
                    conversations=conversations,
                    principal_secret=secret,
                )
            finally:
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
    )
    return server
