"""Everything glm-mcp reports as a failure, as one hierarchy in which each kind knows what it means.

    GlmMcpError                  the base: what a tool call reports as an `isError` result
    ├── ArgumentError            invalid_argument      an argument refused before anything is sent
    ├── ClientKeyError           missing_api_key       a caller-key header the server cannot use
    ├── UnknownJobError          unknown_job           no job of the caller's has that id
    ├── JobCancelledError        cancelled             the generation was stopped before it ended
    ├── SubmitUncertainError     submit_uncertain      a submit that may have reached the platform
    ├── RegistryUnavailable      registry_unavailable  the job registry cannot do what was asked
    ├── GenerationFailed         (its cause's kind)    a generation that failed, with its partial text
    ├── MediaTaskFailed          media_failed          the platform reports an image or video task failed
    ├── DocumentNotRead          media_failed          the platform's file parser did not read a document
    ├── UnknownMediaError        unknown_media         no image or video of the caller's has that glm-media:// URI
    ├── MediaExpiredError        media_expired         the platform no longer keeps a generated file (nor a copy)
    ├── SpendDeclined            spend_declined        the user said no to a call's estimated cost
    ├── SpendUnconfirmed         confirmation_unavailable  a cost above GLM_CONFIRM_ABOVE nobody could be asked about
    └── GLMError                 upstream_error        glm/errors.py: talking to the GLM API
        ├── MissingAPIKeyError   missing_api_key
        ├── GLMAPIError          upstream_error        the platform's error; advice by business code
        ├── GLMTransportError    upstream_unreachable  no answer: refused, cut, timed out
        │   ├── GLMProtocolError upstream_protocol_error  an answer that is not the API's JSON
        │   └── GLMSilentError   upstream_timeout      reached, then nothing for GLM_TIMEOUT
        │       └── GLMKeptAliveError  upstream_timeout  a stream of keep-alives only for GLM_TIMEOUT
        ├── GLMFileRefusedError  upstream_protocol_error  a file an answer names, not fetched (an address
        │                                              no answer may send us to) or not kept (no image)
        ├── GLMStreamError       stream_broken
        ├── GLMAnswerCutError    content_blocked, answer_cut  finish_reason sensitive / network_error
        ├── GLMDeadlineError     deadline_exceeded     GLM_CALL_DEADLINE
        └── GLMLimitError        upstream_too_large    a body, event or answer past its limit

What the client receives for each: an `isError` `CallToolResult` whose `structuredContent` is a
`ToolFailure` (server/results.py) with `error` = the kind, `message`, `hint` (`advice`, given the
facts of the configuration in an `Advice`), `retryable`, and the kind's `details` (the argument at
fault, the GLM code and HTTP status, the request id, attempts, a cost estimate); the text copy starts with the
message and the hint. Anything else reaching a tool is a bug of ours: `internal_error`, logged
with its traceback, never shown.

This module imports nothing of the project, so `glm/` (which knows nothing of MCP) and `jobs/`
can subclass it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

ErrorKind = Literal[
    "invalid_argument",
    "missing_api_key",
    "unknown_job",
    "upstream_error",
    "upstream_unreachable",
    "upstream_protocol_error",
    "upstream_timeout",
    "stream_broken",
    "deadline_exceeded",
    "upstream_too_large",
    "answer_cut",
    "submit_uncertain",
    "registry_unavailable",
    "media_failed",
    "unknown_media",
    "media_expired",
    "spend_declined",
    "confirmation_unavailable",
    "content_blocked",
    "cancelled",
    "interrupted",
    "internal_error",
]


@dataclass(frozen=True, slots=True)
class Advice:
    """The facts of the configuration that advice may name: plain data, so any layer can use it."""

    key_var: str = "GLM_API_KEY"
    """Where the key in use came from (a variable, or a caller's header)."""
    region: str = "international"
    plan: str = "general"
    base_url: str = ""
    base_url_overridden: bool = False
    """GLM_BASE_URL is set: region and plan choose nothing, so advice must not name them."""
    api_paths: Mapping[str, str] = field(default_factory=dict)
    """The path a base URL ends with, by plan."""
    models: tuple[str, ...] | None = None
    """The models the key can use, when known (for an unknown-model error)."""

    def base_url_with_api_path(self) -> str:
        """`base_url` as it should be: its own origin and prefix, ending with the plan's API path.

        A trailing piece of an API path is dropped first, so `http://host/v4` becomes `http://host/api/paas/v4`
        (not `http://host/v4/api/paas/v4`), while a proxy's own prefix (`http://host/glm`) is kept.
        """
        paths = self.api_paths or {"general": "/api/paas/v4"}
        pieces = {piece for path in paths.values() for piece in path.split("/") if piece}
        url = urlsplit(self.base_url)
        segments = url.path.rstrip("/").split("/")
        while len(segments) > 1 and segments[-1] in pieces:
            segments.pop()
        path = "/".join(segments) + paths.get(self.plan, next(iter(paths.values())))
        return urlunsplit(url._replace(path=path, query="", fragment=""))


class GlmMcpError(Exception):
    """Anything glm-mcp reports to a caller as a failed call."""

    kind: ClassVar[ErrorKind] = "internal_error"
    """What `ToolFailure.error` says; subclasses whose kind depends on the instance override `error_kind`."""
    hint: ClassVar[str | None] = None
    """Advice that needs no facts; `advice()` can do better."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def error_kind(self) -> ErrorKind:
        return self.kind

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed if tried again later."""
        return False

    def advice(self, facts: Advice) -> str | None:
        """What to do about it."""
        return self.hint

    def details(self) -> dict[str, object]:
        """The kind's own fields of the `ToolFailure` (field, glm_code, http_status, request_id, attempts)."""
        return {}


class ArgumentError(GlmMcpError, ValueError):
    """A tool argument the server refuses before calling the API; names the field and the fix.

    Every argument mistake ends here, whether the schema catches it (`from_validation` in
    server/arguments.py: a wrong type, a value out of range, an unknown name) or a rule across
    fields does.
    """

    kind: ClassVar[ErrorKind] = "invalid_argument"
    hint: ClassVar[str | None] = "Fix the argument and call again; nothing was sent to the GLM API."

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Invalid argument `{field}`: {message}")
        self.field = field

    def details(self) -> dict[str, object]:
        return {"field": self.field}


class ClientKeyError(GlmMcpError, ValueError):
    """A caller's key header this server cannot use; the message says why and is safe to show (HTTP 400)."""

    kind: ClassVar[ErrorKind] = "missing_api_key"


class UnknownJobError(GlmMcpError, LookupError):
    """get_result was given an id of no job of the caller's: never started, forgotten, or someone else's."""

    kind: ClassVar[ErrorKind] = "unknown_job"
    hint: ClassVar[str | None] = "Find your jobs with list_jobs; finished jobs are kept GLM_JOB_RETENTION_DAYS days."


class JobCancelledError(GlmMcpError):
    """The generation was stopped before it ended (the server is shutting down)."""

    kind: ClassVar[ErrorKind] = "cancelled"
    hint: ClassVar[str | None] = "Call again."

    @property
    def retryable(self) -> bool:
        return True


class SubmitUncertainError(GlmMcpError):
    """A submit that may have reached the platform but got no answer; it is not re-sent (a second paid job)."""

    kind: ClassVar[ErrorKind] = "submit_uncertain"

    def __init__(self, request_id: str, cause: GlmMcpError, attempts: int) -> None:
        super().__init__(
            f"The submit may have reached the platform, but no answer came back ({cause.message}). It was not "
            "sent again, because a second submit would be a second paid job."
        )
        self.request_id = request_id
        self.attempts = attempts

    def advice(self, facts: Advice) -> str:
        return (
            f"Look for request id {self.request_id} in the platform's console before submitting again; "
            "if the task exists there, use its id with get_result."
        )

    def details(self) -> dict[str, object]:
        return {"request_id": self.request_id, "attempts": self.attempts}


class RegistryUnavailable(GlmMcpError):
    """The job registry cannot do what was asked (full disk, read-only, unreadable): where, why, and the fix.

    The store raises it and its callers decide: a job that cannot be recorded still runs, and
    its result says it is not in the registry; a lookup answers `registry_unavailable`.
    """

    kind: ClassVar[ErrorKind] = "registry_unavailable"

    def __init__(self, where: str, reason: str, fix: str) -> None:
        super().__init__(f"The job registry {where} {reason}.")
        self.where = where
        self.reason = reason
        self.fix = fix

    @property
    def retryable(self) -> bool:
        return True

    def advice(self, facts: Advice) -> str:
        return self.fix


class GenerationFailed(GlmMcpError):
    """A generation that ended badly, with what the model had written by then; `cause` says why, and
    the call reports as its cause does (`server/failures.describe_failure` unwraps it)."""

    def __init__(self, cause: BaseException, partial_text: str) -> None:
        super().__init__(str(cause))
        self.__cause__ = cause
        self.cause = cause
        self.partial_text = partial_text


class MediaTaskFailed(GlmMcpError):
    """An image or video task the platform reports as failed (FAIL), saying no more: often its content review."""

    kind: ClassVar[ErrorKind] = "media_failed"
    hint: ClassVar[str | None] = "Try again, or change the prompt: the platform's content review refuses some."

    def __init__(self, task_id: str, what: str) -> None:
        super().__init__(f"The platform reports that {what} task {task_id} failed.")
        self.task_id = task_id

    @property
    def retryable(self) -> bool:
        return True


class DocumentNotRead(GlmMcpError):
    """A document named in `files` that the platform's file parser reports it could not read, or had not read in
    the time a call waits; nothing else of the call was sent."""

    kind: ClassVar[ErrorKind] = "media_failed"

    def __init__(self, path: str, task_id: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"The platform's file parser did not read {path} (task {task_id}): {reason}")
        self.task_id = task_id
        self.timed_out = timed_out

    @property
    def retryable(self) -> bool:
        return self.timed_out

    def advice(self, facts: Advice) -> str:
        if self.timed_out:
            return "Call again later: a large document takes the parser longer."
        return "Check that the file opens in its application, or send its text as a text file instead."


class UnknownMediaError(GlmMcpError, LookupError):
    """A `glm-media://` URI of no image or video of the caller's: never made, aged out, or someone else's (all three
    read alike, so that a URI tells nobody what another caller made)."""

    kind: ClassVar[ErrorKind] = "unknown_media"

    def __init__(self, uri: str, retention_days: float) -> None:
        super().__init__(f"{uri} is unknown: no image or video of yours has that address here.")
        self.uri = uri
        self.retention_days = retention_days

    def advice(self, facts: Advice) -> str:
        return (
            "Use a link from a result of yours (generate_image, generate_video, get_result); resources/list lists "
            f"your recent ones. A link is kept until {self.retention_days:g} days after the platform's file expires."
        )


class MediaExpiredError(GlmMcpError):
    """A generated image or video the platform no longer keeps (its URL expired, or the platform says it is gone),
    with no copy on this machine to read instead."""

    kind: ClassVar[ErrorKind] = "media_expired"

    def __init__(self, uri: str, why: str, saved_path: str | None = None) -> None:
        copy = f" Its copy {saved_path} is gone or was changed." if saved_path else ""
        super().__init__(f"{uri} can no longer be read: {why}.{copy}")
        self.uri = uri
        self.saved_path = saved_path

    def advice(self, facts: Advice) -> str:
        return (
            "Generate it again (generate_image or generate_video): the platform keeps the files it makes for a limited "
            "time only. Over stdio, generate_image saves a copy of each image under GLM_IMAGE_DIR, which lasts."
        )


class SpendDeclined(GlmMcpError):
    """The user, asked before a call's estimated cost above GLM_CONFIRM_ABOVE was spent, said no (or dismissed the
    question): nothing was sent, and the call is not to be made again unasked."""

    kind: ClassVar[ErrorKind] = "spend_declined"
    hint: ClassVar[str | None] = (
        "Nothing was sent and nothing spent. Do not call again unless the user asks for it (a cheaper model, or "
        "less to send, may cost less)."
    )

    def __init__(self, estimate: str, amount: float) -> None:
        super().__init__(f"The user declined to spend {estimate}.")
        self.amount = amount

    def details(self) -> dict[str, object]:
        return {"estimated_cost": self.amount}


class SpendUnconfirmed(GlmMcpError):
    """A call whose estimated cost is above GLM_CONFIRM_ABOVE, from a client that cannot be asked (it declared no
    form elicitation, or a stateless HTTP server cannot send it a request): refused, nothing sent."""

    kind: ClassVar[ErrorKind] = "confirmation_unavailable"

    def __init__(self, estimate: str, amount: float, threshold: float, why: str) -> None:
        super().__init__(
            f"This call would spend {estimate}, above GLM_CONFIRM_ABOVE ({threshold:g}), and the user cannot be asked "
            f"to confirm it: {why}. Nothing was sent."
        )
        self.amount = amount
        self.threshold = threshold

    def advice(self, facts: Advice) -> str:
        return (
            f"Ask the user. To let such calls through without asking, whoever runs the server sets GLM_CONFIRM_ABOVE "
            f"to {_above(self.amount)} or more (or `off`) and restarts it; or use a client that supports elicitation."
        )

    def details(self) -> dict[str, object]:
        return {"estimated_cost": self.amount}


def _above(amount: float) -> str:
    """A round figure at or above `amount`, to suggest as a threshold."""
    for step in (0.01, 0.1, 1.0, 10.0, 100.0):
        if amount < step * 10:
            return f"{-(-amount // step) * step:g}"
    return f"{amount:g}"
