"""The identity provider's signing keys, which the HTTP server checks access tokens against (`server/oauth.py`).

The provider publishes its keys as a JWK set (its `jwks_uri`, or GLM_MCP_OAUTH_JWKS_URL). The current key set
is replaced whole by each successful fetch, so a key the provider withdrew is refused from the next fetch on.
A fetch happens when the key set is older than `KEY_SET_MAX_AGE_S` and when a token names a key it lacks (a
rotation), one at a time and at most one every `KEY_SET_COOLDOWN_S`: a flood of tokens naming made-up keys
costs the provider one fetch per cooldown. A fetch (the discovery document, then the key set) has a whole
deadline and a size bound, so a provider that trickles or sends without end holds nothing for long.

Fetches run in a task group of their own (`ProviderKeys.running`, entered by the HTTP app's lifespan), not in
the request that needed them: while one is under way, or after one failed, the last key set fetched keeps
serving, and only a token naming a key it lacks waits, at most until the fetch's deadline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import httpx2

if TYPE_CHECKING:
    from jwt import PyJWK  # imported at first use below: with cryptography it is ~27 ms of every cold start otherwise

__all__ = [
    "ALGORITHMS",
    "KEY_SET_COOLDOWN_S",
    "KEY_SET_DEADLINE_S",
    "KEY_SET_MAX_AGE_S",
    "KEY_SET_MAX_BYTES",
    "KeySet",
    "ProviderKeys",
    "key_set_of",
]

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric signatures only: `none` and shared-secret HMAC tokens are refused."""
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_EDWARDS_CURVES = ("Ed25519", "Ed448")

KEY_SET_MAX_AGE_S = 300.0
"""How old the key set may grow before it is fetched again: the longest a withdrawn key stays accepted when no
token names a new one."""
KEY_SET_COOLDOWN_S = 5.0
"""The least time from the end of one fetch to the start of the next."""
KEY_SET_DEADLINE_S = 10.0
"""A whole fetch, connecting included, discovery document and key set together."""
KEY_SET_MAX_BYTES = 1 << 20
"""The most a discovery document or key set may be, counted after decompression; a real one is a few KB."""


@dataclass(frozen=True, slots=True)
class KeySet:
    """One fetch of the provider's key set: each signing key by its id, for the algorithms it may verify."""

    keys: Mapping[tuple[str, str], PyJWK]
    """(kid, algorithm) → the key."""
    kids: frozenset[str]
    fetched_at: float
    """`time.monotonic()` when it was fetched."""

    def key(self, kid: str, algorithm: str) -> PyJWK | None:
        """Key `kid` for verifying `algorithm`; None if it is not in the set or is not a key for that algorithm."""
        return self.keys.get((kid, algorithm))


def key_set_of(document: object, fetched_at: float) -> KeySet:
    """The signing keys of a JWK set (RFC 7517): those with an id, meant for signatures (`use` "sig" or
    none), for an accepted algorithm: the one their `alg` names, else those their type and curve allow.

    ValueError if there is none: a key set without one is a broken answer, not a withdrawal of every key.
    """
    from jwt import PyJWK, PyJWTError

    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('it is not a JWK set (a JSON object with a "keys" list)')
    keys: dict[tuple[str, str], PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        for algorithm in _algorithms_for(entry):
            try:
                keys[kid, algorithm] = PyJWK(entry, algorithm)
            except (PyJWTError, ValueError, TypeError) as exc:  # not a key of that type after all: left out
                logger.info("the provider's key %r is left out for %s: %s", kid, algorithm, exc)
    if not keys:
        raise ValueError(f"it has no signing key for any of {', '.join(ALGORITHMS)} with a kid")
    return KeySet(keys, frozenset(kid for kid, _ in keys), fetched_at)


def _algorithms_for(jwk: dict[str, Any]) -> tuple[str, ...]:
    """What a key may verify: the algorithm its `alg` names if accepted, else what its type and curve allow."""
    named = jwk.get("alg")
    if named is not None:
        return (named,) if named in ALGORITHMS else ()
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        return _RSA
    if kty == "EC" and crv in _EC_CURVES:
        return (_EC_CURVES[crv],)
    if kty == "OKP" and crv in _EDWARDS_CURVES:
        return ("EdDSA",)
    return ()


class _FetchFailed(Exception):
    """The provider's answer cannot be a key set (status, size, no jwks_uri): said in words, without a traceback."""


class ProviderKeys:
    """The current key set of the provider at `issuer`, fetched as the module docstring says.

    `key` is called for every token; fetches run in the task group `running` opens, which must be entered.
    """

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None = None,
        *,
        max_age: float = KEY_SET_MAX_AGE_S,
        cooldown: float = KEY_SET_COOLDOWN_S,
        deadline: float = KEY_SET_DEADLINE_S,
        max_bytes: int = KEY_SET_MAX_BYTES,
    ) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._max_age = max_age
        self._cooldown = cooldown
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._keys: KeySet | None = None
        self._fetching: anyio.Event | None = None
        """Set when the fetch under way ends, whatever its outcome; None when none is."""
        self._quiet_until = 0.0
        self._task_group: anyio.abc.TaskGroup | None = None
        self._http: httpx2.AsyncClient | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Where fetches run, for as long as the server does; a fetch under way at the exit is cancelled."""
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                try:
                    yield
                finally:
                    self._task_group = None
                    task_group.cancel_scope.cancel()
        finally:
            if self._http is not None:
                await self._http.aclose()
                self._http = None

    async def key(self, kid: str, algorithm: str) -> PyJWK | None:
        """Key `kid` of the current key set, for verifying `algorithm`; None if the provider does not publish it.

        A key of the last key set fetched is answered at once, even while a newer one is being fetched. For a
        key it lacks, this waits for a fetch (the one under way, or a new one unless the last ended less than
        a cooldown ago), at most until that fetch's deadline.
        """
        keys = self._keys
        if keys is not None and time.monotonic() - keys.fetched_at >= self._max_age:
            self._fetch_soon()
        if keys is not None and kid in keys.kids:
            return keys.key(kid, algorithm)
        fetch = self._fetch_soon()
        if fetch is None:
            return None
        await fetch.wait()
        keys = self._keys
        return keys.key(kid, algorithm) if keys is not None else None

    def _fetch_soon(self) -> anyio.Event | None:
        """The fetch under way, else a new one started, else None: the last one ended less than a cooldown ago."""
        if self._fetching is not None:
            return self._fetching
        if time.monotonic() < self._quiet_until:
            return None
        if self._task_group is None:
            raise RuntimeError("ProviderKeys.key() is called outside ProviderKeys.running()")
        self._fetching = anyio.Event()
        self._task_group.start_soon(self._fetch, self._fetching)
        return self._fetching

    async def _fetch(self, done: anyio.Event) -> None:
        """One fetch: the current key set replaced whole, or kept as it was and the reason logged."""
        try:
            with anyio.fail_after(self._deadline):
                keys = await self._fetched()
        except TimeoutError:
            self._failed(f"no whole answer within {self._deadline:g} s")
        except Exception as exc:  # whatever the provider sent, it stays a reason in the log, never a crash
            self._failed(str(exc) if isinstance(exc, _FetchFailed) else f"{type(exc).__name__}: {exc}")
        else:
            self._keys = keys
            logger.info("the provider's key set, from %s: %s", self._jwks_url, ", ".join(sorted(keys.kids)))
        finally:
            self._quiet_until = time.monotonic() + self._cooldown
            self._fetching = None
            done.set()

    def _failed(self, reason: str) -> None:
        url = self._jwks_url or self._discovery_url
        if self._keys is None:
            meanwhile = "no key set yet: the provider's access tokens are refused until one is fetched"
        else:
            age = time.monotonic() - self._keys.fetched_at
            meanwhile = f"tokens are checked against the key set fetched {age:.0f} s ago"
        logger.warning("could not fetch the provider's signing keys from %s (%s); %s", url, reason, meanwhile)

    @property
    def _discovery_url(self) -> str:
        return self._issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def _fetched(self) -> KeySet:
        """The key set, and first where it is when no GLM_MCP_OAUTH_JWKS_URL says (the issuer's discovery)."""
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=self._deadline)
        if self._jwks_url is None:
            discovery = await self._json(self._discovery_url)
            jwks_uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise _FetchFailed("the discovery document names no http(s) jwks_uri")
            self._jwks_url = jwks_uri
        document = await self._json(self._jwks_url)
        try:
            return key_set_of(document, time.monotonic())
        except ValueError as exc:
            raise _FetchFailed(f"no key set: {exc}") from None

    async def _json(self, url: str) -> Any:
        """The JSON document at `url`, read up to `max_bytes` after decompression; _FetchFailed past them."""
        assert self._http is not None
        async with self._http.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise _FetchFailed(f"it answered HTTP {response.status_code}")
            body = bytearray()
            async for part in response.aiter_bytes():
                body += part
                if len(body) > self._max_bytes:
                    raise _FetchFailed(f"it sent more than {self._max_bytes} bytes; not read further")
        return json.loads(body)
