"""Who may call the HTTP server (one shared bearer token) and whose GLM key a call spends."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from mcp.server.auth.provider import AccessToken, TokenVerifier

from glm_mcp.config import Settings
from glm_mcp.errors import ClientKeyError
from glm_mcp.glm.auth import Credentials
from glm_mcp.jobs.principal import Principal, key_principal

__all__ = [
    "CALLER_KEY_SCOPE",
    "CLIENT_KEY_HEADER",
    "TOKEN_CLIENT_ID",
    "CallerKey",
    "SharedTokenVerifier",
    "caller_key",
    "read_caller_key",
]

CLIENT_KEY_HEADER = "X-GLM-API-Key"
"""Where a caller may put its own GLM key when GLM_MCP_ALLOW_CLIENT_KEYS is on."""
TOKEN_CLIENT_ID = "glm-mcp-token"
"""The principal every holder of the shared token is: the token says "one of us", not who."""


class SharedTokenVerifier(TokenVerifier):
    """Accepts exactly the configured token (GLM_MCP_HTTP_TOKEN), for the SDK's bearer middleware.

    Both sides are hashed before the constant-time comparison, so the time it takes gives away
    neither the token's content nor its length.
    """

    def __init__(self, token: str) -> None:
        self._digest = _digest(token)

    async def verify_token(self, token: str) -> AccessToken | None:
        """The principal of every token holder for exactly the configured token; None (401) otherwise."""
        if not hmac.compare_digest(_digest(token), self._digest):
            return None
        return AccessToken(token=token, client_id=TOKEN_CLIENT_ID, scopes=[])


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True, slots=True)
class CallerKey:
    """A caller's own GLM key for one request, and the principal it makes them (`glm_mcp.jobs.principal`)."""

    credentials: Credentials
    principal: Principal


CALLER_KEY_SCOPE = "glm_mcp.caller_key"
"""Where the HTTP layer leaves a request's checked caller key (or None) in the ASGI scope, for the tools."""


def read_caller_key(raw_headers: Iterable[tuple[bytes, bytes]], settings: Settings) -> str | None:
    """The caller's own GLM key from a request's raw headers, checked: None when there is none.

    Read once per request, by the HTTP layer, from the raw header list (a mapping would keep one of
    two headers, and which one won would decide whose key is spent). A header the server may not
    honour is refused (`ClientKeyError`, answered 400) rather than ignored, so nobody spends the
    server's key believing they spend their own. The key is never stored or logged.
    """
    wanted = CLIENT_KEY_HEADER.lower().encode("ascii")
    values = [value for name, value in raw_headers if name.lower() == wanted]
    if len(values) > 1:
        raise ClientKeyError(f"The {CLIENT_KEY_HEADER} header appears {len(values)} times: send it once.")
    if not values:
        return None
    key = _checked_key(values[0].decode("latin-1"))
    if not settings.http.allow_client_keys:
        raise ClientKeyError(
            f"This server does not take callers' GLM keys: remove the {CLIENT_KEY_HEADER} header "
            "(or ask its operator to set GLM_MCP_ALLOW_CLIENT_KEYS=true)."
        )
    if settings.upstream.auth_mode == "jwt" and "." not in key:
        raise ClientKeyError(f"The key in {CLIENT_KEY_HEADER} must have the form <id>.<secret>.")
    return key


def caller_key(key: str, settings: Settings, secret: bytes) -> CallerKey:
    """What a checked caller key spends (its `Credentials`, whose repr hides it) and who it makes its caller:
    a keyed hash under `secret`, never the key."""
    credentials = Credentials(key, mode=settings.upstream.auth_mode, source=f"the {CLIENT_KEY_HEADER} header")
    return CallerKey(credentials, key_principal(secret, key))


def _checked_key(value: str) -> str:
    """The key in a caller-key header, stripped; ClientKeyError if it is blank or not printable ASCII."""
    key = value.strip(" \t")
    if not key:
        raise ClientKeyError(
            f"The {CLIENT_KEY_HEADER} header is empty: put your GLM key in it, or leave it out to use the server's."
        )
    if not all(" " <= char <= "~" for char in key):
        raise ClientKeyError(
            f"The {CLIENT_KEY_HEADER} header must be printable ASCII (a GLM key is <id>.<secret>); "
            "it has a control or non-ASCII character."
        )
    return key
