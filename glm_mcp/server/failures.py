"""Turning whatever stopped a tool call into the `ToolFailure` a person (or an agent) can act on.

Each error kind knows what it means (`glm_mcp/errors.py`); this module only gives it the facts of
the configuration its advice may name, and treats anything else as a bug of ours.
"""

from __future__ import annotations

import logging

from glm_mcp.config import API_KEY_VARS, API_PATHS, Settings
from glm_mcp.errors import Advice, GenerationFailed, GlmMcpError
from glm_mcp.server.results import ToolFailure

logger = logging.getLogger("glm_mcp")


def advice_facts(settings: Settings, *, key_source: str | None = None, models: list[str] | None = None) -> Advice:
    """What advice may say about this configuration."""
    return Advice(
        key_var=key_source or API_KEY_VARS[0],
        region=settings.region,
        plan=settings.plan,
        base_url=settings.base_url,
        base_url_overridden=settings.base_url_from_env,
        api_paths={plan: path for plan, path in API_PATHS.items()},
        models=tuple(models) if models is not None else None,
    )


def describe_failure(
    exc: BaseException, settings: Settings, *, models: list[str] | None = None, key_source: str | None = None
) -> ToolFailure:
    """The `ToolFailure` for `exc`. `models` lists the key's models, for an unknown-model error."""
    partial_text: str | None = None
    if isinstance(exc, GenerationFailed):
        partial_text, exc = exc.partial_text or None, exc.cause
    if not isinstance(exc, GlmMcpError):
        logger.error("unexpected error in a tool call", exc_info=exc)
        return ToolFailure(
            error="internal_error",
            message=f"Unexpected server error ({type(exc).__name__}).",
            hint="This is a bug in glm-mcp; the server log on stderr has the details.",
            partial_text=partial_text,
        )
    facts = advice_facts(settings, key_source=key_source, models=models)
    failure = ToolFailure.model_validate(
        {
            "error": exc.error_kind,
            "message": exc.message,
            "hint": exc.advice(facts),
            "retryable": exc.retryable,
            **exc.details(),
        }
    )
    if partial_text:
        failure.partial_text = partial_text
    return failure
