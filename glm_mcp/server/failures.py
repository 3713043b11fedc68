"""Turning whatever stopped a tool call into advice a person (or an agent) can act on."""

from __future__ import annotations

import logging

from glm_mcp.config import API_KEY_VARS, API_PATHS, Plan, Settings
from glm_mcp.glm.errors import (
    GLMAnswerCutError,
    GLMAPIError,
    GLMError,
    GLMStreamError,
    GLMTransportError,
    MissingAPIKeyError,
)
from glm_mcp.server.arguments import ArgumentError
from glm_mcp.server.auth import ClientKeyError
from glm_mcp.server.results import ToolFailure

logger = logging.getLogger("glm_mcp")

_MISSING_KEY_HINT = (
    f"Set {API_KEY_VARS[0]} (or {' / '.join(API_KEY_VARS[1:])}) in the environment your MCP client starts "
    'this server with (the "env" block of its config), then restart the server. To try the tools without '
    "a key, run `glm-mcp demo`, which answers from the bundled GLM emulator."
)


class JobsNotSharedError(PermissionError):
    """list_jobs refused to a caller with its own key: the registry is shared by every caller."""


class UnknownJobError(LookupError):
    """get_result was given a job id this server does not know."""


class JobCancelledError(Exception):
    """The generation was stopped before it ended (the server is shutting down)."""


class SubmitUncertainError(Exception):
    """A submit that may have reached the platform but got no answer; it is not re-sent."""

    def __init__(self, request_id: str, cause: GLMTransportError) -> None:
        super().__init__(
            f"The submit may have reached the platform, but no answer came back ({cause.message}). It was not "
            "sent again, because a second submit would be a second paid job."
        )
        self.request_id = request_id
        self.attempts = cause.attempts


class GenerationFailed(Exception):
    """A generation that ended badly, with what the model had written by then (`__cause__` says why)."""

    def __init__(self, cause: BaseException, partial_text: str) -> None:
        super().__init__(str(cause))
        self.__cause__ = cause
        self.partial_text = partial_text


def describe_failure(
    exc: BaseException, settings: Settings, *, models: list[str] | None = None, key_source: str | None = None
) -> ToolFailure:
    """The `ToolFailure` for `exc`. `models` lists the key's models, for an unknown-model error."""
    if isinstance(exc, GenerationFailed) and exc.__cause__ is not None:
        failure = describe_failure(exc.__cause__, settings, models=models, key_source=key_source)
        failure.partial_text = exc.partial_text or None
        return failure
    failure = _describe(exc, settings, models, key_source)
    if isinstance(exc, GLMError):
        failure.attempts = exc.attempts
    return failure


def _describe(exc: BaseException, settings: Settings, models: list[str] | None, key_source: str | None) -> ToolFailure:
    match exc:
        case ArgumentError():
            return ToolFailure(
                error="invalid_argument",
                message=str(exc),
                field=exc.field,
                retryable=False,
                hint="Fix the argument and call again; nothing was sent to the GLM API.",
            )
        case MissingAPIKeyError():
            return ToolFailure(
                error="missing_api_key",
                message="No GLM API key is configured.",
                hint=_MISSING_KEY_HINT,
                retryable=False,
            )
        case GLMAPIError():
            return ToolFailure(
                error="upstream_error",
                message=exc.message,
                hint=_api_hint(exc, settings, models, key_source),
                http_status=exc.status_code,
                glm_code=exc.code,
                request_id=exc.request_id,
                retryable=exc.retryable,
            )
        case GLMTransportError():
            return ToolFailure(
                error="upstream_unreachable",
                message=exc.message,
                retryable=True,
                hint="Check the network, a proxy (HTTPS_PROXY) or GLM_BASE_URL "
                f"(now {settings.base_url}), then try again.",
            )
        case GLMStreamError():
            return ToolFailure(
                error="stream_broken",
                message=exc.message,
                retryable=True,
                hint="The answer was cut off by the connection; try again.",
            )
        case GLMAnswerCutError(finish_reason="sensitive"):
            return ToolFailure(
                error="content_blocked",
                message=exc.message,
                retryable=False,
                hint="The platform's content filter stopped the answer; rephrase the request.",
            )
        case GLMAnswerCutError():
            return ToolFailure(
                error="answer_cut",
                message=exc.message,
                retryable=True,
                hint="The platform failed mid-answer; try again.",
            )
        case ClientKeyError():
            return ToolFailure(error="missing_api_key", message=str(exc), retryable=False)
        case JobsNotSharedError():
            return ToolFailure(
                error="unavailable",
                message=str(exc),
                retryable=False,
                hint="Keep the job ids your calls return; get_result takes them.",
            )
        case UnknownJobError():
            return ToolFailure(
                error="unknown_job",
                message=str(exc),
                retryable=False,
                hint="Find your jobs with list_jobs; finished jobs are kept GLM_JOB_RETENTION_DAYS days.",
            )
        case SubmitUncertainError():
            return ToolFailure(
                error="submit_uncertain",
                message=str(exc),
                request_id=exc.request_id,
                attempts=exc.attempts,
                retryable=False,
                hint=f"Look for request id {exc.request_id} in the platform's console before submitting again; "
                "if the task exists there, use its id with get_result.",
            )
        case JobCancelledError():
            return ToolFailure(error="cancelled", message=str(exc), retryable=True, hint="Call again.")
        case GLMError():
            return ToolFailure(error="upstream_error", message=exc.message, retryable=False)
        case _:
            logger.error("unexpected error in a tool call", exc_info=exc)
            return ToolFailure(
                error="internal_error",
                message=f"Unexpected server error ({type(exc).__name__}).",
                hint="This is a bug in glm-mcp; the server log on stderr has the details.",
            )


def _api_hint(exc: GLMAPIError, settings: Settings, models: list[str] | None, key_source: str | None) -> str | None:
    code = exc.code or ""
    key_var = key_source or API_KEY_VARS[0]
    if exc.status_code == 404 and code in ("", "404"):  # no route: a bare 404, or a JSON one
        return _not_found_hint(settings)
    if code in {"1000", "1001", "1002", "1003", "1004"}:
        # With GLM_BASE_URL set, GLM_REGION chooses nothing: advice about it would send the user the wrong way.
        platform = (
            f"the platform at GLM_BASE_URL ({settings.base_url})"
            if settings.base_url_from_env
            else f"this platform (GLM_REGION is {settings.region})"
        )
        return (
            f"The API key from {key_var} was refused: it may be mistyped, revoked or expired, or belong to "
            f"another platform than {platform}. Put a valid key in {key_var} and restart."
        )
    if code == "1113":
        other: Plan = "coding" if settings.plan == "general" else "general"
        switch = (
            f"make GLM_BASE_URL end with {API_PATHS[other]}"
            if settings.base_url_from_env
            else f"set GLM_PLAN={other} (now {settings.plan})"
        )
        return (
            "The account has no balance for this call, or the key belongs to the other plan's endpoint. "
            f"Top up on the platform; or, if your key is for the {other} plan, {switch} and restart."
        )
    if code == "1211":
        listing = f" Models this key can use: {', '.join(models)}." if models else ""
        return f"The model name is unknown. Pass a valid `model`, or change GLM_MODEL.{listing}"
    if code == "1212":
        return "This model does not support this kind of call (for example images on a text model); pick another model."
    if code in {"1210", "1213", "1214", "1215"}:
        return "The platform rejected the request's parameters; the message says which."
    if code == "1220":
        return "This key has no permission for this API or model; check the key's permissions on the platform."
    if code == "1261":
        return (
            "The prompt is longer than the model's context window; shorten it or use a long-context model (glm-4-long)."
        )
    if code == "1301":
        return "The platform's content filter blocked the input or the answer; rephrase the request."
    if code in {"1302", "1303"}:
        return "Rate limit: too many requests at once or too fast. Wait a little and try again."
    if code == "1305":
        return "The model is overloaded right now; try again shortly or use another model."
    if code in {"1304", "1308", "1309", "1310"}:
        return "A usage quota is used up; the message says when it resets."
    if code in {"1112", "1121"}:
        return "The account is locked; contact the platform's support."
    if exc.retryable:
        return "The platform had a temporary problem; try again."
    return None


def _not_found_hint(settings: Settings) -> str:
    """A bare 404: almost always a GLM_BASE_URL without the API path, which every GLM endpoint ends with."""
    paths = f"{API_PATHS['general']} ({API_PATHS['coding']} for the GLM Coding Plan)"
    if settings.base_url_from_env and not settings.base_url.endswith(tuple(API_PATHS.values())):
        return (
            f"GLM_BASE_URL ({settings.base_url}) lacks the API path: it must end with {paths}, "
            f"e.g. {settings.base_url.rstrip('/')}{API_PATHS[settings.plan]}. Set it so and restart."
        )
    return f"The GLM API has no such endpoint at {settings.base_url}; a GLM base URL ends with {paths}."
