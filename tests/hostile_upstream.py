"""A misbehaving GLM upstream on a real loopback socket, for the tests that the emulator must not serve.

The emulator stays true to the API. This one is raw HTTP/1.1 on asyncio, in its own thread with its
own event loop, so it can send what no real platform sends: the caller's Authorization header echoed
back in bodies, frames and headers, streams that trickle forever, gzip bombs, endless answers. It
records each request and whether the client left before the reply was fully sent.

A test sets `upstream.reply` to a function from the request to a `Reply`; the builders below make
the usual ones. `body` is sent with a Content-Length; `stream` is an async generator of pieces sent
with chunked encoding, until it ends or the client leaves.
"""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")

    @property
    def token(self) -> str:
        """What the client sent after `Bearer `: the key itself, or the signed JWT."""
        return self.authorization.removeprefix("Bearer ")


@dataclass
class Reply:
    status: int = 200
    reason: str = "OK"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Callable[[], AsyncIterator[bytes]] | None = None
    """Pieces sent one by one (chunked encoding) while the client stays."""
    pause: float = 0.0
    """Seconds between pieces of `stream` (and of a large `body`)."""


@dataclass
class Record:
    request: Request
    client_left: bool = False
    """The client closed the connection before the whole reply was sent."""


class HostileUpstream:
    """`with HostileUpstream() as upstream:` serves on `upstream.base_url` until the block ends."""

    def __init__(self) -> None:
        self.reply: Callable[[Request], Reply] = lambda request: Reply(404, "Not Found")
        self.records: list[Record] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/paas/v4"

    def __enter__(self) -> HostileUpstream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop)
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def clear(self, reply: Callable[[Request], Reply] | None = None) -> None:
        self.records.clear()
        if reply is not None:
            self.reply = reply

    @property
    def left(self) -> list[Record]:
        """The replies the client walked away from."""
        return [record for record in self.records if record.client_left]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                record = Record(request)
                self.records.append(record)
                reply = self.reply(request)
                if not await _send(reply, reader, writer):
                    record.client_left = True
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


async def _send(reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Send `reply`; False when the client left before its end."""
    head = [f"HTTP/1.1 {reply.status} {reply.reason}"]
    headers = {"content-type": "application/json", **reply.headers}
    if reply.stream is None:
        headers["content-length"] = str(len(reply.body))
    else:
        headers["transfer-encoding"] = "chunked"
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if reply.stream is None:
        pieces: AsyncIterator[bytes] = _pieces(reply.body)
        framed = False
    else:
        pieces = reply.stream()
        framed = True
    piece = await anext(pieces, None)
    while piece is not None:
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if framed else piece)
        try:
            await writer.drain()
        except ConnectionError:
            return False
        piece = await anext(pieces, None)
        # Looked for only between pieces: once a reply is whole, the client may send its next request.
        if piece is not None and await _client_left(reader, reply.pause):
            return False
    if framed:
        writer.write(b"0\r\n\r\n")
    try:
        await writer.drain()
    except ConnectionError:
        return False
    return True


async def _pieces(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _client_left(reader: asyncio.StreamReader, wait: float) -> bool:
    """Whether the client closed its side, looking for `wait` seconds (a peek: it sends nothing more)."""
    if reader.at_eof():
        return True
    try:
        data = await asyncio.wait_for(reader.read(1), wait) if wait > 0 else b"x"
    except TimeoutError:
        return False
    except ConnectionError:  # a client that closed with bytes unread resets the connection: it left all the same
        return True
    return data == b""


# --- replies ------------------------------------------------------------------------------


def json_reply(body: object, status: int = 200, reason: str = "OK", **headers: str) -> Reply:
    return Reply(status, reason, {"content-type": "application/json", **headers}, json.dumps(body).encode())


def sse_reply(frames: list[bytes], *, pause: float = 0.0, then: Callable[[], Iterator[bytes]] | None = None) -> Reply:
    """An event stream of `frames` (raw SSE bytes), followed by the pieces of `then` if given."""

    async def stream() -> AsyncIterator[bytes]:
        for frame in frames:
            yield frame
        for piece in then() if then else ():
            yield piece

    return Reply(headers={"content-type": "text/event-stream"}, stream=stream, pause=pause)


def chunk(content: str = "", *, finish: str | None = None, **extra: Any) -> bytes:
    """One `data:` frame of a streamed chat."""
    return delta_chunk({"content": content}, finish=finish, **extra)


def delta_chunk(delta: dict[str, Any], *, finish: str | None = None, **extra: Any) -> bytes:
    """One `data:` frame of a streamed chat whose delta is `delta` (content, reasoning_content, tool_calls)."""
    choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", **delta}}
    if finish:
        choice["finish_reason"] = finish
    event = {"id": "hostile-1", "created": 1, "model": "glm-4.6", "choices": [choice], **extra}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def completion_body(content: str = "ok") -> dict[str, Any]:
    return {
        "id": "hostile-1",
        "created": 1,
        "model": "glm-4.6",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def honest(request: Request) -> Reply:
    """What the platform would answer, briefly: a short answer, a submitted task, a finished task, models."""
    if request.path.endswith("/models"):
        return json_reply({"object": "list", "data": [{"id": "glm-4.6", "object": "model"}]})
    if "/async-result/" in request.path:
        return json_reply({"id": "task-1", "task_status": "SUCCESS", **completion_body()})
    if "/async/" in request.path:
        return json_reply({"id": "task-1", "request_id": "r", "model": "glm-4.6", "task_status": "PROCESSING"})
    if json.loads(request.body or b"{}").get("stream"):
        return sse_reply([chunk("ok"), chunk(finish="stop"), DONE])
    return json_reply(completion_body())


@cache
def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    """A gzip body of `inflated` zero bytes (1 GiB: about 1 MB compressed)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)
