"""What can go wrong talking to the GLM API: the `GLMError` branch of glm-mcp's one error hierarchy.

Each kind says what it means (its `kind`, whether a retry can help, its advice); the tree and
what the client receives for each are stated in `glm_mcp/errors.py`. Nothing here knows MCP.
"""

from __future__ import annotations

from typing import ClassVar

from glm_mcp.errors import Advice, ErrorKind, GlmMcpError

RETRYABLE_CODES = frozenset({"1302", "1303", "1305", "500", "1200", "1230", "1234"})
"""Concurrency and frequency limits, overload, and the platform's internal errors."""

FINAL_CODES = frozenset(
    {"1000", "1001", "1002", "1003", "1004", "1112", "1113", "1121", "1210", "1211", "1212", "1213", "1214"}
    | {"1215", "1220", "1261", "1301", "1304", "1308", "1309", "1310"}
)
"""Authentication, billing, quota, bad requests and content blocks: the same request fails again."""


class GLMError(GlmMcpError):
    """Anything that stopped a GLM call from producing an answer."""

    kind: ClassVar[ErrorKind] = "upstream_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.attempts = 1
        """How many times the request was sent before giving up (set by the client's retry loop)."""

    def details(self) -> dict[str, object]:
        return {"attempts": self.attempts}


class GLMAPIError(GLMError):
    """The platform answered with an error: an HTTP error status, or an error frame inside a stream.

    `code` is the platform's business code as a string ("1211", "1113", …): the same HTTP status
    covers very different causes (429 is both "top up your balance" and "slow down"), so the code
    is what decides advice and retries.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        should_retry: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.should_retry = should_retry
        """The platform's own `x-should-retry` verdict, when it sent one."""
        self.retry_after = retry_after
        """Seconds the platform asked us to wait (`Retry-After`), when it said."""

    def __str__(self) -> str:
        code = f" code {self.code}" if self.code else ""
        return f"GLM API error (HTTP {self.status_code}{code}): {self.message}"

    def details(self) -> dict[str, object]:
        return {
            **super().details(),
            "http_status": self.status_code,
            "glm_code": self.code,
            "request_id": self.request_id,
        }

    def advice(self, facts: Advice) -> str | None:
        """Advice by business code: the same HTTP status covers causes that need opposite fixes."""
        code = self.code or ""
        if self.status_code == 404 and code in ("", "404"):  # no route: a bare 404, or a JSON one
            return _not_found(facts, api_error_body=self.code is not None)
        if code in _KEY_REFUSED:
            # With GLM_BASE_URL set, GLM_REGION chooses nothing: advice about it would send the user the wrong way.
            platform = (
                f"the platform at GLM_BASE_URL ({facts.base_url})"
                if facts.base_url_overridden
                else f"this platform (GLM_REGION is {facts.region})"
            )
            return (
                f"The API key from {facts.key_var} was refused: it may be mistyped, revoked or expired, or belong "
                f"to another platform than {platform}. Put a valid key in {facts.key_var} and restart."
            )
        if code == "1113":
            other = "coding" if facts.plan == "general" else "general"
            switch = (
                f"make GLM_BASE_URL end with {facts.api_paths.get(other, '')}"
                if facts.base_url_overridden
                else f"set GLM_PLAN={other} (now {facts.plan})"
            )
            return (
                "The account has no balance for this call, or the key belongs to the other plan's endpoint. "
                f"Top up on the platform; or, if your key is for the {other} plan, {switch} and restart."
            )
        if code == "1211":
            listing = f" Models this key can use: {', '.join(facts.models)}." if facts.models else ""
            return f"The model name is unknown. Pass a valid `model`, or change GLM_MODEL.{listing}"
        hint = _HINTS_BY_CODE.get(code)
        if hint is not None:
            return hint
        return "The platform had a temporary problem; try again." if self.retryable else None

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: rate limits, overload and server faults.

        Decided by the business code first: HTTP 429 also means "insufficient balance" (1113),
        which no retry can fix, whatever the status or an `x-should-retry` header say.
        """
        if self.code in FINAL_CODES:
            return False
        if self.should_retry is not None:
            return self.should_retry
        if self.code in RETRYABLE_CODES:
            return True
        return self.status_code >= 500 or self.status_code == 408


class GLMTransportError(GLMError):
    """The request did not get an answer: connection refused or cut, a timeout.

    `maybe_delivered` says whether the upstream may have received (and billed) the request,
    which decides whether re-sending it could create a duplicate job.
    """

    kind: ClassVar[ErrorKind] = "upstream_unreachable"

    def __init__(self, message: str, *, maybe_delivered: bool) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered

    @property
    def retryable(self) -> bool:
        return True

    def advice(self, facts: Advice) -> str:
        return f"Check the network, a proxy (HTTPS_PROXY) or GLM_BASE_URL (now {facts.base_url}), then try again."


class GLMProtocolError(GLMTransportError):
    """The API answered, but not with its JSON (or not with an event stream): a proxy's page, another
    service at GLM_BASE_URL, a truncated body. The request may have been received."""

    kind: ClassVar[ErrorKind] = "upstream_protocol_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, maybe_delivered=True)

    def advice(self, facts: Advice) -> str:
        return (
            "The GLM API (or something in front of it) answered with what no GLM answer looks like. Try again; "
            f"if it persists, check GLM_BASE_URL (now {facts.base_url}) and any proxy between."
        )


class GLMFileRefusedError(GLMError):
    """A file an answer named (a generated image's or video's URL) that glm-mcp would not fetch or keep: on an address
    an answer may not send it to (loopback, private, link-local, …), or a body that is not what was asked for
    (`glm.fetch`)."""

    kind: ClassVar[ErrorKind] = "upstream_protocol_error"

    def __init__(self, url: str, reason: str) -> None:
        shown = url if len(url) <= 200 else url[:199] + "…"
        super().__init__(f"the GLM API named the file {shown}, which glm-mcp did not take: {reason}; nothing was saved")
        self.url = url

    def advice(self, facts: Advice) -> str:
        return (
            "glm-mcp fetches a file an answer names only from a public address or from GLM_BASE_URL's own host and "
            "port, and keeps it only if it is a PNG, JPEG, WebP or GIF image (a video: MP4, QuickTime or WebM). The "
            "GLM API does not answer otherwise: "
            f"check that GLM_BASE_URL (now {facts.base_url}) and any proxy between are what you expect."
        )


class GLMSilentError(GLMTransportError):
    """The API was reached, then sent nothing for the read timeout (GLM_TIMEOUT): it may still be working."""

    kind: ClassVar[ErrorKind] = "upstream_timeout"

    def __init__(self, base_url: str, seconds: float | None) -> None:
        waited = f"{seconds:g} s" if seconds else "the read timeout"
        super().__init__(self._silence(base_url, waited), maybe_delivered=True)
        self.seconds = seconds

    @staticmethod
    def _silence(base_url: str, waited: str) -> str:
        return f"the GLM API at {base_url} was reached, then sent nothing for {waited} (GLM_TIMEOUT)"

    def advice(self, facts: Advice) -> str:
        return (
            "The platform may be overloaded or the model slow to start: try again, perhaps with a faster model; "
            "if long silences are expected, raise GLM_TIMEOUT."
        )


class GLMKeptAliveError(GLMSilentError):
    """A stream kept open with keep-alives (SSE comments, empty chunks) and nothing else for the read timeout.

    The keep-alives reset the read timeout, so only GLM_CALL_DEADLINE would end such a stream otherwise, with the
    job and its concurrency slot held all that time; this treats it as silent.
    """

    @staticmethod
    def _silence(base_url: str, waited: str) -> str:
        return (
            f"the GLM API at {base_url} kept the stream open but sent nothing but keep-alives (comments or empty "
            f"chunks) for {waited} (GLM_TIMEOUT): no text, reasoning or tool call; the stream was stopped"
        )

    def advice(self, facts: Advice) -> str:
        return (
            "The platform may be overloaded or the model stuck: try again, perhaps with a faster model; if the "
            "model may really go that long without writing anything, raise GLM_TIMEOUT."
        )


class GLMStreamError(GLMError):
    """A streamed answer broke off: it ended without `[DONE]`, or the connection was cut mid-stream."""

    kind: ClassVar[ErrorKind] = "stream_broken"
    hint: ClassVar[str | None] = "The answer was cut off by the connection; try again."

    @property
    def retryable(self) -> bool:
        return True


class GLMAnswerCutError(GLMError):
    """The stream ended normally but the platform stopped the answer: `finish_reason` network_error
    (it failed mid-generation) or sensitive (its content filter cut the answer).
    """

    def __init__(self, message: str, *, finish_reason: str) -> None:
        super().__init__(message)
        self.finish_reason = finish_reason

    @property
    def error_kind(self) -> ErrorKind:
        return "content_blocked" if self.finish_reason == "sensitive" else "answer_cut"

    @property
    def retryable(self) -> bool:
        return self.finish_reason == "network_error"

    def advice(self, facts: Advice) -> str:
        if self.finish_reason == "sensitive":
            return "The platform's content filter stopped the answer; rephrase the request."
        return "The platform failed mid-answer; try again."

    @classmethod
    def of(cls, finish_reason: str | None) -> GLMAnswerCutError | None:
        """The error for an answer that ended with `finish_reason`, or None when the answer is usable.

        The one rule for every path that yields a completion (streamed, JSON, async result).
        """
        message = _CUT_MESSAGES.get(finish_reason or "")
        return None if message is None else cls(message, finish_reason=finish_reason or "")


_CUT_MESSAGES = {
    "network_error": "The platform stopped generating because of a network error on its side; the answer is "
    "incomplete.",
    "sensitive": "The platform's content filter stopped the answer; it is incomplete.",
}
UNUSABLE_FINISH_REASONS = frozenset(_CUT_MESSAGES)
"""Finish reasons after which the answer is not usable as it is."""


class MissingAPIKeyError(GLMError):
    """No API key is configured, so no call can be authenticated."""

    kind: ClassVar[ErrorKind] = "missing_api_key"

    def advice(self, facts: Advice) -> str:
        return (
            "Set GLM_API_KEY (or ZAI_API_KEY / ZHIPUAI_API_KEY) in the environment your MCP client starts this "
            'server with (the "env" block of its config), then restart the server. To try the tools without a '
            "key, run `glm-mcp demo`, which answers from the bundled GLM emulator."
        )


class GLMDeadlineError(GLMError):
    """The whole call (queueing, retries, the entire stream) outlived its deadline (`GLM_CALL_DEADLINE`).

    An upstream that keeps a stream alive with comments or empty chunks never trips the read
    timeout; this ends it, and frees its concurrency slot.
    """

    kind: ClassVar[ErrorKind] = "deadline_exceeded"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the GLM call did not finish within GLM_CALL_DEADLINE ({seconds:g} s) and was stopped; "
            "the upstream kept it open without completing it"
        )
        self.seconds = seconds

    def advice(self, facts: Advice) -> str:
        return (
            f"The API kept the call open for GLM_CALL_DEADLINE ({self.seconds:g} s) without finishing it. Try again "
            "later; if answers really take that long, raise GLM_CALL_DEADLINE."
        )


class GLMLimitError(GLMError):
    """The upstream sent more than a size limit allows (a JSON body, one stream event, a whole answer).

    The connection is closed rather than read to its end: an upstream that sends without end
    (or a small compressed body that inflates to gigabytes) cannot exhaust the process.
    """

    kind: ClassVar[ErrorKind] = "upstream_too_large"

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit
        """The setting (or constant) that was exceeded, e.g. GLM_MAX_RESPONSE_BYTES."""

    def advice(self, facts: Advice) -> str:
        if self.limit.startswith("GLM_"):
            return f"Ask for a shorter answer (max_tokens); if such answers are expected, raise {self.limit}."
        return "The API sent something no GLM answer looks like; check GLM_BASE_URL and any proxy."


_KEY_REFUSED = frozenset({"1000", "1001", "1002", "1003", "1004"})
_HINTS_BY_CODE: dict[str, str] = {
    "1212": "This model does not support this kind of call (for example images on a text model); pick another model.",
    **dict.fromkeys(
        ("1210", "1213", "1214", "1215"), "The platform rejected the request's parameters; the message says which."
    ),
    "1220": "This key has no permission for this API or model; check the key's permissions on the platform.",
    "1261": "The prompt is longer than the model's context window; shorten it or use a long-context model "
    "(glm-4-long).",
    "1301": "The platform's content filter blocked the input or the answer; rephrase the request.",
    **dict.fromkeys(
        ("1302", "1303"), "Rate limit: too many requests at once or too fast. Wait a little and try again."
    ),
    "1305": "The model is overloaded right now; try again shortly or use another model.",
    **dict.fromkeys(("1304", "1308", "1309", "1310"), "A usage quota is used up; the message says when it resets."),
    **dict.fromkeys(("1112", "1121"), "The account is locked; contact the platform's support."),
}
"""Advice for the business codes that need no facts of the configuration."""


def _not_found(facts: Advice, *, api_error_body: bool) -> str:
    """A 404 for a route: almost always a GLM_BASE_URL without the API path, which every GLM endpoint ends with;
    with that path, a 404 without the API's error body (`{"error": {"code": …}}`) comes from another server."""
    general, coding = facts.api_paths.get("general", "/api/paas/v4"), facts.api_paths.get("coding", "")
    paths = f"{general} ({coding} for the GLM Coding Plan)" if coding else general
    if not facts.base_url_overridden:
        return f"The GLM API has no such endpoint at {facts.base_url}; a GLM base URL ends with {paths}."
    if not facts.base_url.endswith(tuple(facts.api_paths.values()) or (general,)):
        return (
            f"GLM_BASE_URL ({facts.base_url}) lacks the API path: it must end with {paths}, "
            f"e.g. {facts.base_url_with_api_path()}. Set it so and restart."
        )
    if not api_error_body:
        return (
            f"The server at GLM_BASE_URL ({facts.base_url}) is not the GLM API: the path is right, but it answered "
            "404 without the API's error body, so the host or port is wrong (or a proxy in between answered). "
            "Correct the host in GLM_BASE_URL, or unset it to reach the platform GLM_REGION names, and restart."
        )
    return f"The GLM API has no such endpoint at {facts.base_url}; a GLM base URL ends with {paths}."
