"""Turning whatever stopped a tool call into the `ToolFailure` a person (or an agent) can act on.

Each error kind knows what it means (`glm_mcp/errors.py`); this module only gives it the facts of
the configuration its advice may name, and treats anything else as a bug of ours.
"""

from __future__ import annotations

import logging
from typing import Annotated, ClassVar

from pydantic import Field

from glm_mcp.config import API_KEY_VARS, API_PATHS, Settings
from glm_mcp.errors import Advice, ErrorKind, GenerationFailed, GlmMcpError
from glm_mcp.server.result import Result, paragraphs, partial_answer

__all__ = ["ToolFailure", "advice_facts", "describe_failure"]

logger = logging.getLogger("glm_mcp")


class ToolFailure(Result):
    """Why a call failed and what to do; sent as `structuredContent` of an `isError` result (clients such
    as Claude Code show the model the text copy instead: it starts with what went wrong and what to do)."""

    FIRST: ClassVar[tuple[str, ...]] = ("error", "message", "hint")

    error: ErrorKind
    message: Annotated[str, Field(description="What went wrong.")]
    hint: str | None = Field(None, description="What to do about it.")
    field: str | None = Field(None, description="The argument at fault, for invalid_argument.")
    http_status: int | None = None
    glm_code: str | None = Field(None, description="The platform's error code, e.g. 1113 or 1211.")
    request_id: str | None = None
    retryable: bool | None = Field(None, description="Whether the same call may succeed if tried again later.")
    partial_text: str | None = Field(None, description="What the model had written before the failure.")
    attempts: int | None = Field(None, description="Requests sent to the platform before giving up.")
    estimated_cost: float | None = Field(None, description="What the call was estimated to cost (price table).")

    def to_text(self) -> str:
        details = ", ".join(
            f"{name} {value}"
            for name, value in (("HTTP", self.http_status), ("code", self.glm_code), ("request", self.request_id))
            if value
        )
        return paragraphs(
            f"Error: {self.message}" + (f" ({details})" if details else ""),
            self.hint or "",
            partial_answer(self.partial_text),
        )


def advice_facts(settings: Settings, *, key_source: str | None = None, models: list[str] | None = None) -> Advice:
    """What advice may say about this configuration."""
    return Advice(
        key_var=key_source or API_KEY_VARS[0],
        region=settings.upstream.region,
        plan=settings.upstream.plan,
        base_url=settings.upstream.base_url,
        base_url_overridden=settings.upstream.base_url_from_env,
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
