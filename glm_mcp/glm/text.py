"""Upstream bytes as text someone will read: decoded, scrubbed of the key, and only then cut.

Every piece of an upstream answer that ends up in a message (an error body, a stream frame that
is not JSON, a malformed JSON body, an error frame's message, a response header, a transport
error quoting the wire) goes through `upstream_text`. Scrubbing before cutting matters: a body
cut first can end in all but the last character of the secret, which no longer matches it.
"""

from __future__ import annotations

from glm_mcp.glm.auth import Credentials, redact_bearer


def upstream_text(raw: bytes | str | None, limit: int, credentials: Credentials | None) -> str:
    """`raw` decoded (bad UTF-8 replaced), every form of the key removed, then cut to `limit` characters."""
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = credentials.redact(text) if credentials is not None else redact_bearer(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
