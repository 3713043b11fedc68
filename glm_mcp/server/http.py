"""Serving MCP over Streamable HTTP: for one user on loopback, or for a team behind a load balancer.

A request to /mcp meets, in order: the bearer token (401 with `WWW-Authenticate`, when a token is
set), the caller-key check (400), the body limit (413, on the declared length before anything is
read), then the SDK's Host and Origin checks against DNS rebinding (421, 403), which are always on.
In stateless mode /mcp takes POST only (405 before all of these): there is no session whose stream
a GET could open or a DELETE end. Browser preflights from the configured origins are answered before
all of them. /healthz and /readyz answer without a token, for probes. On SIGTERM the server stops
accepting connections, gives calls in flight `shutdown_grace` seconds to finish, then stops the calls
still running, each with a JSON-RPC error on its own stream (`server/cancellation.py`, which also
stops calls their caller cancelled or left), and exits. A request whose body is still arriving has
not started: it is not waited for.

Sockets are bounded too: a client has `header_timeout` seconds to send a request's headers
(uvicorn's h11 protocol has no such limit, so one idle or trickling socket would be held for
ever), past `max_connections` open connections requests other than the probes are answered 503,
and the open-files soft limit is raised to the hard limit at start so those connections fit beside
the files the process needs itself. Out of descriptors all the same, the server says so once per
`REPEATED_WARNING_INTERVAL_S` (asyncio would log every failed `accept()`, thousands a second) and
accepts again as soon as some close. The access log is written here rather than by uvicorn, with
the path but never the query string: a token pasted into a URL (`/mcp?token=…`) is not written
anywhere.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sized
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from glm_mcp import __version__
from glm_mcp.config import API_KEY_VARS, ConfigError, Settings
from glm_mcp.errors import ClientKeyError, RegistryUnavailable
from glm_mcp.server import tasks_2025
from glm_mcp.server.auth import CALLER_KEY_SCOPE, SharedTokenVerifier, read_caller_key
from glm_mcp.server.cancellation import CallRegistry, CallStopper, StopCalls
from glm_mcp.server.oauth import EitherVerifier, OidcTokenVerifier, RequireToken, oauth_routes
from glm_mcp.server.state import registry_of

__all__ = [
    "CUT_OFF_FLUSH_S",
    "HEALTH_PATH",
    "LOOPBACK_NAMES",
    "MCP_PATH",
    "PROBE_PATHS",
    "READY_PATH",
    "REPEATED_WARNING_INTERVAL_S",
    "RESERVED_FILES",
    "BodyLimit",
    "access_logger",
    "bounded_protocol",
    "check_exposure",
    "connection_limit",
    "create_http_app",
    "is_loopback",
    "run_http",
    "transport_security",
]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("glm_mcp.access")

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Host names always allowed: a DNS-rebinding page arrives under its own name, never under these."""
_HAS_PORT = re.compile(r":(\d+|\*)$")
PROBE_PATHS = frozenset({HEALTH_PATH, READY_PATH})
"""Answered past the connection cap too: an orchestrator must not restart a replica for being busy."""
RESERVED_FILES = 256
"""Open files kept for everything but client connections (upstream pool, registry, logs): a quarter of the
open-files limit, at most this many."""
REPEATED_WARNING_INTERVAL_S = 10.0
"""A warning that could repeat for every connection (out of descriptors, over the cap) is written at most
once in this many seconds, with how often it happened."""
CUT_OFF_FLUSH_S = 2
"""Past the grace, how long calls stopped with an error get to write it before uvicorn cancels what is left."""


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to serve a non-loopback address without a token, unless told the exposure is meant."""
    if settings.http.token or settings.signin.issuer or settings.http.allow_insecure or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve {host} without a token: anyone who can reach it could spend your GLM key. "
        "Set GLM_MCP_HTTP_TOKEN (or GLM_MCP_HTTP_TOKEN_FILE); or, if the network in front of it does the "
        "checking, pass --allow-insecure (GLM_MCP_ALLOW_INSECURE=true)."
    )


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address or `localhost`: what may be served without a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding checks, on whatever address is bound: loopback names plus the configured ones."""
    hosts = [*LOOPBACK_NAMES, *settings.http.allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[pattern for host in hosts for pattern in _any_port_unless_given(host)],
        allowed_origins=[
            *(pattern for name in LOOPBACK_NAMES for pattern in _any_port_unless_given(f"http://{name}")),
            *settings.http.allowed_origins,
        ],
    )


def _any_port_unless_given(host: str) -> tuple[str, ...]:
    return (host,) if _HAS_PORT.search(host) else (host, f"{host}:*")


def create_http_app(server: MCPServer[Any], settings: Settings, calls: CallRegistry | None = None) -> Starlette:
    """The ASGI app: MCP at /mcp behind the checks above, and the two probes.

    `calls` is where the tool calls in flight are kept, so that a cancellation notice, a client
    gone away or the shutdown can stop them (see `server/cancellation.py`).
    """
    calls = calls if calls is not None else CallRegistry()
    server.middleware.append(StopCalls(calls))
    if not settings.http.stateless:  # a stateless POST cannot know what its client declared at `initialize`
        tasks_2025.install(server)
    server.streamable_http_app(  # makes the session manager with these settings (its Starlette app is not used)
        streamable_http_path=MCP_PATH,
        stateless_http=settings.http.stateless,
        max_request_body_size=settings.http.max_body_bytes,
        transport_security=transport_security(settings),
    )
    _without_a_second_body_copy(server.session_manager)
    # The session manager's own ASGI app, routed to by this app's route: the SDK's Starlette app around it would
    # add a second error layer, exception layer and router to every request (its lifespan, the manager's `run`, is
    # this app's: `running`).
    transport = StreamableHTTPASGIApp(server.session_manager)
    mcp: ASGIApp = _CallerKeyCheck(BodyLimit(CallStopper(transport, calls), settings.http.max_body_bytes), settings)
    # Stateless, a GET would open an event stream nothing can ever be sent on (no session), held for as long as
    # its client likes, and a DELETE has no session to end: the transport lets a server answer both 405.
    methods = ["POST"] if settings.http.stateless else ["GET", "POST", "DELETE"]
    middleware: list[Middleware] = []
    if settings.http.allowed_origins:  # browser apps there must pass the CORS preflight, which carries no token
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origin_regex=_origins_regex(settings.http.allowed_origins),
                allow_methods=methods,
                allow_headers=["*"],
                expose_headers=["Mcp-Session-Id", "WWW-Authenticate"],
            )
        )
    verifiers: list[TokenVerifier] = []
    running: list[Callable[[], AbstractAsyncContextManager[None]]] = [server.session_manager.run]
    if settings.http.token:
        verifiers.append(SharedTokenVerifier(settings.http.token))
    if settings.signin.issuer and settings.signin.audience:  # signed in through the provider (server/oauth.py)
        provider = OidcTokenVerifier(settings.signin.issuer, settings.signin.audience, settings.signin.jwks_url)
        verifiers.append(provider)
        running.append(provider.running)
    if verifiers:
        backend = BearerAuthBackend(EitherVerifier(*verifiers))
        middleware += [Middleware(AuthenticationMiddleware, backend=backend), Middleware(AuthContextMiddleware)]
        mcp = RequireToken(mcp, settings)
    routes = [
        Route(HEALTH_PATH, _health, methods=["GET"]),
        Route(READY_PATH, _readiness(server, settings), methods=["GET"]),
        Route(MCP_PATH, mcp, methods=methods),
        *oauth_routes(settings),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(running))


def _lifespan(
    running: list[Callable[[], AbstractAsyncContextManager[None]]],
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """What runs for as long as the app serves: the SDK's session manager, and the provider's key fetches."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for context in running:
                await stack.enter_async_context(context())
            yield

    return lifespan


def _origins_regex(origins: tuple[str, ...]) -> str:
    return "|".join(re.escape(o[:-2]) + r":\d+" if o.endswith(":*") else re.escape(o) for o in origins)


async def _health(_: Request) -> Response:
    """Liveness: the process answers. Nothing outside it is consulted, so a GLM outage restarts nothing."""
    return JSONResponse({"status": "ok", "server": "glm-mcp", "version": __version__})


def _readiness(server: MCPServer[Any], settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """Readiness: this replica can serve calls, i.e. it has a GLM key to spend or takes callers' keys, and
    its job registry answers (a shared database can be down; a SQLite file has nothing to check).

    A rollout whose Secret lacks the key then never becomes ready, and the old replicas keep serving.
    """
    ready = settings.upstream.credentials is not None or settings.http.allow_client_keys

    async def readiness(_: Request) -> Response:
        if not ready:
            reason = f"no GLM API key: set {API_KEY_VARS[0]} (or GLM_MCP_ALLOW_CLIENT_KEYS=true)"
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        store = registry_of(server)
        if store is not None:
            try:
                await store.check()
            except RegistryUnavailable as exc:
                reason = f"{exc} {exc.fix}"
                return JSONResponse({"status": "not ready", "reason": reason, "error": exc.kind}, status_code=503)
        return JSONResponse({"status": "ready"})

    return readiness


def _without_a_second_body_copy(manager: StreamableHTTPSessionManager) -> None:
    """Take the SDK's body limit out from in front of its session manager: `BodyLimit` checks the same limit.

    The SDK's copies each body into a buffer of its own, kept until the request ends, and hands the app a
    second copy: with the copy Starlette joins and the parsed JSON, each body was held three times over
    while its call ran. Should a later SDK wrap its manager otherwise, its limit stays (checked twice).
    """
    limited = manager.asgi_app
    if isinstance(limited, RequestBodyLimitMiddleware):
        manager.asgi_app = limited.app  # type: ignore[assignment]  # the same ASGI callable, one copy fewer


class BodyLimit:
    """413 for a request body over `max_bytes`, decided before the app sees the request.

    A declared Content-Length over the limit is refused before a byte of the body is read; a body
    without one (chunked) is counted as it arrives and refused once over, having kept at most the limit.
    A body within it is handed on whole, in one message, so nothing behind this layer (session,
    transport, call) is set up for a request that is refused, and the pieces it arrived in are gone
    before the app copies it (Starlette joins what it receives; the SDK parses that). A client gone
    before its body was complete gets nothing: there is no one to answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name.lower() == b"content-length"), b"")
        if declared.strip().isdigit() and int(declared) > self._max_bytes:
            await _TOO_LARGE(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # http.disconnect: the client left before its request was complete
            body += message.get("body", b"")
            if len(body) > self._max_bytes:
                del body
                await _TOO_LARGE(scope, receive, send)
                return
            more = message.get("more_body", False)
        request = _Received(bytes(body), receive)
        del body
        try:
            await self._app(scope, request, send)
        finally:
            request.close()


_TOO_LARGE = PlainTextResponse("Request body too large", status_code=413)


class _Received:
    """A request's `receive` once its body is in: the body, then the connection's own messages (a disconnect);
    once the request is answered, a disconnect without holding on to anything (the SDK keeps each session's
    last request, its `receive` included, until the session's next one)."""

    def __init__(self, body: bytes, receive: Receive) -> None:
        self._body: bytes | None = body
        self._receive: Receive | None = receive

    async def __call__(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if self._receive is None:
            return {"type": "http.disconnect"}
        return await self._receive()

    def close(self) -> None:
        self._body = None
        self._receive = None


class _CallerKeyCheck:
    """Reads the caller-key header once: 400 for one the server must refuse, before MCP sees the request;
    otherwise the checked key (or None) is left in the scope for the tools (`AppState.for_request`)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            scope[CALLER_KEY_SCOPE] = read_caller_key(scope["headers"], self._settings)
        except ClientKeyError as exc:
            await PlainTextResponse(str(exc), status_code=400)(scope, receive, send)
            return
        await self._app(scope, receive, send)


def run_http(server: MCPServer[Any], settings: Settings, *, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C, then let calls in flight finish within `settings.http.shutdown_grace`."""
    registry = CallRegistry()
    calls = _CallsInFlight(_AccessLog(create_http_app(server, settings, registry)))
    config = uvicorn.Config(
        calls,
        host=host,
        port=port,
        log_level=settings.server.log_level.lower(),
        access_log=False,  # _AccessLog writes it, without the query string
        http=bounded_protocol(settings.http.header_timeout, connection_limit(settings.http.max_connections)),
        timeout_graceful_shutdown=math.ceil(settings.http.shutdown_grace) + CUT_OFF_FLUSH_S,
    )
    _DrainingServer(config, calls, registry, settings.http.shutdown_grace).run()


def connection_limit(wanted: int) -> int:
    """Raise the open-files soft limit to the hard limit; the connections that then fit, at most `wanted`.

    What does not fit is the reserve: a quarter of the limit, at most RESERVED_FILES, for the process's own
    files (a fixed 256 left a limit of 256 room for one connection, which every request then exceeded).
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit the kernel caps lower
            logger.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
    if soft == resource.RLIM_INFINITY:
        return wanted
    fits = max(soft - min(RESERVED_FILES, soft // 4), 1)
    if fits < wanted:
        logger.warning(
            "the open-files limit (%d) leaves room for %d connections, fewer than GLM_MCP_MAX_CONNECTIONS=%d",
            soft,
            fits,
            wanted,
        )
    return min(wanted, fits)


class _Occasional:
    """A warning written at most once per REPEATED_WARNING_INTERVAL_S, saying how many times it happened."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._count = 0
        self._next = -math.inf

    def warn(self, *args: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + REPEATED_WARNING_INTERVAL_S
        logger.warning(self._message + " (%d time(s) since this was last logged)", *args, self._count)
        self._count = 0


_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class _AcceptFailures:
    """The event loop's exception handler, writing a failed `accept()` (out of descriptors) once per interval.

    asyncio reports each one with a traceback, and once out it goes on calling `accept()` up to the listen
    backlog's length (2048) per wake-up (CPython gh-151615), each retrying a second later: tens of thousands
    of lines a second. It does retry, so the server accepts again as soon as descriptors free up; this only
    tells the operator, once in a while. Anything else goes to the handler there was.
    """

    def __init__(self, connections: Sized, previous: _ExceptionHandler | None) -> None:
        self._connections = connections
        self._previous = previous
        self._warning = _Occasional(
            "out of file descriptors (open-files limit %s, %d connections open): new connections wait until some "
            "close. Raise the limit (ulimit -n, systemd LimitNOFILE) or lower GLM_MCP_MAX_CONNECTIONS"
        )

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        if isinstance(exception, OSError) and exception.errno in _OUT_OF_RESOURCES and "accept" in context["message"]:
            self._warning.warn(_open_files_limit(), len(self._connections))
        elif self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


def _open_files_limit() -> str:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return "unknown"
    return str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


_BUSY = PlainTextResponse("Service Unavailable: too many connections", status_code=503, headers={"Connection": "close"})


def bounded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the bounds a socket needs, which uvicorn does not give it:

    * a header deadline: a connection that has not sent a request's headers within `header_timeout` is
      closed. The deadline starts when the connection opens and again each time a response is complete
      (waiting for the next request on a kept-alive connection); it is met once the request's headers
      are in, i.e. once a new request cycle has begun. A slow body or a long answer is not affected: it
      has a cycle.
    * a connection cap: past `max_connections` open connections (idle ones included) a request is
      answered 503 and its connection closed, the probes excepted. uvicorn's own cap
      (`limit_concurrency`) refuses the probes too and logs every refusal.
    * a shutdown that does not wait for a request whose body is still arriving (a client dribbling one
      byte a second would otherwise hold the exit to uvicorn's last limit): it has not started for the
      app, so its connection is closed at once, like an idle one.
    """
    over_cap = _Occasional(f"more than {max_connections} connections open: requests answered 503")

    class BoundedH11Protocol(H11Protocol):
        """uvicorn's h11 protocol with a header deadline, a connection cap the probes pass, and a shutdown that
        closes connections whose request has not started."""

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._uncapped_app = self.app
            self.app = self._capped_app

        async def _capped_app(self, scope: Scope, receive: Receive, send: Send) -> None:
            over = len(self.connections) > max_connections or len(self.tasks) > max_connections
            if over and scope["type"] == "http" and scope["path"] not in PROBE_PATHS:
                over_cap.warn()
                await _BUSY(scope, receive, send)
                return
            await self._uncapped_app(scope, receive, send)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_deadline: asyncio.TimerHandle | None = None
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
            super().connection_lost(exc)

        def shutdown(self) -> None:
            cycle = self.cycle
            if cycle is not None and cycle.more_body and not cycle.response_started:
                self.transport.close()  # its body is still arriving: the app has nothing to finish
                return
            super().shutdown()

        def _arm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
            self._header_deadline = self.loop.call_later(header_timeout, self._headers_overdue, self.cycle)

        def _headers_overdue(self, cycle_when_armed: object) -> None:
            self._header_deadline = None
            if self.cycle is cycle_when_armed and not self.transport.is_closing():
                self.transport.close()  # no request began in time: an idle or trickling socket

    return BoundedH11Protocol


class _AccessLog:
    """The access log uvicorn would write, with the path but never the query string (it may hold a token)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start" and access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_logger.info(
                    '%s - "%s %s HTTP/%s" %d',
                    f"{client[0]}:{client[1]}" if client else "-",
                    scope["method"],
                    scope["path"],
                    scope.get("http_version", "1.1"),
                    message["status"],
                )
            await send(message)

        await self._app(scope, receive, logging_send)


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
    Calls still running when the grace is over are stopped with a JSON-RPC error for their id
    (uvicorn would cancel their tasks, tearing the responses off mid-stream); uvicorn's own limit
    comes CUT_OFF_FLUSH_S later, for those errors to be written.
    """

    def __init__(self, config: uvicorn.Config, calls: _CallsInFlight, registry: CallRegistry, grace: float) -> None:
        super().__init__(config)
        self._calls = calls
        self._registry = registry
        self._grace = grace
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_AcceptFailures(self.server_state.connections, loop.get_exception_handler()))
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, let calls in flight finish within the grace, then stop the rest with a JSON-RPC error
        each."""

        async def end_streams_once_calls_are_done() -> None:
            loop = asyncio.get_running_loop()
            cut_off = loop.time() + self._grace
            while self._calls.count and loop.time() < cut_off:
                await asyncio.sleep(0.05)
            if self._calls.count:
                stopped = self._registry.stop_all("shutdown")
                logger.warning("shutdown grace (%gs) is over: stopped %d call(s) still running", self._grace, stopped)
            while self._calls.count:
                await asyncio.sleep(0.05)
            AppStatus.should_exit = True

        ender = asyncio.create_task(end_streams_once_calls_are_done())
        try:
            await super().shutdown(sockets)
        finally:
            ender.cancel()
