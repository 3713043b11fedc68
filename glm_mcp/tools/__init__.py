"""The tools, one room each: a module per tool or small family holds its arguments, handler, result model
and `ToolSpec`, and `table.TOOLS` lists them, one row per tool, in the order clients list them.

| room | tools |
|---|---|
| `chat.py` | chat, web_search_chat, submit_async |
| `jobs.py` | get_result, list_jobs, list_conversations |
| `search.py` | web_search, read_url |
| `media.py` | generate_image, generate_video |
| `account.py` | list_models, usage |
| `batch.py` | batch |

What the rooms share: `arguments.py` (argument field groups, the request id), `functions.py` (function
calling), `answer.py` (a model's answer as a result, and the typed notes a result carries),
`job_result.py` (a job as a result), `batch_result.py` (a batch job as a result), `accounting.py` (every
call's cost), `media_files.py` (the platform's files) and `workspace/` (files, roots, conversations). A room
imports no other room. Adding a tool is one new module and one row in `table.py` (then
`scripts/sync-manifests`); the plumbing (`glm_mcp.server`) knows none of them by name.

A server starts without importing a room: it lists the tools from `LISTING_FILE` (what the table says of
each, its schemas made once), made true for its configuration here (`build_tools`), and imports the table on
its first call (`tool_table`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm_mcp.server.registration import ListedTool, ToolTable, register

if TYPE_CHECKING:
    from mcp.server.mcpserver.tools import Tool

    from glm_mcp.config import Settings
    from glm_mcp.server.registration import ToolSpec

__all__ = ["LISTING_FILE", "build_tools", "files_offered", "listing", "tool_table"]

LISTING_FILE = Path(__file__).with_name("listing.json")
"""Every tool as `listing()` makes it from the table: written by scripts/sync-manifests, checked by
tests/test_tools.py, read at start instead of importing the rooms and building their models (cold start)."""


def listing() -> list[dict[str, Any]]:
    """Every tool of the table listed (`ListedTool`), its schemas made from its models: what `LISTING_FILE` holds."""
    return [ListedTool.of(spec).to_json() for spec in _table()]


def tool_table(toolsets: tuple[str, ...] | None = None) -> ToolTable:
    """The tools of `toolsets` (all of them when None), listed from `LISTING_FILE` (made from the table when
    there is none); their rooms are imported on the first call."""
    listed = json.loads(LISTING_FILE.read_text()) if LISTING_FILE.exists() else listing()
    tools = (ListedTool.from_json(tool) for tool in listed)
    return ToolTable([tool for tool in tools if toolsets is None or tool.toolset in toolsets], _table)


def files_offered(settings: Settings, *, over_http: bool) -> bool:
    """Whether `files` can be used on a server so configured: over stdio always, over HTTP only with GLM_FILES_ROOTS
    (so its tools' schemas offer it only then)."""
    return not over_http or bool(settings.files.roots)


def build_tools(tools: ToolTable, settings: Settings, *, files: bool = True) -> list[Tool]:
    """The SDK tools of `tools`, their schemas as `settings` make them true: naming the configured models, and
    without the `files` argument when `files` is off (HTTP without GLM_FILES_ROOTS, `files_offered`)."""
    models = settings.models
    values = {
        "GLM_MODEL": models.default,
        "GLM_VISION_MODEL": models.vision,
        "GLM_IMAGE_MODEL": models.image,
        "GLM_VIDEO_MODEL": models.video,
    }
    unoffered: tuple[str, ...] = ()
    if not files:
        from glm_mcp.tools.arguments import Attached

        unoffered = tuple(Attached.model_fields)
    return [register(listed, tools, unoffered=unoffered, values=values) for listed in tools.listed]


def _table() -> tuple[ToolSpec, ...]:
    from glm_mcp.tools.table import TOOLS

    return TOOLS
