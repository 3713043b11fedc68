"""The async client of the GLM HTTP API v4: typed requests in, typed responses or `GLMError` out.

One `GLMClient` wraps one pooled `httpx2.AsyncClient` for the life of the process: a client
built per call pays a fresh TLS handshake (about 25 ms) every time.
"""

from __future__ import annotations

import copy
import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from glm_mcp.glm.auth import Credentials
from glm_mcp.glm.errors import GLMAPIError, GLMError, GLMStreamError, GLMTransportError, MissingAPIKeyError
from glm_mcp.glm.retry import Attempts, RetryPolicy
from glm_mcp.glm.sse import DONE, iter_sse_data
from glm_mcp.glm.types import (
    AsyncTask,
    AsyncTaskResult,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    ModelInfo,
    ModelList,
)

_ModelT = TypeVar("_ModelT", bound=BaseModel)
logger = logging.getLogger(__name__)

# Failures that happen before a request is on the wire: re-sending can never duplicate work.
DRAIN_SECONDS = 1.0
"""How long the end of a stream is awaited after `[DONE]`."""
_NOT_DELIVERED = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)


def open_http_client(
    base_url: str,
    *,
    timeout: float,
    connect_timeout: float,
    max_connections: int = 100,
    headers: dict[str, str] | None = None,
) -> httpx2.AsyncClient:
    """The pooled HTTP client for one base URL; proxies come from the usual environment variables.

    `timeout` bounds each wait for bytes from the upstream (a stream may last longer in total, as
    long as it keeps sending); `connect_timeout` bounds connection set-up.
    """
    return httpx2.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx2.Timeout(timeout, connect=connect_timeout),
        limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"Content-Type": "application/json", **(headers or {})},
        trust_env=True,
    )


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
    ) -> None:
        self._pool = http
        self.credentials = credentials
        self._retry = retry or RetryPolicy()
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
        """A whole completion in one JSON answer."""
        response = await self._send("POST", "chat/completions", request.to_json(), attempts=attempts)
        return self._parse(ChatCompletion, response)

    @asynccontextmanager
    async def stream_chat(
        self, request: ChatRequest, *, attempts: Attempts | None = None
    ) -> AsyncIterator[AsyncIterator[ChatCompletionChunk]]:
        """A completion as it is generated, chunk by chunk.

        Used as `async with client.stream_chat(req) as chunks: async for chunk in chunks`. Opening
        the stream is retried like any request; once chunks flow it is not (the answer has begun).
        Leaving the block, normally or by cancellation, closes the upstream connection at once, so
        an abandoned answer stops costing tokens. Error frames raise `GLMAPIError`; a stream that
        breaks off before its final chunk raises `GLMStreamError`.
        """
        body = request.model_copy(update={"stream": True}).to_json()
        attempts = attempts or Attempts()
        slot = object()  # the concurrency slot is held by this stream until it closes
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
        try:
            yield self._chunks(response)
        finally:
            # Shielded: when the caller is cancelled, the connection must still be closed (not
            # returned half-read to the pool), or the upstream would go on generating.
            with anyio.CancelScope(shield=True):
                await response.aclose()
            self._limiter.release_on_behalf_of(slot)

    async def _open_stream(self, body: bytes) -> httpx2.Response:
        request = self._http.build_request("POST", "chat/completions", content=body, headers=self._auth_headers())
        try:
            response = await self._http.send(request, stream=True)
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            try:
                await response.aread()
            except httpx2.HTTPError as exc:
                raise self._transport_error(exc) from None
            finally:
                await response.aclose()
            raise self._api_error(response)
        return response

    async def _chunks(self, response: httpx2.Response) -> AsyncIterator[ChatCompletionChunk]:
        finished = False
        lines = response.aiter_lines()
        try:
            async for data in iter_sse_data(lines):
                if data == DONE:
                    await _drain(lines)
                    return
                chunk = self._parse_chunk(data, response)
                finished = finished or any(choice.finish_reason for choice in chunk.choices)
                yield chunk
        except httpx2.HTTPError as exc:
            raise GLMStreamError(f"the stream from the GLM API broke off: {_describe(exc)}") from None
        if not finished:
            raise GLMStreamError("the stream from the GLM API ended before the answer was complete (no final chunk)")
        # The final chunk (finish reason and usage) arrived and only [DONE] is missing: the answer is whole.

    def _parse_chunk(self, data: str, response: httpx2.Response) -> ChatCompletionChunk:
        try:
            chunk = ChatCompletionChunk.model_validate_json(data)
        except ValidationError:
            raise GLMStreamError(f"the GLM API sent a stream frame that is not valid JSON: {data[:200]!r}") from None
        error = (chunk.model_extra or {}).get("error")
        if error is not None:
            code, message = _error_fields(error)
            raise GLMAPIError(
                self._redact(message or "error frame in the stream"),
                status_code=response.status_code,
                code=code,
                request_id=chunk.request_id,
            )
        return chunk

    async def submit_async(self, request: ChatRequest, *, attempts: Attempts | None = None) -> AsyncTask:
        """Start a chat job; the answer is fetched later with `async_result`.

        Not re-sent after a failure that may have reached the platform (a read timeout, a cut
        connection): a second submit would be a second paid job.
        """
        body = request.model_copy(update={"stream": None}).to_json()
        response = await self._send(
            "POST", "async/chat/completions", body, attempts=attempts, resend_if_maybe_delivered=False
        )
        return self._parse(AsyncTask, response)

    async def async_result(self, task_id: str) -> AsyncTaskResult:
        """The status of a job, with its completion once it has succeeded."""
        response = await self._send("GET", f"async-result/{task_id}")
        return self._parse(AsyncTaskResult, response)

    async def list_models(self) -> list[ModelInfo]:
        """The model codes the key can use (GET /models; undocumented but OpenAI-shaped)."""
        response = await self._send("GET", "models")
        return self._parse(ModelList, response).data

    # --- plumbing -----------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if self.credentials is None:
            raise MissingAPIKeyError("no GLM API key is configured")
        return {"Authorization": self.credentials.authorization()}

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        attempts: Attempts | None = None,
        resend_if_maybe_delivered: bool = True,
    ) -> httpx2.Response:
        attempts = attempts or Attempts()
        while True:
            attempts.count += 1
            try:
                async with self._limiter:
                    return await self._send_once(method, path, body)
            except GLMError as exc:
                await self._wait_before_retry(attempts, exc, resend_if_maybe_delivered=resend_if_maybe_delivered)

    async def _send_once(self, method: str, path: str, body: bytes | None) -> httpx2.Response:
        headers = self._auth_headers()
        try:
            response = await self._http.request(method, path, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._api_error(response)
        return response

    async def _wait_before_retry(self, attempts: Attempts, error: GLMError, *, resend_if_maybe_delivered: bool) -> None:
        """Sleep before the next attempt, or re-raise `error` when it should not be retried."""
        wait = attempts.next_wait(self._retry, error, resend_if_maybe_delivered=resend_if_maybe_delivered)
        if wait is None:
            raise error
        logger.info("attempt %d failed (%s); retrying in %.2f s", attempts.count, error, wait)
        await anyio.sleep(wait)

    def _parse(self, model: type[_ModelT], response: httpx2.Response) -> _ModelT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            snippet = self._redact(response.text[:200])
            raise GLMTransportError(
                f"the GLM API answered HTTP {response.status_code} with a body that is not the expected "
                f"JSON: {snippet!r}",
                maybe_delivered=True,
            ) from None

    def _api_error(self, response: httpx2.Response) -> GLMAPIError:
        code: str | None = None
        message = ""
        request_id: str | None = None
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            code, message = _error_fields(body.get("error"))
            if isinstance(body.get("request_id"), str):
                request_id = body["request_id"]
        if not message:
            message = response.text[:300].strip() or response.reason_phrase or "no error message"
        return GLMAPIError(
            self._redact(message),
            status_code=response.status_code,
            code=code,
            request_id=request_id,
            should_retry=_should_retry(response.headers.get("x-should-retry")),
            retry_after=_retry_after(response.headers.get("retry-after")),
        )

    def _transport_error(self, exc: httpx2.HTTPError) -> GLMTransportError:
        delivered = not isinstance(exc, _NOT_DELIVERED)
        return GLMTransportError(
            f"could not reach the GLM API at {self.base_url}: {_describe(exc)}", maybe_delivered=delivered
        )

    def _redact(self, text: str) -> str:
        return self.credentials.redact(text) if self.credentials else text


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read a finished stream to its end, so its connection goes back to the pool.

    A response closed before its last bytes (the chunked terminator after `[DONE]`) takes its
    connection with it: the next call would pay a new TCP connection, and a TLS handshake.
    """
    with anyio.move_on_after(DRAIN_SECONDS):  # an upstream that keeps the stream open loses the connection
        async for _ in lines:
            pass


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


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["GLMClient", "GLMError", "open_http_client"]
