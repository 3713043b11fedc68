"""An upstream that echoes the key back, anywhere it becomes text: no form of it reaches a result, stdout or the log.

The hostile upstream (`tests/hostile_upstream.py`) quotes the Authorization header it received, the
token in it (the key itself, or the signed JWT), the raw key and its secret half, in each place the
client turns upstream bytes into text: a non-JSON error body, a JSON error message, a stream frame
that is not JSON, a malformed JSON 200 body, an error frame inside a stream, and a response header
(the reason phrase; the Content-Type of a stream that is none). The echo is put at every offset
around the length each of those is cut to, so that a cut made before scrubbing would fall inside
the secret and leave all but its last characters.

A successful answer is upstream text too: the echo is then the answer itself, split across two
streamed pieces at every place it can be cut (text, reasoning, tool-call arguments), held back
mid-echo while a job runs (its partial text and progress), and in every string of a JSON answer
(a page, search results, a finished task, a stream's sources), also spelt with JSON escapes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.glm.client import MESSAGE_CHARS, SNIPPET_CHARS
from tests.hostile_upstream import (
    DONE,
    HostileUpstream,
    Reply,
    Request,
    chunk,
    completion_body,
    delta_chunk,
    honest,
    json_reply,
    sse_reply,
)
from tests.processes import COMMAND, drain, http_server_process, server_env

pytestmark = pytest.mark.anyio

KEY_ID = "echoid"
SECRET = "s3cr3t-half-that-must-never-leak-9f2c"
KEY = f"{KEY_ID}.{SECRET}"
CONTENT_TYPE_CHARS = 100  # how much of an unexpected Content-Type is quoted
PREFIX = 9  # no prefix of a secret form longer than 8 characters may appear
JWT_SHAPE = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}")
FILL = "x"

Echo = Callable[[Request], str]
"""Which form of the key the upstream echoes, from what it received."""

ECHOES: dict[str, Echo] = {
    "token": lambda request: request.token,  # the key in bearer mode, the JWT in jwt mode
    "secret": lambda request: SECRET,
    "key": lambda request: KEY,
}


def forms(request: Request) -> list[str]:
    """Every form of the key a leak could show."""
    return [KEY, SECRET, request.token]


@dataclass(frozen=True)
class Place:
    """Where the echo is put, the length that text is cut to, and the tools that read it."""

    name: str
    limit: int
    tools: tuple[str, ...]
    reply: Callable[[str], Reply]
    """The upstream's answer with `text` (filler, then the echo) in this place."""


def _error_body(text: str) -> Reply:
    return Reply(401, "Unauthorized", {"content-type": "text/plain"}, text.encode())


def _json_error(text: str) -> Reply:
    return json_reply({"error": {"code": "1000", "message": text}}, 401, "Unauthorized")


def _malformed(text: str) -> Reply:
    return Reply(200, "OK", {"content-type": "application/json"}, text.encode())


def _frame(text: str) -> Reply:
    return sse_reply([chunk("Hel"), b"data: " + text.encode() + b"\n\n"])


def _error_frame(text: str) -> Reply:
    error = json.dumps({"error": {"code": "1234", "message": text}}).encode()
    return sse_reply([chunk("Hel"), b"data: " + error + b"\n\n"])


def _reason(text: str) -> Reply:
    return Reply(400, text, {"content-type": "text/plain"}, b"")


def _content_type(text: str) -> Reply:
    return Reply(200, "OK", {"content-type": text}, b"{}")


JSON_TOOLS = ("chat", "submit_async", "get_result")
PLACES = [
    Place("non-JSON error body", MESSAGE_CHARS, JSON_TOOLS, _error_body),
    Place("JSON error message", MESSAGE_CHARS, JSON_TOOLS, _json_error),
    Place("malformed JSON 200 body", SNIPPET_CHARS, JSON_TOOLS, _malformed),
    Place("reason phrase", MESSAGE_CHARS, JSON_TOOLS, _reason),
    Place("non-JSON stream frame", SNIPPET_CHARS, ("chat",), _frame),
    Place("error frame in a stream", MESSAGE_CHARS, ("chat",), _error_frame),
    Place("Content-Type of a stream", CONTENT_TYPE_CHARS, ("chat",), _content_type),
]


def arguments(tool: str) -> dict[str, Any]:
    if tool == "get_result":
        return {"task_id": "task-echo", "wait_seconds": 0}
    return {"prompt": "hi"} if tool == "submit_async" else {"prompt": "hi", "wait_seconds": 30}


def hostile(place: Place, echo: Echo, offset: int, tool: str) -> Callable[[Request], Reply]:
    """Answers the call `tool` makes with the echo at `offset` in `place`; anything else honestly."""
    path = {"chat": "/chat/completions", "submit_async": "/async/chat/completions", "get_result": "/async-result/"}

    def reply(request: Request) -> Reply:
        if path[tool] not in request.path or (tool == "chat" and "/async/" in request.path):
            return honest(request)
        return place.reply(FILL * offset + echo(request) + FILL * 20)

    return reply


def offsets(limit: int, echoed: int) -> range:
    """Every start at which the cut at `limit` falls inside the echo, and one on each side."""
    return range(max(0, limit - echoed - 1), limit + 2)


def leaked(text: str, sent: list[str]) -> list[str]:
    """The forms of the key (or prefixes of them longer than 8 characters) found in `text`."""
    found = [form[:PREFIX] for form in sent if form[:PREFIX] in text]
    return found + JWT_SHAPE.findall(text)


def written(result: Any) -> str:
    parts = [getattr(block, "text", "") for block in result.content]
    return "\n".join(parts) + json.dumps(result.structured_content)


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    with HostileUpstream() as upstream:
        yield upstream


def settings(upstream: HostileUpstream, mode: str, data_dir: Path) -> Settings:
    return Settings.from_env(
        {
            "GLM_API_KEY": KEY,
            "GLM_AUTH_MODE": mode,
            "GLM_BASE_URL": upstream.base_url,
            "GLM_MAX_RETRIES": "0",
            "GLM_DATA_DIR": str(data_dir),
        }
    )


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): hundreds of calls, seconds of CPU each run
@pytest.mark.parametrize("mode", ["bearer", "jwt"])
@pytest.mark.parametrize("place", PLACES, ids=lambda place: place.name)
async def test_an_echoed_key_is_scrubbed_at_every_cut_offset(
    upstream: HostileUpstream, mode: str, place: Place, tmp_path: Path
) -> None:
    checked = 0
    async with Client(create_server(settings(upstream, mode, tmp_path))) as client:
        for tool in place.tools:
            for name, echo in ECHOES.items():
                length = len(echo(Request("GET", "/", {"authorization": _sent_header(mode)}, b"")))
                for offset in offsets(place.limit, length):
                    upstream.clear(hostile(place, echo, offset, tool))
                    result = await client.call_tool(tool, arguments(tool))
                    request = upstream.records[-1].request
                    text = written(result)
                    assert FILL * 5 in text, f"{tool}: the echo did not reach the result: {text[:300]}"
                    assert not leaked(text, forms(request)), f"{tool}, {name} at offset {offset}: {text}"
                    checked += 1
    assert checked > 30 * len(place.tools)


def _sent_header(mode: str) -> str:
    """The Authorization header the server sends in `mode` (the length of the JWT is fixed by its fields)."""
    from glm_mcp.glm import Credentials

    return Credentials(KEY, mode="jwt" if mode == "jwt" else "bearer").authorization()


def tagged(request: Request) -> Reply:
    """The place named by `place-<n>` in the prompt or task id, with the token echoed across its cut; else honest."""
    found = re.search(rb"place-(\d+)", request.path.encode() + request.body)
    if found is None:
        return honest(request)
    place = PLACES[int(found[1])]
    return place.reply(FILL * (place.limit - len(request.token) // 2) + request.token + FILL * 20)


def tagged_calls() -> list[tuple[str, dict[str, object]]]:
    calls: list[tuple[str, dict[str, object]]] = []
    for number, place in enumerate(PLACES):
        for tool in place.tools:
            tag = f"place-{number}"
            arguments: dict[str, object] = {"task_id": f"task-{tag}"} if tool == "get_result" else {"prompt": tag}
            calls.append((tool, arguments))
    return calls


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
async def test_over_stdio_at_debug_no_form_of_the_key_is_written(upstream: HostileUpstream, mode: str) -> None:
    from tests.test_key_hygiene import everything_written

    upstream.clear(tagged)
    calls = tagged_calls()
    out, err = await everything_written(upstream.base_url, calls, GLM_API_KEY=KEY, GLM_AUTH_MODE=mode)
    sent = forms(upstream.records[-1].request)
    assert len(upstream.records) >= len(calls) and out.count(b'"isError":true') == len(calls)
    assert out.count(FILL.encode() * 20) >= len(calls)  # every echo did reach the results
    assert b"DEBUG" in err
    for name, stream in (("stdout", out), ("stderr", err)):
        assert not leaked(stream.decode(), sent), f"{name}: {leaked(stream.decode(), sent)}"


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): hundreds of calls, seconds of CPU each run
@pytest.mark.parametrize("mode", ["bearer", "jwt"])
@pytest.mark.parametrize("place", [p for p in PLACES if p.tools == ("chat",)], ids=lambda place: place.name)
async def test_a_handed_off_chat_scrubs_the_echo_in_get_result(
    upstream: HostileUpstream, mode: str, place: Place, tmp_path: Path
) -> None:
    checked = 0
    async with Client(create_server(settings(upstream, mode, tmp_path))) as client:
        for name, echo in ECHOES.items():
            length = len(echo(Request("GET", "/", {"authorization": _sent_header(mode)}, b"")))
            for offset in offsets(place.limit, length):
                upstream.clear(hostile(place, echo, offset, "chat"))
                started = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 0})
                job_id = started.structured_content["job_id"]
                result = await client.call_tool("get_result", {"task_id": job_id, "wait_seconds": 30})
                text = written(started) + written(result)
                assert result.structured_content["status"] == "failed" and FILL * 5 in text, text[:300]
                assert not leaked(text, forms(upstream.records[-1].request)), f"{name} at offset {offset}: {text}"
                checked += 1
    assert checked > 30


def doctor(upstream: HostileUpstream, mode: str) -> str:
    run = subprocess.run(
        [*COMMAND, "doctor"],
        env=server_env(GLM_API_KEY=KEY, GLM_AUTH_MODE=mode, GLM_BASE_URL=upstream.base_url, GLM_MAX_RETRIES="0"),
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stdout
    return (run.stdout + run.stderr).decode()


def _models_echoing(request: Request) -> Reply:
    """GET /models lists a model named after the token; the chat then refuses the model, which lists them."""
    if request.path.endswith("/models"):
        return json_reply({"object": "list", "data": [{"id": f"glm-{request.token}", "object": "model"}]})
    return json_reply({"error": {"code": "1211", "message": "unknown model"}}, 400, "Bad Request")


def _chat_answering(place: Place) -> Callable[[Request], Reply]:
    def reply(request: Request) -> Reply:
        if request.path.endswith("/models"):
            return honest(request)
        return place.reply(FILL * (place.limit - len(request.token) // 2) + request.token + FILL * 20)

    return reply


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
async def test_the_doctor_prints_no_form_of_the_key(upstream: HostileUpstream, mode: str) -> None:
    runs = {
        "GET /models answered with the token in a non-JSON error body": tagged_by_models(PLACES[0]),
        "model ids echoing the token, listed in the advice for 1211": _models_echoing,
        "the chat answered with the token in a malformed body": _chat_answering(PLACES[2]),
        "the chat answered with the token in its reason phrase": _chat_answering(PLACES[3]),
    }
    for what, reply in runs.items():
        upstream.clear(reply)
        # Unwrapped: the report folds long lines at spaces and hyphens, which would hide a leak from a search.
        report = re.sub(r"\n\s*", "", await anyio.to_thread.run_sync(doctor, upstream, mode))
        assert "FAIL" in report and "<redacted>" in report, f"{what}: {report}"
        sent = forms(upstream.records[-1].request)
        assert not leaked(report, sent), f"{what}: {report}"


def tagged_by_models(place: Place) -> Callable[[Request], Reply]:
    def reply(request: Request) -> Reply:
        return place.reply(FILL * (place.limit - len(request.token) // 2) + request.token + FILL * 20)

    return reply


# --- successful answers: the echo is the answer ------------------------------------------------------------------

REDACTED = "<redacted>"
STREAMED = ("content", "reasoning_content", "tool call arguments")


def split_everywhere(form: str) -> list[str]:
    """Pieces of a streamed text in which `form` appears once for each place it can be cut in two, cut there
    (each piece ends with the start of one echo and the next piece begins with its rest)."""
    pieces: list[str] = []
    rest = FILL * 3
    for cut in range(1, len(form)):
        pieces.append(rest + FILL * 3 + form[:cut])
        rest = form[cut:] + FILL * 3
    return [*pieces, rest]


def streaming(field: str, echo: Echo) -> Callable[[Request], Reply]:
    """A streamed chat whose `field` is the echo of the key, split across two chunks at every place it can be."""

    def reply(request: Request) -> Reply:
        if "/chat/completions" not in request.path:
            return honest(request)
        pieces = split_everywhere(echo(request))
        if field == "tool call arguments":
            pieces = ['{"q": "' + pieces[0], *pieces[1:-1], pieces[-1] + '"}']
            first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
            frames = [delta_chunk({"tool_calls": [first]})]
            frames += [delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
            return sse_reply([*frames, delta_chunk({}, finish="tool_calls"), DONE])
        frames = [delta_chunk({field: piece}) for piece in pieces]
        if field == "reasoning_content":
            frames.append(chunk("the answer"))
        return sse_reply([*frames, chunk(finish="stop"), DONE])

    return reply


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
@pytest.mark.parametrize("field", STREAMED)
async def test_a_key_split_across_two_streamed_pieces_is_scrubbed_from_the_answer(
    upstream: HostileUpstream, mode: str, field: str, tmp_path: Path
) -> None:
    """Each chunk is scrubbed where it is parsed, but a form cut between two chunks is whole only once joined."""
    async with Client(create_server(settings(upstream, mode, tmp_path))) as client:
        for name, echo in ECHOES.items():
            upstream.clear(streaming(field, echo))
            result = await client.call_tool("chat", {"prompt": "hi", "wait_seconds": 30})
            request = upstream.records[-1].request
            assert not result.is_error, written(result)
            assert REDACTED in json.dumps(result.structured_content), f"{field}, {name}: {written(result)[:400]}"
            assert not leaked(written(result), forms(request)), f"{field}, {name}: {written(result)}"


def held_open(echo: Echo, cut: int, seconds: float) -> Callable[[Request], Reply]:
    """A streamed answer that stops `cut` characters into the echo for `seconds`, then sends the rest."""

    def reply(request: Request) -> Reply:
        if "/chat/completions" not in request.path:
            return honest(request)
        form = echo(request)
        frames = [chunk(FILL * 20 + form[:cut]), chunk(form[cut:] + FILL * 20), chunk(finish="stop"), DONE]
        return sse_reply(frames, pause=seconds)

    return reply


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): follows a job through real-time waits, ~25 s
@pytest.mark.parametrize("mode", ["bearer", "jwt"])
async def test_a_running_job_shows_no_start_of_a_key_whose_end_has_not_come(
    upstream: HostileUpstream, mode: str, tmp_path: Path
) -> None:
    """The partial text of the running call, of get_result and of the progress messages: the start of a form
    that has arrived without its end is held back, and scrubbed with it once it comes."""
    from tests.test_long_calls import Recorder

    async with Client(create_server(settings(upstream, mode, tmp_path))) as client:
        for name, echo in ECHOES.items():
            length = len(echo(Request("GET", "/", {"authorization": _sent_header(mode)}, b"")))
            for cut in (PREFIX, length - 1):
                upstream.clear(held_open(echo, cut, seconds=1.5))
                recorder = Recorder()
                started = await client.call_tool(
                    "chat", {"prompt": "hi", "wait_seconds": 0.7}, progress_callback=recorder
                )
                running = await client.call_tool("get_result", {"task_id": started.structured_content["job_id"]})
                done = await client.call_tool(
                    "get_result", {"task_id": started.structured_content["job_id"], "wait_seconds": 30}
                )
                sent = forms(upstream.records[-1].request)
                early = written(started) + written(running) + "\n".join(recorder.messages)
                assert started.structured_content["status"] == "running", written(started)
                assert FILL * 20 in started.structured_content["text"], written(started)  # what came is shown
                assert any(FILL * 5 in message for message in recorder.messages), recorder.messages
                assert not leaked(early, sent), f"{name} cut at {cut}: {early}"
                assert done.structured_content["status"] == "completed", written(done)
                assert done.structured_content["result"]["text"] == FILL * 20 + REDACTED + FILL * 20
                assert not leaked(written(done), sent)


def _escaped(body: bytes, form: str) -> bytes:
    """`body` with `form` written as JSON \\u escapes: the same string once decoded, other bytes on the wire."""
    return body.replace(form.encode(), "".join(f"\\u{ord(char):04x}" for char in form).encode())


def echoing_bodies(echo: Echo, *, escape: bool) -> Callable[[Request], Reply]:
    """JSON answers with the echo in their strings (and a dict key): a page, search results, a finished task,
    and a streamed answer's sources."""

    def reply(request: Request) -> Reply:
        form = echo(request)
        text = FILL * 5 + form + FILL * 5
        body: object
        if request.path.endswith("/reader"):
            page = {"url": "https://example.com/", "title": text, "content": text, "metadata": {form: text}}
            body = {"id": "r", "reader_result": page}
        elif request.path.endswith("/web_search"):
            found = {"title": text, "link": f"https://example.com/{form}", "content": text}
            body = {"id": "s", "search_result": [found]}
        elif "/async-result/" in request.path:
            body = {"id": "task-1", "task_status": "SUCCESS", **completion_body(text)}
        elif "/chat/completions" in request.path and "/async/" not in request.path:
            sources = [{"refer": "ref_1", "title": text, "link": "https://example.com/", "content": text}]
            frames = [chunk(text), chunk(finish="stop", web_search=sources), DONE]
            if escape:
                frames = [_escaped(frame, form) for frame in frames]
            return sse_reply(frames)
        else:
            return honest(request)
        raw = json.dumps(body).encode()
        return Reply(200, "OK", {"content-type": "application/json"}, _escaped(raw, form) if escape else raw)

    return reply


BODY_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("read_url", {"url": "https://example.com/"}),
    ("web_search", {"query": "lanterns"}),
    ("get_result", {"task_id": "task-1", "wait_seconds": 0}),
    ("web_search_chat", {"question": "lanterns", "wait_seconds": 30}),
]


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
@pytest.mark.parametrize("escape", [False, True], ids=["plain", "json-escaped"])
async def test_an_echo_in_a_json_answer_is_scrubbed_from_every_string(
    upstream: HostileUpstream, mode: str, escape: bool, tmp_path: Path
) -> None:
    """read_url's page, web_search's results, a finished task's answer, a streamed answer's sources: every string
    field the client parses, also when the upstream spells the key with JSON escapes the raw bytes do not show."""
    async with Client(create_server(settings(upstream, mode, tmp_path))) as client:
        for name, echo in ECHOES.items():
            upstream.clear(echoing_bodies(echo, escape=escape))
            for tool, arguments in BODY_CALLS:
                result = await client.call_tool(tool, arguments)
                text = written(result)
                assert not result.is_error and REDACTED in text and FILL * 5 in text, f"{tool}: {text[:400]}"
                assert not leaked(text, forms(upstream.records[-1].request)), f"{tool}, {name}: {text}"


# --- the log at DEBUG ---------------------------------------------------------------------------------------------

ANSWER = "the-answer-itself-never-logged"


def answering_with_the_echo(request: Request) -> Reply:
    """A streamed answer holding a marker and the token, split across chunks (a progress message shows it too)."""
    if "/chat/completions" not in request.path:
        return honest(request)
    pieces = [ANSWER + " ", *split_everywhere(request.token)[:3], " " + ANSWER]
    return sse_reply([*(chunk(piece) for piece in pieces), chunk(finish="stop"), DONE], pause=0.1)


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
async def test_over_http_at_debug_no_answer_and_no_key_reach_the_log(upstream: HostileUpstream, mode: str) -> None:
    """The SDK's HTTP event streams are written by sse_starlette, which logs every event at DEBUG: every answer.
    A real server process at GLM_LOG_LEVEL=DEBUG answers in JSON and in event streams; its log has neither."""
    from tests.test_long_calls import Recorder

    upstream.clear(answering_with_the_echo)
    env = server_env(GLM_API_KEY=KEY, GLM_AUTH_MODE=mode, GLM_BASE_URL=upstream.base_url, GLM_LOG_LEVEL="DEBUG")
    with http_server_process(env=env) as (process, origin):
        output = drain(process)
        texts: list[str] = []
        for client_mode in ("auto", "legacy"):  # legacy: each answer comes back as an event stream
            recorder = Recorder()
            async with Client(origin + "/mcp", mode=client_mode) as client:
                result = await client.call_tool("chat", {"prompt": "hi"}, progress_callback=recorder)
            texts.append(written(result) + "\n".join(recorder.messages))
    log = output().decode()
    sent = forms(upstream.records[-1].request)
    assert all(ANSWER in text and REDACTED in text and not leaked(text, sent) for text in texts), texts
    assert "DEBUG" in log and "POST /mcp" in log  # the log was written, at DEBUG
    assert ANSWER not in log, [line for line in log.splitlines() if ANSWER in line]
    assert not leaked(log, sent)
