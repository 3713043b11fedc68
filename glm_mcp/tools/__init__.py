"""The tools, one room each: a module per tool or small family holds its arguments, handler, result model
and `ToolSpec`, and `TOOLS` lists them, one row per tool, in the order clients list them.

| room | tools |
|---|---|
| `chat.py` | chat, web_search_chat, submit_async |
| `jobs.py` | get_result, list_jobs, list_conversations |
| `search.py` | web_search, read_url |
| `media.py` | generate_image, generate_video |
| `account.py` | list_models, usage |

What the rooms share: `arguments.py` (argument field groups, the request id), `functions.py` (function
calling), `answer.py` (a model's answer as a result, and the typed notes a result carries),
`job_result.py` (a job as a result), `accounting.py` (every call's cost), `media_files.py` (the
platform's files) and `workspace/` (files, roots, conversations). A room imports no other room. Adding a
tool is one new module and one row here; the plumbing (`glm_mcp.server`) knows none of them by name.
"""

from mcp.server.mcpserver.tools import Tool

from glm_mcp.server.registration import ToolSpec, register
from glm_mcp.tools import account, chat, jobs, media, search

__all__ = ["TOOLS", "build_tools", "selected"]

TOOLS: tuple[ToolSpec, ...] = (
    chat.CHAT,
    chat.WEB_SEARCH_CHAT,
    chat.SUBMIT_ASYNC,
    jobs.GET_RESULT,
    jobs.LIST_JOBS,
    jobs.LIST_CONVERSATIONS,
    search.WEB_SEARCH,
    search.READ_URL,
    media.GENERATE_IMAGE,
    media.GENERATE_VIDEO,
    account.LIST_MODELS,
    account.USAGE,
)
"""Every tool the server offers, in the order clients list them, each in its toolset (GLM_MCP_TOOLSETS)."""


def selected(toolsets: tuple[str, ...] | None = None) -> tuple[ToolSpec, ...]:
    """The rows of `toolsets` (all of them when None)."""
    return tuple(spec for spec in TOOLS if toolsets is None or spec.toolset in toolsets)


def build_tools(toolsets: tuple[str, ...] | None = None) -> list[Tool]:
    """The SDK tools of `toolsets` (all of them when None)."""
    return [register(spec) for spec in selected(toolsets)]
