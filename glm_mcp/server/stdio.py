"""Serving MCP over stdio: every malformed line answered, a reused request id refused, a signal obeyed.

The SDK's stdio transport passes a line that is not a valid JSON-RPC message on as an exception,
which the server only logs: the client waits forever for an answer to, say, a request whose
`params` is not an object. JSON-RPC 2.0 says to answer: -32700 for text that is not JSON,
-32600 for JSON that is not a valid message (with the request's id when it has one). A request
the SDK's parser refuses although Python's reads it, one holding a lone surrogate escape such as
`"\\udce9"` (valid JSON, but no Unicode text), is answered with its own id: -32602 naming where.

A request whose id is still in use by one in flight gets -32600 too: the SDK would run both and
keep only the second in its table, so the first could no longer be cancelled.

The SDK reads stdin in a worker thread that cannot be interrupted, so a SIGINT waited for stdin
to close, which Claude Code never does (it sends SIGINT, then SIGTERM 0.1 s later). Here SIGINT or
SIGTERM ends the input as if stdin had closed: the SDK cancels the calls in flight (their upstream
streams close), the lifespan records the handed-off jobs as interrupted with their partial text, and
the process exits.

Where stdin and stdout are pipes or sockets (how every MCP client starts a server), both are read and
written on the event loop, without a thread: a line is read when epoll says it is there, an answer
written at once (and only waited on while the client does not read). The SDK's way, a worker thread
hop for every line read and two for every message written (`write`, `flush`), costs each call three
thread round trips. Elsewhere (a terminal, a file, Windows) a daemon thread reads stdin and the SDK
writes stdout, as before. Either way stdout's descriptor is claimed while serving: fd 1 then points at
stderr, so stray output of a library never reaches the wire.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from pydantic import ValidationError

from glm_mcp.server import tasks_2025
from glm_mcp.server.registration import lone_surrogate

__all__ = [
    "FORCED_STOP_S",
    "STOP_SIGNALS",
    "AnsweringMalformed",
    "PipeWriter",
    "SettlingIds",
    "StdinLines",
    "error_answer",
    "serve_stdio",
]

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FORCED_STOP_S = 3.0
"""After a signal, how long the orderly stop may take before everything is cancelled outright."""
_READ_SIZE = 64 * 1024


async def serve_stdio(server: MCPServer[Any]) -> None:
    """What `MCPServer.run_stdio_async` does, with malformed lines answered and signals obeyed."""
    lowlevel = server._lowlevel_server  # the SDK's own run_stdio_async drives this same object
    tasks_2025.install(server)  # one session per process: its `initialize` says whether the client takes tasks
    lines = StdinLines()
    async with anyio.create_task_group() as tg, _wire_out() as stdout:
        if sys.platform != "win32":
            tg.start_soon(_stop_on_signal, lines, tg.cancel_scope)
        lines.start()
        stdin = cast(Any, lines)  # the SDK only iterates it: `async for line in stdin`
        try:
            async with stdio_server(stdin=stdin, stdout=cast(Any, stdout)) as (read_stream, write_stream):
                in_flight: set[RequestId] = set()
                await lowlevel.run(
                    AnsweringMalformed(read_stream, write_stream, in_flight),
                    SettlingIds(write_stream, in_flight),
                    lowlevel.create_initialization_options(),
                )
        finally:
            lines.stop()
        tg.cancel_scope.cancel()


async def _stop_on_signal(lines: StdinLines, everything: anyio.CancelScope) -> None:
    """On the first SIGINT or SIGTERM end the input (an orderly stop); later ones change nothing."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            logger.info("%s: stopping", signal.Signals(signum).name)
            lines.end()
            break
        with anyio.move_on_after(FORCED_STOP_S):
            async for _ in signals:
                pass
        logger.warning("the orderly stop took over %g s: cancelling everything", FORCED_STOP_S)
        everything.cancel()


class _ClosedOnExit:
    """A stream wrapper usable as `async with`, as the SDK's streams are: leaving it closes it."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _is_pipe(fd: int) -> bool:
    """Whether `fd` is a pipe or a socket, which the event loop can wait on (not a terminal, not a file)."""
    if sys.platform == "win32":
        return False
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class PipeWriter:
    """The SDK's stdout (it awaits `write`, then `flush`), written straight to a non-blocking pipe."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, text: str) -> None:
        data = memoryview(text.encode())
        while data:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:  # the pipe is full: the client is not reading yet
                await anyio.wait_writable(self._fd)
                continue
            data = data[written:]

    async def flush(self) -> None:
        """Nothing is buffered here."""


@asynccontextmanager
async def _wire_out(fd: int = 1) -> AsyncIterator[PipeWriter | None]:
    """Claim stdout for the wire when it is a pipe: a private non-blocking duplicate is written, and `fd` points at
    stderr meanwhile (as the SDK's own claim does). None otherwise: the SDK then claims and writes it itself."""
    if not _is_pipe(fd) or not _backed_by(sys.stdout, fd):
        yield None
        return
    import fcntl  # POSIX only, as a pipe claimed here is

    sys.stdout.flush()
    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    diversion = os.dup(2)
    os.dup2(diversion, fd)
    os.close(diversion)
    os.set_blocking(private, False)
    try:
        yield PipeWriter(private)
    finally:
        os.set_blocking(private, True)
        os.dup2(private, fd)
        os.close(private)


def _backed_by(stream: Any, fd: int) -> bool:
    try:
        return bool(stream.buffer.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


class StdinLines:
    """The lines of stdin, so that `end()` stops them even while a read waits: read on the event loop from a pipe
    (non-blocking while serving), else by a daemon thread."""

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._send, self._receive = anyio.create_memory_object_stream[str](0)
        self._waiting: anyio.CancelScope | None = None
        self._ended = False
        self._pipe = _is_pipe(fd)
        self._lines: deque[str] = deque()
        self._pending = b""
        self._eof = False

    def start(self) -> None:
        if self._pipe:
            os.set_blocking(self._fd, False)
            return
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._read, args=(token,), name="glm-mcp stdin", daemon=True).start()

    def stop(self) -> None:
        """Leave stdin as it was found (blocking), for whatever reads it next."""
        if self._pipe:
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, True)

    def end(self) -> None:
        self._ended = True
        if self._waiting is not None:
            self._waiting.cancel()

    def _read(self, token: anyio.lowlevel.EventLoopToken) -> None:
        pending = b""
        try:
            while chunk := os.read(self._fd, _READ_SIZE):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    anyio.from_thread.run(self._send.send, line.decode("utf-8", "replace") + "\n", token=token)
            if pending:
                anyio.from_thread.run(self._send.send, pending.decode("utf-8", "replace"), token=token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (OSError, anyio.RunFinishedError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # stdin unreadable, or the server stopped listening

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        if self._pipe:
            return await self._next_from_pipe()
        if self._ended:
            raise StopAsyncIteration
        with anyio.CancelScope() as self._waiting:
            try:
                return await self._receive.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
            finally:
                self._waiting = None
        raise StopAsyncIteration  # end() was called while waiting

    async def _next_from_pipe(self) -> str:
        while not self._lines:
            if self._ended or self._eof:
                raise StopAsyncIteration
            with anyio.CancelScope() as self._waiting:
                await anyio.wait_readable(self._fd)
            self._waiting = None
            if self._ended:
                raise StopAsyncIteration
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""  # unreadable: as if closed
            self._take(chunk)
        return self._lines.popleft()

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            self._eof = True
            if self._pending:
                self._lines.append(self._pending.decode("utf-8", "replace"))
            return
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        self._lines.extend(line.decode("utf-8", "replace") + "\n" for line in lines)


class SettlingIds(_ClosedOnExit):
    """The write stream, forgetting each request id in flight as its answer goes out."""

    def __init__(self, inner: Any, in_flight: set[RequestId]) -> None:
        self._inner = inner
        self._in_flight = in_flight

    async def send(self, item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._in_flight.discard(coerce_request_id(message.id))
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()


class AnsweringMalformed(_ClosedOnExit):
    """A read stream that answers malformed lines and reused request ids itself and passes the rest on.

    `in_flight` holds the ids of the requests passed on and not answered yet (`SettlingIds`
    forgets them as the answers go out); a cancelled request, which the SDK never answers, is
    forgotten at its cancellation notice.
    """

    def __init__(self, inner: Any, write_stream: Any, in_flight: set[RequestId] | None = None) -> None:
        self._inner = inner
        self._write = write_stream
        self._in_flight: set[RequestId] = set() if in_flight is None else in_flight

    async def receive(self) -> SessionMessage | Exception:
        """The next message from the client; a malformed line is answered here and skipped."""
        while True:
            item = await self._inner.receive()
            if isinstance(item, ValidationError):
                answer = error_answer(item)  # the line is dropped, answered or not
            elif isinstance(item, SessionMessage) and (answer := self._track(item.message)) is not None:
                pass  # a reused id: answered here, not run
            else:
                return item  # type: ignore[no-any-return]
            if answer is not None:
                await self._write.send(SessionMessage(answer))

    def _track(self, message: object) -> JSONRPCError | None:
        """Note a request in flight; the error to answer instead when its id is already in use."""
        if isinstance(message, JSONRPCRequest):
            key = coerce_request_id(message.id)
            if key in self._in_flight:
                return _error(
                    message.id,
                    INVALID_REQUEST,
                    f"Invalid Request: id {message.id!r} is in use by a request still in flight; use a new id",
                )
            self._in_flight.add(key)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = as_request_id((message.params or {}).get("requestId"))
            if cancelled is not None:
                self._in_flight.discard(coerce_request_id(cancelled))
        return None

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None


def error_answer(error: ValidationError) -> JSONRPCError | None:
    """The JSON-RPC error for a line that failed to parse, or None for a malformed notification."""
    details = error.errors()
    unparsed = next((detail for detail in details if detail["type"] == "json_invalid"), None)
    if unparsed is not None:
        return _unparsed_answer(unparsed["input"])
    message = next((d["input"] for d in details if isinstance(d.get("input"), dict)), None)
    if message is None:
        return _error(None, INVALID_REQUEST, "Invalid Request: expected a JSON-RPC message object")
    if "id" not in message:
        return None  # a notification gets no answer, even a malformed one
    return _error(_readable_id(message), INVALID_REQUEST, "Invalid Request: not a valid JSON-RPC 2.0 / MCP message")


def _unparsed_answer(line: object) -> JSONRPCError | None:
    """The answer to a line the SDK's parser refused: with the request's id whenever Python's parser reads one.

    Python's parser takes what the SDK's does not: a lone surrogate escape, which is said with where it is, and
    `NaN`, which is not JSON either. A notification is not answered; a client's response, which has no `method`,
    is answered as text that is not JSON, as before.
    """
    try:
        message = json.loads(line) if isinstance(line, str) else None
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return _error(None, PARSE_ERROR, "Parse error: the line is not valid JSON")
    if "id" not in message:
        return None
    found = lone_surrogate(message)
    if found is None:
        return _error(_readable_id(message), PARSE_ERROR, "Parse error: the line is not valid JSON")
    if found.path.startswith("params"):
        return _error(_readable_id(message), INVALID_PARAMS, f"Invalid params: `{found.path}` {found.said()}.")
    return _error(_readable_id(message), INVALID_REQUEST, f"Invalid Request: `{found.path}` {found.said()}.")


def _readable_id(message: dict[str, Any]) -> int | str | None:
    """The request's id, when it is one that can be sent back (an integer, or a string that is Unicode text)."""
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    return request_id if lone_surrogate(request_id) is None else None


def _error(request_id: int | str | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))
