"""Bounded, whatever the upstream does: one deadline for a whole call, size limits on everything read.

The hostile upstream (`tests/hostile_upstream.py`) trickles streams that never end, sends JSON one
byte at a time, gzip bombs, events and answers without end. Each call must end with a clear error
naming the limit, free its concurrency slot, and close the connection (the upstream sees it go).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.glm import Credentials, GLMClient, open_http_client
from glm_mcp.glm.client import SSE_MAX_EVENT_BYTES, UpstreamLimits
from glm_mcp.glm.errors import GLMDeadlineError, GLMLimitError, GLMSilentError
from glm_mcp.glm.types import ChatCompletionChunk, ChatRequest, Message
from tests.hostile_upstream import DONE, HostileUpstream, Reply, Request, chunk, gzip_bomb, honest, sse_reply

pytestmark = pytest.mark.anyio

KEY = "boundid.bounded-secret-value"
DEADLINE = 2.0
TRICKLE = 0.3  # seconds between pieces: well under GLM_TIMEOUT, so only the deadline can end the call
ANSWER_CHARS = 10_000
BOMB_BYTES = 256 * 1024 * 1024
PEAK_MB = 64


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    with HostileUpstream() as upstream:
        yield upstream


def settings(upstream: HostileUpstream, data_dir: Path, **env: str) -> Settings:
    base = {
        "GLM_API_KEY": KEY,
        "GLM_BASE_URL": upstream.base_url,
        "GLM_MAX_RETRIES": "0",
        "GLM_TIMEOUT": "5",
        "GLM_CALL_DEADLINE": str(DEADLINE),
        "GLM_MAX_CONCURRENCY": "1",
        "GLM_DATA_DIR": str(data_dir),
    }
    return Settings.from_env(base | env)


def first_then_honest(reply: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    """`reply` for the first request, the honest answer for the others."""
    seen: list[Request] = []

    def answer(request: Request) -> Reply:
        seen.append(request)
        return reply(request) if len(seen) == 1 else honest(request)

    return answer


def forever(piece: bytes) -> Callable[[], Iterator[bytes]]:
    def pieces() -> Iterator[bytes]:
        while True:
            yield piece

    return pieces


TRICKLES: dict[str, Callable[[Request], Reply]] = {
    "SSE comments": lambda _: sse_reply([chunk("Hel")], pause=TRICKLE, then=forever(b": keep-alive\n\n")),
    "empty deltas": lambda _: sse_reply([chunk("Hel")], pause=TRICKLE, then=forever(chunk(""))),
    "one byte at a time": lambda _: sse_reply([chunk("Hel"), b"data: {"], pause=TRICKLE, then=forever(b" ")),
}


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait for something the upstream's thread records (it sees a disconnect at its next piece)."""
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.05)


def failure(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    structured: dict[str, Any] = result.structured_content
    return structured


@pytest.mark.parametrize("trickle", TRICKLES, ids=str)
async def test_a_trickling_stream_ends_at_the_deadline_and_frees_its_slot(
    upstream: HostileUpstream, trickle: str, tmp_path: Path
) -> None:
    upstream.clear(first_then_honest(TRICKLES[trickle]))
    async with Client(create_server(settings(upstream, tmp_path))) as client:
        started = time.monotonic()
        with anyio.fail_after(DEADLINE + 10):
            result = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 60})
        elapsed = time.monotonic() - started
        out = failure(result)
        assert out["error"] == "deadline_exceeded" and "GLM_CALL_DEADLINE" in out["message"]
        assert out["partial_text"] == "Hel" and "GLM_CALL_DEADLINE" in out["hint"]
        assert DEADLINE <= elapsed < DEADLINE + 5
        await until(lambda: bool(upstream.left))  # the trickling connection was closed
        # GLM_MAX_CONCURRENCY=1: this call gets through only if the first one gave its slot back.
        with anyio.fail_after(10):
            second = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 30})
        assert not second.is_error and second.structured_content["text"] == "ok"


async def test_a_json_body_sent_one_byte_at_a_time_ends_at_the_deadline(
    upstream: HostileUpstream, tmp_path: Path
) -> None:
    def trickle(request: Request) -> Reply:
        return Reply(headers={"content-type": "application/json"}, stream=_async(forever(b" ")), pause=TRICKLE)

    upstream.clear(first_then_honest(trickle))
    async with Client(create_server(settings(upstream, tmp_path))) as client:
        with anyio.fail_after(DEADLINE + 10):
            result = await client.call_tool("submit_async", {"prompt": "hi"})
        out = failure(result)
        assert out["error"] == "deadline_exceeded", out
        await until(lambda: bool(upstream.left))
        with anyio.fail_after(10):
            second = await client.call_tool("submit_async", {"prompt": "hi"})
        assert not second.is_error, second.content


async def test_a_handed_off_chat_ends_at_the_deadline_too(upstream: HostileUpstream, tmp_path: Path) -> None:
    upstream.clear(first_then_honest(TRICKLES["SSE comments"]))
    async with Client(create_server(settings(upstream, tmp_path))) as client:
        started = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 0.2})
        assert started.structured_content["status"] == "running"
        with anyio.fail_after(DEADLINE + 10):
            result = await client.call_tool(
                "get_result", {"task_id": started.structured_content["job_id"], "wait_seconds": 60}
            )
        out = result.structured_content
        assert out["status"] == "failed" and out["error"]["error"] == "deadline_exceeded", out
        await until(lambda: bool(upstream.left))


KEPT_ALIVE = 0.2
"""Seconds between keep-alives: a stream of them never trips the read timeout."""
SILENT_AFTER = 1.0
"""GLM_TIMEOUT in the keep-alive tests: a stream of nothing but keep-alives is silent after this."""
KEEP_ALIVES: dict[str, Callable[[Request], Reply]] = {
    "SSE comments": lambda _: sse_reply([chunk("Hel")], pause=KEPT_ALIVE, then=forever(b": keep-alive\n\n")),
    "empty deltas": lambda _: sse_reply([chunk("Hel")], pause=KEPT_ALIVE, then=forever(chunk(""))),
}


@pytest.mark.parametrize("keep_alive", KEEP_ALIVES, ids=str)
async def test_a_stream_of_keep_alives_is_silent_after_the_timeout_and_frees_its_slot(
    upstream: HostileUpstream, keep_alive: str, tmp_path: Path
) -> None:
    """Keep-alives reset the read timeout, so only the deadline (30 min by default) ended such a stream."""
    upstream.clear(first_then_honest(KEEP_ALIVES[keep_alive]))
    env = {"GLM_TIMEOUT": str(SILENT_AFTER), "GLM_CALL_DEADLINE": "600"}
    async with Client(create_server(settings(upstream, tmp_path, **env))) as client:
        with anyio.fail_after(60):  # far below the deadline: only the silence can end it in time
            result = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 600})
        out = failure(result)
        assert out["error"] == "upstream_timeout", out
        assert "nothing but keep-alives" in out["message"] and f"{SILENT_AFTER:g} s (GLM_TIMEOUT)" in out["message"]
        assert "GLM_TIMEOUT" in out["hint"] and out["partial_text"] == "Hel"
        await until(lambda: bool(upstream.left))  # the connection was closed
        # GLM_MAX_CONCURRENCY=1: this call gets through only if the first one gave its slot back.
        with anyio.fail_after(10):
            second = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 30})
        assert not second.is_error and second.structured_content["text"] == "ok"


async def test_a_stream_that_goes_quiet_is_said_to_be_silent_not_kept_alive(upstream: HostileUpstream) -> None:
    upstream.clear(lambda _: sse_reply([chunk("Hel")], pause=30, then=forever(b": keep-alive\n\n")))
    glm = _client(upstream, timeout=SILENT_AFTER)
    async with glm._http:
        with anyio.fail_after(20), pytest.raises(GLMSilentError) as caught:
            async with glm.stream_chat(REQUEST) as chunks:
                async for _ in chunks:
                    pass
    assert type(caught.value) is GLMSilentError and "then sent nothing for 1 s" in caught.value.message
    assert glm._limiter.borrowed_tokens == 0


def _delta(**delta: Any) -> bytes:
    event = {"id": "hostile-1", "created": 1, "model": "glm-4.6", "choices": [{"index": 0, "delta": delta}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _slow_but_saying_something(request: Request) -> Reply:
    """Reasoning, then a tool call's arguments in pieces, a keep-alive between each: twice GLM_TIMEOUT of it."""
    reasoning = [_delta(reasoning_content=f"step {i}. ") for i in range(5)]
    call = [_delta(tool_calls=[{"index": 0, "id": "call-1", "function": {"name": "f", "arguments": ""}}])]
    call += [_delta(tool_calls=[{"index": 0, "function": {"arguments": piece}}]) for piece in ('{"a"', ": 1", "}")]
    pieces = [frame for delta in (*reasoning, *call) for frame in (delta, b": keep-alive\n\n")]
    return sse_reply([*pieces, chunk(finish="tool_calls"), DONE], pause=KEPT_ALIVE)


async def test_reasoning_and_tool_call_deltas_count_as_content(upstream: HostileUpstream) -> None:
    upstream.clear(_slow_but_saying_something)
    glm = _client(upstream, timeout=SILENT_AFTER)
    frames: list[ChatCompletionChunk] = []
    async with glm._http:
        with anyio.fail_after(30):
            async with glm.stream_chat(REQUEST) as chunks:
                async for piece in chunks:
                    frames.append(piece)
    assert len(frames) == 10 and frames[-1].choices[0].finish_reason == "tool_calls"


def _async(pieces: Callable[[], Iterator[bytes]]) -> Callable[[], AsyncIterator[bytes]]:
    async def stream() -> AsyncIterator[bytes]:
        for piece in pieces():
            yield piece

    return stream


def _endless_answer(request: Request) -> Reply:
    return sse_reply([], pause=0.001, then=forever(chunk("y" * 1000)))


async def test_an_answer_past_the_limit_fails_and_closes_the_stream(upstream: HostileUpstream, tmp_path: Path) -> None:
    upstream.clear(_endless_answer)
    env = {"GLM_MAX_ANSWER_CHARS": str(ANSWER_CHARS), "GLM_CALL_DEADLINE": "60"}
    async with Client(create_server(settings(upstream, tmp_path, **env))) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 60})
        out = failure(result)
        assert out["error"] == "upstream_too_large" and "GLM_MAX_ANSWER_CHARS" in out["message"]
        assert "GLM_MAX_ANSWER_CHARS" in out["hint"] and len(out["partial_text"]) == ANSWER_CHARS
        await until(lambda: len(upstream.left) == 1)

        # The same, for a chat handed off as a job and fetched with get_result.
        started = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 0})
        with anyio.fail_after(20):
            result = await client.call_tool(
                "get_result", {"task_id": started.structured_content["job_id"], "wait_seconds": 60}
            )
        out = result.structured_content
        assert out["status"] == "failed" and out["error"]["error"] == "upstream_too_large", out
        assert "GLM_MAX_ANSWER_CHARS" in out["error"]["message"]
        await until(lambda: len(upstream.left) == 2)


@pytest.mark.parametrize("newline", [False, True], ids=["one endless line", "a long event"])
async def test_an_over_long_stream_event_fails_and_closes_the_stream(
    upstream: HostileUpstream, newline: bool, tmp_path: Path
) -> None:
    piece = b"data: " + b"z" * 65536 + (b"\n" if newline else b"")
    upstream.clear(lambda _: sse_reply([chunk("Hel")], pause=0.001, then=forever(piece)))
    async with Client(create_server(settings(upstream, tmp_path, GLM_CALL_DEADLINE="60"))) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 60})
    out = failure(result)
    assert out["error"] == "upstream_too_large" and str(SSE_MAX_EVENT_BYTES) in out["message"], out
    await until(lambda: bool(upstream.left))


_BOMB_CLIENT = """
import json, sys, tracemalloc
import anyio
from glm_mcp.config import Settings
from glm_mcp.glm import GLMError
from glm_mcp.glm.types import ChatCompletionChunk, ChatRequest, Message
from glm_mcp.upstream import open_glm_client

async def main():
    env = {"GLM_API_KEY": "a.bcdefghijkl", "GLM_BASE_URL": sys.argv[1], "GLM_MAX_RETRIES": "0"}
    async with open_glm_client(Settings.from_env(env)) as glm:
        await glm.list_models()  # the pool, its TLS context and the parsing code are in memory before measuring
        tracemalloc.start()  # the peak of what the call holds at once: bodies, decompressed pieces, text
        request = ChatRequest(model="glm-4.6", messages=[Message(role="user", content="hi")])
        try:
            if sys.argv[2] == "stream":
                async with glm.stream_chat(request) as chunks:
                    async for _ in chunks:
                        pass
            else:
                await glm.chat(request)
            error = None
        except GLMError as exc:
            error = [type(exc).__name__, exc.message]
        print(json.dumps({"error": error, "peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}))

anyio.run(main)
"""


@pytest.mark.parametrize("kind", ["json", "stream"])
def test_a_gzip_bomb_is_bounded_after_decompression(upstream: HostileUpstream, kind: str) -> None:
    bomb = gzip_bomb(BOMB_BYTES)
    assert len(bomb) < BOMB_BYTES // 500

    def reply(request: Request) -> Reply:
        if request.path.endswith("/models"):
            return honest(request)
        kind = "text/event-stream" if b'"stream":true' in request.body else "application/json"
        return Reply(headers={"content-type": kind, "content-encoding": "gzip"}, body=bomb)

    upstream.clear(reply)
    run = subprocess.run(
        [sys.executable, "-c", _BOMB_CLIENT, upstream.base_url, kind], capture_output=True, timeout=120, check=True
    )
    outcome = json.loads(run.stdout)
    name, message = outcome["error"]
    assert name == "GLMLimitError", outcome
    assert ("GLM_MAX_RESPONSE_BYTES" if kind == "json" else "SSE_MAX_EVENT_BYTES") in message
    assert outcome["peak_mb"] < PEAK_MB, outcome


# --- the client alone -----------------------------------------------------------------------

REQUEST = ChatRequest(model="glm-4.6", messages=[Message(role="user", content="hi")])


def _client(upstream: HostileUpstream, *, timeout: float = 5, **limits: Any) -> GLMClient:
    http = open_http_client(upstream.base_url, timeout=timeout, connect_timeout=5)
    return GLMClient(http, Credentials(KEY), max_concurrency=1, limits=UpstreamLimits(**limits))


async def test_the_client_ends_a_trickle_at_its_deadline_and_gives_the_slot_back(upstream: HostileUpstream) -> None:
    upstream.clear(first_then_honest(TRICKLES["empty deltas"]))
    glm = _client(upstream, call_deadline=1.0)
    async with glm._http:
        with anyio.fail_after(10), pytest.raises(GLMDeadlineError, match="GLM_CALL_DEADLINE"):
            async with glm.stream_chat(REQUEST) as chunks:
                async for _ in chunks:
                    pass
        assert glm._limiter.borrowed_tokens == 0
        with anyio.fail_after(10):
            assert (await glm.chat(REQUEST)).message.content == "ok"
    await until(lambda: bool(upstream.left))


async def test_the_client_refuses_a_body_past_its_limit_and_drops_the_connection(upstream: HostileUpstream) -> None:
    big = json.dumps({"id": "x", "padding": "p" * 4_000_000}).encode()
    upstream.clear(lambda _: Reply(headers={"content-type": "application/json"}, body=big, pause=0.001))
    glm = _client(upstream, max_response_bytes=1_000_000)
    async with glm._http:
        with pytest.raises(GLMLimitError, match="GLM_MAX_RESPONSE_BYTES") as caught:
            await glm.chat(REQUEST)
    assert caught.value.limit == "GLM_MAX_RESPONSE_BYTES" and not caught.value.retryable
    await until(lambda: bool(upstream.left))
