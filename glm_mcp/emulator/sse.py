"""Sending a stream as server-sent events, paced like a model and aware of clients leaving."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .config import EmulatorConfig
from .state import EmulatorState

DONE = b"data: [DONE]\n\n"


def frame(event: dict[str, Any]) -> bytes:
    """One SSE event: a single ``data:`` line and a blank line, no ``event:`` field."""
    return b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class EventStreamResponse(Response):
    """Sends prepared chunks, ``latency`` before the first and ``chunk_delay`` between the others.

    A task watches the connection while chunks go out: when the client leaves, sending stops at
    once and the stream counts as a disconnect. The stream is settled in the state (counted
    closed, ``on_end`` called with the chunks actually sent) before ``[DONE]`` goes out, so a
    client that has read the whole stream also sees it recorded.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: list[dict[str, Any]],
        config: EmulatorConfig,
        state: EmulatorState,
        on_end: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.events = events
        self.config = config
        self.state = state
        self.on_end = on_end
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent: list[dict[str, Any]] = []
        client_gone = settled = False

        def settle() -> None:
            nonlocal settled
            settled = True
            self.state.stream_closed(client_gone=client_gone)
            self.on_end(sent)

        self.state.stream_opened()
        try:
            async with anyio.create_task_group() as tasks:

                async def watch() -> None:
                    nonlocal client_gone
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    client_gone = True
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
                await anyio.sleep(self.config.latency)
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                for event in self.events:
                    if sent:
                        await anyio.sleep(self.config.chunk_delay)
                    await send({"type": "http.response.body", "body": frame(event), "more_body": True})
                    sent.append(event)
                tasks.cancel_scope.cancel()
            if not client_gone:
                settle()
                await send({"type": "http.response.body", "body": DONE, "more_body": False})
        finally:
            if not settled:  # cut by the client, or by the server shutting down
                settle()
