"""Every call's cost recorded: tokens and model, for the `usage` tool's report (`tools/account.py`).

A record belongs to the request's principal (the server's key, or a caller's own under
GLM_MCP_ALLOW_CLIENT_KEYS), so each caller's report shows only their own calls. Recording never fails a call:
when the registry cannot take it, the call's answer is what matters and the miss is logged.
"""

from __future__ import annotations

import logging

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.glm.types import Usage
from glm_mcp.jobs import ChatStream, Principal
from glm_mcp.jobs.usage import UsageRecord
from glm_mcp.server.state import AppState

__all__ = ["record", "record_stream"]

logger = logging.getLogger(__name__)


async def record(
    app: AppState,
    tool: str,
    model: str,
    usage: Usage | None = None,
    *,
    calls: int = 1,
    principal: Principal | None = None,
) -> None:
    """Add one call's cost to the registry; a registry that cannot take it is logged, never raised."""
    entry = UsageRecord(
        principal=principal or app.principal,
        tool=tool,
        model=model,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cached_tokens=usage.cached_tokens if usage else 0,
        calls=calls,
    )
    try:
        await app.usage.record(entry)
    except RegistryUnavailable as exc:
        logger.warning("the usage of a %s call is not recorded: %s %s", tool, exc, exc.fix)


async def record_stream(app: AppState, stream: ChatStream) -> None:
    """The tokens a chat stream cost, once it has ended (also when stopped: what was generated was paid for)."""
    completion = stream.completion or stream.accumulator.completion()
    if completion.usage is not None or stream.completion is not None:
        await record(app, stream.kind, completion.model or stream.model, completion.usage, principal=stream.principal)
