"""Sending a stream as server-sent events, paced like a model and aware of clients leaving."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .connection import client_gone, close_connection

if TYPE_CHECKING:  # state imports faults, which import this module
    from .state import EmulatorState

DONE = b"data: [DONE]\n\n"


class Ending(Enum):
    """How a stream ends after its last chunk."""

    DONE = "done"
    """``data: [DONE]``, then the response ends: the normal way."""
    EOF = "eof"
    """The response ends without ``[DONE]``, as some failed streams do."""
    CUT = "cut"
    """The connection is closed: no ``[DONE]``, and the chunked body is never completed."""


def frame(event: dict[str, Any]) -> bytes:
    """One SSE event: a single ``data:`` line and a blank line, no ``event:`` field."""
    return b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class EventStreamResponse(Response):
    """Sends prepared chunks, ``latency`` before the first and ``chunk_delay`` between the others.

    A task watches the connection while chunks go out: when the client leaves, sending stops at
    once and the stream counts as a disconnect. The stream is settled in the state (counted
    closed, ``on_end`` called with the chunks actually sent) before it ends the ``ending`` way,
    so a client that has read the whole stream also sees it recorded.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: list[dict[str, Any]],
        state: EmulatorState,
        on_end: Callable[[list[dict[str, Any]]], None],
        *,
        latency: float,
        chunk_delay: float,
        ending: Ending = Ending.DONE,
    ) -> None:
        self.events = events
        self.state = state
        self.on_end = on_end
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.ending = ending
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent: list[dict[str, Any]] = []
        left = settled = False

        def settle() -> None:
            nonlocal settled
            settled = True
            self.state.stream_closed(client_gone=left)
            self.on_end(sent)

        self.state.stream_opened()
        try:
            async with anyio.create_task_group() as tasks:

                async def watch() -> None:
                    nonlocal left
                    await client_gone(receive)
                    left = True
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
                await anyio.sleep(self.latency)
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                for event in self.events:
                    if sent:
                        await anyio.sleep(self.chunk_delay)
                    await send({"type": "http.response.body", "body": frame(event), "more_body": True})
                    sent.append(event)
                tasks.cancel_scope.cancel()
            if not left:
                settle()
                await self._end(scope, receive, send)
        finally:
            if not settled:  # cut by the client, or by the server shutting down
                settle()

    async def _end(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ending is Ending.CUT and await close_connection(scope, receive):
            return
        # Under a server that cannot close connections for us, a cut stream at least ends early.
        last = DONE if self.ending is Ending.DONE else b""
        await send({"type": "http.response.body", "body": last, "more_body": False})
