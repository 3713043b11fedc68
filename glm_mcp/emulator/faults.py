"""Faults on request: the grammar of ``X-Emulator-Fault`` values and what each fault sends.

Users rehearse their client's failure handling with these, so every fault imitates something
a client meets in the field: a platform error, a proxy's error page, a stalled or dropped
connection, a stream that breaks off. How a fault is chosen and delivered is ``app``'s job.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from typing import Any

from .config import CODING_PREFIX, GENERAL_PREFIX
from .errors import PLATFORM_ERRORS, platform_error
from .sse import Ending

FAULT_HEADER = "X-Emulator-Fault"
FINISH_REASONS = ("network_error", "sensitive", "length", "model_context_window_exceeded")
STREAM_ERROR_AFTER = 3
"""``stream-error`` sends this many content chunks before its error frame."""


class FaultError(ValueError):
    """A fault string that does not follow the grammar; the message says what is wrong."""


class Kind(Enum):
    ERROR = "error"
    HTTP = "http"
    STALL = "stall"
    DROP = "drop"
    MALFORMED = "malformed"
    STREAM_CUT = "stream-cut"
    STREAM_ERROR = "stream-error"
    STREAM_NO_DONE = "stream-no-done"
    FINISH = "finish"
    SLOW = "slow"


ANSWER_KINDS = frozenset({Kind.ERROR, Kind.HTTP, Kind.DROP, Kind.MALFORMED})
"""Faults that replace the answer: the request is neither authenticated nor validated."""


@dataclass(frozen=True)
class Fault:
    """One parsed fault; only the fields its kind uses are set."""

    text: str
    """As written, e.g. ``error:1302;retry-after=1``."""
    kind: Kind
    code: str | None = None
    """``error`` and ``stream-error``: the business code, a key of ``PLATFORM_ERRORS``."""
    status: int | None = None
    """``http``: the HTTP status."""
    seconds: float | None = None
    """``stall`` (None: until the client leaves) and ``slow`` (the chunk delay)."""
    chunks: int = 0
    """``stream-cut``: chunks sent before the connection is closed."""
    reason: str | None = None
    """``finish``: the finish reason."""
    headers: dict[str, str] = field(default_factory=dict)
    """From the modifiers: ``retry-after`` and ``x-should-retry``, added to whatever is answered."""

    def for_request(self, streaming: bool) -> Fault:
        """The fault that applies to this request: outside a stream, stream faults become their
        nearest equivalent (``stream-cut`` a ``drop``, ``stream-error`` an ``error``)."""
        if streaming:
            return self
        if self.kind is Kind.STREAM_CUT:
            return dataclasses.replace(self, kind=Kind.DROP)
        if self.kind is Kind.STREAM_ERROR:
            return dataclasses.replace(self, kind=Kind.ERROR)
        return self

    def http_page(self) -> tuple[bytes, str]:
        """An ``http`` fault's body and media type: what a proxy or a crashed server sends, not GLM JSON."""
        assert self.status is not None
        if self.status == 500:
            return b"Internal Server Error", "text/plain"
        title = f"{self.status} {HTTPStatus(self.status).phrase}"
        page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        return (page + "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n").encode(), "text/html"

    def shape(self, events: list[dict[str, Any]], model: str) -> tuple[list[dict[str, Any]], Ending]:
        """The frames a stream sends under this fault, and how it ends."""
        if self.kind is Kind.STREAM_CUT:
            return events[: self.chunks], Ending.CUT
        if self.kind is Kind.STREAM_ERROR:
            assert self.code is not None
            content = [i for i, e in enumerate(events[:-1]) if e["choices"][0]["delta"].get("content")]
            before = content[STREAM_ERROR_AFTER - 1] + 1 if len(content) >= STREAM_ERROR_AFTER else len(events) - 1
            return [*events[:before], platform_error(self.code, model).body(None)], Ending.EOF
        if self.kind is Kind.STREAM_NO_DONE:
            return events, Ending.EOF
        return events, Ending.DONE


def parse_fault(text: str) -> Fault:
    """Read ``<fault>[:<argument>][;<modifier>=<value>]...``; raise FaultError naming what is wrong."""
    spec, *modifiers = (part.strip() for part in text.split(";"))
    name, colon, argument = (part.strip() for part in spec.partition(":"))
    try:
        kind = Kind(name)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        raise FaultError(f"unknown fault {name!r} in {text!r}; known faults: {known}") from None
    headers = dict(_modifier(m, text) for m in modifiers if m)
    given = argument if colon else None
    if kind in (Kind.DROP, Kind.MALFORMED, Kind.STREAM_NO_DONE):
        if given is not None:
            raise FaultError(f"fault {name!r} takes no argument, got {text!r}")
        return Fault(text, kind, headers=headers)
    if kind is Kind.STALL and given is None:
        return Fault(text, kind, headers=headers)
    if given is None or not given:
        raise FaultError(f"fault {name!r} needs an argument ({name}:<value>), got {text!r}")
    match kind:
        case Kind.ERROR | Kind.STREAM_ERROR:
            if given not in PLATFORM_ERRORS:
                raise FaultError(f"unknown error code {given!r} in {text!r}; known codes: {', '.join(PLATFORM_ERRORS)}")
            return Fault(text, kind, code=given, headers=headers)
        case Kind.HTTP:
            return Fault(text, kind, status=_error_status(given, text), headers=headers)
        case Kind.STREAM_CUT:
            return Fault(text, kind, chunks=_count(given, text), headers=headers)
        case Kind.FINISH:
            if given not in FINISH_REASONS:
                raise FaultError(f"finish reason must be one of {', '.join(FINISH_REASONS)}, got {given!r} in {text!r}")
            return Fault(text, kind, reason=given, headers=headers)
        case _:  # stall, slow
            return Fault(text, kind, seconds=_seconds(given, text), headers=headers)


def route_matches(wanted: str | None, path: str) -> bool:
    """Whether a request path is one ``wanted`` names.

    ``wanted`` is a route as seen from the base URL (``/chat/completions``, ``/async-result``) or a
    full path; it names itself and the paths below it, so ``/chat/completions`` does not catch
    ``/async/chat/completions``. None names every path.
    """
    if wanted is None:
        return True
    relative = next((path[len(p) :] for p in (GENERAL_PREFIX, CODING_PREFIX) if path.startswith(p + "/")), path)
    return any(p == wanted or p.startswith(wanted + "/") for p in (path, relative))


def check_route(path: str | None) -> str | None:
    """``path`` as ``route_matches`` expects it (``/`` names every path), or FaultError."""
    if path is None:
        return None
    if not path.startswith("/"):
        raise FaultError(f"path must start with '/', got {path!r}")
    return path.rstrip("/") or None


def _modifier(text: str, fault: str) -> tuple[str, str]:
    key, equals, value = (part.strip() for part in text.partition("="))
    if key == "retry-after" and equals:
        _seconds(value, fault)
        return "retry-after", value
    if key == "should-retry" and value in ("true", "false"):
        return "x-should-retry", value
    raise FaultError(f"bad modifier {text!r} in {fault!r}; use retry-after=<seconds> or should-retry=true|false")


def _error_status(text: str, fault: str) -> int:
    status = _count(text, fault)
    if 400 <= status <= 599:
        try:
            return HTTPStatus(status).value
        except ValueError:
            pass
    raise FaultError(f"http status must be a known 4xx or 5xx status, got {text!r} in {fault!r}")


def _count(text: str, fault: str) -> int:
    if not re.fullmatch(r"\d+", text):
        raise FaultError(f"expected a whole number, got {text!r} in {fault!r}")
    return int(text)


def _seconds(text: str, fault: str) -> float:
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", text):
        raise FaultError(f"expected seconds (a non-negative number), got {text!r} in {fault!r}")
    return float(text)
