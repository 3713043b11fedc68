"""The platform's error responses: an HTTP status plus a string business code."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any


class ApiError(Exception):
    """A request the emulator refuses, with the status and code the real service would use."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self, request_id: str | None) -> dict[str, Any]:
        """``{"error": {"code", "message"}}``, plus ``request_id`` when the caller sent one."""
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
        if request_id:
            body["request_id"] = request_id
        return body


def bad_request(message: str) -> ApiError:
    """The catch-all "illegal parameter" error (400 / 1210)."""
    return ApiError(400, "1210", message)


PLATFORM_ERRORS: dict[str, tuple[int, str]] = {
    "1000": (401, "Authentication failed."),
    "1001": (401, "Authorization header not received; cannot authenticate."),
    "1002": (401, "Invalid Authorization token."),
    "1003": (401, "Authorization token expired."),
    "1004": (401, "Authentication failed: the token could not be verified."),
    "1112": (429, "This account has been locked; please contact customer service to unlock it."),
    "1113": (429, "Insufficient balance or no resource package. Please recharge."),
    "1121": (429, "This account has been locked for irregular activity; please contact customer service."),
    "1302": (429, "API request concurrency too high: reduce concurrency or contact customer service to raise it."),
    "1303": (429, "API request frequency too high: reduce the request rate or contact customer service to raise it."),
    "1304": (429, "The daily call limit for this API has been reached. Your limit will reset at {reset}"),
    "1305": (429, "The service may be temporarily overloaded, please try again later."),
    "1308": (429, "Usage limit reached for 5 hour. Your limit will reset at {reset}"),
    "1310": (429, "Weekly/Monthly Limit Exhausted. Your limit will reset at {reset}"),
    "1210": (400, "Invalid API parameters, please check the documentation."),
    "1211": (400, "Model not found: {model}"),
    "1212": (400, "The model {model} does not support this call method."),
    "1213": (400, "A required parameter was not received."),
    "1214": (400, "Illegal messages parameter."),
    "1215": (400, "Conflicting parameters: do_sample and temperature cannot be combined this way."),
    "1220": (403, "You do not have permission to access this API."),
    "1261": (400, "Prompt exceeds max length."),
    "1301": (400, "The input or generated content may contain unsafe or sensitive content."),
    "500": (500, "Internal server error."),
    "1200": (500, "Service error, please try again later."),
    "1230": (500, "API call process error."),
    "1234": (500, "Network error, error id: {error_id}, please contact customer service."),
}
"""Every business code the emulator can answer on request: HTTP status and message template."""

_RESETS: dict[str, timedelta] = {"1308": timedelta(hours=5), "1310": timedelta(days=7)}
"""How far away the reset time quoted by a usage-cap error is; 1304 resets at midnight."""


def platform_error(code: str, model: str | None = None, now: datetime | None = None) -> ApiError:
    """The error the platform answers for ``code`` (a key of ``PLATFORM_ERRORS``), message filled in.

    Quota errors quote a reset time the way the real ones do, since clients show or parse it.
    """
    status, template = PLATFORM_ERRORS[code]
    now = now or datetime.now()
    if code == "1304":
        reset = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
    else:
        reset = now + _RESETS.get(code, timedelta())
    message = template.format(
        model=model or "(none given)",
        reset=reset.strftime("%Y-%m-%d %H:%M:%S"),
        error_id=now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8),
    )
    return ApiError(status, code, message)
