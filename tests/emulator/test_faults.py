"""The emulator's faults on request: the header, the queue, the control endpoint, max_in_flight."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anyio
import httpx2
import pytest

from glm_mcp.emulator import FAULT_HEADER, Emulator, EmulatorConfig, PendingFault
from tests.emulator.conftest import GENERAL_KEY
from tests.emulator.test_emulator import ask, error_of, sse_events, wait_for

HEADERS = {"Authorization": f"Bearer {GENERAL_KEY}"}
RESET_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
STATUS_OF_CODE = {
    **dict.fromkeys(["1000", "1001", "1002", "1003", "1004"], 401),
    **dict.fromkeys(["1113", "1112", "1121", "1302", "1303", "1304", "1305", "1308", "1310"], 429),
    **dict.fromkeys(["1210", "1211", "1212", "1213", "1214", "1215", "1261", "1301"], 400),
    "1220": 403,
    **dict.fromkeys(["500", "1200", "1230", "1234"], 500),
}
"""The errors table of glm-api.md, written out again so the emulator's own table is checked."""

EMULATOR_CONFIG = EmulatorConfig(async_delay=0.05)


def faulted(fault: str) -> dict[str, str]:
    return {FAULT_HEADER: fault}


def stream_body(text: str = "Describe a quiet harbor at dawn", **options: Any) -> dict[str, Any]:
    return ask(text, model="glm-4-flash", stream=True, **options)


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)


# --- answer faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(STATUS_OF_CODE))
def test_error_codes(client: httpx2.Client, code: str) -> None:
    response = client.post(
        "/chat/completions", json=ask("hi", model="glm-4.5", request_id="r-1"), headers=faulted(f"error:{code}")
    )
    assert error_of(response) == (STATUS_OF_CODE[code], code)
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["request_id"] == "r-1" and body["error"]["message"]
    if code in ("1304", "1308", "1310"):
        assert RESET_TIME.search(body["error"]["message"])
    if code == "1211":
        assert "glm-4.5" in body["error"]["message"]


def test_error_without_request_id_and_modifiers(emulator: Emulator, client: httpx2.Client) -> None:
    response = client.post(
        "/chat/completions", json=ask("hi"), headers=faulted("error:1302; retry-after=1;should-retry=true")
    )
    assert error_of(response) == (429, "1302") and set(response.json()) == {"error"}
    assert response.headers["retry-after"] == "1" and response.headers["x-should-retry"] == "true"
    emulator.inject("error:1305;should-retry=false;retry-after=0.5")
    queued = client.get("/models")
    assert error_of(queued) == (429, "1305")
    assert queued.headers["x-should-retry"] == "false" and queued.headers["retry-after"] == "0.5"
    assert "retry-after" not in client.get("/models").headers
    recorded = emulator.state.exchanges[0]
    assert recorded.status == 429 and recorded.response == response.json()


@pytest.mark.parametrize(
    ("status", "media_type", "marker"),
    [
        (502, "text/html", "502 Bad Gateway"),
        (503, "text/html", "503 Service Unavailable"),
        (500, "text/plain", "Internal Server Error"),
    ],
)
def test_http_pages(emulator: Emulator, client: httpx2.Client, status: int, media_type: str, marker: str) -> None:
    response = client.post("/chat/completions", json=ask("hi"), headers=faulted(f"http:{status};retry-after=3"))
    assert response.status_code == status and response.headers["content-type"].startswith(media_type)
    assert marker in response.text and response.headers["retry-after"] == "3"
    with pytest.raises(ValueError):
        response.json()
    recorded = emulator.state.exchanges[-1]
    assert (recorded.status, recorded.response) == (status, None)


def test_malformed(emulator: Emulator, client: httpx2.Client) -> None:
    emulator.inject("malformed")
    response = client.post("/chat/completions", json=ask("hi"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.text.startswith('{"id":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert (emulator.state.exchanges[-1].status, emulator.state.exchanges[-1].response) == (200, None)


def test_answer_faults_skip_authentication(client: httpx2.Client) -> None:
    response = client.get("/models", headers={**faulted("error:1303"), "Authorization": ""})
    assert error_of(response) == (429, "1303")


def test_drop(emulator: Emulator, client: httpx2.Client) -> None:
    with pytest.raises(httpx2.RemoteProtocolError):
        client.post("/chat/completions", json=ask("hi"), headers=faulted("drop"))
    emulator.inject("drop", path="/models")
    with pytest.raises(httpx2.RemoteProtocolError):
        client.get("/models")
    assert client.get("/models").status_code == 200  # the client recovers on a new connection
    assert [(e.status, e.response) for e in emulator.state.exchanges[:2]] == [(0, None), (0, None)]
    assert wait_for(lambda: emulator.state.in_flight == 0)


@pytest.mark.anyio
async def test_drop_from_an_async_client(emulator: Emulator) -> None:
    async with httpx2.AsyncClient(base_url=emulator.base_url, headers=HEADERS, timeout=5) as c:
        with pytest.raises(httpx2.RemoteProtocolError):
            await c.post("/chat/completions", json=ask("hi", stream=True), headers=faulted("drop"))
        assert (await c.get("/models")).status_code == 200


# --- stalls -----------------------------------------------------------------------------------------


def test_stall_then_answer(emulator: Emulator, client: httpx2.Client) -> None:
    started = time.monotonic()
    answer = client.post("/chat/completions", json=ask("hi"), headers=faulted("stall:0.2")).json()
    assert time.monotonic() - started >= 0.2
    assert answer["choices"][0]["finish_reason"] == "stop"
    emulator.inject("stall:0.1", path="/chat/completions")
    started = time.monotonic()
    events = sse_events(client.post("/chat/completions", json=stream_body()).text)
    assert time.monotonic() - started >= 0.1 and events[-1] == "[DONE]"
    assert emulator.state.disconnects == 0


def test_stall_until_the_client_gives_up(emulator: Emulator, client: httpx2.Client) -> None:
    emulator.inject("stall")
    with pytest.raises(httpx2.ReadTimeout):
        client.post("/chat/completions", json=ask("hi"), timeout=httpx2.Timeout(5, read=0.2))
    assert wait_for(lambda: emulator.state.disconnects == 1 and emulator.state.in_flight == 0)
    assert [(e.status, e.response) for e in emulator.state.exchanges] == [(0, None)]


# --- stream faults ----------------------------------------------------------------------------------


def read_until_cut(client: httpx2.Client, body: dict[str, Any], headers: dict[str, str]) -> list[str]:
    """The ``data:`` lines received before the connection broke (it must break)."""
    lines: list[str] = []
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        client.stream("POST", "/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        lines.extend(line for line in response.iter_lines() if line.startswith("data:"))
    return lines


def test_stream_cut(emulator: Emulator, client: httpx2.Client) -> None:
    lines = read_until_cut(client, stream_body(), faulted("stream-cut:3"))
    assert len(lines) == 3 and "data: [DONE]" not in lines
    recorded = emulator.state.exchanges[-1]
    assert recorded.stream and recorded.status == 200 and recorded.response is not None
    assert recorded.response["choices"][0]["finish_reason"] is None and "usage" not in recorded.response
    emulator.inject("stream-cut:1000")  # more than the stream has: all chunks, still no [DONE]
    lines = read_until_cut(client, stream_body(), {})
    assert json.loads(lines[-1][6:])["choices"][0]["finish_reason"] == "stop"
    assert emulator.state.disconnects == 0 and emulator.state.open_streams == 0


def test_stream_cut_and_error_outside_a_stream(client: httpx2.Client) -> None:
    with pytest.raises(httpx2.RemoteProtocolError):
        client.post("/chat/completions", json=ask("hi"), headers=faulted("stream-cut:2"))
    assert error_of(client.post("/chat/completions", json=ask("hi"), headers=faulted("stream-error:1234"))) == (
        500,
        "1234",
    )
    plain = client.post("/chat/completions", json=ask("hi"), headers=faulted("stream-no-done"))
    assert plain.status_code == 200 and plain.json()["choices"][0]["finish_reason"] == "stop"


def test_stream_error(emulator: Emulator, client: httpx2.Client) -> None:
    full = content_of(sse_events(client.post("/chat/completions", json=stream_body()).text)[:-1])
    emulator.inject("stream-error:1305", path="/chat/completions")
    events = sse_events(client.post("/chat/completions", json=stream_body(request_id="s-1")).text)
    *chunks, error = events
    assert error == {"error": {"code": "1305", "message": error["error"]["message"]}}
    assert len(chunks) == 3 and all(c["choices"][0]["delta"]["content"] for c in chunks)
    assert full.startswith(content_of(chunks)) and "finish_reason" not in chunks[-1]["choices"][0]
    recorded = emulator.state.exchanges[-1].response
    assert recorded is not None and recorded["error"]["code"] == "1305"
    assert recorded["choices"][0]["message"]["content"] == content_of(chunks)


def test_stream_no_done(client: httpx2.Client) -> None:
    response = client.post("/chat/completions", json=stream_body(), headers=faulted("stream-no-done;should-retry=true"))
    assert response.headers["x-should-retry"] == "true"
    events = sse_events(response.text)
    assert "[DONE]" not in events
    assert events[-1]["choices"][0]["finish_reason"] == "stop" and events[-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("reason", ["network_error", "sensitive", "length", "model_context_window_exceeded"])
def test_finish(client: httpx2.Client, reason: str) -> None:
    full = client.post("/chat/completions", json=ask("Describe a quiet harbor at dawn", model="glm-4-flash")).json()
    full_content = full["choices"][0]["message"]["content"]
    events = sse_events(client.post("/chat/completions", json=stream_body(), headers=faulted(f"finish:{reason}")).text)
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last["choices"][0]["finish_reason"] == reason and last["usage"]["completion_tokens"] > 0
    streamed = content_of(events[:-1])
    assert 0 < len(streamed) < len(full_content) and full_content.startswith(streamed)
    answer = client.post(
        "/chat/completions",
        json=ask("Describe a quiet harbor at dawn", model="glm-4-flash"),
        headers=faulted(f"finish:{reason}"),
    ).json()
    assert answer["choices"][0]["finish_reason"] == reason and answer["choices"][0]["message"]["content"] == streamed
    assert answer["usage"]["completion_tokens"] == last["usage"]["completion_tokens"]


def test_finish_on_async_jobs(client: httpx2.Client) -> None:
    failed = client.post("/async/chat/completions", json=ask("go"), headers=faulted("finish:network_error")).json()
    cut = client.post("/async/chat/completions", json=ask("go"), headers=faulted("finish:length")).json()
    time.sleep(0.1)
    assert client.get(f"/async-result/{failed['id']}").json()["task_status"] == "FAIL"
    done = client.get(f"/async-result/{cut['id']}").json()
    assert done["task_status"] == "SUCCESS" and done["choices"][0]["finish_reason"] == "length"


def test_slow(emulator: Emulator, client: httpx2.Client) -> None:
    started = time.monotonic()
    events = sse_events(client.post("/chat/completions", json=stream_body(), headers=faulted("slow:0.01")).text)
    assert time.monotonic() - started >= 0.01 * (len(events) - 2)
    assert emulator.config.chunk_delay == 0 and events[-1] == "[DONE]"


# --- the queue and the control endpoint -------------------------------------------------------------


def test_queue_order_and_pending(emulator: Emulator, client: httpx2.Client) -> None:
    emulator.inject("error:1302", "error:1302")
    assert emulator.state.pending_faults() == [PendingFault("error:1302"), PendingFault("error:1302")]
    statuses = [client.post("/chat/completions", json=ask("hi")).status_code for _ in range(3)]
    assert statuses == [429, 429, 200] and emulator.state.pending_faults() == []


def test_queue_path_restriction(emulator: Emulator, client: httpx2.Client) -> None:
    emulator.inject("error:1113", path="/async/chat/completions")
    emulator.inject("error:1220", path="/chat/completions")
    assert error_of(client.post("/async/chat/completions", json=ask("hi"))) == (429, "1113")  # not the chat fault
    assert client.get("/models").status_code == 200
    assert error_of(client.post("/chat/completions", json=ask("hi"))) == (403, "1220")
    emulator.inject("error:1305", path="/async-result")
    assert error_of(client.get("/async-result/123")) == (429, "1305")
    emulator.inject("error:1305", path="/api/coding/paas/v4/models")
    assert client.get("/models").status_code == 200 and len(emulator.state.pending_faults()) == 1
    emulator.state.clear()
    assert emulator.state.pending_faults() == []


def test_header_leaves_the_queue_alone(emulator: Emulator, client: httpx2.Client) -> None:
    emulator.inject("error:1302")
    assert error_of(client.get("/models", headers=faulted("error:1303"))) == (429, "1303")
    assert error_of(client.get("/models")) == (429, "1302")


def test_control_endpoint(emulator: Emulator, client: httpx2.Client) -> None:
    control = emulator.origin + "/_emulator/faults"
    queued = httpx2.post(control, json={"faults": ["error:1302", "drop"], "path": "/chat/completions"})  # no key
    expected = [{"fault": "error:1302", "path": "/chat/completions"}, {"fault": "drop", "path": "/chat/completions"}]
    assert queued.status_code == 200 and queued.json() == {"faults": expected}
    assert client.get(control).json() == {"faults": expected}
    assert error_of(client.post("/chat/completions", json=ask("hi"))) == (429, "1302")
    assert client.delete(control).json() == {"faults": []} and emulator.state.pending_faults() == []
    assert client.post(control, json={"faults": ["stall:0.01"]}).json() == {
        "faults": [{"fault": "stall:0.01", "path": None}]
    }
    bad = client.post(control, json={"faults": ["error:1302", "explode"]})
    assert error_of(bad) == (400, "1210") and "explode" in bad.json()["error"]["message"]
    assert error_of(client.post(control, json={"faults": "drop"})) == (400, "1210")
    assert error_of(client.post(control, json={"faults": ["drop"], "path": "models"})) == (400, "1210")
    assert len(emulator.state.pending_faults()) == 1  # nothing of a refused request was queued
    assert client.post(emulator.base_url + "/_emulator/faults", json={"faults": ["drop"]}).status_code == 404
    assert [e.status for e in emulator.state.exchanges] == [429]  # control calls are not recorded


BAD_FAULTS = [
    "bogus",
    "error",
    "error:9999",
    "http:200",
    "http:599",
    "stall:soon",
    "stall:-1",
    "stream-cut:-1",
    "stream-cut:two",
    "finish:stop",
    "drop:1",
    "slow",
    "error:1302;retry-after=soon",
    "error:1302;should-retry=maybe",
    "error:1302;colour=red",
]


@pytest.mark.parametrize("fault", BAD_FAULTS)
def test_malformed_faults_are_refused(emulator: Emulator, client: httpx2.Client, fault: str) -> None:
    response = client.post("/chat/completions", json=ask("hi", request_id="bad-1"), headers=faulted(fault))
    assert error_of(response) == (400, "1210") and response.json()["request_id"] == "bad-1"
    assert response.json()["error"]["message"].startswith(f"{FAULT_HEADER}: ")
    assert repr(fault) in response.json()["error"]["message"]
    with pytest.raises(ValueError, match=re.escape(repr(fault))):
        emulator.inject("error:1302", fault)
    assert emulator.state.pending_faults() == []


# --- requests in flight -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_max_in_flight() -> None:
    """20 requests at once against a limit of 4: the first 4 are answered, every other is refused
    at once with 1302 while those 4 are open, and refused ones never count, so the peak is exactly 4."""
    with Emulator(EmulatorConfig(max_in_flight=4, latency=0.3)) as emu:
        limits = httpx2.Limits(max_connections=50)
        async with httpx2.AsyncClient(base_url=emu.base_url, headers=HEADERS, limits=limits, timeout=5) as c:
            answers: list[httpx2.Response] = []

            async def one(i: int) -> None:
                answers.append(await c.post("/chat/completions", json=ask(f"question {i}", stream=i % 2 == 0)))

            async with anyio.create_task_group() as tasks:
                for i in range(20):
                    tasks.start_soon(one, i)
        refused = [a for a in answers if a.status_code != 200]
        assert len(answers) == 20 and 1 <= len(refused) <= 16
        assert all(error_of(a) == (429, "1302") and "concurrency" in a.json()["error"]["message"] for a in refused)
        assert emu.state.peak_in_flight == 4 and wait_for(lambda: emu.state.in_flight == 0)
        assert len(emu.state.exchanges) == 20


def test_a_stream_is_in_flight_until_its_end() -> None:
    with (
        Emulator(EmulatorConfig(max_in_flight=1, chunk_delay=0.01)) as emu,
        httpx2.Client(base_url=emu.base_url, headers=HEADERS, timeout=5) as c,
    ):
        with c.stream("POST", "/chat/completions", json=stream_body()) as streaming:
            lines = streaming.iter_lines()
            next(lines)
            assert emu.state.in_flight == 1
            assert error_of(c.get("/models")) == (429, "1302")
            assert "data: [DONE]" in list(lines)
        assert wait_for(lambda: emu.state.in_flight == 0)
        assert c.get("/models").status_code == 200
        assert wait_for(lambda: emu.state.in_flight == 0)  # the server counts it done just after answering
        emu.state.clear()
        assert emu.state.peak_in_flight == 0


@pytest.mark.anyio
async def test_peak_in_flight_shows_a_client_bound(emulator: Emulator) -> None:
    emulator.state.clear()
    emulator.config.latency = 0.05
    try:
        bound = anyio.Semaphore(3)
        async with httpx2.AsyncClient(base_url=emulator.base_url, headers=HEADERS, timeout=5) as c:

            async def one() -> None:
                async with bound:
                    assert (await c.get("/models")).status_code == 200

            async with anyio.create_task_group() as tasks:
                for _ in range(12):
                    tasks.start_soon(one)
    finally:
        emulator.config.latency = 0.0
    assert emulator.state.peak_in_flight == 3
