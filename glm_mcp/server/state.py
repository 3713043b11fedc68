"""What lives for the whole server process: the settings, the one pooled GLM client and the job registry."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from glm_mcp.config import Settings
from glm_mcp.glm import GLMAPIError, GLMClient, GLMError
from glm_mcp.jobs import JobRegistry, JobStore
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

    async def describe_failure(self, exc: BaseException) -> ToolFailure:
        """The failure report for `exc`; for an unknown model it lists the models the key can use."""
        models: list[str] | None = None
        cause = exc.__cause__ if isinstance(exc, GenerationFailed) else exc
        if isinstance(cause, GLMAPIError) and cause.code == "1211":
            models = await self._model_names()
        return describe_failure(exc, self.settings, models=models)

    async def _model_names(self) -> list[str] | None:
        with anyio.move_on_after(_MODEL_LIST_TIMEOUT_S):
            try:
                return sorted(model.id for model in await self.glm.list_models())
            except GLMError:
                return None
        return None
