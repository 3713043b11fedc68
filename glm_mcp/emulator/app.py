"""The Starlette application: the same API mounted under the general and the coding prefix."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .auth import authenticate
from .config import EmulatorConfig, Plan
from .errors import ApiError, bad_request
from .generation import Reply, generate
from .sse import EventStreamResponse
from .state import AsyncTask, EmulatorState, Exchange
from .validation import ChatRequest, parse_chat, request_id_of
from .wire import assemble, chunks, completion_body, new_envelope, task_id

MODELS_CREATED = 1735689600
"""``created`` of every entry of ``GET /models`` (2025-01-01); the real values are not known."""


def create_app(config: EmulatorConfig, state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app; its state is also reachable as ``app.state.emulator``."""
    state = state or EmulatorState()
    routes: list[Route | Mount] = [Route("/healthz", _healthz, methods=["GET"])]
    routes += [Mount(plan.prefix, routes=_Api(config, state, plan).routes()) for plan in Plan]
    app = Starlette(routes=routes)
    app.state.emulator = state
    return app


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


_INVALID_JSON = object()


@dataclass
class _Call:
    """An incoming API request, read once, with what every endpoint needs from it."""

    request: Request
    body: Any

    @classmethod
    async def read(cls, request: Request) -> _Call:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        return cls(request, body)

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.body)

    def exchange(self, status: int, response: dict[str, Any] | None, stream: bool = False) -> Exchange:
        return Exchange(
            method=self.request.method,
            path=self.request.url.path,
            headers=dict(self.request.headers),
            body=self.body if isinstance(self.body, dict) else None,
            status=status,
            response=response,
            stream=stream,
        )


Handler = Callable[[_Call], "dict[str, Any] | Response"]


class _Api:
    """The API endpoints of one plan; both plans share this code and differ only in ``plan``."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState, plan: Plan) -> None:
        self.config = config
        self.state = state
        self.plan = plan

    def routes(self) -> list[Route]:
        return [
            Route("/chat/completions", self._endpoint(self._chat), methods=["POST"]),
            Route("/async/chat/completions", self._endpoint(self._submit), methods=["POST"]),
            Route("/async-result/{task_id}", self._endpoint(self._poll), methods=["GET"]),
            Route("/models", self._endpoint(self._models), methods=["GET"]),
        ]

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler with authentication, error bodies, latency and recording."""

        async def endpoint(request: Request) -> Response:
            call = await _Call.read(request)
            try:
                authenticate(request.headers.get("authorization"), self.plan, self.config, time.time_ns() // 10**6)
                result = handler(call)
            except ApiError as error:
                status, body = error.status, error.body(call.request_id)
            else:
                if isinstance(result, Response):
                    return result
                status, body = 200, result
            await anyio.sleep(self.config.latency)
            self.state.record(call.exchange(status, body))
            return JSONResponse(body, status_code=status)

        return endpoint

    def _chat(self, call: _Call) -> dict[str, Any] | Response:
        request = self._parse(call)
        envelope = new_envelope(request.model, request.request_id)
        reply = self._reply(request, stream=request.stream)
        if not request.stream:
            return completion_body(envelope, reply)

        def record(sent: list[dict[str, Any]]) -> None:
            self.state.record(call.exchange(200, assemble(envelope, sent), stream=True))

        return EventStreamResponse(chunks(envelope, reply, request.tool_stream), self.config, self.state, record)

    def _submit(self, call: _Call) -> dict[str, Any]:
        """Accept an async job; its result is computed now and revealed after ``async_delay``."""
        request = self._parse(call)
        reply = self._reply(request, stream=False)
        envelope = new_envelope(request.model, request.request_id, task_id())
        head = {"id": envelope.id, "request_id": envelope.request_id, "model": envelope.model}
        if reply.finish_reason == "network_error":
            result = {**head, "task_status": "FAIL"}
        else:
            completion = completion_body(envelope, reply)
            result = {**head, "task_status": "SUCCESS"} | {
                key: value for key, value in completion.items() if key not in ("object", *head)
            }
        pending = {**head, "task_status": "PROCESSING"}
        self.state.add_task(AsyncTask(envelope.id, time.monotonic() + self.config.async_delay, pending, result))
        return pending

    def _poll(self, call: _Call) -> dict[str, Any]:
        """A task's status. Unknown ids get 400 / 1210: the real answer is undocumented (a guess)."""
        wanted = call.request.path_params["task_id"]
        task = self.state.task(wanted)
        if task is None:
            raise bad_request(f"task not found: {wanted}")
        return task.result if time.monotonic() >= task.ready_at else task.pending

    def _models(self, call: _Call) -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": MODELS_CREATED, "owned_by": "z-ai"} for m in self.config.models]
        return {"object": "list", "data": data}

    def _parse(self, call: _Call) -> ChatRequest:
        if call.body is _INVALID_JSON:
            raise bad_request("The request body is not valid JSON.")
        return parse_chat(call.body, self.config)

    def _reply(self, request: ChatRequest, *, stream: bool) -> Reply:
        """Generate the reply; outside a stream, tripping the content filter is a 400 / 1301."""
        reply = generate(request, self.state.prompt_cache)
        if reply.finish_reason == "sensitive" and not stream:
            raise ApiError(400, "1301", "The input or generated content may contain unsafe or sensitive content.")
        return reply
