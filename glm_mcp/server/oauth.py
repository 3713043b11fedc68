"""Callers signed in through the organisation's identity provider: the HTTP server as an OAuth 2.1 resource server.

As the MCP authorization spec describes: the server publishes its protected-resource metadata
(RFC 9728) naming the configured authorization server, and accepts an access token only when
its signature checks against the provider's published keys (JWKS, through pyjwt's
`PyJWKClient`, cached), its issuer and audience are the configured ones, it has not expired, and
it grants the required scope. The caller is then the token's subject (`sub:<issuer>:<subject>`),
who owns the jobs and tasks it starts. The SDK's bearer middleware does the rest (401 with
`WWW-Authenticate: Bearer error=…, resource_metadata=…`, 403 `insufficient_scope`).

With only the static token, there is no OAuth to discover: a client that probes for it (Claude
Code does) gets an answer saying so and what to send instead, rather than a bare 404 it reports
as "Dynamic Client Registration rejected".
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import anyio
import jwt
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope, Send

from glm_mcp.config import Settings
from glm_mcp.jobs.principal import Principal, subject_principal

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
"""Asymmetric signatures only: `none` and shared-secret HMAC tokens are refused."""
LEEWAY_S = 2
DISCOVERY_TIMEOUT_S = 5


class OidcTokenVerifier(TokenVerifier):
    """Checks an access token issued by `issuer` for `audience`: signature, issuer, audience, expiry."""

    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url
        self._keys: jwt.PyJWKClient | None = None

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await anyio.to_thread.run_sync(self._decode, token)
        except (jwt.PyJWTError, OSError, ValueError) as exc:
            logger.info("access token refused: %s", exc)
            return None
        scope = claims.get("scope", claims.get("scp", ""))
        scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
        subject = str(claims["sub"])
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or subject),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=self._audience,
            subject=subject,
            claims={"iss": claims["iss"]},
        )

    def _decode(self, token: str) -> dict[str, Any]:
        """In a worker thread: the key may have to be fetched (PyJWKClient caches it, and refetches on a new kid)."""
        key = self._signing_keys().get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=self._audience,
            issuer=self._issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )

    def _signing_keys(self) -> jwt.PyJWKClient:
        if self._keys is None:
            url = self._jwks_url or _discovered_jwks_url(self._issuer)
            self._keys = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=DISCOVERY_TIMEOUT_S)
        return self._keys


def _discovered_jwks_url(issuer: str) -> str:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT_S) as response:
        document = json.load(response)
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError(f"{url} names no jwks_uri")
    return jwks_uri


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
    if settings.oauth_issuer and settings.oauth_audience:
        return create_protected_resource_routes(
            AnyHttpUrl(settings.oauth_audience),
            [AnyHttpUrl(settings.oauth_issuer)],
            scopes_supported=[settings.oauth_scope] if settings.oauth_scope else None,
            resource_name="glm-mcp",
        )
    if not settings.http_token:
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


STATIC_TOKEN_HELP = (
    "This server does not use OAuth sign-in: it takes one static bearer token. The token is missing or wrong: send "
    "the header 'Authorization: Bearer <token>' with the token its operator set in GLM_MCP_HTTP_TOKEN (in Claude "
    'Code: claude mcp add --transport http … --header "Authorization: Bearer <token>").'
)


async def _no_oauth(_: Request) -> Response:
    return JSONResponse({"error": "not_found", "error_description": STATIC_TOKEN_HELP}, status_code=404)


async def _no_registration(_: Request) -> Response:
    """RFC 7591's error form, so a client reports the description instead of a bare refusal."""
    return JSONResponse({"error": "invalid_client_metadata", "error_description": STATIC_TOKEN_HELP}, status_code=400)


class RequireToken(RequireAuthMiddleware):
    """The SDK's check, whose 401 says what is wrong in words a person can act on."""

    def __init__(self, app: Any, settings: Settings) -> None:
        audience = settings.oauth_audience if settings.oauth_issuer else None
        oauth = audience is not None
        metadata = build_resource_metadata_url(AnyHttpUrl(audience)) if audience is not None else None
        super().__init__(app, [settings.oauth_scope] if oauth and settings.oauth_scope else [], metadata)
        self._help = (
            "A valid access token from the identity provider is required (or the static token)."
            if oauth
            else STATIC_TOKEN_HELP
        )

    async def _send_auth_error(self, send: Send, status_code: int, error: str, description: str) -> None:
        if status_code == 401:
            description = self._help
        await super()._send_auth_error(send, status_code, error, description.replace('"', "'"))
