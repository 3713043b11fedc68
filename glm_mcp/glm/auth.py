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
_MIN_SECRET_CHARS = 8
"""A form of the key shorter than this (a tiny secret half) is too common a string to scrub."""


class Credentials(httpx2.Auth):
    """An API key of the form `<id>.<secret>`, turned into the header value the platform expects.

    As an `httpx2.Auth` it sets that header on each request it is passed with (`auth=credentials`).
    The key is kept private: `repr` and `str` never show it, and `secret_strings()` lists every
    form of it (key, secret, the tokens recently signed) so upstream text can be scrubbed before anyone
    sees it.
    """

    __slots__ = (
        "_ascii_marks",
        "_forms",
        "_header",
        "_header_expires",
        "_json_marks",
        "_json_marks_bytes",
        "_key",
        "_marks",
        "_tokens",
        "mode",
        "source",
    )

    def __init__(self, api_key: str, *, mode: AuthMode = "bearer", source: str = "GLM_API_KEY") -> None:
        self._key = api_key
        self.mode: AuthMode = mode
        self.source = source
        self._header = f"Bearer {api_key}" if mode == "bearer" else ""
        self._header_expires = float("inf") if mode == "bearer" else 0.0
        self._tokens: deque[str] = deque(maxlen=_RECENT_TOKENS)
        self._forms: tuple[str, ...] = ()
        self._marks: tuple[str, ...] = ()
        self._json_marks: tuple[str, ...] = ()
        self._json_marks_bytes: tuple[bytes, ...] = ()
        self._ascii_marks = True
        self._learn_forms()

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
            self._learn_forms()
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

    def _learn_forms(self) -> None:
        """Work out, once per signed token rather than once per text, what `scrub` looks for.

        The forms are the key, its secret half and the recent tokens, longest first. The marks are fewer strings
        that every form contains (the secret half is inside the key; every token we sign starts with the same
        JWT header): a text without any mark holds no form, which is all a clean text costs to check.
        """
        parts = [self._key, self._key.partition(".")[2], *self._tokens]
        self._forms = tuple(sorted({p for p in parts if len(p) >= _MIN_SECRET_CHARS}, key=len, reverse=True))
        marks: list[str] = [token.partition(".")[0] + "." for token in list(self._tokens)[-1:]]
        for form in reversed(self._forms):  # shortest first: the secret half before the key that holds it
            if not any(mark in form for mark in marks):
                marks.append(form)
        self._marks = tuple(marks)
        # JSON may spell a character with a backslash: any as a \u escape (looked for in `may_spell_a_form`), and
        # `"`, `\`, `/` as themselves escaped, which a form holding one of them would need.
        special = sorted({char for form in self._forms for char in form if char in '"\\/'})
        self._json_marks = (*marks, *("\\" + char for char in special))
        self._json_marks_bytes = tuple(mark.encode() for mark in self._json_marks)
        self._ascii_marks = all(mark.isascii() for mark in marks)

    def secret_strings(self) -> tuple[str, ...]:
        """Every string that would leak the key if it appeared in output, longest first."""
        return self._forms

    @property
    def longest_form(self) -> int:
        """The length of the longest form of the key: how far a text cut next to a form can reach into it."""
        return len(self._forms[0]) if self._forms else 0

    def may_spell_a_form(self, raw: bytes | str) -> bool:
        """Whether valid JSON may hold a form of the key once decoded (False proves it holds none): a cheap test,
        run on every JSON answer and every chunk of every stream, that spares a clean one the walk through its
        strings. A form spelt with \\u escapes is seen through them (as JSON reads them: after an odd number of
        backslashes) by the codec that decodes exactly those; only `\\u00XX` can spell the ASCII a key is made
        of, so text whose other characters are all escaped (Chinese, as some JSON writers do) costs no more."""
        if isinstance(raw, str):  # a stream's chunk, as the event stream decoded it
            if any(mark in raw for mark in self._json_marks):
                return True
            if "\\u00" not in raw if self._ascii_marks else "\\u" not in raw:
                return False
            data = raw.encode()
        else:
            for mark in self._json_marks_bytes:  # a loop, not any(): this runs for every chunk of every stream
                if mark in raw:
                    return True
            if b"\\u00" not in raw if self._ascii_marks else b"\\u" not in raw:
                return False
            data = raw
        try:
            unescaped = data.decode("raw_unicode_escape")  # other bytes read as Latin-1: ASCII marks survive that
        except UnicodeDecodeError:
            return True
        return not self._ascii_marks or any(mark in unescaped for mark in self._marks)

    def scrub(self, text: str) -> str:
        """`text` with every form of the key replaced by a marker: for any upstream text, answers included.

        Only the key's own forms: an answer's `Bearer $TOKEN` in a code sample is the caller's, and stays.
        """
        if not any(mark in text for mark in self._marks):
            return text
        for secret in self._forms:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def partial_form_at_end(self, text: str) -> int:
        """The length of the longest end of `text` that is the start of a form of the key (0 if none).

        A text still arriving (a streamed answer read before its end) may end in the first characters of a form
        whose rest has not come yet: those must not be shown, as the rest never will be scrubbed with them.
        """
        longest = 0
        for form in self._forms:
            window = text[len(text) - len(form) + 1 :] if len(text) >= len(form) else text
            start = window.find(form[0])
            while start != -1 and len(window) - start > longest:
                if form.startswith(window[start:]):
                    longest = len(window) - start
                    break
                start = window.find(form[0], start + 1)
        return longest

    def partial_form_at_start(self, text: str) -> int:
        """The length of the longest start of `text` that is the end of a form of the key (0 if none): what a form
        leaves at the start of a piece cut from a longer text (the end of an answer, read for progress)."""
        longest = 0
        for form in self._forms:
            window = text[: len(form) - 1]
            end = window.rfind(form[-1])
            while end + 1 > longest:
                if form.endswith(window[: end + 1]):
                    longest = end + 1
                    break
                end = window.rfind(form[-1], 0, end)
        return longest

    def redact(self, text: str) -> str:
        """`text` with every form of the key, and any `Bearer <token>`, replaced by a marker: for error text, which
        may quote the request's Authorization header."""
        return redact_bearer(self.scrub(text))


def redact_bearer(text: str) -> str:
    """`text` without the token of any `Bearer <token>` in it (ours, a caller's, or one we never saw)."""
    return _BEARER.sub(rf"\1 {REDACTED}", text)
