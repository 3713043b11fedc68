"""The upstream side: an async client of the GLM HTTP API v4. Nothing in here knows about MCP."""

from glm_mcp.glm.auth import AuthMode, Credentials
from glm_mcp.glm.client import GLMClient, open_http_client
from glm_mcp.glm.errors import GLMAPIError, GLMError, GLMStreamError, GLMTransportError, MissingAPIKeyError
from glm_mcp.glm.retry import Attempts, RetryPolicy
from glm_mcp.glm.stream import StreamAccumulator

__all__ = [
    "Attempts",
    "AuthMode",
    "Credentials",
    "GLMAPIError",
    "GLMClient",
    "GLMError",
    "GLMStreamError",
    "GLMTransportError",
    "MissingAPIKeyError",
    "RetryPolicy",
    "StreamAccumulator",
    "open_http_client",
]
