"""The composition root: the MCP server made of the plumbing (`glm_mcp.server`), the tool table
(`glm_mcp.tools`) and the tasks extensions, with its identity, lifespan, the models resource and the media resources
(`server/media.py`: the images and videos the tools made)."""

from __future__ import annotations

import json
from typing import cast

from mcp.server.mcpserver import Context, MCPServer

from glm_mcp import __version__
from glm_mcp.config import Settings
from glm_mcp.jobs.open import JOBS_FILE
from glm_mcp.server.icons import ICONS
from glm_mcp.server.media import serve_media
from glm_mcp.server.state import AppState, lifespan
from glm_mcp.server.tasks import TasksExtension, TaskTable
from glm_mcp.server.tasks_2025 import LegacyTasks
from glm_mcp.tools import build_tools, files_offered, tool_table

INSTRUCTIONS = """GLM models (Zhipu / Z.ai) as tools.
- chat: ask a model (second opinion, draft, translation, an image with a vision model); web_search_chat: an answer \
from a live web search, with its sources.
- A call waits up to wait_seconds (default {wait:g}). A longer answer comes back with status "running", a job_id, \
the text so far and, in `next`, the exact get_result call that gets the rest: make it. Clients that speak MCP \
tasks poll instead, with no get_result needed.
- submit_async starts a chat as a platform job and returns a task_id at once; get_result waits for it.
- {files}Each answer has a conversation_id: pass it to \
continue that conversation (it survives restarts); list_conversations finds them. A long answer comes in pages: \
get_result with read_more and next_offset reads on.
- list_jobs finds job ids again, also after a restart. Errors say what went wrong and what to do."""
_FILES_LINE = "files: paths or globs the server reads and sends (no pasting). "
"""The instructions' word on `files`, left out where the server does not offer them (`tools.files_offered`)."""
MODELS_URI = "glm://models{?kind}"
"""The models resource: a template only because the SDK gives a request's context (its key) to templates alone."""
__all__ = ["INSTRUCTIONS", "JOBS_FILE", "MODELS_URI", "create_server"]


def create_server(settings: Settings, *, over_http: bool = False) -> MCPServer[AppState]:
    """The MCP server for `settings`, to be served over stdio (or in process) or, `over_http`, over HTTP, where the
    server's disk is not the caller's: its tools offer `files` there only with GLM_FILES_ROOTS. The GLM client is
    opened when the server starts serving."""
    tools = tool_table(settings.server.toolsets)
    tasks = TaskTable(tools)
    files = files_offered(settings, over_http=over_http)
    server: MCPServer[AppState] = MCPServer(
        "glm-mcp",
        title="GLM (Zhipu / Z.ai)",
        version=__version__,
        instructions=INSTRUCTIONS.format(wait=settings.results.wait_seconds, files=_FILES_LINE if files else ""),
        website_url="https://github.com/glm-mcp/glm-mcp",
        icons=ICONS,
        lifespan=lifespan(settings),
        log_level=settings.server.log_level,
        tools=build_tools(tools, settings, files=files),
        extensions=[TasksExtension(tasks)],
        middleware=[LegacyTasks(tasks)],  # switched on by the transports that have sessions (`tasks_2025.install`)
    )

    @server.resource(
        MODELS_URI,
        name="models",
        title="GLM models",
        description="The models this key can use, each with what it can do (the list_models tool's answer).",
        mime_type="application/json",
    )
    async def models(ctx: Context, kind: str = "") -> str:
        from glm_mcp.tools.account import model_list  # the room is imported when first needed, not at start

        state = cast(AppState, ctx.request_context.lifespan_context).for_request(ctx)
        return json.dumps((await model_list(state, kind or None)).structured(), ensure_ascii=False)

    serve_media(server)
    return server
