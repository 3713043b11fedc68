"""The GLM API emulator against the wire contract of docs/reference (glm-api.md)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import warnings
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import anyio
import httpx2
import jwt
import pytest

from glm_mcp.emulator import FAIL_MARKER, SENSITIVE_MARKER, Emulator, EmulatorConfig
from tests.emulator.conftest import CODING_KEY, GENERAL_KEY

EMULATOR_CONFIG = EmulatorConfig(async_delay=0.2)


def ask(text: str, model: str = "glm-4.6", **options: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **options}


def chat(client: httpx2.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def error_of(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def sse_events(text: str) -> list[Any]:
    """Parse a whole SSE body the way the SDK does; ``[DONE]`` is returned as the string."""
    assert "event:" not in text
    frames = [f for f in text.split("\n\n") if f]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    return [f[6:] if f == "data: [DONE]" else json.loads(f[6:]) for f in frames]


def sjwt(secret: str, key_id: str = "emulator", exp_ms: int | None = None) -> str:
    now = int(time.time() * 1000)
    payload = {"api_key": key_id, "exp": now + 210_000 if exp_ms is None else exp_ms, "timestamp": now}
    with warnings.catch_warnings():  # platform secrets are shorter than RFC 7518 recommends
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm="HS256", headers={"alg": "HS256", "sign_type": "SIGN"})


def without_cache(usage: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in usage.items() if k != "prompt_tokens_details"}


# --- routes and authentication -------------------------------------------------------------------


def test_healthz_and_models(emulator: Emulator, client: httpx2.Client) -> None:
    assert httpx2.get(emulator.origin + "/healthz").json() == {"status": "ok"}
    models = client.get("/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == list(emulator.config.models)
    assert {m["object"] for m in models["data"]} == {"model"} and models["data"][0]["owned_by"] == "z-ai"
    assert httpx2.get(emulator.base_url + "/models").status_code == 401


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 401, "1001"),
        (lambda: "Bearer", 401, "1001"),
        (lambda: "Bearer nodot", 401, "1002"),
        (lambda: "Bearer someone.secret", 401, "1000"),
        (lambda: f"Bearer {sjwt('key-general', exp_ms=1_000)}", 401, "1003"),
        (lambda: f"Bearer {sjwt('wrong-secret')}", 401, "1000"),
        (lambda: f"Bearer {sjwt('key-general', key_id='nobody')}", 401, "1000"),
        (lambda: f"Bearer {CODING_KEY}", 429, "1113"),
        (lambda: f"Bearer {sjwt('key-coding')}", 429, "1113"),  # signed when the test runs: it lives 210 s
    ],
)
def test_auth_errors(emulator: Emulator, authorization: Callable[[], str] | None, status: int, code: str) -> None:
    headers = {"Authorization": authorization()} if authorization is not None else {}
    body = ask("hi", request_id="req-auth-1")
    response = httpx2.post(emulator.base_url + "/chat/completions", json=body, headers=headers)
    assert error_of(response) == (status, code)
    assert response.json()["request_id"] == "req-auth-1"
    assert set(response.json()["error"]) == {"code", "message"}


def test_seconds_exp_reads_as_expired(emulator: Emulator) -> None:
    token = sjwt("key-general", exp_ms=int(time.time()) + 3600)  # seconds, not the platform's ms
    response = httpx2.get(emulator.base_url + "/models", headers={"Authorization": f"Bearer {token}"})
    assert error_of(response) == (401, "1003")


def test_valid_jwt_and_plans(emulator: Emulator, client: httpx2.Client) -> None:
    general = httpx2.get(emulator.base_url + "/models", headers={"Authorization": f"Bearer {sjwt('key-general')}"})
    assert general.status_code == 200
    coding = {"Authorization": f"Bearer {CODING_KEY}"}
    assert httpx2.get(emulator.coding_base_url + "/models", headers=coding).status_code == 200
    response = httpx2.get(emulator.coding_base_url + "/models", headers={"Authorization": f"Bearer {GENERAL_KEY}"})
    assert error_of(response) == (429, "1113")
    recorded = emulator.state.exchanges[-2]
    assert (
        recorded.path == "/api/coding/paas/v4/models" and recorded.headers["authorization"] == coding["Authorization"]
    )


# --- validation ------------------------------------------------------------------------------------


def test_unknown_and_missing_model(client: httpx2.Client) -> None:
    response = client.post("/chat/completions", json=ask("hi", model="glm-99"))
    assert error_of(response) == (400, "1211") and "glm-99" in response.json()["error"]["message"]
    assert error_of(client.post("/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})) == (
        400,
        "1213",
    )


@pytest.mark.parametrize(
    "messages",
    [
        [],
        None,
        [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "ok"}],
        [{"role": "narrator", "content": "x"}],
        [{"role": "user", "content": "x"}, {"role": "tool", "content": "42"}],
    ],
)
def test_illegal_messages(client: httpx2.Client, messages: Any) -> None:
    response = client.post("/chat/completions", json={"model": "glm-4.6", "messages": messages})
    assert error_of(response) == (400, "1214")


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 1.5},
        {"top_p": -0.1},
        {"max_tokens": 0},
        {"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]},
        {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
        {"response_format": {"type": "xml"}},
    ],
)
def test_bad_parameters(client: httpx2.Client, options: dict[str, Any]) -> None:
    assert error_of(client.post("/chat/completions", json=ask("hi", **options))) == (400, "1210")


def test_body_not_json_and_image_on_text_model(client: httpx2.Client) -> None:
    response = client.post("/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert error_of(response) == (400, "1210")
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    body = {
        "model": "glm-4-plus",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}],
    }
    assert error_of(client.post("/chat/completions", json=body)) == (400, "1210")


def test_nulls_and_unknown_fields_are_tolerated(client: httpx2.Client) -> None:
    body = ask("hello there", response_format=None, thinking=None, tools=None, stop=None, shiny_new_field=3)
    answer = chat(client, body)
    assert answer["choices"][0]["finish_reason"] == "stop"


# --- content -------------------------------------------------------------------------------------------


def test_completion_shape_and_determinism(client: httpx2.Client) -> None:
    body = ask("Why do rivers meander across flat valleys?", request_id="mine-1")
    first, second = chat(client, body), chat(client, body)
    assert re.fullmatch(r"\d{14}[0-9a-f]{16}", first["id"]) and first["request_id"] == "mine-1"
    assert first["object"] == "chat.completion" and first["model"] == "glm-4.6"
    message = first["choices"][0]["message"]
    assert message == second["choices"][0]["message"]
    assert "Why do rivers meander" in message["content"].split(".")[0]
    assert 40 <= len(message["content"].split()) <= 125
    assert without_cache(first["usage"]) == without_cache(second["usage"])
    usage = first["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"]
    plain = chat(client, ask("Why do rivers meander across flat valleys?"))
    assert plain["request_id"] == plain["id"]


def test_prompt_cache_counts_the_shared_prefix(client: httpx2.Client) -> None:
    turn = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a tree."}]
    first = chat(client, {"model": "glm-4-air", "messages": turn})
    follow = [*turn, first["choices"][0]["message"], {"role": "user", "content": "Another one?"}]
    second = chat(client, {"model": "glm-4-air", "messages": follow})
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == first["usage"]["prompt_tokens"]


def test_stream_assembles_into_the_completion(emulator: Emulator, client: httpx2.Client) -> None:
    body = ask("Describe a quiet harbor at dawn", request_id="stream-1")
    plain = chat(client, body)
    emulator.state.clear()  # same prompt-cache state for both
    response = client.post("/chat/completions", json={**body, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    assert "reasoning_content" in chunks[0]["choices"][0]["delta"]
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"]["content"] == ""
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert content == plain["choices"][0]["message"]["content"]
    assert last["usage"] == plain["usage"]
    recorded = emulator.state.exchanges[-1]
    assert recorded.stream and recorded.status == 200
    same_keys = ("request_id", "model", "object", "choices", "usage")
    assert recorded.response is not None
    assert {k: recorded.response[k] for k in same_keys} == {k: plain[k] for k in same_keys}


def test_max_tokens_and_stop(client: httpx2.Client) -> None:
    full = chat(client, ask("Tell me about lanterns", model="glm-4-flash"))["choices"][0]["message"]["content"]
    cut = chat(client, ask("Tell me about lanterns", model="glm-4-flash", max_tokens=7))
    assert cut["choices"][0]["finish_reason"] == "length" and cut["usage"]["completion_tokens"] == 7
    assert full.startswith(cut["choices"][0]["message"]["content"])
    word = full.split()[12]
    stopped = chat(client, ask("Tell me about lanterns", model="glm-4-flash", stop=[word]))
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["choices"][0]["message"]["content"] == full[: full.index(word)]
    as_a_string = chat(client, ask("Tell me about lanterns", model="glm-4-flash", stop=word))  # one stop word
    assert as_a_string["choices"][0]["message"]["content"] == stopped["choices"][0]["message"]["content"]


def test_json_object(client: httpx2.Client) -> None:
    answer = chat(client, ask("Rate this plan", model="glm-4-plus", response_format={"type": "json_object"}))
    parsed = json.loads(answer["choices"][0]["message"]["content"])
    assert set(parsed) == {"answer", "confidence", "topic"} and 0 <= parsed["confidence"] <= 1


def test_thinking_on_off_and_old_models(client: httpx2.Client) -> None:
    thinking = chat(client, ask("Plan a picnic"))
    reasoning_tokens = thinking["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert thinking["choices"][0]["message"]["reasoning_content"] and reasoning_tokens > 0
    off = chat(client, ask("Plan a picnic", thinking={"type": "disabled"}))
    assert "reasoning_content" not in off["choices"][0]["message"]
    assert off["usage"]["completion_tokens"] == thinking["usage"]["completion_tokens"] - reasoning_tokens
    assert off["choices"][0]["message"]["content"] == thinking["choices"][0]["message"]["content"]
    old = chat(client, ask("Plan a picnic", model="glm-4-plus", thinking={"type": "enabled"}))
    assert "reasoning_content" not in old["choices"][0]["message"] and "completion_tokens_details" not in old["usage"]


PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_image_parts_are_checked_as_the_platform_checks_them(client: httpx2.Client) -> None:
    """An image is a URL or base64 image data (a data: prefix or not) within 5 MB; anything else is refused."""

    def send(url: str) -> httpx2.Response:
        parts = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
        return client.post(
            "/chat/completions", json={"model": "glm-4.6v", "messages": [{"role": "user", "content": parts}]}
        )

    assert send(PIXEL_PNG).status_code == 200
    assert send("https://example.com/cat.png").status_code == 200
    for bad in ("data:x", base64.b64encode(b"not an image at all").decode(), "%%%"):
        answer = send(bad)
        assert answer.status_code == 400, bad
    too_big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024)).decode()
    answer = send(too_big)
    assert answer.status_code == 400 and "5 MB" in answer.text


def test_z1_think_tags_and_vision_box(client: httpx2.Client) -> None:
    z1 = chat(client, ask("Is zero even?", model="glm-z1-air"))["choices"][0]["message"]
    assert re.match(r"<think>\n.+\n</think>\n\S", z1["content"], re.S) and "reasoning_content" not in z1
    parts = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PIXEL_PNG}},
    ]
    body = {"model": "glm-4v-flash", "messages": [{"role": "user", "content": parts}]}
    content = chat(client, body)["choices"][0]["message"]["content"]
    assert content.startswith("<|begin_of_box|>") and content.endswith("<|end_of_box|>")
    assert "What is in this picture" in content


# --- tools --------------------------------------------------------------------------------------------


def web_search(**options: Any) -> list[dict[str, Any]]:
    return [{"type": "web_search", "web_search": {"enable": True, "search_engine": "search_pro", **options}}]


def test_web_search_results(client: httpx2.Client) -> None:
    options = {"search_result": True, "count": 5, "search_recency_filter": "oneWeek"}
    answer = chat(client, ask("latest volcano research in Iceland", tools=web_search(**options)))
    results = answer["web_search"]
    assert [r["refer"] for r in results] == [f"ref_{i}" for i in range(1, 6)]
    for r in results:
        assert re.fullmatch(r"https://[a-z]+\.example\.(com|org|net)/\S+", r["link"])
        assert r["icon"].endswith("/favicon.ico") and r["title"] and r["media"]
        assert 400 <= len(r["content"]) <= 600
        assert date.today() - timedelta(days=7) < date.fromisoformat(r["publish_date"]) <= date.today()
    content = answer["choices"][0]["message"]["content"]
    cited = re.findall(r"\[(ref_\d)\]", content)
    assert cited and set(cited) <= {r["refer"] for r in results}
    assert re.search(r"volcano|research|iceland", content, re.I)
    hidden = chat(client, ask("latest volcano research in Iceland", tools=web_search(count=5)))
    assert "web_search" not in hidden and "[ref_" in hidden["choices"][0]["message"]["content"]


def test_web_search_domain_filter_and_size(client: httpx2.Client) -> None:
    options = {"search_result": True, "search_domain_filter": "docs.example.org", "content_size": "high"}
    results = chat(client, ask("tide tables", tools=web_search(**options)))["web_search"]
    assert len(results) == 10
    assert all(r["link"].startswith("https://docs.example.org/") for r in results)
    assert all(2300 <= len(r["content"]) <= 2700 for r in results)


def test_web_search_invalid_domain_finds_nothing(client: httpx2.Client) -> None:
    tools = web_search(search_result=True, search_domain_filter="nowhere.invalid")
    answer = chat(client, ask("tide tables", tools=tools))
    assert answer["web_search"] == []
    content = answer["choices"][0]["message"]["content"]
    assert "No sources were found" in content and "[ref_" not in content


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def test_function_call_and_follow_up(client: httpx2.Client) -> None:
    question = {"role": "user", "content": "Use get_weather for Lisbon please"}
    answer = chat(client, {"model": "glm-4.5", "messages": [question], "tools": [WEATHER]})
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] == ""
    (call,) = choice["message"]["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]+", call["id"]) and call["index"] == 0 and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str) and arguments["city"]
    result = {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'}
    messages = [question, choice["message"], result]
    follow = chat(client, {"model": "glm-4.5", "messages": messages, "tools": [WEATHER]})
    assert follow["choices"][0]["finish_reason"] == "stop"
    assert "temp_c" in follow["choices"][0]["message"]["content"]


def test_streamed_tool_call_arguments(emulator: Emulator, client: httpx2.Client) -> None:
    body = {"model": "glm-4.6", "messages": [{"role": "user", "content": "call get_weather"}], "tools": [WEATHER]}
    plain = chat(client, body)["choices"][0]["message"]["tool_calls"][0]
    events = sse_events(client.post("/chat/completions", json={**body, "stream": True, "tool_stream": True}).text)
    fragments = [f for e in events[:-1] for f in e["choices"][0]["delta"].get("tool_calls", [])]
    assert len(fragments) > 2 and {f["index"] for f in fragments} == {0}
    assert "".join(f["function"].get("arguments", "") for f in fragments) == plain["function"]["arguments"]
    streamed = emulator.state.exchanges[-1].response
    assert streamed is not None
    assert streamed["choices"][0]["finish_reason"] == "tool_calls"
    assert streamed["choices"][0]["message"]["tool_calls"][0]["function"] == plain["function"]


# --- markers and async jobs -------------------------------------------------------------------------


def test_failure_markers_on_chat(client: httpx2.Client) -> None:
    full = chat(client, ask("Tell me a story", model="glm-4-air"))["choices"][0]["message"]["content"]
    broken = chat(client, ask(f"Tell me a story {FAIL_MARKER}", model="glm-4-air"))
    assert broken["choices"][0]["finish_reason"] == "network_error"
    assert 0 < len(broken["choices"][0]["message"]["content"]) < len(full)
    refused = client.post("/chat/completions", json=ask(f"{SENSITIVE_MARKER} hi", model="glm-4-air"))
    assert error_of(refused) == (400, "1301")
    events = sse_events(client.post("/chat/completions", json=ask(f"{SENSITIVE_MARKER} hi", stream=True)).text)
    assert events[-2]["choices"][0]["finish_reason"] == "sensitive"
    assert any(e["choices"][0]["delta"].get("content") for e in events[:-2])


def test_async_job_lifecycle(client: httpx2.Client) -> None:
    submitted = client.post("/async/chat/completions", json=ask("Summarise the harvest", request_id="job-1"))
    assert submitted.status_code == 200
    task = submitted.json()
    assert task["task_status"] == "PROCESSING" and task["request_id"] == "job-1" and task["model"] == "glm-4.6"
    assert re.fullmatch(r"\d{25}", task["id"])
    assert client.get(f"/async-result/{task['id']}").json() == task
    time.sleep(0.25)
    done = client.get(f"/async-result/{task['id']}").json()
    assert done["task_status"] == "SUCCESS" and done["id"] == task["id"]
    assert done["choices"][0]["message"]["content"] and done["usage"]["total_tokens"] > 0
    assert client.get(f"/async-result/{task['id']}").json() == done


def test_async_failure_and_unknown_task(client: httpx2.Client) -> None:
    task = client.post("/async/chat/completions", json=ask(f"{FAIL_MARKER} go")).json()
    time.sleep(0.25)
    assert client.get(f"/async-result/{task['id']}").json() == {**task, "task_status": "FAIL"}
    response = client.get("/async-result/123")
    assert error_of(response) == (400, "1210") and "task not found: 123" in response.json()["error"]["message"]
    assert error_of(client.post("/async/chat/completions", json=ask("x", model="nope"))) == (400, "1211")


# --- the server ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_many_concurrent_requests(emulator: Emulator) -> None:
    headers = {"Authorization": f"Bearer {GENERAL_KEY}"}
    limits = httpx2.Limits(max_connections=100)
    async with httpx2.AsyncClient(base_url=emulator.base_url, headers=headers, limits=limits, timeout=10) as c:
        statuses: list[int] = []

        async def one(i: int) -> None:
            body = ask(f"question {i % 7}", stream=i % 2 == 0)
            statuses.append((await c.post("/chat/completions", json=body)).status_code)

        async with anyio.create_task_group() as tasks:
            for i in range(100):
                tasks.start_soon(one, i)
    assert statuses == [200] * 100


def wait_for(condition: Any, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_disconnect_is_counted() -> None:
    with Emulator(EmulatorConfig(chunk_delay=0.05)) as emu:
        headers = {"Authorization": f"Bearer {GENERAL_KEY}"}
        with (
            httpx2.Client(headers=headers) as c,
            c.stream("POST", emu.base_url + "/chat/completions", json=ask("A long tale", stream=True)) as response,
        ):
            received: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    received.append(line)
                if len(received) == 2:
                    assert emu.state.open_streams == 1
                    break  # leaving the loop closes the response
        assert wait_for(lambda: emu.state.disconnects == 1 and emu.state.open_streams == 0)
        cut = emu.state.exchanges[-1]
        assert cut.stream and cut.response is not None
        assert cut.response["choices"][0]["finish_reason"] is None
        assert "usage" not in cut.response


def test_stop_returns_quickly_with_an_open_stream() -> None:
    emu = Emulator(EmulatorConfig(chunk_delay=0.5)).start()
    opened = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {GENERAL_KEY}"}
        try:
            with httpx2.stream(
                "POST", emu.base_url + "/chat/completions", json=ask("hi", stream=True), headers=headers
            ) as r:
                for _ in r.iter_bytes():
                    opened.set()
        except httpx2.HTTPError:
            pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert opened.wait(2)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2
    thread.join(2)
