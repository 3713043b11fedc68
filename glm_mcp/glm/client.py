"""The async client of the GLM HTTP API v4: typed requests in, typed responses or `GLMError` out.

One `GLMClient` wraps one pooled `httpx2.AsyncClient` for the life of the process: a client
built per call pays a fresh TLS handshake (about 25 ms) every time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from glm_mcp.glm.auth import Credentials
from glm_mcp.glm.errors import GLMAPIError, GLMError, GLMStreamError, GLMTransportError, MissingAPIKeyError
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

# Failures that happen before a request is on the wire: re-sending can never duplicate work.
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


class GLMClient:
    """Calls of the GLM API. Knows HTTP and the GLM wire format, nothing of MCP."""

    def __init__(self, http: httpx2.AsyncClient, credentials: Credentials | None) -> None:
        self._http = http
        self.credentials = credentials

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def chat(self, request: ChatRequest) -> ChatCompletion:
        """A whole completion in one JSON answer."""
        response = await self._send("POST", "chat/completions", request.to_json())
        return self._parse(ChatCompletion, response)

    @asynccontextmanager
    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[AsyncIterator[ChatCompletionChunk]]:
        """A completion as it is generated, chunk by chunk.

        Used as `async with client.stream_chat(req) as chunks: async for chunk in chunks`. Leaving
        the block, normally or by cancellation, closes the upstream connection at once, so an
        abandoned answer stops costing tokens. Error frames raise `GLMAPIError`; a stream that
        breaks off before `[DONE]` raises `GLMStreamError`.
        """
        body = request.model_copy(update={"stream": True}).to_json()
        http_request = self._http.build_request("POST", "chat/completions", content=body, headers=self._auth_headers())
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None
        try:
            if response.status_code >= 400:
                await response.aread()
                raise self._api_error(response)
            yield self._chunks(response)
        finally:
            # Shielded: when the caller is cancelled, the connection must still be closed (not
            # returned half-read to the pool), or the upstream would go on generating.
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _chunks(self, response: httpx2.Response) -> AsyncIterator[ChatCompletionChunk]:
        finished = False
        try:
            async for data in iter_sse_data(response.aiter_lines()):
                if data == DONE:
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

    async def submit_async(self, request: ChatRequest) -> AsyncTask:
        """Start a chat job; the answer is fetched later with `async_result`."""
        body = request.model_copy(update={"stream": None}).to_json()
        response = await self._send("POST", "async/chat/completions", body)
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

    async def _send(self, method: str, path: str, body: bytes | None = None) -> httpx2.Response:
        headers = self._auth_headers()
        try:
            response = await self._http.request(method, path, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._api_error(response)
        return response

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
        return GLMAPIError(self._redact(message), status_code=response.status_code, code=code, request_id=request_id)

    def _transport_error(self, exc: httpx2.HTTPError) -> GLMTransportError:
        delivered = not isinstance(exc, _NOT_DELIVERED)
        return GLMTransportError(
            f"could not reach the GLM API at {self.base_url}: {_describe(exc)}", maybe_delivered=delivered
        )

    def _redact(self, text: str) -> str:
        return self.credentials.redact(text) if self.credentials else text


def _error_fields(error: object) -> tuple[str | None, str]:
    """(code, message) from the platform's `{"code": "1211", "message": "…"}` error object."""
    if not isinstance(error, dict):
        return None, str(error) if error else ""
    code = error.get("code")
    message = error.get("message")
    return (str(code) if code is not None else None), (str(message) if message is not None else "")


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["GLMClient", "GLMError", "open_http_client"]
