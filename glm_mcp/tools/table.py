"""The tool table: every tool the server offers, one row each, in the order clients list them.

Importing it imports every room; a server imports it on its first call, not at start (start lists the tools
from `glm_mcp.tools.LISTING_FILE`, made from this table).
"""

from glm_mcp.server.registration import ToolSpec
from glm_mcp.tools import account, batch, chat, jobs, media, search

__all__ = ["TOOLS"]

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
    batch.BATCH,
)
"""Every tool the server offers, in the order clients list them, each in its toolset (GLM_MCP_TOOLSETS)."""
