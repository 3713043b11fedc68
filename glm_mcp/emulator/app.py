"""The Starlette application: the same API mounted under the general and the coding prefix.

Every API request goes the same way: admission (``max_in_flight``), the fault asked for if any,
authentication, the endpoint's handler, recording.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import audio, batches, parser, quota
from .auth import authenticate
from .config import EmulatorConfig, Plan
from .connection import client_gone, close_connection
from .control import control_routes
from .errors import ApiError, bad_request, platform_error
from .faults import ANSWER_KINDS, FAULT_HEADER, Fault, FaultError, Kind, parse_fault
from .forms import Form, is_form, read_form
from .generation import Reply, generate, prompt_tokens
from .media import animation_png, picture_png
from .services import (
    ImageRequest,
    image_request,
    reader_body,
    reader_request,
    video_request,
    web_search_body,
    web_search_request,
)
from .sse import Ending, EventStreamResponse
from .state import AsyncTask, EmulatorState, Exchange, StoredFile, Use
from .validation import ChatRequest, parse_chat, request_id_of
from .wire import assemble, chunks, completion, completion_body, completion_id, new_envelope, task_id

FILES_PREFIX = "/files"
MONITOR_PREFIX = "/api/monitor/usage"
MODELS_CREATED = 1735689600
"""``created`` of every entry of ``GET /models`` (2025-01-01); the real values are not known."""


def create_app(config: EmulatorConfig, state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app; its state is also reachable as ``app.state.emulator``."""
    state = state or EmulatorState()
    routes: list[Route | Mount] = [Route("/healthz", _healthz, methods=["GET"]), *control_routes(state)]
    routes.append(Route(FILES_PREFIX + "/{name}", _files(state), methods=["GET"]))
    routes += [Mount(plan.prefix, routes=_Api(config, state, plan).routes()) for plan in Plan]
    routes.append(Mount(MONITOR_PREFIX, routes=_Api(config, state, Plan.CODING).monitor_routes()))
    app = Starlette(
        routes=routes, middleware=[Middleware(_RequestIds)], exception_handlers={404: _not_found, 405: _not_found}
    )
    app.state.emulator = state
    return app


class _RequestIds:
    """Adds an ``x-request-id`` header to every response, as the platform's gateway does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = completion_id().encode()

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_id)


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown routes (and wrong methods) get the platform's JSON error body, not a plain-text page."""
    status = getattr(exc, "status_code", 404)
    phrase = "Not Found" if status == 404 else "Method Not Allowed"
    body = {"error": {"code": str(status), "message": f"{phrase}: {request.method} {request.url.path}"}}
    return JSONResponse(body, status_code=status)


def _files(state: EmulatorState) -> Callable[[Request], Awaitable[Response]]:
    """``GET /files/<name>``: a generated image or video, like the platform's file CDN (no key; 404 once expired)."""

    async def serve_file(request: Request) -> Response:
        stored = state.file(request.path_params["name"])
        if stored is None:
            return await _not_found(request, Exception())
        return Response(stored.data, media_type=stored.media_type, headers={"cache-control": "private"})

    return serve_file


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
    raw: bytes = b""
    """The body as it came (an upload's multipart form)."""
    fault: Fault | None = None
    form: Form | ApiError | None = None
    """A multipart body (``forms.py``), or why it could not be read; ``body`` is then its summary."""
    account: str = ""
    """The key the request was made with, once authenticated: it owns the files and batches it makes."""

    @classmethod
    async def read(cls, scope: Scope, receive: Receive, send: Send, streams: bool) -> _Call:
        request = Request(scope, receive)
        raw = await request.body()
        if is_form(request):
            try:
                form: Form | ApiError = await read_form(request)
            except ApiError as error:
                form = error
            return cls(request, form.summary() if isinstance(form, Form) else None, send, False, form=form)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        return cls(request, body, send, streams and isinstance(body, dict) and body.get("stream") is True, raw)

    def upload(self) -> Form | None:
        """The request's form; None when the body is not one; the refusal when it could not be read."""
        if isinstance(self.form, ApiError):
            raise self.form
        return self.form

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

    def __init__(self, api: _Api, handler: Handler, streams: bool = False, auth: bool = True) -> None:
        self.api = api
        self.handler = handler
        self.streams = streams
        self.auth = auth
        """False: the handler authenticates on its own (the monitor endpoints take keys their own way)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.api.serve(await _Call.read(scope, receive, send, self.streams), self.handler, self.auth)


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
            Route("/images/generations", _Endpoint(self, self._image), methods=["POST"]),
            Route("/async/images/generations", _Endpoint(self, self._submit_image), methods=["POST"]),
            Route("/videos/generations", _Endpoint(self, self._submit_video), methods=["POST"]),
            Route("/web_search", _Endpoint(self, self._web_search), methods=["POST"]),
            Route("/reader", _Endpoint(self, self._reader), methods=["POST"]),
            Route("/files/parser/create", _Endpoint(self, self._parse_create), methods=["POST"]),
            Route("/files/parser/sync", _Endpoint(self, self._parse_sync), methods=["POST"]),
            Route("/files/parser/result/{task_id}/{format_type}", _Endpoint(self, self._parse_result), methods=["GET"]),
            Route("/audio/transcriptions", _Endpoint(self, self._transcribe), methods=["POST"]),
            Route("/files", _Endpoint(self, self._upload), methods=["POST"]),
            Route("/files", _Endpoint(self, self._list_files), methods=["GET"]),
            Route("/files/{file_id}", _Endpoint(self, self._file), methods=["GET"]),
            Route("/files/{file_id}", _Endpoint(self, self._delete_file), methods=["DELETE"]),
            Route("/files/{file_id}/content", _Endpoint(self, self._file_content), methods=["GET"]),
            Route("/batches", _Endpoint(self, self._create_batch), methods=["POST"]),
            Route("/batches", _Endpoint(self, self._list_batches), methods=["GET"]),
            Route("/batches/{batch_id}", _Endpoint(self, self._batch), methods=["GET"]),
            Route("/batches/{batch_id}/cancel", _Endpoint(self, self._cancel_batch), methods=["POST"]),
            Route("/tokenizer", _Endpoint(self, self._tokenize), methods=["POST"]),
        ]

    def monitor_routes(self) -> list[Route]:
        """The Coding Plan's usage endpoints, under ``/api/monitor/usage``."""
        return [
            Route("/quota/limit", _Endpoint(self, self._quota, auth=False), methods=["GET"]),
            Route("/model-usage", _Endpoint(self, self._model_usage, auth=False), methods=["GET"]),
            Route("/tool-usage", _Endpoint(self, self._tool_usage, auth=False), methods=["GET"]),
        ]

    async def serve(self, call: _Call, handler: Handler, auth: bool = True) -> None:
        """Answer one API request; beyond ``max_in_flight`` at once, refuse it at once with 429 / 1302."""
        if not self.state.admit(self.config.max_in_flight):
            refusal = platform_error("1302")
            await self._send(call, refusal.status, refusal.body(call.request_id))
            return
        try:
            await self._answer(call, handler, auth)
        finally:
            self.state.done()

    async def _answer(self, call: _Call, handler: Handler, auth: bool) -> None:
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
            if auth:
                authorization = call.request.headers.get("authorization")
                call.account = authenticate(authorization, self.plan, self.config, _now_ms())
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
        self._count(request.model, reply)
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
        self._count(request.model, reply)
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

    def _tokenize(self, call: _Call) -> dict[str, Any]:
        """``POST /tokenizer``: the prompt's tokens as a chat's ``usage.prompt_tokens`` would count them, nothing
        generated. Checked as a chat request is (model, messages); only function tools are taken, as the reference
        lists. The international reference's answer: ``usage`` with ``prompt_tokens``, ``image_tokens``,
        ``video_tokens`` and ``total_tokens`` (the emulator counts no media tokens, as its chat does not)."""
        request = self._parse(call)
        if any(tool.get("type") != "function" for tool in request.tools):
            raise bad_request("The tokenizer takes function tools only.")
        tokens = prompt_tokens(request)
        envelope = new_envelope(request.model, request.request_id)
        usage = {"prompt_tokens": tokens, "image_tokens": 0, "video_tokens": 0, "total_tokens": tokens}
        return {"id": envelope.id, "usage": usage, "created": envelope.created, "request_id": envelope.request_id}

    def _models(self, call: _Call) -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": MODELS_CREATED, "owned_by": "z-ai"} for m in self.config.models]
        return {"object": "list", "data": data}

    def _parse(self, call: _Call) -> ChatRequest:
        return parse_chat(self._body(call), self.config)

    @staticmethod
    def _body(call: _Call) -> Any:
        if call.body is _INVALID_JSON:
            raise bad_request("The request body is not valid JSON.")
        return call.body

    def _count(self, model: str, reply: Reply) -> None:
        """Coding-plan tokens count against the plan's quota (what the monitor endpoints report)."""
        if self.plan is Plan.CODING:
            tokens = reply.usage.prompt_tokens + reply.usage.completion_tokens
            self.state.add_use(Use(time.time(), model, tokens=tokens))

    def _tool_use(self, tool: str) -> None:
        if self.plan is Plan.CODING:
            self.state.add_use(Use(time.time(), tool, tool=tool))

    def _store(self, call: _Call, kind: str, data: bytes, media_type: str, suffix: str) -> str:
        """Keep a generated file for ``file_ttl`` seconds; its URL states the expiry (``expires``, Unix seconds)."""
        expires = time.time() + self.config.file_ttl
        name = f"{kind}-{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(8)}.{suffix}"
        self.state.add_file(name, StoredFile(data, media_type, expires))
        origin = f"{call.request.url.scheme}://{call.request.url.netloc}"
        return f"{origin}{FILES_PREFIX}/{name}?expires={int(expires)}"

    def _image_urls(self, call: _Call, request: ImageRequest) -> list[dict[str, str]]:
        png = picture_png(request.prompt, request.width, request.height)
        return [{"url": self._store(call, "image", png, "image/png", "png")}]

    def _image(self, call: _Call) -> dict[str, Any]:
        """CogView / glm-image: a real PNG of the asked size, drawn from the prompt, served under ``/files/``."""
        request = image_request(self._body(call), self.config)
        return {
            "created": int(time.time()),
            "data": self._image_urls(call, request),
            "content_filter": [{"role": "assistant", "level": 3}],
        }

    def _submit_image(self, call: _Call) -> dict[str, Any]:
        """glm-image's async form: a task whose result carries ``image_result``."""
        request = image_request(self._body(call), self.config)
        if not request.model.startswith("glm-image"):
            raise platform_error("1212", request.model)
        return self._add_task(call, request.model, {"image_result": self._image_urls(call, request)}, False)

    def _submit_video(self, call: _Call) -> dict[str, Any]:
        """CogVideoX / Vidu: an async task whose result points at a short animation and its cover image."""
        request = video_request(self._body(call), self.config)
        width, height = request.width, request.height
        video = self._store(call, "video", animation_png(request.prompt, width, height), "image/apng", "apng")
        cover = self._store(call, "cover", picture_png(request.prompt, width, height), "image/png", "png")
        return self._add_task(
            call, request.model, {"video_result": [{"url": video, "cover_image_url": cover}]}, request.fails
        )

    def _add_task(self, call: _Call, model: str, outcome: dict[str, Any], fails: bool) -> dict[str, Any]:
        envelope = new_envelope(model + self.config.model_label, call.request_id, task_id())
        head = {"model": envelope.model, "id": envelope.id, "request_id": envelope.request_id}
        pending = {**head, "task_status": "PROCESSING"}
        result = {**head, "task_status": "FAIL"} if fails else {**head, "task_status": "SUCCESS", **outcome}
        self.state.add_task(AsyncTask(envelope.id, time.monotonic() + self.config.async_delay, pending, result))
        return pending

    def _web_search(self, call: _Call) -> dict[str, Any]:
        """The standalone search: sources without a model's answer."""
        options, query = web_search_request(self._body(call))
        self._tool_use("search-prime")
        return {**self._head(call), **web_search_body(options, query, date.today())}

    def _reader(self, call: _Call) -> dict[str, Any]:
        """The page reader: any http(s) URL becomes a made-up page (no network), the same for the same URL."""
        request = reader_request(self._body(call))
        self._tool_use("web-reader")
        return {**self._head(call), **reader_body(request, date.today())}

    def _parse_create(self, call: _Call) -> dict[str, Any]:
        """The file parser's task: the text extracted now, revealed after ``async_delay``."""
        request = parser.parse_request(call.upload(), sync=False)
        task = parser.new_task_id()
        outcome = parser.parse_outcome(request, task, self._keeper(call))
        ready_at = time.monotonic() + self.config.async_delay
        self.state.add_task(AsyncTask(task, ready_at, parser.processing(task), outcome))
        return parser.created(task)

    def _parse_sync(self, call: _Call) -> dict[str, Any]:
        """Prime's one-request parse: the finished task's answer at once."""
        request = parser.parse_request(call.upload(), sync=True)
        return parser.parse_outcome(request, parser.new_task_id(), self._keeper(call))

    def _keeper(self, call: _Call) -> parser.Store:
        """Where a parse keeps its result archive, for its ``parsing_result_url``."""
        return lambda data, media_type, suffix: self._store(call, "parsed", data, media_type, suffix)

    def _parse_result(self, call: _Call) -> dict[str, Any]:
        """A parse task's state; unknown ids get 400 / 1210, as for other tasks (a guess)."""
        wanted, format_type = call.request.path_params["task_id"], call.request.path_params["format_type"]
        task = self.state.task(wanted)
        if task is None or "status" not in task.pending:
            raise bad_request(f"task not found: {wanted}")
        if time.monotonic() < task.ready_at:
            parser.result_answer(task.pending, format_type)  # the format is checked all the same
            return task.pending
        return parser.result_answer(task.result, format_type)

    def _transcribe(self, call: _Call) -> dict[str, Any] | Response:
        """GLM-ASR: the words heard in the audio (``audio.py``), whole or as an event stream."""
        heard = audio.transcription(call.upload(), self._body(call))
        envelope = new_envelope(heard.model + self.config.model_label, call.request_id)
        head = {"id": envelope.id, "created": envelope.created, "request_id": envelope.request_id}
        head["model"] = envelope.model
        if not heard.stream:
            return {**head, "text": heard.text}
        words = heard.text.split(" ") if heard.text else []
        events = [{**head, "type": "transcript.text.delta", "delta": w + (" " if i < len(words) - 1 else "")}
                  for i, w in enumerate(words)]  # fmt: skip
        events.append({**head, "type": "transcript.text.done", "text": heard.text})

        def record(sent: list[dict[str, Any]]) -> None:
            self.state.record(call.exchange(200, sent[-1] if sent else None, stream=True))

        return EventStreamResponse(
            events, self.state, record, latency=self.config.latency, chunk_delay=self.config.chunk_delay
        )

    @staticmethod
    def _head(call: _Call) -> dict[str, Any]:
        envelope = new_envelope("", call.request_id)
        return {"id": envelope.id, "created": envelope.created, "request_id": envelope.request_id}

    def _monitor_key(self, call: _Call) -> dict[str, Any] | None:
        """Accept the key raw or as ``Bearer <key>`` (both are sent); a failure body when it is not a coding key."""
        header = (call.request.headers.get("authorization") or "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        try:
            authenticate(f"Bearer {token}", Plan.CODING, self.config, _now_ms())
        except ApiError as error:
            if error.code == "1113":
                return quota.failure(500, "This API key has no GLM Coding Plan (coding plan subscription required).")
            raise ApiError(401, "401", "token expired or incorrect") from error
        return None

    def _quota(self, call: _Call) -> dict[str, Any] | Response:
        refused = self._monitor_key(call)
        if refused is not None:
            return refused
        return quota.quota_limit(self.config, self.state.uses(), self.state.started, time.time())

    def _usage_range(self, call: _Call) -> tuple[datetime, datetime]:
        params = call.request.query_params
        window = quota.time_range(params.get("startTime"), params.get("endTime"))
        if window is None:
            raise ApiError(400, "400", "startTime and endTime are required, as yyyy-MM-dd HH:mm:ss")
        return window

    def _model_usage(self, call: _Call) -> dict[str, Any]:
        refused = self._monitor_key(call)
        return refused or quota.model_usage(self.state.uses(), *self._usage_range(call))

    def _tool_usage(self, call: _Call) -> dict[str, Any]:
        refused = self._monitor_key(call)
        return refused or quota.tool_usage(self.state.uses(), *self._usage_range(call))

    # --- files and batches (batches.py) ----------------------------------------------------------

    def _upload(self, call: _Call) -> dict[str, Any]:
        """``POST /files``: a multipart form with ``file`` and ``purpose``."""
        form = call.upload()
        if form is None:
            raise bad_request("The upload must be multipart/form-data, with a boundary.")
        purpose = form.fields.get("purpose")
        given = form.files.get("file")
        if purpose is None or given is None:
            raise ApiError(400, "1213", "file and purpose are required (multipart/form-data).")
        held = sum(1 for u in self.state.uploads(call.account) if u.purpose == "batch")
        upload = batches.upload(call.account, given.filename or "file", purpose, given.data, self.config, held)
        self.state.add_upload(upload)
        return upload.body()

    def _list_files(self, call: _Call) -> dict[str, Any]:
        params = call.request.query_params
        files = [u.body() for u in self.state.uploads(call.account)]
        if purpose := params.get("purpose"):
            files = [f for f in files if f["purpose"] == purpose]
        if params.get("order") == "asc":
            files.reverse()
        chosen, more = batches.page(files, params.get("after"), _int(params.get("limit")))
        return {"object": "list", "data": chosen, "has_more": more}

    def _own_upload(self, call: _Call) -> batches.Upload:
        file_id = call.request.path_params["file_id"]
        found = self.state.upload(file_id, call.account)
        if found is None:
            raise bad_request(f"file not found: {file_id}")
        return found

    def _file(self, call: _Call) -> dict[str, Any]:
        return self._own_upload(call).body()

    def _delete_file(self, call: _Call) -> dict[str, Any]:
        found = self._own_upload(call)
        self.state.remove_upload(found.id)
        return {"id": found.id, "object": "file", "deleted": True}

    def _file_content(self, call: _Call) -> Response:
        """The file's bytes, as a download (only batch and file-extract files)."""
        found = self._own_upload(call)
        if found.purpose not in batches.CONTENT_PURPOSES:
            raise bad_request(f"the content of a file of purpose {found.purpose!r} cannot be downloaded.")
        self.state.record(call.exchange(200, None))
        return Response(found.data, media_type="application/octet-stream")

    def _create_batch(self, call: _Call) -> dict[str, Any]:
        body = self._body(call)
        file_id = body.get("input_file_id") if isinstance(body, dict) else None
        input_file = self.state.upload(file_id) if isinstance(file_id, str) else None
        batch = batches.create_batch(body, call.account, input_file, self._batch_answer, self.config)
        self.state.add_batch(batch)
        return self._batch_body(batch)

    def _batch_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """One line of a batch, answered by the chat engine; a reply the network cut (``[emulator:fail]``) is an
        error line."""
        request = parse_chat(body, self.config)
        reply = self._reply(request, stream=False, break_off=None)
        if reply.finish_reason == "network_error":
            raise platform_error("1234")
        self._count(request.model, reply)
        return completion_body(new_envelope(request.model + self.config.model_label, request.request_id), reply)

    def _batch_body(self, batch: batches.Batch) -> dict[str, Any]:
        """The batch as it stands; the files it writes as it ends are kept, its input deleted if it asked."""
        body, written = batch.view(time.monotonic(), self.config)
        for file in written:
            self.state.add_upload(file)
        if body["status"] in batches.ENDED and batch.auto_delete_input_file:
            self.state.remove_upload(batch.input_file_id)
        return body

    def _own_batch(self, call: _Call) -> batches.Batch:
        batch_id = call.request.path_params["batch_id"]
        found = self.state.batch(batch_id, call.account)
        if found is None:
            raise bad_request(f"batch not found: {batch_id}")
        return found

    def _batch(self, call: _Call) -> dict[str, Any]:
        return self._batch_body(self._own_batch(call))

    def _cancel_batch(self, call: _Call) -> dict[str, Any]:
        batch = self._own_batch(call)
        self._batch_body(batch)  # an end reached before the cancel stands
        batch.cancel(time.monotonic())
        return self._batch_body(batch)

    def _list_batches(self, call: _Call) -> dict[str, Any]:
        params = call.request.query_params
        every = [self._batch_body(b) for b in self.state.batches(call.account)]
        chosen, more = batches.page(every, params.get("after"), _int(params.get("limit")))
        return {
            "object": "list",
            "data": chosen,
            "first_id": chosen[0]["id"] if chosen else None,
            "last_id": chosen[-1]["id"] if chosen else None,
            "has_more": more,
        }

    def _reply(self, request: ChatRequest, *, stream: bool, break_off: str | None) -> Reply:
        """Generate the reply; outside a stream, tripping the content filter is a 400 / 1301
        (a ``finish:sensitive`` fault asks for the finish reason instead)."""
        reply = generate(request, self.state.prompt_cache, break_off=break_off)
        if reply.finish_reason == "sensitive" and not stream and break_off is None:
            raise platform_error("1301")
        return reply


def _now_ms() -> int:
    return time.time_ns() // 10**6


def _int(value: str | None) -> object:
    """A query parameter as a number, when it is one (else as it came, for the check to refuse)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _malformed(call: _Call) -> bytes:
    """The first half of a completion's JSON, as if the body were cut off on its way."""
    envelope = new_envelope(call.model or "", call.request_id)
    message = {"role": "assistant", "content": "This answer never arrives in one piece."}
    text = json.dumps(completion(envelope, message, "stop", None, None), separators=(",", ":")).encode()
    return text[: len(text) // 2]
