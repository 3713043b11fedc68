"""The Starlette application: the same API mounted under the general and the coding prefix.

Every API request goes the same way: admission (``max_in_flight``), the fault asked for if any,
authentication, the endpoint's handler, recording.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from .auth import authenticate
from .config import EmulatorConfig, Plan
from .connection import client_gone, close_connection
from .control import control_routes
from .errors import ApiError, bad_request, platform_error
from .faults import ANSWER_KINDS, FAULT_HEADER, Fault, FaultError, Kind, parse_fault
from .generation import Reply, generate
from .sse import Ending, EventStreamResponse
from .state import AsyncTask, EmulatorState, Exchange
from .validation import ChatRequest, parse_chat, request_id_of
from .wire import assemble, chunks, completion, completion_body, new_envelope, task_id

MODELS_CREATED = 1735689600
"""``created`` of every entry of ``GET /models`` (2025-01-01); the real values are not known."""


def create_app(config: EmulatorConfig, state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app; its state is also reachable as ``app.state.emulator``."""
    state = state or EmulatorState()
    routes: list[Route | Mount] = [Route("/healthz", _healthz, methods=["GET"]), *control_routes(state)]
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
    send: Send
    streaming: bool
    """A chat request asking for a stream: only these get stream faults as such."""
    fault: Fault | None = None

    @classmethod
    async def read(cls, scope: Scope, receive: Receive, send: Send, streams: bool) -> _Call:
        request = Request(scope, receive)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        return cls(request, body, send, streams and isinstance(body, dict) and body.get("stream") is True)

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.body)

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    @property
    def break_off(self) -> str | None:
        """The finish reason a ``finish`` fault asks for."""
        return self.fault.reason if self.fault else None

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

    async def answer(self, response: Response) -> None:
        """Send ``response``, with the headers the fault's modifiers add."""
        if self.fault:
            response.headers.update(self.fault.headers)
        await response(self.request.scope, self.request.receive, self.send)


Handler = Callable[[_Call], "dict[str, Any] | Response"]


class _Endpoint:
    """An API route as an ASGI app rather than a request handler, so that it sees the end of
    its response (a stream counts as in flight until then) and can leave without one (``drop``)."""

    def __init__(self, api: _Api, handler: Handler, streams: bool = False) -> None:
        self.api = api
        self.handler = handler
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.api.serve(await _Call.read(scope, receive, send, self.streams), self.handler)


class _Api:
    """The API endpoints of one plan; both plans share this code and differ only in ``plan``."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState, plan: Plan) -> None:
        self.config = config
        self.state = state
        self.plan = plan

    def routes(self) -> list[Route]:
        return [
            Route("/chat/completions", _Endpoint(self, self._chat, streams=True), methods=["POST"]),
            Route("/async/chat/completions", _Endpoint(self, self._submit), methods=["POST"]),
            Route("/async-result/{task_id}", _Endpoint(self, self._poll), methods=["GET"]),
            Route("/models", _Endpoint(self, self._models), methods=["GET"]),
        ]

    async def serve(self, call: _Call, handler: Handler) -> None:
        """Answer one API request; beyond ``max_in_flight`` at once, refuse it at once with 429 / 1302."""
        if not self.state.admit(self.config.max_in_flight):
            refusal = platform_error("1302")
            await self._send(call, refusal.status, refusal.body(call.request_id))
            return
        try:
            await self._answer(call, handler)
        finally:
            self.state.done()

    async def _answer(self, call: _Call, handler: Handler) -> None:
        """Apply the fault asked for, if any; answer as the platform would unless it replaces the answer."""
        try:
            call.fault = self._fault_for(call)
        except FaultError as error:
            await self._send(call, 400, bad_request(f"{FAULT_HEADER}: {error}").body(call.request_id))
            return
        fault = call.fault
        if fault and fault.kind is Kind.STALL and await self._stall(call, fault.seconds):
            return
        if fault and fault.kind in ANSWER_KINDS:
            await self._answer_fault(call, fault)
            return
        try:
            authenticate(call.request.headers.get("authorization"), self.plan, self.config, time.time_ns() // 10**6)
            result = handler(call)
        except ApiError as error:
            status, body = error.status, error.body(call.request_id)
        else:
            if isinstance(result, Response):
                await call.answer(result)
                return
            status, body = 200, result
        await anyio.sleep(self.config.latency)
        await self._send(call, status, body)

    def _fault_for(self, call: _Call) -> Fault | None:
        """The header's fault, else the next one queued for this path (a header leaves the queue alone)."""
        header = call.request.headers.get(FAULT_HEADER, "").strip()
        fault = parse_fault(header) if header else self.state.take_fault(call.request.url.path)
        return fault.for_request(call.streaming) if fault else None

    async def _stall(self, call: _Call, seconds: float | None) -> bool:
        """Send nothing for ``seconds`` (None: until the client leaves); True when the client left."""
        with anyio.move_on_after(seconds):
            await client_gone(call.request.receive)
            self.state.client_left()
            self.state.record(call.exchange(0, None))
            return True
        return False

    async def _answer_fault(self, call: _Call, fault: Fault) -> None:
        """Answer with the fault instead of the API: an error, an error page, broken JSON, or nothing."""
        if fault.kind is Kind.DROP:
            self.state.record(call.exchange(0, None))
            # Under a server that cannot close connections, leaving without an answer is the nearest.
            await close_connection(call.request.scope, call.request.receive)
            return
        await anyio.sleep(self.config.latency)
        if fault.kind is Kind.ERROR:
            assert fault.code is not None
            error = platform_error(fault.code, call.model)
            await self._send(call, error.status, error.body(call.request_id))
        elif fault.kind is Kind.HTTP:
            assert fault.status is not None
            page, media_type = fault.http_page()
            self.state.record(call.exchange(fault.status, None))
            await call.answer(Response(page, fault.status, media_type=media_type))
        else:
            self.state.record(call.exchange(200, None))
            await call.answer(Response(_malformed(call), 200, media_type="application/json"))

    async def _send(self, call: _Call, status: int, body: dict[str, Any]) -> None:
        """Record and send a JSON answer."""
        self.state.record(call.exchange(status, body))
        await call.answer(JSONResponse(body, status_code=status))

    def _chat(self, call: _Call) -> dict[str, Any] | Response:
        request = self._parse(call)
        envelope = new_envelope(request.model + self.config.model_label, request.request_id)
        reply = self._reply(request, stream=request.stream, break_off=call.break_off)
        if not request.stream:
            return completion_body(envelope, reply)
        events = chunks(envelope, reply, request.tool_stream)
        events, ending = call.fault.shape(events, request.model) if call.fault else (events, Ending.DONE)

        def record(sent: list[dict[str, Any]]) -> None:
            """The completion the chunks assemble into, with the error of a ``stream-error`` frame."""
            response = assemble(envelope, [e for e in sent if "choices" in e])
            response |= next((e for e in sent if "error" in e), {})
            self.state.record(call.exchange(200, response, stream=True))

        slow = call.fault.seconds if call.fault and call.fault.kind is Kind.SLOW else None
        return EventStreamResponse(
            events,
            self.state,
            record,
            latency=self.config.latency,
            chunk_delay=self.config.chunk_delay if slow is None else slow,
            ending=ending,
        )

    def _submit(self, call: _Call) -> dict[str, Any]:
        """Accept an async job; its result is computed now and revealed after ``async_delay``."""
        request = self._parse(call)
        reply = self._reply(request, stream=False, break_off=call.break_off)
        envelope = new_envelope(request.model + self.config.model_label, request.request_id, task_id())
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

    def _reply(self, request: ChatRequest, *, stream: bool, break_off: str | None) -> Reply:
        """Generate the reply; outside a stream, tripping the content filter is a 400 / 1301
        (a ``finish:sensitive`` fault asks for the finish reason instead)."""
        reply = generate(request, self.state.prompt_cache, break_off=break_off)
        if reply.finish_reason == "sensitive" and not stream and break_off is None:
            raise platform_error("1301")
        return reply


def _malformed(call: _Call) -> bytes:
    """The first half of a completion's JSON, as if the body were cut off on its way."""
    envelope = new_envelope(call.model or "", call.request_id)
    message = {"role": "assistant", "content": "This answer never arrives in one piece."}
    text = json.dumps(completion(envelope, message, "stop", None, None), separators=(",", ":")).encode()
    return text[: len(text) // 2]
