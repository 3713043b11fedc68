"""What lives for the whole server process: the settings, the one pooled GLM client and the job registry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import anyio
from mcp.server.mcpserver import Context

from glm_mcp.config import Settings
from glm_mcp.glm import GLMAPIError, GLMClient, GLMError
from glm_mcp.jobs import JobRegistry, JobStore
from glm_mcp.server.auth import client_credentials
from glm_mcp.server.failures import GenerationFailed, describe_failure
from glm_mcp.server.results import ToolFailure

# An error report must not wait long on a second call to the platform.
_MODEL_LIST_TIMEOUT_S = 5.0


@dataclass(slots=True)
class AppState:
    settings: Settings
    glm: GLMClient
    jobs: JobRegistry
    store: JobStore
    caller_key: bool = False
    """Whether this request brought its own GLM key (HTTP, GLM_MCP_ALLOW_CLIENT_KEYS on)."""

    def for_request(self, ctx: Context) -> AppState:
        """The state one tool call works with: the server's key, or the caller's own when it sent one."""
        credentials = client_credentials(ctx.headers, self.settings)
        if credentials is None:
            return self
        return dataclasses.replace(self, glm=self.glm.with_credentials(credentials), caller_key=True)

    async def describe_failure(self, exc: BaseException) -> ToolFailure:
        """The failure report for `exc`; for an unknown model it lists the models the key can use."""
        models: list[str] | None = None
        cause = exc.__cause__ if isinstance(exc, GenerationFailed) else exc
        if isinstance(cause, GLMAPIError) and cause.code == "1211":
            models = await self._model_names()
        key = self.glm.credentials
        return describe_failure(exc, self.settings, models=models, key_source=key.source if key else None)

    async def _model_names(self) -> list[str] | None:
        with anyio.move_on_after(_MODEL_LIST_TIMEOUT_S):
            try:
                return sorted(model.id for model in await self.glm.list_models())
            except GLMError:
                return None
        return None
