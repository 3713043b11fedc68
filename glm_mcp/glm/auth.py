"""The Authorization header: the raw key (the default of both official SDKs) or the signed JWT form.

`Credentials` is the `httpx2.Auth` of every GLM request, passed per request (`send(..., auth=)`), so a
caller's own key and the server's share one pooled client; it signs each request through the same
object that redacts, so every token sent is one the redaction knows.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Generator
from typing import Literal

import httpx2

AuthMode = Literal["bearer", "jwt"]

# The official SDK signs tokens valid for 210 s and reuses one for 180 s; we do the same, so a
# token is never sent in its last half minute, whatever the clock skew between us and the platform.
_JWT_LIFETIME_MS = 210_000
_JWT_REUSE_S = 180.0
# Tokens signed before the current one are still valid for a while, and an upstream may echo an older
# one back: every token signed in the last hour or so (at one per 180 s) is still scrubbed.
_RECENT_TOKENS = 24
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]{8,}")
REDACTED = "<redacted>"


class Credentials(httpx2.Auth):
    """An API key of the form `<id>.<secret>`, turned into the header value the platform expects.

    As an `httpx2.Auth` it sets that header on each request it is passed with (`auth=credentials`).
    The key is kept private: `repr` and `str` never show it, and `secret_strings()` lists every
    form of it (key, secret, the tokens recently signed) so upstream text can be scrubbed before anyone
    sees it.
    """

    __slots__ = ("_header", "_header_expires", "_key", "_tokens", "mode", "source")

    def __init__(self, api_key: str, *, mode: AuthMode = "bearer", source: str = "GLM_API_KEY") -> None:
        self._key = api_key
        self.mode: AuthMode = mode
        self.source = source
        self._header = f"Bearer {api_key}" if mode == "bearer" else ""
        self._header_expires = float("inf") if mode == "bearer" else 0.0
        self._tokens: deque[str] = deque(maxlen=_RECENT_TOKENS)

    def __repr__(self) -> str:
        return f"Credentials(mode={self.mode!r}, source={self.source!r}, key=<hidden>)"

    __str__ = __repr__

    @property
    def key_id(self) -> str:
        """The public half of the key (before the dot), safe to show in diagnostics."""
        return self._key.split(".", 1)[0]

    def authorization(self) -> str:
        """The Authorization header value; a JWT is signed once and reused until near its expiry."""
        if time.monotonic() >= self._header_expires:
            token = self._sign_jwt()
            self._tokens.append(token)
            self._header = f"Bearer {token}"
            self._header_expires = time.monotonic() + _JWT_REUSE_S
        return self._header

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        """Sign `request`: the platform answers one request with one response, no challenge to follow."""
        request.headers["Authorization"] = self.authorization()
        yield request

    # httpx2's default flows wrap `auth_flow` in a second generator; these are the same one-step flow without it.
    sync_auth_flow = auth_flow

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """`auth_flow` for `httpx2.AsyncClient`, the one the server uses."""
        request.headers["Authorization"] = self.authorization()
        yield request

    def _sign_jwt(self) -> str:
        import warnings

        import jwt  # deferred: only the JWT mode pays for importing pyjwt and its crypto backend

        key_id, _, secret = self._key.partition(".")
        if not secret:
            raise ValueError(f"the key in {self.source} has no '.<secret>' part, which the JWT form needs")
        now_ms = int(time.time() * 1000)
        payload = {"api_key": key_id, "exp": now_ms + _JWT_LIFETIME_MS, "timestamp": now_ms}
        with warnings.catch_warnings():
            # The platform issues secrets shorter than pyjwt's HS256 recommendation; that is not ours to fix.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            return jwt.encode(payload, secret, algorithm="HS256", headers={"alg": "HS256", "sign_type": "SIGN"})

    def secret_strings(self) -> tuple[str, ...]:
        """Every string that would leak the key if it appeared in output, longest first."""
        parts = [self._key, self._key.partition(".")[2], *self._tokens]
        return tuple(sorted((p for p in parts if len(p) >= 8), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """`text` with every form of the key, and any `Bearer <token>`, replaced by a marker."""
        for secret in self.secret_strings():
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_bearer(text)


def redact_bearer(text: str) -> str:
    """`text` without the token of any `Bearer <token>` in it (ours, a caller's, or one we never saw)."""
    return _BEARER.sub(rf"\1 {REDACTED}", text)
