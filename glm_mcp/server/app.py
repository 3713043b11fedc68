"""Building the MCP server: its identity, its lifespan (the pooled GLM client) and its tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from glm_mcp import __version__
from glm_mcp.config import Settings
from glm_mcp.glm import GLMClient, open_http_client
from glm_mcp.jobs import JobRegistry
from glm_mcp.server.state import AppState
from glm_mcp.server.tools import register_tools

INSTRUCTIONS = (
    "Tools for the GLM models of the Zhipu / Z.ai open platform. `chat` asks a model and returns its "
    "answer; `web_search_chat` answers from a live web search with cited sources; `submit_async` starts "
    "a long chat as a background job and `get_result` fetches its outcome."
)


def create_server(settings: Settings) -> MCPServer[AppState]:
    """The MCP server for `settings`; the GLM client is opened when the server starts serving."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[AppState]:
        async with (
            open_http_client(
                settings.base_url,
                timeout=settings.timeout,
                connect_timeout=settings.connect_timeout,
                headers=settings.request_headers,
            ) as http,
            anyio.create_task_group() as background,
        ):
            glm = GLMClient(http, settings.credentials)
            yield AppState(settings=settings, glm=glm, jobs=JobRegistry(glm, background))
            background.cancel_scope.cancel()  # jobs still running end with the server

    server: MCPServer[AppState] = MCPServer(
        "glm-mcp",
        title="GLM (Zhipu / Z.ai)",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/glm-mcp/glm-mcp",
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
    )
    register_tools(server)
    return server
