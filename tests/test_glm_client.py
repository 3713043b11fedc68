"""The upstream client on its own: SSE parsing, stream assembly, error mapping, signing, key hygiene."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest

from glm_mcp.emulator import Emulator
from glm_mcp.glm import (
    AuthMode,
    Credentials,
    GLMAPIError,
    GLMClient,
    GLMStreamError,
    GLMTransportError,
    MissingAPIKeyError,
    StreamAccumulator,
    open_http_client,
)
from glm_mcp.glm.client import KEEPALIVE_CONNECTIONS
from glm_mcp.glm.types import ChatRequest, Message, WebSearchOptions, WebSearchTool, split_answer
from glm_mcp.upstream import open_glm_client
from tests.conftest import GENERAL_KEY, settings_for
from tests.hostile_upstream import HostileUpstream, json_reply

pytestmark = pytest.mark.anyio


async def test_stream_events_are_read_by_the_sdk_rules() -> None:
    """Comments skipped, `data:` with or without its space, several data lines joined, other fields ignored."""
    body = (
        b": keep-alive\n\n"
        b'data:{"id":"1","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
        b"id: 7\nevent: x\n\n"
        b'data: {"id":"1",\ndata: "choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    accumulator = await _drain(_mock_stream(body))
    assert accumulator.text == "Hello" and accumulator.chunks == 2 and accumulator.finish_reason == "stop"


def _client(emulator: Emulator, key: str | None = GENERAL_KEY) -> GLMClient:
    http = open_http_client(emulator.base_url, timeout=10, connect_timeout=5)
    return GLMClient(http, Credentials(key) if key else None)


REQUEST = ChatRequest(
    model="glm-4.6",
    messages=[Message(role="user", content="Compare two sorting algorithms.")],
    tools=[WebSearchTool(web_search=WebSearchOptions(search_result=True, count=3))],
)


async def test_streamed_and_plain_calls_assemble_the_same_completion(emulator: Emulator) -> None:
    glm = _client(emulator)
    async with glm._http:
        plain = await glm.chat(REQUEST)
        accumulator = StreamAccumulator()
        async with glm.stream_chat(REQUEST) as chunks:
            async for chunk in chunks:
                accumulator.add(chunk)
    streamed = accumulator.completion()
    assert accumulator.chunks > 3
    assert streamed.message.content == plain.message.content
    assert streamed.message.reasoning_content == plain.message.reasoning_content
    assert streamed.finish_reason == plain.finish_reason == "stop"
    assert streamed.usage is not None and plain.usage is not None
    # The second identical prompt is partly served from the (emulated) prompt cache.
    assert streamed.usage.model_copy(update={"prompt_tokens_details": None}) == plain.usage.model_copy(
        update={"prompt_tokens_details": None}
    )
    assert streamed.usage.cached_tokens > plain.usage.cached_tokens == 0
    assert streamed.web_search == plain.web_search and len(plain.web_search or []) == 3
    assert upstream_stream_flags(emulator) == [False, True]


def upstream_stream_flags(emulator: Emulator) -> list[bool]:
    return [bool((e.body or {}).get("stream")) for e in emulator.state.exchanges]


async def test_api_errors_carry_status_code_message_and_request_id(emulator: Emulator) -> None:
    glm = _client(emulator)
    bad = REQUEST.model_copy(update={"model": "glm-nope", "request_id": "req-123"})
    async with glm._http:
        with pytest.raises(GLMAPIError) as caught:
            await glm.chat(bad)
        with pytest.raises(GLMAPIError) as streamed:
            async with glm.stream_chat(bad):
                pass
    for error in (caught.value, streamed.value):
        assert error.status_code == 400 and error.code == "1211" and not error.retryable
        assert "glm-nope" in error.message
    assert caught.value.request_id == "req-123"


async def test_missing_key_fails_before_sending(emulator: Emulator) -> None:
    glm = _client(emulator, key=None)
    async with glm._http:
        with pytest.raises(MissingAPIKeyError):
            await glm.chat(REQUEST)
    assert emulator.state.exchanges == []


async def test_a_refused_connection_was_not_delivered() -> None:
    glm = GLMClient(open_http_client("http://127.0.0.1:9/api", timeout=5, connect_timeout=2), Credentials("a.b"))
    async with glm._http:
        with pytest.raises(GLMTransportError) as caught:
            await glm.submit_async(REQUEST)
    assert caught.value.maybe_delivered is False


def _mock_stream(body: bytes, status: int = 200) -> GLMClient:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": "text/event-stream"})

    http = httpx2.AsyncClient(base_url="http://glm.test/api/paas/v4/", transport=httpx2.MockTransport(answer))
    return GLMClient(http, Credentials("someid.topsecretvalue123"))


async def _drain(glm: GLMClient) -> StreamAccumulator:
    accumulator = StreamAccumulator()
    async with glm._http, glm.stream_chat(REQUEST) as chunks:
        async for chunk in chunks:
            accumulator.add(chunk)
    return accumulator


async def test_an_error_frame_mid_stream_raises_with_its_code() -> None:
    body = (
        b'data: {"id":"1","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
        b'data: {"error":{"code":"1234","message":"network error, token someid.topsecretvalue123"}}\n\n'
    )
    with pytest.raises(GLMAPIError) as caught:
        await _drain(_mock_stream(body))
    assert caught.value.code == "1234" and caught.value.retryable
    assert "topsecretvalue123" not in caught.value.message


async def test_a_stream_without_done_is_a_stream_error() -> None:
    body = b'data: {"id":"1","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    with pytest.raises(GLMStreamError, match=r"no final chunk"):
        await _drain(_mock_stream(body))


async def test_error_bodies_that_echo_the_key_are_scrubbed() -> None:
    body = b'{"error":{"code":"1002","message":"bad header: Bearer someid.topsecretvalue123"}}'
    with pytest.raises(GLMAPIError) as caught:
        await _drain(_mock_stream(body, status=401))
    assert "topsecretvalue123" not in str(caught.value) and "<redacted>" in caught.value.message


def test_split_answer_undoes_model_markup() -> None:
    assert split_answer("<think>because</think>\nAnswer.", None) == ("Answer.", "because")
    assert split_answer("<|begin_of_box|>42<|end_of_box|>", "r") == ("42", "r")
    assert split_answer(None, "") == ("", None)


def test_jwt_tokens_use_milliseconds_and_are_cached() -> None:
    import jwt

    credentials = Credentials("myid.mysecretvalue", mode="jwt")
    header = credentials.authorization()
    token = header.removeprefix("Bearer ")
    payload = jwt.decode(token, "mysecretvalue", algorithms=["HS256"], options={"verify_exp": False})
    assert payload["api_key"] == "myid" and payload["exp"] - payload["timestamp"] == 210_000
    assert payload["timestamp"] > 10**12  # milliseconds, not seconds
    assert jwt.get_unverified_header(token)["sign_type"] == "SIGN"
    assert credentials.authorization() == header
    assert token in credentials.secret_strings()


def test_tokens_signed_before_the_current_one_are_still_scrubbed() -> None:
    """An upstream may echo a token signed minutes ago (still valid): it is scrubbed like the current one."""
    credentials = Credentials("myid.mysecretvalue", mode="jwt")
    first = credentials.authorization().removeprefix("Bearer ")
    credentials._header_expires = 0.0  # past the reuse window: the next call signs a new token
    time.sleep(0.002)  # in another millisecond, so the token differs
    second = credentials.authorization().removeprefix("Bearer ")
    assert first != second
    text = f"echo: {first} and {second}, Bearer some-caller-token-of-theirs"
    assert credentials.redact(text) == "echo: <redacted> and <redacted>, Bearer <redacted>"


def _escaped(text: str, digits: str = "x") -> str:
    return "".join(f"\\u{ord(char):04{digits}}" for char in text)


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
def test_json_that_may_spell_a_form_of_the_key_is_told_cheaply_and_never_missed(mode: AuthMode) -> None:
    """The test every JSON answer and stream chunk passes before its strings are walked: it may say yes to a
    clean one, never no to one holding the key, however JSON spells it."""
    credentials = Credentials("myid.mysecretvalue-0123", mode=mode)
    token = credentials.authorization().removeprefix("Bearer ")
    for form in {token, "myid.mysecretvalue-0123", "mysecretvalue-0123"}:
        for spelt in (form, _escaped(form), form[:5] + _escaped(form[5:9]) + form[9:], _escaped(form, "X")):
            body = json.dumps({"a": "你好 "})[:-2] + spelt + '"}'
            assert json.loads(body)["a"].endswith(form)
            assert credentials.may_spell_a_form(body) and credentials.may_spell_a_form(body.encode()), body
    clean = [
        json.dumps({"a": "你好, mysecret and myid. and eyJ"}, ensure_ascii=False),
        json.dumps({"a": "你好, mysecret and myid. and eyJ"}),  # every Chinese character a \\u escape
        json.dumps({"a": "\\u006d" + "ysecretvalue-0123"}),  # an escaped backslash: no escape, no form
    ]
    for body in clean:
        assert not credentials.may_spell_a_form(body) and not credentials.may_spell_a_form(body.encode()), body


def test_a_jwt_is_signed_again_before_its_lifetime_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reused for 180 s of its 210 s lifetime, then replaced: a token is never sent expired."""
    import jwt

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    credentials = Credentials("myid.mysecretvalue", mode="jwt")
    first = credentials.authorization()
    now[0] += 179.0
    assert credentials.authorization() == first
    now[0] += 2.0
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)
    second = credentials.authorization()
    assert second != first
    payload = jwt.decode(
        second.removeprefix("Bearer "), "mysecretvalue", algorithms=["HS256"], options={"verify_exp": False}
    )
    assert payload["timestamp"] == 2_000_000_000_000


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
async def test_the_key_signs_any_httpx2_request_it_is_passed_with(emulator: Emulator, mode: AuthMode) -> None:
    """`Credentials` is an `httpx2.Auth`, for the async client the server uses and the sync one alike."""
    credentials = Credentials(GENERAL_KEY, mode=mode)
    with httpx2.Client() as sync_http:
        sync = sync_http.get(emulator.base_url + "/models", auth=credentials)
    async with httpx2.AsyncClient() as http:
        answer = await http.get(emulator.base_url + "/models", auth=credentials)
    assert sync.status_code == answer.status_code == 200  # the emulator checked the key (or the JWT's signature)
    sent = [exchange.headers["authorization"] for exchange in emulator.state.exchanges]
    assert sent == [credentials.authorization()] * 2  # a JWT is signed once and reused
    token = sent[0].removeprefix("Bearer ")
    assert token == GENERAL_KEY if mode == "bearer" else token.count(".") == 2 and token in credentials.secret_strings()


async def test_a_jwt_the_auth_signed_is_scrubbed_when_the_upstream_echoes_it() -> None:
    """The token is signed through the same `Credentials` that redacts: an echo of the bare token is caught."""
    credentials = Credentials("echoid.s3cr3t-half-of-the-key-1234", mode="jwt")
    with HostileUpstream() as upstream:
        upstream.reply = lambda request: json_reply(
            {"error": {"code": "1000", "message": f"token {request.token} refused"}}, 401, "Unauthorized"
        )
        glm = GLMClient(open_http_client(upstream.base_url, timeout=10, connect_timeout=5), credentials)
        async with glm._http:
            with pytest.raises(GLMAPIError) as caught:
                await glm.list_models()
    token = upstream.records[0].request.token
    assert token.count(".") == 2 and token.startswith("eyJ")  # a JWT went out, not the key
    assert caught.value.message == "token <redacted> refused"


async def test_a_callers_key_and_the_servers_share_the_pool_and_each_sends_its_own(emulator: Emulator) -> None:
    """Concurrent calls with the server's key (bearer) and a caller's (JWT) on one pooled client."""
    caller_key = "caller.key-general-of-its-own"
    keys = emulator.config.api_keys
    emulator.config.api_keys = (*keys, caller_key)
    emulator.config.latency = 0.05  # so that the calls are in flight together
    server = _client(emulator)
    caller = server.with_credentials(Credentials(caller_key, mode="jwt"))
    assert caller._http is server._http

    async def call(glm: GLMClient, request_id: str) -> None:
        await glm.chat(REQUEST.model_copy(update={"request_id": request_id, "tools": None}))

    try:
        async with server._http, anyio.create_task_group() as group:
            for n in range(6):
                group.start_soon(call, server, f"server-{n}")
                group.start_soon(call, caller, f"caller-{n}")
    finally:
        emulator.config.api_keys = keys
    sent = {
        (exchange.body or {})["request_id"]: exchange.headers["authorization"] for exchange in emulator.state.exchanges
    }
    assert {sent[f"server-{n}"] for n in range(6)} == {f"Bearer {GENERAL_KEY}"}
    assert caller.credentials is not None
    assert {sent[f"caller-{n}"] for n in range(6)} == {caller.credentials.authorization()}


class _Clock:
    """The `time` module as the key's signing and the emulator's expiry check see it: `ahead` seconds later."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def time(self) -> float:
        return time.time() + self.ahead

    def time_ns(self) -> int:
        return time.time_ns() + int(self.ahead * 1e9)

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


async def test_a_jwt_is_signed_again_after_its_reuse_window(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reused within 180 s; 215 s on, past its 210 s lifetime, only a new token gets through the emulator."""
    import jwt

    clock = _Clock()
    monkeypatch.setattr("glm_mcp.glm.auth.time", clock)
    monkeypatch.setattr("glm_mcp.emulator.app.time", clock)
    glm = GLMClient(
        open_http_client(emulator.base_url, timeout=10, connect_timeout=5), Credentials(GENERAL_KEY, mode="jwt")
    )
    async with glm._http:
        await glm.list_models()
        clock.ahead = 179.0
        await glm.list_models()
        clock.ahead = 215.0
        await glm.list_models()  # the first token has expired: the emulator would answer 401 / 1003
    first, again, renewed = (
        exchange.headers["authorization"].removeprefix("Bearer ") for exchange in emulator.state.exchanges
    )
    assert first == again != renewed
    # The emulator checked the signatures; here, only when each token was signed.
    signed = [jwt.decode(token, options={"verify_signature": False})["timestamp"] for token in (first, renewed)]
    assert 214_000 <= signed[1] - signed[0] <= 216_000  # milliseconds: signed at the later time


def _established_to(port: int) -> int:
    """Open TCP connections whose far end is `port` on loopback, from /proc/net/tcp (this process's namespace)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
            count += 1
    return count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
async def test_a_burst_wider_than_the_keep_alive_cap_runs_at_once_and_leaves_only_the_cap_pooled(
    emulator: Emulator,
) -> None:
    """httpcore2 re-checks every idle pooled connection on each request: the pool keeps at most
    KEEPALIVE_CONNECTIONS idle, however many GLM_MAX_CONCURRENCY lets run at once."""
    width = KEEPALIVE_CONNECTIONS + 24
    emulator.config.latency = 0.3  # every stream of the burst is open at once
    port = int(emulator.base_url.split(":")[2].split("/")[0])
    async with open_glm_client(settings_for(emulator, GLM_MAX_CONCURRENCY=str(width))) as glm:

        async def one() -> None:
            async with glm.stream_chat(REQUEST) as chunks:
                async for _ in chunks:
                    pass

        async with anyio.create_task_group() as burst:
            for _ in range(width):
                burst.start_soon(one)
        assert emulator.state.peak_in_flight == width  # the cap bounds what is kept, not what runs
        kept = _established_to(port)
        assert 0 < kept <= KEEPALIVE_CONNECTIONS, kept
