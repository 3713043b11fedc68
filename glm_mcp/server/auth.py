"""Who may call the HTTP server (one shared bearer token) and whose GLM key a call spends."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mcp.server.auth.provider import AccessToken, TokenVerifier

from glm_mcp.config import Settings
from glm_mcp.errors import ClientKeyError
from glm_mcp.glm.auth import Credentials
from glm_mcp.jobs.principal import Principal, key_principal

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


def check_client_key_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse a caller-key header that appears more than once, is blank, or is not printable ASCII.

    Takes the raw header list of the request: a mapping would keep one of two headers, and
    which one wins would decide whose key is spent.
    """
    wanted = CLIENT_KEY_HEADER.lower().encode("ascii")
    values = [value for name, value in raw_headers if name.lower() == wanted]
    if len(values) > 1:
        raise ClientKeyError(f"The {CLIENT_KEY_HEADER} header appears {len(values)} times: send it once.")
    if values:
        _checked_key(values[0].decode("latin-1"))


def client_credentials(ctx_headers: Mapping[str, str] | None, settings: Settings) -> Credentials | None:
    """The caller's own GLM key for this one request, or None to use the server's key.

    The key is read from the request each time and lives only in the returned object, whose repr
    hides it: it is never stored or logged. A header the server may not honour is refused rather
    than ignored, so nobody spends the server's key believing they spend their own.
    """
    key = _header(ctx_headers, CLIENT_KEY_HEADER)
    if key is None:
        return None
    key = _checked_key(key)
    if not settings.allow_client_keys:
        raise ClientKeyError(
            f"This server does not take callers' GLM keys: remove the {CLIENT_KEY_HEADER} header "
            "(or ask its operator to set GLM_MCP_ALLOW_CLIENT_KEYS=true)."
        )
    if settings.auth_mode == "jwt" and "." not in key:
        raise ClientKeyError(f"The key in {CLIENT_KEY_HEADER} must have the form <id>.<secret>.")
    return Credentials(key, mode=settings.auth_mode, source=f"the {CLIENT_KEY_HEADER} header")


def caller_key(ctx_headers: Mapping[str, str] | None, settings: Settings, secret: bytes) -> CallerKey | None:
    """`client_credentials`, with the principal the key makes its caller: a keyed hash under `secret`."""
    credentials = client_credentials(ctx_headers, settings)
    if credentials is None:
        return None
    key = _checked_key(_header(ctx_headers, CLIENT_KEY_HEADER) or "")
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


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value as sent; None when absent. Names are matched without regard to case."""
    wanted = name.lower()
    return next((value for key, value in (headers or {}).items() if key.lower() == wanted), None)
