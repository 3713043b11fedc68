"""What can go wrong talking to the GLM API, as one small hierarchy the MCP face can map to advice."""

from __future__ import annotations

RETRYABLE_CODES = frozenset({"1302", "1303", "1305", "500", "1200", "1230", "1234"})
"""Concurrency and frequency limits, overload, and the platform's internal errors."""

FINAL_CODES = frozenset(
    {"1000", "1001", "1002", "1003", "1004", "1112", "1113", "1121", "1210", "1211", "1212", "1213", "1214"}
    | {"1215", "1220", "1261", "1301", "1304", "1308", "1309", "1310"}
)
"""Authentication, billing, quota, bad requests and content blocks: the same request fails again."""


class GLMError(Exception):
    """Anything that stopped a GLM call from producing an answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = 1
        """How many times the request was sent before giving up (set by the client's retry loop)."""

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if sent again."""
        return False


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
    """The request did not get an answer: connection refused or cut, a timeout, a malformed reply.

    `maybe_delivered` says whether the upstream may have received (and billed) the request,
    which decides whether re-sending it could create a duplicate job.
    """

    def __init__(self, message: str, *, maybe_delivered: bool) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered

    @property
    def retryable(self) -> bool:
        return True


class GLMStreamError(GLMError):
    """A streamed answer broke off: it ended without `[DONE]`, or the connection was cut mid-stream."""

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
    def retryable(self) -> bool:
        return self.finish_reason == "network_error"


UNUSABLE_FINISH_REASONS = frozenset({"network_error", "sensitive"})
"""Finish reasons after which the answer is not usable as it is."""


class MissingAPIKeyError(GLMError):
    """No API key is configured, so no call can be authenticated."""


class GLMDeadlineError(GLMError):
    """The whole call (queueing, retries, the entire stream) outlived its deadline (`GLM_CALL_DEADLINE`).

    An upstream that keeps a stream alive with comments or empty chunks never trips the read
    timeout; this ends it, and frees its concurrency slot.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the GLM call did not finish within GLM_CALL_DEADLINE ({seconds:g} s) and was stopped; "
            "the upstream kept it open without completing it"
        )
        self.seconds = seconds


class GLMLimitError(GLMError):
    """The upstream sent more than a size limit allows (a JSON body, one stream event, a whole answer).

    The connection is closed rather than read to its end: an upstream that sends without end
    (or a small compressed body that inflates to gigabytes) cannot exhaust the process.
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit
        """The setting (or constant) that was exceeded, e.g. GLM_MAX_RESPONSE_BYTES."""
