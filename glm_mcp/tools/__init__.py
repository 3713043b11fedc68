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

import json
from pathlib import Path

from mcp.server.mcpserver.tools import Tool

from glm_mcp.server.registration import ToolSchemas, ToolSpec, published_schemas, register
from glm_mcp.tools import account, chat, jobs, media, search

__all__ = ["SCHEMAS_FILE", "TOOLS", "build_tools", "schemas", "selected"]

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


SCHEMAS_FILE = Path(__file__).with_name("schemas.json")
"""Every tool's published schemas (`schemas()`), made once: scripts/sync-manifests writes them and
tests/test_tools.py checks they are what the models make. Start reads them instead of making them, so that
no model is built before a call needs it (cold start)."""


def schemas() -> dict[str, ToolSchemas]:
    """Every tool's published schemas, made from its models: what `SCHEMAS_FILE` holds."""
    return {spec.name: published_schemas(spec) for spec in TOOLS}


def build_tools(toolsets: tuple[str, ...] | None = None) -> list[Tool]:
    """The SDK tools of `toolsets` (all of them when None), with the schemas of `SCHEMAS_FILE` (a tool it lacks
    has its schemas made from its models)."""
    made: dict[str, ToolSchemas] = json.loads(SCHEMAS_FILE.read_text()) if SCHEMAS_FILE.exists() else {}
    return [register(spec, made.get(spec.name)) for spec in selected(toolsets)]
