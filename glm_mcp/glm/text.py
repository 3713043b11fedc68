"""Upstream text as someone will read it: scrubbed of the key, in the few shapes it takes.

Every string the GLM client hands out was first scrubbed of every form of the key (`Credentials.scrub`), by
one of these:

- `upstream_text`: a piece of an answer quoted in an error (an error body, a stream frame that is not JSON,
  a malformed JSON body, an error frame's message, a response header, a transport error quoting the wire):
  decoded, scrubbed, and only then cut. Scrubbing before cutting matters: a body cut first can end in all
  but the last character of the secret, which no longer matches it. Error text also loses any
  `Bearer <token>`, as it may quote a request's Authorization header.
- `scrub_answer`: a parsed answer (a completion, a stream chunk, search results, a page, a task): every
  string in it, once, where the client parses it.
- `scrub_stream_text`: a streamed text joined from its pieces (answer, reasoning, tool-call arguments), as
  it is read out: a form split across two pieces is whole again there, and one whose start has arrived
  but not its end is held back until it has.
"""

from __future__ import annotations

from typing import TypeVar, cast

from pydantic import BaseModel

from glm_mcp.glm.auth import REDACTED, Credentials, redact_bearer

_Value = TypeVar("_Value")

PARTIAL_FORM_CHARS = 8
"""The shortest start of a form of the key that a finished text may not end in (shorter ones are common strings)."""


def upstream_text(raw: bytes | str | None, limit: int, credentials: Credentials | None) -> str:
    """`raw` decoded (bad UTF-8 replaced), every form of the key removed, then cut to `limit` characters."""
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = credentials.redact(text) if credentials is not None else redact_bearer(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub_answer(value: _Value, credentials: Credentials) -> _Value:
    """`value` with every string in it scrubbed: fields, unknown fields the platform added, list items, dict
    keys and values. Returns `value` itself when nothing in it changed."""
    if isinstance(value, str):
        return cast(_Value, credentials.scrub(value))
    if isinstance(value, BaseModel):
        update: dict[str, object] = {}
        for name in type(value).model_fields:
            field = getattr(value, name)
            scrubbed = scrub_answer(field, credentials)
            if scrubbed is not field:
                update[name] = scrubbed
        extra = value.model_extra
        scrubbed_extra = scrub_answer(extra, credentials) if extra else extra
        if not update and scrubbed_extra is extra:
            return value
        copy = value.model_copy(update=update)
        copy.__pydantic_extra__ = scrubbed_extra  # whole: an unknown field's name may have held a form too
        return copy
    if isinstance(value, list):
        items = [scrub_answer(item, credentials) for item in value]
        return cast(_Value, items) if any(new is not old for new, old in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        pairs = [(scrub_answer(k, credentials), scrub_answer(v, credentials)) for k, v in value.items()]
        changed = any(nk is not k or nv is not v for (nk, nv), (k, v) in zip(pairs, value.items(), strict=True))
        return cast(_Value, dict(pairs)) if changed else value
    return value


def scrub_stream_text(text: str, credentials: Credentials | None, *, finished: bool) -> str:
    """A streamed text as it may be shown: its forms of the key scrubbed and, while it is still arriving
    (`finished` false), without an end that may be the start of one. A finished text that ends in the first
    PARTIAL_FORM_CHARS or more characters of a form (an upstream stopped inside an echo) has that end scrubbed."""
    if credentials is None:
        return text
    text = credentials.scrub(text)
    partial = credentials.partial_form_at_end(text)
    if not partial:
        return text
    if not finished:
        return text[:-partial]
    return text[:-partial] + REDACTED if partial >= PARTIAL_FORM_CHARS else text


__all__ = ["PARTIAL_FORM_CHARS", "scrub_answer", "scrub_stream_text", "upstream_text"]
