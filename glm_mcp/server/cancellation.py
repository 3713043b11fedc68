"""Stopping an HTTP tool call whose caller stopped it, went away, or outlived the shutdown grace.

Three ways a call over Streamable HTTP must stop, and the one mechanism behind all of them:

* **The caller cancels.** Clients (the TypeScript SDK, VS Code, Cursor) send `notifications/cancelled`
  on a POST of its own while the call's response stream stays open. In the default stateless mode
  the SDK gives every POST its own transport and session, so the session that receives the notice
  has never seen the request and drops it. Here the notice is matched across POSTs instead: on
  the caller's identity (a keyed hash of its `Authorization` header and of its `X-GLM-API-Key`,
  never the values) plus the session id when there is one (sessionful mode) plus the JSON-RPC
  request id. Exactly one call in flight under that key is cancelled; two (two clients sharing a
  token that both use the same id) are ambiguous: nothing is cancelled and a warning is logged.
* **The caller is gone** (crash, network cut, tab closed): the POST that carried the call sees
  `http.disconnect`, or ends, while the call still runs: nobody can receive its answer, so it is
  cancelled. In sessionful mode the SDK would let it run to its end. A chat already handed off as
  a job has returned by then, so its job carries on for `get_result`.
* **The server shuts down** past GLM_MCP_SHUTDOWN_GRACE: every call still running is stopped with a
  JSON-RPC error for its id ("the server is shutting down") on its own stream, which then ends
  cleanly, instead of being torn off mid-response.

How: `CallStopper`, an ASGI layer in front of the SDK's /mcp app, gives each POST an `Exchange`
(who sent it, whether it is still connected) in the ASGI scope, and reads the body as the SDK
reads it, to spot a cancellation notice. `StopCalls`, a server middleware (it runs inside the
SDK's own per-request task), finds the exchange through the request it is handed, registers a
`tools/call` under its key in the `CallRegistry` and runs the handler in a cancel scope of its
own. Stopping a call cancels that scope: the tool sees an ordinary cancellation, exactly as when
the SDK cancels a request within one session, so its job is cancelled and the upstream stream
closed. The call then answers `-32800 Request cancelled`, as the SDK answers a cancelled request
on this wire, or the shutdown error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, RequestId
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glm_mcp.server.auth import CLIENT_KEY_HEADER

__all__ = [
    "CANCELLED",
    "EXCHANGE_KEY",
    "REQUEST_CANCELLED",
    "SHUTTING_DOWN_MESSAGE",
    "Call",
    "CallKey",
    "CallRegistry",
    "CallStopper",
    "Exchange",
    "StopCalls",
    "StopReason",
    "caller_identity",
]

logger = logging.getLogger(__name__)

EXCHANGE_KEY = "glm_mcp.exchange"
"""Where a POST's `Exchange` is kept in its ASGI scope."""
CANCELLED = "notifications/cancelled"
REQUEST_CANCELLED = -32800
"""What the SDK answers a cancelled request with on the 2025 Streamable HTTP wire."""
SHUTTING_DOWN_MESSAGE = (
    "glm-mcp is shutting down: this call was stopped before it ended (past the shutdown grace). Call it again."
)
_PEEK_LIMIT = 64 * 1024
"""A cancellation notice is a few hundred bytes; bodies larger than this are not looked into."""
_IDENTITY_SECRET = secrets.token_bytes(32)
"""Per-process key of the identity hash: what is kept in memory tells nothing about a token."""

StopReason = Literal["cancelled", "disconnected", "shutdown"]
CallKey = tuple[bytes, str, RequestId]
"""(caller identity, session id or "", request id): what a cancellation notice is matched on."""


def caller_identity(headers: Headers) -> bytes:
    """A keyed hash of who sent a request: its bearer token and its own GLM key, if any."""
    digest = hmac.new(_IDENTITY_SECRET, digestmod=hashlib.sha256)
    for name in ("authorization", CLIENT_KEY_HEADER.lower()):
        for value in headers.getlist(name):
            digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(b"\1")
    return digest.digest()


@dataclass(eq=False)
class Call:
    """A tool call being answered, and how to stop it."""

    key: CallKey
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    reason: StopReason | None = None

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason
            self.scope.cancel()


@dataclass(eq=False)
class Exchange:
    """One POST to /mcp: who sent it, whether its client is still there, the call it carries."""

    identity: bytes
    session: str
    call: Call | None = None
    gone: bool = False

    def end(self) -> None:
        """The client can no longer receive an answer: a call still running is stopped."""
        self.gone = True
        if self.call is not None:
            self.call.stop("disconnected")


class CallRegistry:
    """The tool calls in flight over HTTP in this process, by caller, session and request id."""

    def __init__(self) -> None:
        self._calls: dict[CallKey, list[Call]] = {}

    def open(self, exchange: Exchange, request_id: RequestId) -> Call:
        call = Call((exchange.identity, exchange.session, coerce_request_id(request_id)))
        self._calls.setdefault(call.key, []).append(call)
        exchange.call = call
        if exchange.gone:
            call.stop("disconnected")
        return call

    def close(self, call: Call) -> None:
        calls = self._calls.get(call.key, [])
        if call in calls:
            calls.remove(call)
        if not calls:
            self._calls.pop(call.key, None)

    def cancel(self, key: CallKey) -> None:
        """A caller's `notifications/cancelled`: stop its call with that id, if exactly one matches."""
        calls = self._calls.get(key, [])
        if len(calls) == 1:
            logger.info("cancelling request %r at its caller's notice", key[2])
            calls[0].stop("cancelled")
        elif calls:
            logger.warning(
                "notifications/cancelled for request id %r matches %d calls in flight from the same caller "
                "(session %r): none cancelled, they cannot be told apart",
                key[2],
                len(calls),
                key[1] or None,
            )
        else:
            logger.debug("notifications/cancelled for request id %r: no such call in flight", key[2])

    def stop_all(self, reason: StopReason) -> int:
        """Stop every call in flight; returns how many there were."""
        calls = [call for group in self._calls.values() for call in group]
        for call in calls:
            call.stop(reason)
        return len(calls)

    def __len__(self) -> int:
        return sum(len(group) for group in self._calls.values())


class StopCalls:
    """Server middleware: runs each HTTP `tools/call` in a cancel scope the `CallRegistry` can reach."""

    def __init__(self, registry: CallRegistry) -> None:
        self._registry = registry

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = ctx.request
        exchange = request.scope.get(EXCHANGE_KEY) if isinstance(request, Request) else None
        if not isinstance(exchange, Exchange) or ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        call = self._registry.open(exchange, ctx.request_id)
        try:
            with call.scope:
                result = await call_next(ctx)
        except Exception as exc:
            if call.reason is None:
                raise
            raise _stopped(call.reason) from exc
        finally:
            self._registry.close(call)
            exchange.call = None
        if call.reason is not None:
            raise _stopped(call.reason)
        return result


def _stopped(reason: StopReason) -> MCPError:
    if reason == "shutdown":
        return MCPError(code=CONNECTION_CLOSED, message=SHUTTING_DOWN_MESSAGE)
    return MCPError(code=REQUEST_CANCELLED, message="Request cancelled")


class CallStopper:
    """ASGI layer before the SDK's /mcp app: an `Exchange` per POST, cancellation notices, disconnects."""

    def __init__(self, app: ASGIApp, registry: CallRegistry) -> None:
        self._app = app
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        exchange = Exchange(caller_identity(headers), headers.get("mcp-session-id", ""))
        scope[EXCHANGE_KEY] = exchange
        body: bytearray | None = bytearray()  # None once it cannot be a notice, or has been looked at

        async def watching() -> Message:
            nonlocal body
            message = await receive()
            if message["type"] == "http.request" and body is not None:
                chunk = message.get("body", b"")
                if len(body) + len(chunk) > _PEEK_LIMIT:
                    body = None
                else:
                    body.extend(chunk)
                    if not message.get("more_body", False):
                        self._notice(exchange, bytes(body))
                        body = None
            elif message["type"] == "http.disconnect":
                exchange.end()
            return message

        try:
            await self._app(scope, watching, send)
        finally:
            body = None  # the SDK keeps each session's last request, `watching` included, until its next one
            exchange.end()

    def _notice(self, exchange: Exchange, body: bytes) -> None:
        """Act on a `notifications/cancelled` in `body`, before the SDK acknowledges it."""
        if len(body) > _PEEK_LIMIT or CANCELLED.encode() not in body:
            return
        try:
            message = json.loads(body)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("method") != CANCELLED or "id" in message:
            return
        params = message.get("params")
        request_id = as_request_id(params.get("requestId")) if isinstance(params, dict) else None
        if request_id is not None:
            self._registry.cancel((exchange.identity, exchange.session, coerce_request_id(request_id)))
