"""The async client of the GLM HTTP API v4: typed requests in, typed responses or `GLMError` out.

One `GLMClient` wraps one pooled `httpx2.AsyncClient` for the life of the process: a client
built per call pays a fresh TLS handshake (about 25 ms) every time.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from glm_mcp.glm import fetch
from glm_mcp.glm.auth import Credentials
from glm_mcp.glm.documents import ASR_MODEL, ParserResult, ParserTask, ParserTool, Transcription, form
from glm_mcp.glm.errors import (
    GLMAnswerCutError,
    GLMAPIError,
    GLMDeadlineError,
    GLMError,
    GLMFileRefusedError,
    GLMKeptAliveError,
    GLMLimitError,
    GLMProtocolError,
    GLMSilentError,
    GLMStreamError,
    GLMTransportError,
    MissingAPIKeyError,
)
from glm_mcp.glm.retry import Attempts, RetryPolicy
from glm_mcp.glm.sse import EventTooLarge, SSEDecoder
from glm_mcp.glm.stream import StreamAccumulator
from glm_mcp.glm.text import scrub_answer, upstream_text

if TYPE_CHECKING:  # the wire types are imported by the calls that parse them: not at start
    from glm_mcp.glm.types import (
        AsyncTask,
        AsyncTaskResult,
        Batch,
        BatchLine,
        BatchRequest,
        ChatCompletion,
        ChatCompletionChunk,
        ChatRequest,
        FileDeleted,
        FileObject,
        ImageRequest,
        ImagesResponse,
        ModelInfo,
        MonitorResponse,
        ReaderRequest,
        ReaderResponse,
        TokenizerRequest,
        TokenizerResponse,
        VideoRequest,
        WebSearchRequest,
        WebSearchResponse,
    )

_ModelT = TypeVar("_ModelT", bound=BaseModel)
logger = logging.getLogger(__name__)

DRAIN_SECONDS = 1.0
"""How long the end of a stream is awaited after `[DONE]`."""
DRAIN_BYTES = 64 * 1024
"""How much is read after `[DONE]` to reach the end of a stream (its terminator is a few bytes)."""
DONE = b"[DONE]"
SSE_MAX_EVENT_BYTES = 1024 * 1024
"""Largest single server-sent event (one chunk of a stream), or line of one; GLM's are well under a few KB."""
ERROR_BODY_BYTES = 64 * 1024
"""How much of an error body is read: its start says what went wrong; the rest is not read at all."""
MESSAGE_CHARS = 300
"""Longest upstream message (an error body, an error frame's message) quoted in an error."""
SNIPPET_CHARS = 200
"""Longest piece of an unexpected answer (malformed JSON, a frame that is not JSON) quoted in an error."""
KEEPALIVE_CONNECTIONS = 32
"""Most idle upstream connections the pool keeps for reuse, whatever GLM_MAX_CONCURRENCY allows in flight.

httpcore2 (2.16) re-checks every idle pooled connection, with a socket probe, twice per request, so a
pool keeping N costs O(N) CPU per request and O(N²) per burst (docs/httpcore2-pool.md): at 1,000
kept, that was most of the server's CPU per call. Past this many idle ones, a connection is closed
when its response ends; under a sustained load the in-flight ones are reused as they free up.
"""
_PATH_SEGMENT = re.compile(r"(?!\.{1,2}$)[\w.:-]{1,200}")
"""A file, batch or parse task id the client puts in a URL path: the platform's are letters, digits, `_` and `-`
(never `.` or `..`, which the URL would resolve as a step up the path)."""
# Failures that happen before a request is on the wire: re-sending can never duplicate work.
_NOT_DELIVERED = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)
_OCTETS = "application/octet-stream"


def open_http_client(
    base_url: str,
    *,
    timeout: float,
    connect_timeout: float,
    max_connections: int = 100,
    max_keepalive_connections: int = KEEPALIVE_CONNECTIONS,
    headers: dict[str, str] | None = None,
) -> httpx2.AsyncClient:
    """The pooled HTTP client for one base URL; proxies come from the usual environment variables.

    `timeout` bounds each wait for bytes from the upstream (a stream may last longer in total, as
    long as it keeps sending); `connect_timeout` bounds connection set-up. The pool opens up to
    `max_connections` at once and keeps at most `max_keepalive_connections` of them idle.
    """
    keepalive = min(max_connections, max_keepalive_connections)
    return httpx2.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx2.Timeout(timeout, connect=connect_timeout),
        limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=keepalive),
        headers={"Content-Type": "application/json", **(headers or {})},
        trust_env=True,
    )


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """What one call may cost, whatever the upstream does: time in all, bytes of a body, characters of an answer."""

    call_deadline: float = 1800.0
    """Seconds a whole call may take (waiting for a slot, retries, the entire stream): GLM_CALL_DEADLINE."""
    max_response_bytes: int = 16 * 1024 * 1024
    """Largest JSON body, counted after decompression: GLM_MAX_RESPONSE_BYTES."""
    max_answer_chars: int = 2_000_000
    """Largest streamed answer (text, reasoning and tool-call arguments together): GLM_MAX_ANSWER_CHARS."""


class _Body(NamedTuple):
    """A JSON answer, read whole within its limit."""

    status_code: int
    content: bytes


class LazyHTTPClient:
    """The pooled HTTP client, built at its first use.

    Building one loads the CA bundle for TLS (tens to hundreds of milliseconds here): a desktop
    client starting the server should not wait for that before it can list the tools.
    """

    def __init__(self, factory: Callable[[], httpx2.AsyncClient]) -> None:
        self._factory = factory
        self._client: httpx2.AsyncClient | None = None

    def get(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class GLMClient:
    """Calls of the GLM API. Knows HTTP and the GLM wire format, nothing of MCP."""

    def __init__(
        self,
        http: httpx2.AsyncClient | LazyHTTPClient,
        credentials: Credentials | None,
        *,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 32,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._pool = http
        self.credentials = credentials
        self._retry = retry or RetryPolicy()
        self._limits = limits or UpstreamLimits()
        # Requests in flight at once (a stream counts until it closes): past it, calls queue here
        # instead of tripping the platform's concurrency limit (1302).
        self._limiter = anyio.CapacityLimiter(max_concurrency)

    def with_credentials(self, credentials: Credentials) -> GLMClient:
        """The same client (pool, retry policy, concurrency bound) sending another key: a caller's own."""
        bound = copy.copy(self)
        bound.credentials = credentials
        return bound

    @property
    def _http(self) -> httpx2.AsyncClient:
        return self._pool.get() if isinstance(self._pool, LazyHTTPClient) else self._pool

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def chat(self, request: ChatRequest, *, attempts: Attempts | None = None) -> ChatCompletion:
        """A whole completion in one JSON answer; `GLMAnswerCutError` when the platform stopped it, as for a stream."""
        from glm_mcp.glm.types import ChatCompletion

        body = request.model_copy(update={"stream": None, "tool_stream": None}).to_json()
        response = await self._send("POST", "chat/completions", body, attempts=attempts)
        completion = self._parse(ChatCompletion, response)
        cut = GLMAnswerCutError.of(completion.finish_reason)
        if cut is not None:
            raise cut
        return completion

    @asynccontextmanager
    async def stream_chat(
        self, request: ChatRequest, *, attempts: Attempts | None = None
    ) -> AsyncIterator[AsyncIterator[ChatCompletionChunk]]:
        """A completion as it is generated, chunk by chunk.

        Used as `async with client.stream_chat(req) as chunks: async for chunk in chunks`. Opening
        the stream is retried like any request; once chunks flow it is not (the answer has begun).
        Leaving the block, normally or by cancellation, closes the upstream connection at once, so
        an abandoned answer stops costing tokens. Error frames raise `GLMAPIError`; a stream that
        breaks off before its final chunk raises `GLMStreamError`. The whole stream is bounded: in
        time by GLM_CALL_DEADLINE (`GLMDeadlineError`) and by GLM_TIMEOUT without any of the answer,
        keep-alives or not (`GLMKeptAliveError`), in size by SSE_MAX_EVENT_BYTES per event and
        GLM_MAX_ANSWER_CHARS in all (`GLMLimitError`); either way the connection is closed.
        """
        body = request.model_copy(update={"stream": True}).to_json()
        attempts = attempts or Attempts()
        slot = object()  # the concurrency slot is held by this stream until it closes
        with self._deadline():  # the whole stream, however slowly it trickles
            while True:
                attempts.count += 1
                await self._limiter.acquire_on_behalf_of(slot)
                try:
                    response = await self._open_stream(body)
                    break
                except GLMError as exc:
                    self._limiter.release_on_behalf_of(slot)
                    await self._wait_before_retry(attempts, exc, resend_if_maybe_delivered=True)
                except BaseException:
                    self._limiter.release_on_behalf_of(slot)
                    raise
            with anyio.CancelScope() as silent:
                silence = _SilenceWatch(response, silent, self._http.timeout.read)
                try:
                    yield self._chunks(response, silence)
                finally:
                    silence.close()
                    # Shielded: when the caller is cancelled, the connection must still be closed (not
                    # returned half-read to the pool), or the upstream would go on generating.
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
                    self._limiter.release_on_behalf_of(slot)
            if silent.cancelled_caught:
                raise silence.error(self.base_url)

    def accumulator(self) -> StreamAccumulator:
        """An empty fold for a stream of this client: what it reads out is scrubbed of the key the stream was
        sent with (a form of it split across two chunks included)."""
        return StreamAccumulator(credentials=self.credentials)

    @contextmanager
    def _deadline(self) -> Iterator[None]:
        """End the call inside at GLM_CALL_DEADLINE with `GLMDeadlineError` (an outer cancel stays a cancel)."""
        seconds = self._limits.call_deadline
        with anyio.CancelScope(deadline=anyio.current_time() + seconds) as scope:
            yield
        if scope.cancelled_caught:
            raise GLMDeadlineError(seconds)

    async def _open_stream(self, body: bytes) -> httpx2.Response:
        response = await self._start("POST", "chat/completions", body)
        if response.status_code < 400 and _is_event_stream(response):
            return response
        try:
            error = await (self._error_of(response) if response.status_code >= 400 else self._not_a_stream(response))
        finally:
            await _close(response)
        raise error

    async def _not_a_stream(self, response: httpx2.Response) -> GLMError:
        """A streamed chat answered with something else: an error object if it is one, else what it was."""
        try:
            content = await self._read(response, ERROR_BODY_BYTES)
        except httpx2.HTTPError as exc:
            return self._transport_error(exc)
        error = self._api_error(response, content)
        if error.code is not None:
            return error
        kind = self._text(response.headers.get("content-type") or "no Content-Type", 100)
        return GLMProtocolError(
            f"the GLM API answered a streamed chat with HTTP {response.status_code} and {kind!r} instead of "
            f"an event stream: {self._text(content, SNIPPET_CHARS)!r}"
        )

    async def _chunks(self, response: httpx2.Response, silence: _SilenceWatch) -> AsyncIterator[ChatCompletionChunk]:
        from glm_mcp.glm.types import ChatCompletionChunk  # once a stream, not once a chunk

        finished = False
        answer_chars, max_answer_chars = 0, self._limits.max_answer_chars
        decoder = SSEDecoder(SSE_MAX_EVENT_BYTES)
        pieces = aiter(response.aiter_bytes())  # decoded as the Content-Encoding says, in bounded pieces
        try:
            async for piece in pieces:
                for data in decoder.feed(piece):
                    if data == DONE:
                        await _drain(pieces)
                        return
                    if not data:  # an event of only `id:` / `event:` lines, or an empty `data:`, carries nothing
                        continue
                    chunk = self._parse_chunk(ChatCompletionChunk, data, response)
                    chars, says_something, ends = _weigh(chunk)
                    if says_something:
                        silence.heard()
                    finished = finished or ends
                    answer_chars += chars
                    if answer_chars > max_answer_chars:
                        raise GLMLimitError(
                            f"the answer from the GLM API passed GLM_MAX_ANSWER_CHARS ({max_answer_chars} characters) "
                            "and was stopped there",
                            limit="GLM_MAX_ANSWER_CHARS",
                        )
                    yield chunk
        except EventTooLarge:
            raise GLMLimitError(
                f"the GLM API sent a stream event larger than {SSE_MAX_EVENT_BYTES} bytes (SSE_MAX_EVENT_BYTES); "
                "the stream was stopped there",
                limit="SSE_MAX_EVENT_BYTES",
            ) from None
        except httpx2.ReadTimeout:  # reached, answering, then silent: not a cut connection
            raise GLMSilentError(self.base_url, self._http.timeout.read) from None
        except httpx2.HTTPError as exc:
            raise GLMStreamError(f"the stream from the GLM API broke off: {self._describe(exc)}") from None
        if not finished:
            raise GLMStreamError("the stream from the GLM API ended before the answer was complete (no final chunk)")
        # The final chunk (finish reason and usage) arrived and only [DONE] is missing: the answer is whole.

    def _parse_chunk(
        self, model: type[ChatCompletionChunk], data: bytes, response: httpx2.Response
    ) -> ChatCompletionChunk:
        try:
            chunk = model.model_validate_json(data)
        except ValidationError:
            try:  # as text, bytes that are not UTF-8 read as U+FFFD (as an event stream decoded to text reads them)
                chunk = model.model_validate_json(data.decode("utf-8", "replace"))
            except ValidationError:
                snippet = self._text(data, SNIPPET_CHARS)
                raise GLMStreamError(f"the GLM API sent a stream frame that is not valid JSON: {snippet!r}") from None
        error = (chunk.model_extra or {}).get("error")
        if error is not None:
            code, message = _error_fields(error)
            raise GLMAPIError(
                self._text(message, MESSAGE_CHARS) or "error frame in the stream",
                status_code=response.status_code,
                code=self._text(code, 40) if code is not None else None,
                request_id=self._text(chunk.request_id, 200) if chunk.request_id else None,
            )
        return self._scrubbed(chunk, data)

    async def submit_async(self, request: ChatRequest, *, attempts: Attempts | None = None) -> AsyncTask:
        """Start a chat job; the answer is fetched later with `async_result`.

        Not re-sent after a failure that may have reached the platform (a read timeout, a cut
        connection): a second submit would be a second paid job.
        """
        from glm_mcp.glm.types import AsyncTask

        body = request.model_copy(update={"stream": None, "tool_stream": None}).to_json()
        response = await self._send(
            "POST", "async/chat/completions", body, attempts=attempts, resend_if_maybe_delivered=False
        )
        return self._parse(AsyncTask, response)

    async def async_result(self, task_id: str) -> AsyncTaskResult:
        """The status of a job, with its completion once it has succeeded."""
        from glm_mcp.glm.types import AsyncTaskResult

        response = await self._send("GET", f"async-result/{task_id}")
        return self._parse(AsyncTaskResult, response)

    async def list_models(self) -> list[ModelInfo]:
        """The model codes the key can use (GET /models; undocumented but OpenAI-shaped)."""
        from glm_mcp.glm.types import ModelList

        response = await self._send("GET", "models")
        models = self._parse(ModelList, response).data
        # The ids end up in advice ("models this key can use"): upstream text like any other.
        return [model.model_copy(update={"id": self._text(model.id, 200)}) for model in models]

    # --- the platform beyond chat (docs/glm-endpoints.md) ----------------------------------------

    async def count_tokens(self, request: TokenizerRequest) -> TokenizerResponse:
        """The prompt's tokens as the platform's tokenizer counts them (POST /tokenizer); nothing is generated."""
        from glm_mcp.glm.types import TokenizerResponse

        response = await self._send("POST", "tokenizer", _json(request))
        return self._parse(TokenizerResponse, response)

    async def web_search(self, request: WebSearchRequest, *, attempts: Attempts | None = None) -> WebSearchResponse:
        """Search results without a model's answer (POST /web_search)."""
        from glm_mcp.glm.types import WebSearchResponse

        response = await self._send("POST", "web_search", _json(request), attempts=attempts)
        return self._parse(WebSearchResponse, response)

    async def read_url(self, request: ReaderRequest, *, attempts: Attempts | None = None) -> ReaderResponse:
        """A web page as clean markdown or text, with its title and metadata (POST /reader)."""
        from glm_mcp.glm.types import ReaderResponse

        response = await self._send("POST", "reader", _json(request), attempts=attempts)
        return self._parse(ReaderResponse, response)

    async def generate_image(self, request: ImageRequest, *, attempts: Attempts | None = None) -> ImagesResponse:
        """One image, answered when it is made. Paid: not re-sent after a failure that may have reached the platform."""
        from glm_mcp.glm.types import ImagesResponse

        response = await self._send(
            "POST", "images/generations", _json(request), attempts=attempts, resend_if_maybe_delivered=False
        )
        return self._parse(ImagesResponse, response)

    async def submit_image(self, request: ImageRequest, *, attempts: Attempts | None = None) -> AsyncTask:
        """Start an image as a platform task (glm-image); poll it with `async_result`. Not re-sent either."""
        from glm_mcp.glm.types import AsyncTask

        response = await self._send(
            "POST", "async/images/generations", _json(request), attempts=attempts, resend_if_maybe_delivered=False
        )
        return self._parse(AsyncTask, response)

    async def submit_video(self, request: VideoRequest, *, attempts: Attempts | None = None) -> AsyncTask:
        """Start a video (always a platform task); poll it with `async_result`. Not re-sent either."""
        from glm_mcp.glm.types import AsyncTask

        response = await self._send(
            "POST", "videos/generations", _json(request), attempts=attempts, resend_if_maybe_delivered=False
        )
        return self._parse(AsyncTask, response)

    # --- files and batches (docs/glm-endpoints.md#files-and-batches) -----------------------------

    async def upload_file(self, content: bytes, *, filename: str, purpose: str = "batch") -> FileObject:
        """Upload a file to the Files API (POST /files, multipart): a batch's JSONL input, with purpose "batch"."""
        from glm_mcp.glm.types import FileObject

        body, content_type = form({"purpose": purpose}, filename, content, _OCTETS)
        response = await self._send("POST", "files", body, content_type=content_type)
        return self._parse(FileObject, response)

    async def create_batch(self, request: BatchRequest, *, attempts: Attempts | None = None) -> Batch:
        """Start a batch on an uploaded input file. Paid: not re-sent after a failure that may have reached the
        platform (a second batch would run, and be billed, twice)."""
        from glm_mcp.glm.types import Batch

        response = await self._send(
            "POST", "batches", _json(request), attempts=attempts, resend_if_maybe_delivered=False
        )
        return self._parse(Batch, response)

    async def retrieve_batch(self, batch_id: str) -> Batch:
        """A batch as it stands: its status, its request counts and, once it has ended, its files."""
        from glm_mcp.glm.types import Batch

        response = await self._send("GET", f"batches/{_segment(batch_id, 'batch id')}")
        return self._parse(Batch, response)

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Ask the platform to cancel a batch (it is then `cancelling`, and `cancelled` once stopped)."""
        from glm_mcp.glm.types import Batch

        response = await self._send("POST", f"batches/{_segment(batch_id, 'batch id')}/cancel")
        return self._parse(Batch, response)

    async def batch_file(self, file_id: str) -> list[BatchLine]:
        """The lines of a batch's output or error file (GET /files/{id}/content), each parsed and scrubbed of
        the key like any answer; the file is read within GLM_MAX_RESPONSE_BYTES."""
        from glm_mcp.glm.types import BatchLine

        response = await self._send("GET", f"files/{_segment(file_id, 'file id')}/content")
        lines: list[BatchLine] = []
        for number, raw in enumerate(response.content.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = BatchLine.model_validate_json(raw)
            except ValidationError:
                snippet = self._text(raw, SNIPPET_CHARS)
                raise GLMProtocolError(
                    f"line {number} of the batch file {file_id} is not a batch result: {snippet!r}"
                ) from None
            lines.append(self._scrubbed(line, raw))
        return lines

    async def delete_file(self, file_id: str) -> FileDeleted:
        """Delete a file of the Files API (an account keeps at most 1,000 batch files)."""
        from glm_mcp.glm.types import FileDeleted

        response = await self._send("DELETE", f"files/{_segment(file_id, 'file id')}")
        return self._parse(FileDeleted, response)

    async def coding_quota(self) -> MonitorResponse:
        """A GLM Coding Plan key's quota windows: the monitor API on the platform's origin, not the model API."""
        from glm_mcp.glm.types import MonitorResponse

        response = await self._send("GET", f"{self.origin}/api/monitor/usage/quota/limit")
        return self._parse(MonitorResponse, response)

    @property
    def origin(self) -> str:
        url = self._http.base_url
        return f"{url.scheme}://{url.netloc.decode('ascii')}"

    async def download(self, url: str, kind: fetch.FileKind = "image") -> tuple[bytes, str]:
        """A file the platform made (`kind`: an image, or a video), read within GLM_MAX_RESPONSE_BYTES, with its media
        type (from its bytes).

        Not signed: the URL may be a storage host that is not the API, which must never see the key. The URL is
        the answer's say-so, so it is fetched only from where `glm.fetch.target` allows, and kept only if it is
        what was asked for twice over (`glm.fetch.file_type`: an image's Content-Type and magic bytes, or a video's
        or an animated image's); otherwise `GLMFileRefusedError`. Redirects are not followed.
        """
        accepted = ("image/",) if kind == "image" else ("video/", "image/")
        with self._deadline():
            async with self._limiter:
                try:
                    to = await fetch.target(httpx2.URL(url), fetch.origin(self._http.base_url))
                    request = self._http.build_request("GET", to.url, headers=to.headers, extensions=to.extensions)
                    response = await self._http.send(request, stream=True)
                except httpx2.InvalidURL:
                    raise GLMFileRefusedError(url, "it is not a valid URL") from None
                except httpx2.HTTPError as exc:
                    raise self._transport_error(exc) from None
                try:
                    if response.status_code >= 400:
                        raise await self._error_of(response)
                    declared = response.headers.get("content-type", "").partition(";")[0].strip().lower()
                    what = self._text(declared or "no Content-Type", 100)
                    if response.status_code != 200 or not declared.startswith(accepted):
                        wanted = "an image" if kind == "image" else "a video"
                        reason = f"it answered HTTP {response.status_code} with {what}, not {wanted}"
                        raise GLMFileRefusedError(url, reason)
                    try:
                        content = await self._read(
                            response, self._limits.max_response_bytes, setting="GLM_MAX_RESPONSE_BYTES"
                        )
                    except httpx2.HTTPError as exc:
                        raise self._transport_error(exc) from None
                    media_type = fetch.file_type(content, kind)
                    if media_type is None:
                        formats = "PNG, JPEG, WebP or GIF" if kind == "image" else "MP4, QuickTime, WebM or image"
                        raise GLMFileRefusedError(url, f"its body, said to be {what}, is no {formats}")
                    return content, media_type
                finally:
                    await _close(response)

    # --- documents and recordings: the file parser and speech-to-text (docs/glm-endpoints.md) -------

    async def create_parse(
        self,
        data: bytes,
        *,
        filename: str,
        file_type: str,
        tool: ParserTool = "lite",
        attempts: Attempts | None = None,
    ) -> ParserTask:
        """Start the file parser on a document (POST /files/parser/create); `parse_result` reads its text.

        `file_type` is the reference's name of the format (`PDF`, `DOCX`, ...). A parse may be billed, so it is
        not re-sent after a failure that may have reached the platform.
        """
        body, content_type = form({"tool_type": tool, "file_type": file_type}, filename, data, _OCTETS)
        response = await self._send(
            "POST",
            "files/parser/create",
            body,
            content_type=content_type,
            attempts=attempts,
            resend_if_maybe_delivered=False,
        )
        task = self._parse(ParserTask, response)
        if not task.success or not task.task_id:
            message = self._text(task.message, MESSAGE_CHARS) or "no message"
            raise GLMProtocolError(f"the GLM API's file parser created no task: {message}")
        return task

    async def parse_result(self, task_id: str) -> ParserResult:
        """The state of a parse, with the document's text once it succeeded (GET /files/parser/result/{id}/text)."""
        response = await self._send("GET", f"files/parser/result/{_segment(task_id, 'parse task id')}/text")
        return self._parse(ParserResult, response)

    async def transcribe(
        self,
        data: bytes,
        *,
        filename: str,
        media_type: str,
        model: str = ASR_MODEL,
        prompt: str | None = None,
        attempts: Attempts | None = None,
    ) -> Transcription:
        """The text spoken in a recording (POST /audio/transcriptions): WAV or MP3, at most 30 s and 25 MB, which
        the caller keeps to. `prompt` is what was said before (the previous part's text). Billed per minute: not
        re-sent after a failure that may have reached the platform."""
        fields = {"model": model, "stream": "false"} | ({"prompt": prompt} if prompt else {})
        body, content_type = form(fields, filename, data, media_type)
        response = await self._send(
            "POST",
            "audio/transcriptions",
            body,
            content_type=content_type,
            attempts=attempts,
            resend_if_maybe_delivered=False,
        )
        return self._parse(Transcription, response)

    # --- plumbing -----------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str | None = None,
        attempts: Attempts | None = None,
        resend_if_maybe_delivered: bool = True,
    ) -> _Body:
        """One call, retried as the policy allows; `body` is JSON unless `content_type` says otherwise."""
        attempts = attempts or Attempts()
        with self._deadline():
            while True:
                attempts.count += 1
                try:
                    async with self._limiter:
                        return await self._send_once(method, path, body, content_type)
                except GLMError as exc:
                    await self._wait_before_retry(attempts, exc, resend_if_maybe_delivered=resend_if_maybe_delivered)

    async def _send_once(self, method: str, path: str, body: bytes | None, content_type: str | None = None) -> _Body:
        response = await self._start(method, path, body, content_type)
        try:
            if response.status_code >= 400:
                raise await self._error_of(response)
            try:
                content = await self._read(response, self._limits.max_response_bytes, setting="GLM_MAX_RESPONSE_BYTES")
            except httpx2.HTTPError as exc:
                raise self._transport_error(exc) from None
            return _Body(response.status_code, content)
        finally:
            await _close(response)  # past a limit, the unread rest goes with the connection

    async def _start(
        self, method: str, path: str, body: bytes | None, content_type: str | None = None
    ) -> httpx2.Response:
        """Send a request; the answer's body is left unread, to be read within its limit.

        The key signs the request as its `httpx2.Auth`, given per request rather than set on the pooled
        client: a caller's own key (`with_credentials`) shares that one pool. No key: nothing is sent.
        """
        credentials = self.credentials
        if credentials is None:
            raise MissingAPIKeyError("no GLM API key is configured")
        headers = {"Content-Type": content_type} if content_type else None
        request = self._http.build_request(method, path, content=body, headers=headers)
        try:
            return await self._http.send(request, stream=True, auth=credentials)
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None

    async def _read(self, response: httpx2.Response, limit: int, *, setting: str | None = None) -> bytes:
        """The body, counted as it is decoded (a compressed body is bounded by what it inflates to).

        Past `limit`: `GLMLimitError` naming `setting`, or without a setting the first `limit` bytes.
        """
        parts: list[bytes] = []
        size = 0
        async for part in response.aiter_bytes():
            size += len(part)
            if size > limit:
                if setting is None:
                    parts.append(part[: len(part) - (size - limit)])
                    break
                raise GLMLimitError(
                    f"the GLM API sent a body larger than {setting} ({limit} bytes, counted after decompression); "
                    "it was not read further",
                    limit=setting,
                )
            parts.append(part)
        return b"".join(parts)

    async def _error_of(self, response: httpx2.Response) -> GLMError:
        """The error an HTTP error status stands for, from the start of its body."""
        try:
            content = await self._read(response, ERROR_BODY_BYTES)
        except httpx2.HTTPError as exc:
            return self._transport_error(exc)
        return self._api_error(response, content)

    async def _wait_before_retry(self, attempts: Attempts, error: GLMError, *, resend_if_maybe_delivered: bool) -> None:
        """Sleep before the next attempt, or re-raise `error` when it should not be retried."""
        wait = attempts.next_wait(self._retry, error, resend_if_maybe_delivered=resend_if_maybe_delivered)
        if wait is None:
            raise error
        logger.info("attempt %d failed (%s); retrying in %.2f s", attempts.count, error, wait)
        await anyio.sleep(wait)

    def _parse(self, model: type[_ModelT], response: _Body) -> _ModelT:
        try:
            parsed = model.model_validate_json(response.content)
        except ValidationError:
            snippet = self._text(response.content, SNIPPET_CHARS)
            raise GLMProtocolError(
                f"the GLM API answered HTTP {response.status_code} with a body that is not the expected "
                f"JSON: {snippet!r}"
            ) from None
        return self._scrubbed(parsed, response.content)

    def _scrubbed(self, answer: _ModelT, raw: bytes | str) -> _ModelT:
        """A parsed answer with every form of the key scrubbed from its strings; `raw`, the JSON it was parsed
        from, spares the walk through them when it cannot hold one (most answers: a few `in` tests)."""
        credentials = self.credentials
        if credentials is None or not credentials.may_spell_a_form(raw):
            return answer
        return scrub_answer(answer, credentials)

    def _api_error(self, response: httpx2.Response, content: bytes) -> GLMAPIError:
        code: str | None = None
        message = ""
        request_id: str | None = None
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            code, message = _error_fields(body.get("error"))
            if isinstance(body.get("request_id"), str):
                request_id = body["request_id"]
        text = (
            self._text(message or content, MESSAGE_CHARS).strip()
            or self._text(response.reason_phrase, MESSAGE_CHARS)
            or "no error message"
        )
        return GLMAPIError(
            text,
            status_code=response.status_code,
            code=self._text(code, 40) if code is not None else None,
            request_id=self._text(request_id, 200) if request_id is not None else None,
            should_retry=_should_retry(response.headers.get("x-should-retry")),
            retry_after=_retry_after(response.headers.get("retry-after")),
        )

    def _transport_error(self, exc: httpx2.HTTPError) -> GLMTransportError:
        if isinstance(exc, httpx2.ReadTimeout):  # reached, then silent: not a network problem to check
            return GLMSilentError(self.base_url, self._http.timeout.read)
        delivered = not isinstance(exc, _NOT_DELIVERED)
        return GLMTransportError(
            f"could not reach the GLM API at {self.base_url}: {self._describe(exc)}", maybe_delivered=delivered
        )

    def _describe(self, exc: Exception) -> str:
        """An HTTP library error as text: it may quote the wire (a malformed header line), so it is upstream text."""
        text = str(exc)
        return self._text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, MESSAGE_CHARS)

    def _text(self, raw: bytes | str | None, limit: int) -> str:
        """Upstream bytes as text for a message: scrubbed of the key, then cut (the one way, `upstream_text`)."""
        return upstream_text(raw, limit, self.credentials)


def _json(request: BaseModel) -> bytes:
    """A request model as its wire body: unset fields are left out rather than sent as null."""
    return request.model_dump_json(exclude_none=True).encode()


def _segment(value: str, what: str) -> str:
    """`value` as one segment of a URL path; `GLMProtocolError` for one that is not an id (it came from an answer)."""
    if not _PATH_SEGMENT.fullmatch(value):
        raise GLMProtocolError(f"the {what} {value[:100]!r} cannot name a resource of the GLM API")
    return value


async def _drain(pieces: AsyncIterator[bytes]) -> None:
    """Read a finished stream to its end, so its connection goes back to the pool.

    A response closed before its last bytes (the chunked terminator after `[DONE]`) takes its
    connection with it: the next call would pay a new TCP connection, and a TLS handshake.
    """
    drained = 0
    with anyio.move_on_after(DRAIN_SECONDS):  # an upstream that keeps the stream open loses the connection
        async for piece in pieces:
            drained += len(piece)
            if drained > DRAIN_BYTES:  # more than a terminator: not worth reading, the connection goes
                return


async def _close(response: httpx2.Response) -> None:
    """Close a response even when cancelled: one read to its end goes back to the pool, any other loses
    its connection (the upstream sees the disconnect at once)."""
    with anyio.CancelScope(shield=True):
        await response.aclose()


def _is_event_stream(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").partition(";")[0].strip().lower() == "text/event-stream"


class _SilenceWatch:
    """Cancels a stream's `scope` once `seconds` pass without any of the answer.

    Keep-alives (SSE comments, chunks that carry nothing) reset the read timeout, so without this
    only GLM_CALL_DEADLINE would end a stream of them. A chunk with content only notes the time: a
    loop timer looks once per period, which costs nothing per chunk (a cancel scope or a timer per
    read costs some 25 us each, at every token).
    """

    def __init__(self, response: httpx2.Response, scope: anyio.CancelScope, seconds: float | None) -> None:
        self._response = response
        self._scope = scope
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self.heard()
        self._timer = self._loop.call_at(self._heard_at + seconds, self._look) if seconds else None

    def heard(self) -> None:
        """Some of the answer arrived: the silence starts again."""
        self._heard_at = self._loop.time()
        self._bytes_then = self._response.num_bytes_downloaded

    def _look(self) -> None:
        assert self._seconds is not None
        due = self._heard_at + self._seconds
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._look)
        else:
            self._scope.cancel()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def error(self, base_url: str) -> GLMSilentError:
        """What the silence was: keep-alives only, or nothing at all (then the read timeout's plain silence)."""
        kept_alive = self._response.num_bytes_downloaded > self._bytes_then
        return (GLMKeptAliveError if kept_alive else GLMSilentError)(base_url, self._seconds)


def _weigh(chunk: ChatCompletionChunk) -> tuple[int, bool, bool]:
    """What a chunk brings, in one pass over it (it runs for every token): the characters it adds to the answer
    (text, reasoning, tool-call names and arguments); whether it carries any of the answer (those, search results,
    usage or a finish reason), unlike the empty chunks an upstream may send only to keep the connection open; and
    whether it ends the answer (a finish reason)."""
    chars = 0
    says_something = bool(chunk.web_search) or chunk.usage is not None
    ends = False
    for choice in chunk.choices:
        delta = choice.delta
        if delta.content:
            chars += len(delta.content)
        if delta.reasoning_content:
            chars += len(delta.reasoning_content)
        if delta.tool_calls:
            says_something = True
            for call in delta.tool_calls:
                if call.function is not None:
                    chars += len(call.function.arguments or "") + len(call.function.name or "")
        if choice.finish_reason:
            ends = True
    return chars, says_something or ends or chars > 0, ends


def _error_fields(error: object) -> tuple[str | None, str]:
    """(code, message) from the platform's `{"code": "1211", "message": "…"}` error object."""
    if not isinstance(error, dict):
        return None, str(error) if error else ""
    code = error.get("code")
    message = error.get("message")
    return (str(code) if code is not None else None), (str(message) if message is not None else "")


def _should_retry(header: str | None) -> bool | None:
    value = (header or "").strip().lower()
    return True if value == "true" else False if value == "false" else None


def _retry_after(header: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number of seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["GLMClient", "GLMError", "LazyHTTPClient", "UpstreamLimits", "open_http_client"]
