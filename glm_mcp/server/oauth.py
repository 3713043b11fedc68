"""Callers signed in through the organisation's identity provider: the HTTP server as an OAuth 2.1 resource server.

As the MCP authorization spec describes: the server publishes its protected-resource metadata
(RFC 9728) naming the configured authorization server, and accepts an access token only when
its signature checks against a key the provider publishes now (`server/signing_keys.py`: its
JWK set, fetched with a deadline and a size bound, replaced whole on each fetch), for the
algorithm that key is for, its issuer and audience are the configured ones, it has not expired,
and it grants the required scope (GLM_MCP_OAUTH_SCOPE, asked of the provider's tokens only: the
static token beside them has no scopes to grant). The caller is then the token's subject
(`sub:<issuer>:<subject>`), who owns the jobs and tasks it starts. The SDK's bearer middleware
does the rest (401 with `WWW-Authenticate: Bearer error=…, resource_metadata=…`, 403
`insufficient_scope`).

With only the static token, there is no OAuth to discover: a client that probes for it (Claude
Code does) gets an answer saying so and what to send instead, rather than a bare 404; a refused
request is told whether its token was missing, not sent as a bearer token, or wrong
(tests/test_claude_code_http.py shows what Claude Code makes of each).
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from glm_mcp.config import Settings
from glm_mcp.jobs.principal import Principal, subject_principal
from glm_mcp.server.signing_keys import ALGORITHMS, ProviderKeys

__all__ = [
    "LEEWAY_S",
    "NO_OAUTH_HELP",
    "EitherVerifier",
    "OidcTokenVerifier",
    "RequireToken",
    "oauth_routes",
    "token_principal",
]

logger = logging.getLogger(__name__)

LEEWAY_S = 2


class OidcTokenVerifier(TokenVerifier):
    """Checks an access token issued by `issuer` for `audience`: signature, issuer, audience, expiry, claims.

    An access token is anyone's input: whatever is wrong with it (an algorithm its key is not for, a claim of
    the wrong type, JSON nested past any depth) makes it refused (401), never an error (500). The key is
    looked up for the token's algorithm and passed as a `PyJWK`, so pyjwt checks the two match (given the
    bare key, cryptography raised TypeError: a 500).
    `running()` must be entered for as long as tokens are checked: the provider's keys are fetched there.
    """

    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None) -> None:
        self._issuer = issuer
        self._audience = audience
        self._keys = ProviderKeys(issuer, jwks_url)

    def running(self) -> AbstractAsyncContextManager[None]:
        """Where the provider's keys are fetched (`ProviderKeys.running`)."""
        return self._keys.running()

    async def verify_token(self, token: str) -> AccessToken | None:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            kid, algorithm = header.get("kid"), header.get("alg")
            if algorithm not in ALGORITHMS:
                raise jwt.InvalidAlgorithmError(f"the algorithm {algorithm!r} is not accepted")
            if not isinstance(kid, str):
                raise jwt.InvalidTokenError("it names no key (kid)")
        except Exception as exc:  # anyone's input: see the class docstring
            _log_refusal(exc)
            return None
        key = await self._keys.key(kid, algorithm)
        if key is None:
            logger.info("access token refused: the provider publishes no key %.80r for %s", kid, algorithm)
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            return self._access(token, claims)
        except Exception as exc:  # anyone's input: see the class docstring
            _log_refusal(exc)
            return None

    def _access(self, token: str, claims: dict[str, Any]) -> AccessToken:
        """What a verified token grants; InvalidTokenError for a claim of the wrong type."""
        import jwt

        scope = claims.get("scope", claims.get("scp"))
        scopes: list[str]
        if scope is None:
            scopes = []
        elif isinstance(scope, str):
            scopes = scope.split()
        elif isinstance(scope, list) and all(isinstance(s, str) for s in scope):
            scopes = list(scope)
        else:
            raise jwt.InvalidTokenError("its scope is neither a string nor a list of strings")
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise jwt.InvalidTokenError("its subject is not a string")
        client = next((c for c in (claims.get("client_id"), claims.get("azp")) if isinstance(c, str) and c), subject)
        return AccessToken(
            token=token,
            client_id=client,
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=self._audience,
            subject=subject,
            claims={"iss": claims["iss"]},
        )


def _log_refusal(exc: Exception) -> None:
    """PyJWT's refusals at INFO. Anything else a token brings about (pyjwt and cryptography have let TypeError
    through before) is still a refusal, logged at WARNING to be looked into, without a traceback."""
    import jwt

    if isinstance(exc, jwt.PyJWTError):
        logger.info("access token refused: %s", exc)
    else:
        logger.warning("access token refused on an unexpected %s: %s", type(exc).__name__, exc)


class EitherVerifier(TokenVerifier):
    """The static token or a provider's access token, whichever the bearer is."""

    def __init__(self, *verifiers: TokenVerifier) -> None:
        self._verifiers = verifiers

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self._verifiers:
            if (access := await verifier.verify_token(token)) is not None:
                return access
        return None


def token_principal(scope: Scope) -> Principal | None:
    """The principal of a request signed in through the provider; None for the static token or no token."""
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        return None
    token = user.access_token
    issuer = (token.claims or {}).get("iss")
    if token.subject is None or not isinstance(issuer, str):
        return None
    return subject_principal(issuer, token.subject)


def oauth_routes(settings: Settings) -> list[Route]:
    """The protected-resource metadata, with OAuth on; with only the static token, plain answers to OAuth probes."""
    if settings.signin.issuer and settings.signin.audience:
        return create_protected_resource_routes(
            AnyHttpUrl(settings.signin.audience),
            [AnyHttpUrl(settings.signin.issuer)],
            scopes_supported=[settings.signin.scope] if settings.signin.scope else None,
            resource_name="glm-mcp",
        )
    if not settings.http.token:
        return []
    probes = [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration",
    ]
    return [
        *(Route(path, _no_oauth, methods=["GET"]) for path in probes),
        Route("/register", _no_registration, methods=["POST"]),
    ]


NO_OAUTH_HELP = (
    "No OAuth sign-in here: this MCP server takes a static token (the one in its GLM_MCP_HTTP_TOKEN). Send it in "
    'the Authorization header; in Claude Code: claude mcp add --transport http <name> <url> --header "Authorization: '
    'Bearer <token>".'
)
"""The answer to an OAuth probe of a static-token server, which carries no token to judge: what to send instead."""


async def _no_oauth(_: Request) -> Response:
    return JSONResponse({"error": "not_found", "error_description": NO_OAUTH_HELP}, status_code=404)


async def _no_registration(_: Request) -> Response:
    """RFC 7591's error form. Claude Code, given no Authorization header, reports the failure of the last step of
    its OAuth sign-in, this registration, quoting this answer whole: it is where its user reads what to do."""
    return JSONResponse({"error": "invalid_client_metadata", "error_description": NO_OAUTH_HELP}, status_code=400)


class RequireToken(RequireAuthMiddleware):
    """The SDK's check, whose 401 says what is wrong with the request's token in words a person can act on, and
    which asks the scope (GLM_MCP_OAUTH_SCOPE) of the provider's tokens only: the static token has none to show.

    What is wrong comes first, then where the right token comes from: Claude Code shows a refused configured
    header as "Error detail: <this body>", cut to about 185 characters.
    """

    def __init__(self, app: Any, settings: Settings) -> None:
        audience = settings.signin.audience if settings.signin.issuer else None
        metadata = build_resource_metadata_url(AnyHttpUrl(audience)) if audience is not None else None
        super().__init__(app, [settings.signin.scope] if audience and settings.signin.scope else [], metadata)
        self._wrong = (
            "Wrong token" if audience is None else "The access token was refused (expired, or not for this server)"
        )
        if audience is None:
            self._takes = "this server takes the static token in its GLM_MCP_HTTP_TOKEN, as 'Authorization: Bearer "
            self._takes += "<token>' (it has no OAuth sign-in)."
        else:
            also = " (or the static token)" if settings.http.token else ""
            self._takes = f"send an access token from {settings.signin.issuer} for {audience}{also}."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not isinstance(scope.get("user"), AuthenticatedUser):
            await self._send_auth_error(send, 401, "invalid_token", f"{self._what_is_wrong(scope)}: {self._takes}")
        elif token_principal(scope) is None:  # the static token: the scope is the provider's to grant, not its
            await self.app(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def _what_is_wrong(self, scope: Scope) -> str:
        """Whether the request sent no token, one not as a bearer token, or one that was refused."""
        sent = [value for name, value in scope["headers"] if name.lower() == b"authorization"]
        if not sent or not sent[0].strip():
            return "No token was sent"
        if not sent[0].lower().startswith(b"bearer "):
            return "The Authorization header is not a bearer token (put 'Bearer ' before the token)"
        return self._wrong

    async def _send_auth_error(self, send: Send, status_code: int, error: str, description: str) -> None:
        await super()._send_auth_error(send, status_code, error, description.replace('"', "'"))
