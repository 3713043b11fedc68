"""Serving MCP over stdio, answering every malformed line instead of ignoring it.

The SDK's stdio transport passes a line that is not a valid JSON-RPC message on as an exception,
which the server only logs: the client waits forever for an answer to, say, a request whose
`params` is not an object. JSON-RPC 2.0 says to answer: -32700 for text that is not JSON,
-32600 for JSON that is not a valid message (with the request's id when it has one).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError


async def serve_stdio(server: MCPServer[Any]) -> None:
    """What `MCPServer.run_stdio_async` does, with malformed lines answered."""
    lowlevel = server._lowlevel_server  # the SDK's own run_stdio_async drives this same object
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(
            AnsweringMalformed(read_stream, write_stream),
            write_stream,
            lowlevel.create_initialization_options(),
        )


class AnsweringMalformed:
    """A read stream that answers the malformed lines it meets and passes only messages on."""

    def __init__(self, inner: Any, write_stream: Any) -> None:
        self._inner = inner
        self._write = write_stream

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, ValidationError):
                return item  # type: ignore[no-any-return]
            answer = error_answer(item)
            if answer is not None:
                await self._write.send(SessionMessage(answer))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def error_answer(error: ValidationError) -> JSONRPCError | None:
    """The JSON-RPC error for a line that failed to parse, or None for a malformed notification."""
    details = error.errors()
    if any(detail["type"] == "json_invalid" for detail in details):
        return _error(None, PARSE_ERROR, "Parse error: the line is not valid JSON")
    message = next((d["input"] for d in details if isinstance(d.get("input"), dict)), None)
    if message is None:
        return _error(None, INVALID_REQUEST, "Invalid Request: expected a JSON-RPC message object")
    request_id = message.get("id")
    if "id" not in message:
        return None  # a notification gets no answer, even a malformed one
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        request_id = None
    return _error(request_id, INVALID_REQUEST, "Invalid Request: not a valid JSON-RPC 2.0 / MCP message")


def _error(request_id: int | str | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))
