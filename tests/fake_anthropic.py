"""A scripted fake of the Anthropic Messages API on a real loopback socket, to drive Claude Code headless.

Claude Code (`claude -p`, `ANTHROPIC_BASE_URL` pointing here) sends each turn of its agent loop as a
`POST /v1/messages`. This fake answers them from a script: a function from the request body to the
content blocks of the reply (text or `tool_use`). So a test can have "the model" call one of our MCP
tools, and then read, in the next request Claude Code sends, exactly what Claude Code handed its
model as the `tool_result`: that is what a real model would have read.

Every request is recorded (method, path, headers, JSON body). Replies are streamed as Server-Sent
Events when the body says `"stream": true` (message_start, content_block_start/delta/stop,
message_delta, message_stop, as the API sends them), and as one JSON message otherwise. The
auxiliary calls a client makes (`/v1/messages/count_tokens`, `/v1/models`) get plausible answers;
any other path is answered 404 in the API's error shape, and recorded like the rest.

It runs uvicorn on its own event loop in a daemon thread, like the GLM emulator.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Block = dict[str, Any]
"""A content block of an assistant message: {"type": "text", "text": …} or {"type": "tool_use", …}."""
Script = Callable[[dict[str, Any]], list[Block] | Awaitable[list[Block]]]
"""What the model answers to a Messages request body (at once, or after a while)."""

MODEL = "claude-fake-1"


@dataclass
class Exchange:
    """One request Claude Code sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def is_message(self) -> bool:
        return self.method == "POST" and self.path == "/v1/messages"


def text(value: str) -> Block:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: dict[str, Any], block_id: str) -> Block:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


def tool_names(body: dict[str, Any]) -> list[str]:
    """The names of the tools a Messages request offers the model."""
    return [str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)]


def tool_results(body: dict[str, Any]) -> list[Block]:
    """Every `tool_result` block in the request's messages, oldest first."""
    found: list[Block] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found.extend(b for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    return found


@dataclass
class CallOneTool:
    """The usual script: call `tool` once with `arguments`, then end the turn once its result has arrived.

    A request that does not offer the tool (a side request Claude Code makes with another prompt, such
    as a title) is answered with plain text and no tool call. `end_after` seconds pass before the
    last answer, while the tool's server goes on with what it does.
    """

    tool: str
    arguments: dict[str, Any]
    final_text: str = "Done."
    block_id: str = "toolu_fake_0001"
    search_id: str = "toolu_fake_0000"
    end_after: float = 0.0

    def __call__(self, body: dict[str, Any]) -> list[Block] | Awaitable[list[Block]]:
        answered = {r.get("tool_use_id") for r in tool_results(body)}
        if self.block_id in answered:
            return self._end()
        offered = tool_names(body)
        if self.tool in offered or self.search_id in answered:
            return [text("Calling the tool."), tool_use(self.tool, self.arguments, self.block_id)]
        if "ToolSearch" in offered:
            # Claude Code defers MCP tools: their schemas reach the model once it asks for them by name.
            return [tool_use("ToolSearch", {"query": f"select:{self.tool}"}, self.search_id)]
        return [text("OK.")]

    async def _end(self) -> list[Block]:
        await asyncio.sleep(self.end_after)
        return [text(self.final_text)]


@dataclass
class FakeAnthropic:
    """`with FakeAnthropic(script) as fake:` serves on `fake.base_url` (for ANTHROPIC_BASE_URL)."""

    script: Script = field(default=lambda body: [text("OK.")])
    exchanges: list[Exchange] = field(default_factory=list)
    port: int = 0
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def messages(self) -> list[dict[str, Any]]:
        """The bodies of the Messages requests, in order."""
        return [e.body for e in self.exchanges if e.is_message]

    def unknown_paths(self) -> list[str]:
        return [f"{e.method} {e.path}" for e in self.exchanges if e.path not in _KNOWN]

    def result_for(self, block_id: str) -> Block:
        """The `tool_result` Claude Code sent its model for the tool call `block_id`."""
        for body in self.messages():
            for result in tool_results(body):
                if result.get("tool_use_id") == block_id:
                    return result
        raise LookupError(f"no tool_result for {block_id} in {len(self.messages())} Messages requests")

    def __enter__(self) -> FakeAnthropic:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE", "HEAD"])])
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Anthropic API could not start")
            time.sleep(0.005)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = request.url.path
        self.exchanges.append(Exchange(request.method, path, dict(request.headers), body))
        if request.method == "POST" and path == "/v1/messages" and isinstance(body, dict):
            blocks = self.script(body)
            message = self._message(await blocks if inspect.isawaitable(blocks) else blocks)
            if body.get("stream"):
                return StreamingResponse(_events(message), media_type="text/event-stream")
            return JSONResponse(message)
        if request.method == "POST" and path == "/v1/messages/count_tokens":
            return JSONResponse({"input_tokens": len(raw) // 4})
        if request.method == "GET" and path == "/v1/models":
            model = {"type": "model", "id": MODEL, "display_name": "Fake", "created_at": "2026-01-01T00:00:00Z"}
            return JSONResponse({"data": [model], "has_more": False, "first_id": MODEL, "last_id": MODEL})
        error = {"type": "not_found_error", "message": f"the fake Anthropic API has no {request.method} {path}"}
        return JSONResponse({"type": "error", "error": error}, status_code=404)

    def _message(self, blocks: list[Block]) -> dict[str, Any]:
        calls_tool = any(b["type"] == "tool_use" for b in blocks)
        return {
            "id": f"msg_fake_{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": blocks,
            "stop_reason": "tool_use" if calls_tool else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 20},
        }


_KNOWN = {"/v1/messages", "/v1/messages/count_tokens", "/v1/models"}


async def _events(message: dict[str, Any]) -> AsyncIterator[bytes]:
    """`message` as the Messages API streams it."""
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 100, "output_tokens": 1}}
    yield _event("message_start", {"message": start})
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            yield _event("content_block_start", {"index": index, "content_block": {**block, "input": {}}})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            yield _event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            delta = {"type": "text_delta", "text": block["text"]}
        yield _event("content_block_delta", {"index": index, "delta": delta})
        yield _event("content_block_stop", {"index": index})
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield _event("message_delta", {"delta": stop, "usage": {"output_tokens": 20}})
    yield _event("message_stop", {})


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
