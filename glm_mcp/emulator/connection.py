"""The client's connection: noticing that it went away, and closing it without an HTTP answer.

ASGI has no way for an app to drop a connection, which the ``drop`` and ``stream-cut`` faults
need. The emulator's own uvicorn servers therefore use ``ClosingH11Protocol``, which offers the
app a ``close`` callable as an ASGI scope extension. Under another server the extension is
missing and ``close_connection`` says so.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

CLOSE_EXTENSION = "glm_mcp.emulator.close"
"""Key in ``scope["extensions"]``: a callable that closes the request's TCP connection."""


class ClosingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, offering every request a way to close its connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        app: ASGIApp = self.app

        async def with_close(scope: Scope, receive: Receive, send: Send) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), CLOSE_EXTENSION: transport.close}
            await app(scope, receive, send)

        self.app = with_close


async def client_gone(receive: Receive) -> None:
    """Return once the client has gone away (call it after the request body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def close_connection(scope: Scope, receive: Receive) -> bool:
    """Close the connection at once, whatever was sent on it; False when the server offers no way to.

    Returns after the server has noticed, so it does not try to complete the response itself.
    """
    close = (scope.get("extensions") or {}).get(CLOSE_EXTENSION)
    if close is None:
        return False
    close()
    await client_gone(receive)
    return True
