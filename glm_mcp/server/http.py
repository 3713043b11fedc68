"""Serving MCP over Streamable HTTP: for one user on loopback, or for a team behind a load balancer.

A request to /mcp meets, in order: the bearer token (401 with `WWW-Authenticate`, when a token is
set), the caller-key check (400), the body limit (413), then the SDK's Host and Origin checks
against DNS rebinding (421, 403), which are always on. Browser preflights from the configured
origins are answered before all of them. /healthz and /readyz answer without a token, for
probes. On SIGTERM the server stops accepting connections, gives calls in flight
`shutdown_grace` seconds to finish, then exits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from glm_mcp import __version__
from glm_mcp.config import API_KEY_VARS, ConfigError, Settings
from glm_mcp.server.auth import ClientKeyError, SharedTokenVerifier, check_client_key_headers, client_credentials

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Host names always allowed: a DNS-rebinding page arrives under its own name, never under these."""
_HAS_PORT = re.compile(r":(\d+|\*)$")


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to serve a non-loopback address without a token, unless told the exposure is meant."""
    if settings.http_token or settings.allow_insecure or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve {host} without a token: anyone who can reach it could spend your GLM key. "
        "Set GLM_MCP_HTTP_TOKEN (or GLM_MCP_HTTP_TOKEN_FILE); or, if the network in front of it does the "
        "checking, pass --allow-insecure (GLM_MCP_ALLOW_INSECURE=true)."
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding checks, on whatever address is bound: loopback names plus the configured ones."""
    hosts = [*LOOPBACK_NAMES, *settings.allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[pattern for host in hosts for pattern in _any_port_unless_given(host)],
        allowed_origins=[
            *(pattern for name in LOOPBACK_NAMES for pattern in _any_port_unless_given(f"http://{name}")),
            *settings.allowed_origins,
        ],
    )


def _any_port_unless_given(host: str) -> tuple[str, ...]:
    return (host,) if _HAS_PORT.search(host) else (host, f"{host}:*")


def create_http_app(server: MCPServer[Any], settings: Settings) -> Starlette:
    """The ASGI app: MCP at /mcp behind the checks above, and the two probes."""
    mcp: ASGIApp = _CallerKeyCheck(
        server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=settings.stateless,
            max_request_body_size=settings.max_body_bytes,
            transport_security=transport_security(settings),
        ),
        settings,
    )
    middleware: list[Middleware] = []
    if settings.allowed_origins:  # browser apps there must pass the CORS preflight, which carries no token
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origin_regex=_origins_regex(settings.allowed_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["*"],
                expose_headers=["Mcp-Session-Id", "WWW-Authenticate"],
            )
        )
    if settings.http_token:
        backend = BearerAuthBackend(SharedTokenVerifier(settings.http_token))
        middleware += [Middleware(AuthenticationMiddleware, backend=backend), Middleware(AuthContextMiddleware)]
        mcp = RequireAuthMiddleware(mcp, required_scopes=[])
    routes = [
        Route(HEALTH_PATH, _health, methods=["GET"]),
        Route(READY_PATH, _readiness(settings), methods=["GET"]),
        Route(MCP_PATH, mcp),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lambda _: server.session_manager.run())


def _origins_regex(origins: tuple[str, ...]) -> str:
    return "|".join(re.escape(o[:-2]) + r":\d+" if o.endswith(":*") else re.escape(o) for o in origins)


async def _health(_: Request) -> Response:
    """Liveness: the process answers. Nothing outside it is consulted, so a GLM outage restarts nothing."""
    return JSONResponse({"status": "ok", "server": "glm-mcp", "version": __version__})


def _readiness(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """Readiness: this replica can serve calls, i.e. it has a GLM key to spend or takes callers' keys.

    A rollout whose Secret lacks the key then never becomes ready, and the old replicas keep serving.
    """
    ready = settings.credentials is not None or settings.allow_client_keys

    async def readiness(_: Request) -> Response:
        if ready:
            return JSONResponse({"status": "ready"})
        reason = f"no GLM API key: set {API_KEY_VARS[0]} (or GLM_MCP_ALLOW_CLIENT_KEYS=true)"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    return readiness


class _CallerKeyCheck:
    """Answers 400 to a request whose caller-key header the tools would refuse, before MCP sees it."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            check_client_key_headers(scope["headers"])  # on the raw list: a mapping hides a second header
            client_credentials(Headers(scope=scope), self._settings)
        except ClientKeyError as exc:
            await PlainTextResponse(str(exc), status_code=400)(scope, receive, send)
            return
        await self._app(scope, receive, send)


def run_http(server: MCPServer[Any], settings: Settings, *, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C, then let calls in flight finish within `settings.shutdown_grace`."""
    calls = _CallsInFlight(create_http_app(server, settings))
    config = uvicorn.Config(
        calls,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace),
    )
    _DrainingServer(config, calls).run()


class _CallsInFlight:
    """Counts POST requests being answered: the MCP calls a shutdown must let finish."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        self.count += 1
        try:
            await self._app(scope, receive, send)
        finally:
            self.count -= 1


class _DrainingServer(uvicorn.Server):
    """uvicorn's graceful shutdown, with event streams ended only once no call is in flight.

    sse-starlette would end every event stream at the signal, cutting off the answers of calls in
    flight, so its own drain is turned off; the streams that only listen (a sessionful client's
    GET) are ended here once the calls are done, so they do not hold the exit for the whole grace.
    """

    def __init__(self, config: uvicorn.Config, calls: _CallsInFlight) -> None:
        super().__init__(config)
        self._calls = calls
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async def end_streams_once_calls_are_done() -> None:
            while self._calls.count:
                await asyncio.sleep(0.1)
            AppStatus.should_exit = True

        ender = asyncio.create_task(end_streams_once_calls_are_done())
        try:
            await super().shutdown(sockets)
        finally:
            ender.cancel()
