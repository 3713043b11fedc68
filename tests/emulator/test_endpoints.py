"""The endpoints beside chat (images, video, standalone search, reader, Coding Plan usage) and the platform's
limits and ranges, over a real socket with httpx2."""

from __future__ import annotations

import json
import struct
import time
import zlib
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest

from glm_mcp.emulator import FAIL_MARKER, SENSITIVE_MARKER, Emulator, EmulatorConfig
from glm_mcp.emulator.config import ModelLimits
from tests.emulator.conftest import CODING_KEY, GENERAL_KEY

EMULATOR_CONFIG = EmulatorConfig(
    async_delay=0.1, model_limits={"glm-4-airx": ModelLimits(context=200, max_output=50)}, coding_token_quota=1000
)


def error_of(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def ask(text: str, model: str = "glm-4.6", **options: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **options}


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of a single-frame RGB PNG."""
    chunks = png_chunks(data)
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert chunks[0][0] == b"IHDR" and (depth, colour) == (8, 2) and chunks[-1][0] == b"IEND"
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    return width, height, raw


def poll(client: httpx2.Client, task_id: str) -> dict[str, Any]:
    for _ in range(100):
        result: dict[str, Any] = client.get(f"/async-result/{task_id}").json()
        if result["task_status"] != "PROCESSING":
            return result
        time.sleep(0.05)
    raise AssertionError("the task never finished")


# --- images ---------------------------------------------------------------------------------------


def test_image_is_a_real_png_of_the_asked_size(client: httpx2.Client) -> None:
    response = client.post(
        "/images/generations", json={"model": "cogview-4", "prompt": "a red fox", "size": "864x1152"}
    )
    body = response.json()
    assert response.status_code == 200 and set(body) == {"created", "data", "content_filter"}
    assert body["content_filter"] == [{"role": "assistant", "level": 3}]
    url = body["data"][0]["url"]
    expires = int(url.rsplit("expires=", 1)[1])
    assert 29 * 86400 < expires - time.time() <= 30 * 86400
    picture = httpx2.get(url)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    width, height, raw = decode_png(picture.content)
    assert (width, height) == (864, 1152)
    assert len(set(raw[1 : 1 + 3 * width])) > 1  # a pattern, not a flat colour


def test_image_depends_on_the_prompt_only(client: httpx2.Client) -> None:
    def picture(prompt: str, model: str = "cogview-4") -> bytes:
        url = client.post("/images/generations", json={"model": model, "prompt": prompt}).json()["data"][0]["url"]
        return httpx2.get(url).content

    fox = picture("a red fox")
    assert picture("a red fox") == fox and picture("a blue whale") != fox
    assert decode_png(fox)[:2] == (1024, 1024)
    assert decode_png(picture("a red fox", "glm-image"))[:2] == (1280, 1280)  # glm-image's default size


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "cogview-4", "prompt": "x", "size": "1000x1000"}, (400, "1210")),  # not a multiple of 16
        ({"model": "cogview-4", "prompt": "x", "size": "2048x2048"}, (400, "1210")),  # more than 2^21 pixels
        ({"model": "cogview-3-flash", "prompt": "x", "size": "512x512"}, (400, "1210")),  # fixed sizes only
        ({"model": "glm-image", "prompt": "x", "size": "800x800"}, (400, "1210")),  # below 1024
        ({"model": "cogview-4", "prompt": "x", "quality": "ultra"}, (400, "1210")),
        ({"model": "dall-e-3", "prompt": "x"}, (400, "1211")),
        ({"model": "cogview-4"}, (400, "1213")),
        ({"model": "cogview-4", "prompt": f"a fox {SENSITIVE_MARKER}"}, (400, "1301")),
    ],
)
def test_image_errors(client: httpx2.Client, body: dict[str, Any], expected: tuple[int, str]) -> None:
    assert error_of(client.post("/images/generations", json=body)) == expected


def test_async_image_and_expired_files(emulator: Emulator, client: httpx2.Client) -> None:
    submitted = client.post("/async/images/generations", json={"model": "glm-image", "prompt": "a lighthouse"}).json()
    assert submitted["task_status"] == "PROCESSING"
    result = poll(client, submitted["id"])
    assert result["task_status"] == "SUCCESS" and result["model"] == "glm-image"
    assert decode_png(httpx2.get(result["image_result"][0]["url"]).content)[:2] == (1280, 1280)
    refused = client.post("/async/images/generations", json={"model": "cogview-4", "prompt": "x"})
    assert error_of(refused) == (400, "1212")
    emulator.config.file_ttl = 0.2
    try:
        url = client.post("/images/generations", json={"model": "cogview-4", "prompt": "brief"}).json()["data"][0][
            "url"
        ]
        assert httpx2.get(url).status_code == 200
        time.sleep(0.3)
        gone = httpx2.get(url)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "404"
    finally:
        emulator.config.file_ttl = EmulatorConfig().file_ttl


# --- video ----------------------------------------------------------------------------------------


def test_video_job_points_at_an_animation_and_a_cover(client: httpx2.Client) -> None:
    body = {"model": "cogvideox-3", "prompt": "waves on a beach", "size": "640x480", "fps": 30, "duration": 5}
    submitted = client.post("/videos/generations", json=body).json()
    assert set(submitted) == {"model", "id", "request_id", "task_status"} and submitted["task_status"] == "PROCESSING"
    assert client.get(f"/async-result/{submitted['id']}").json()["task_status"] == "PROCESSING"
    result = poll(client, submitted["id"])
    assert result["task_status"] == "SUCCESS" and result["model"] == "cogvideox-3"
    (video,) = result["video_result"]
    animation = httpx2.get(video["url"])
    assert animation.headers["content-type"] == "image/apng"
    chunks = png_chunks(animation.content)
    frames, _plays = struct.unpack(">II", dict(chunks)[b"acTL"])
    assert frames == 4 and sum(kind == b"fcTL" for kind, _ in chunks) == 4
    assert decode_png(httpx2.get(video["cover_image_url"]).content)[:2] == (640, 480)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "cogvideox-3"}, (400, "1213")),
        ({"model": "sora", "prompt": "x"}, (400, "1211")),
        ({"model": "cogvideox-3", "prompt": "x", "fps": 24}, (400, "1210")),
        ({"model": "cogvideox-3", "prompt": "x", "quality": "best"}, (400, "1210")),
        ({"model": "cogvideox-3", "prompt": SENSITIVE_MARKER}, (400, "1301")),
    ],
)
def test_video_errors(client: httpx2.Client, body: dict[str, Any], expected: tuple[int, str]) -> None:
    assert error_of(client.post("/videos/generations", json=body)) == expected


def test_video_failure_marker(client: httpx2.Client) -> None:
    submitted = client.post("/videos/generations", json={"model": "cogvideox-flash", "prompt": FAIL_MARKER}).json()
    result = poll(client, submitted["id"])
    assert result["task_status"] == "FAIL" and "video_result" not in result


# --- standalone web search and reader ----------------------------------------------------------------


def test_web_search_returns_sources_without_an_answer(client: httpx2.Client) -> None:
    body = {"search_query": "volcano research Iceland", "search_engine": "search_pro", "count": 7}
    first, second = client.post("/web_search", json=body).json(), client.post("/web_search", json=body).json()
    assert {"id", "created", "request_id", "search_intent", "search_result"} <= set(first)
    assert first["search_result"] == second["search_result"] and len(first["search_result"]) == 7
    item = first["search_result"][0]
    assert set(item) == {"refer", "title", "link", "media", "icon", "content", "publish_date"}
    assert item["refer"] == "ref_1" and 400 <= len(item["content"]) <= 600
    assert first["search_intent"] == [
        {"query": "volcano research Iceland", "intent": "SEARCH_ALWAYS", "keywords": "volcano research Iceland"}
    ]
    filtered = client.post("/web_search", json={**body, "search_domain_filter": "www.example.org"}).json()
    assert {s["link"].split("/")[2] for s in filtered["search_result"]} == {"www.example.org"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"search_query": "x", "search_engine": "search_std", "count": 51}, (400, "1210")),
        ({"search_query": "x", "search_engine": "search_std", "count": 0}, (400, "1210")),
        ({"search_query": "x", "search_engine": "search_pro_sogou", "count": 15}, (400, "1210")),
        ({"search_query": "x", "search_engine": "google"}, (400, "1210")),
        ({"search_query": "x", "search_engine": "search_std", "search_recency_filter": "oneDecade"}, (400, "1210")),
        ({"search_engine": "search_std"}, (400, "1213")),
        ({"search_query": "x"}, (400, "1213")),
    ],
)
def test_web_search_errors(client: httpx2.Client, body: dict[str, Any], expected: tuple[int, str]) -> None:
    assert error_of(client.post("/web_search", json=body)) == expected


def test_reader_markdown_and_text(client: httpx2.Client) -> None:
    url = "https://example.com/blog/rust-async-runtimes"
    page = client.post("/reader", json={"url": url}).json()["reader_result"]
    assert page == client.post("/reader", json={"url": url}).json()["reader_result"]
    assert page["url"] == url and "Blog rust async runtimes" in page["title"] and page["description"]
    assert page["content"].startswith("# ") and "](https://example.com/" in page["content"]
    assert page["metadata"]["og:site_name"] == "example.com" and "links" not in page
    text = client.post("/reader", json={"url": url, "return_format": "text", "with_links_summary": True}).json()
    plain = text["reader_result"]
    assert "#" not in plain["content"] and "](" not in plain["content"] and plain["title"] == page["title"]
    assert all(link.startswith("https://example.com/") for link in plain["links"].values())
    other = client.post("/reader", json={"url": "https://example.org/garden/notes"}).json()["reader_result"]
    assert other["content"] != page["content"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, (400, "1213")),
        ({"url": "ftp://example.com/file"}, (400, "1210")),
        ({"url": "https://nowhere.invalid/page"}, (400, "1210")),
        ({"url": "https://example.com/", "return_format": "html"}, (400, "1210")),
    ],
)
def test_reader_errors(client: httpx2.Client, body: dict[str, Any], expected: tuple[int, str]) -> None:
    assert error_of(client.post("/reader", json=body)) == expected


# --- Coding Plan usage --------------------------------------------------------------------------------


def test_coding_plan_quota_counts_what_was_served(emulator: Emulator, client: httpx2.Client) -> None:
    coding = httpx2.Client(base_url=emulator.coding_base_url, headers={"Authorization": f"Bearer {CODING_KEY}"})
    quota_url = emulator.origin + "/api/monitor/usage/quota/limit"

    def limits(authorization: str) -> list[dict[str, Any]]:
        body = httpx2.get(quota_url, headers={"Authorization": authorization}).json()
        assert body["success"] is True and body["code"] == 200 and body["data"]["level"] == "pro"
        result: list[dict[str, Any]] = body["data"]["limits"]
        return result

    before = limits(CODING_KEY)
    assert [(x["type"], x["unit"], x["number"]) for x in before] == [
        ("TOKENS_LIMIT", 3, 5),
        ("TOKENS_LIMIT", 6, 1),
        ("TIME_LIMIT", 5, 1),
    ]
    assert before[0]["percentage"] == 0 and before[2]["currentValue"] == 0 and before[2]["usage"] == 1000
    answer = coding.post("/chat/completions", json=ask("Tell me about lanterns")).json()
    coding.post("/web_search", json={"search_query": "lanterns", "search_engine": "search_std"})
    coding.post("/reader", json={"url": "https://example.com/lanterns"})
    client.post("/chat/completions", json=ask("general plan traffic is not counted"))
    after = limits(f"Bearer {CODING_KEY}")  # the key is accepted raw or as a bearer token
    assert after[0]["percentage"] == answer["usage"]["total_tokens"] * 100 // 1000
    assert after[0]["nextResetTime"] > time.time() * 1000
    assert after[2]["currentValue"] == 2 and after[2]["remaining"] == 998
    assert {d["modelCode"]: d["usage"] for d in after[2]["usageDetails"]} == {
        "search-prime": 1,
        "web-reader": 1,
        "zread": 0,
    }
    now = datetime.now()
    span = {
        "startTime": (now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "endTime": (now + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    models = httpx2.get(
        emulator.origin + "/api/monitor/usage/model-usage", params=span, headers={"Authorization": CODING_KEY}
    )
    total = models.json()["data"]["totalUsage"]
    assert total["totalModelCallCount"] == 1 and total["totalTokensUsage"] == answer["usage"]["total_tokens"]
    assert total["modelSummaryList"][0]["modelName"] == "GLM-4.6"
    tools = httpx2.get(
        emulator.origin + "/api/monitor/usage/tool-usage", params=span, headers={"Authorization": CODING_KEY}
    )
    assert tools.json()["data"]["totalUsage"]["totalNetworkSearchCount"] == 1
    no_plan = httpx2.get(quota_url, headers={"Authorization": GENERAL_KEY}).json()
    assert no_plan["success"] is False and "coding plan" in no_plan["msg"].lower()
    assert httpx2.get(quota_url, headers={"Authorization": "someone.else"}).status_code == 401


# --- limits, ranges and the platform's envelope ---------------------------------------------------------


def test_prompt_past_the_context_window_is_refused(client: httpx2.Client) -> None:
    """glm-4-airx reads 200 tokens here: 4 + ceil(chars / 4) per message."""
    fits = client.post("/chat/completions", json=ask("x" * (196 * 4), model="glm-4-airx"))
    assert fits.status_code == 200 and fits.json()["usage"]["prompt_tokens"] == 200
    response = client.post("/chat/completions", json=ask("x" * (196 * 4 + 1), model="glm-4-airx"))
    assert error_of(response) == (400, "1261") and "201" in response.json()["error"]["message"]
    assert error_of(client.post("/async/chat/completions", json=ask("x" * 1000, model="glm-4-airx"))) == (400, "1261")
    stream = client.post("/chat/completions", json=ask("x" * 1000, model="glm-4-airx", stream=True))
    assert error_of(stream) == (400, "1261")


@pytest.mark.parametrize(
    "options",
    [
        {"top_p": 0.005},
        {"top_p": 0},
        {"max_tokens": 128 * 1024 + 1},
        {"tool_choice": "none"},
        {"tool_choice": {"type": "function", "function": {"name": "f"}}},
        {"tool_stream": True},
        {"do_sample": "false"},
        {"do_sample": 0},
        {"tools": [{"type": "web_search", "web_search": {"enable": True, "count": 51}}]},
        {"tools": [{"type": "retrieval", "retrieval": {}}]},
    ],
)
def test_documented_ranges(client: httpx2.Client, options: dict[str, Any]) -> None:
    assert error_of(client.post("/chat/completions", json=ask("hi", **options))) == (400, "1210")


def test_output_caps_follow_the_model(client: httpx2.Client) -> None:
    assert client.post("/chat/completions", json=ask("hi", max_tokens=128 * 1024)).status_code == 200
    assert error_of(client.post("/chat/completions", json=ask("hi", model="glm-4-flash", max_tokens=4096))) == (
        400,
        "1210",
    )
    ok = ask("hi", top_p=0.01, do_sample=False, tool_choice="auto", stream=True, tool_stream=True)
    assert client.post("/chat/completions", json=ok).status_code == 200


def test_models_list_today(client: httpx2.Client) -> None:
    ids = {m["id"] for m in client.get("/models").json()["data"]}
    assert {"glm-4.6", "glm-4.7", "glm-4.7-flash", "glm-5", "glm-5.1", "glm-4.5v", "glm-4.6v", "glm-4.6v-flash"} <= ids


def test_every_response_carries_a_request_id(emulator: Emulator, client: httpx2.Client) -> None:
    responses = [
        client.post("/chat/completions", json=ask("hi")),
        client.post("/chat/completions", json=ask("hi", stream=True)),
        client.post("/chat/completions", json=ask("hi", model="glm-99")),
        client.get("/models"),
        httpx2.get(emulator.base_url + "/models"),
        client.get("/no/such/route"),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)


def test_unknown_routes_answer_glm_json(emulator: Emulator, client: httpx2.Client) -> None:
    for response in (client.get("/no/such/route"), httpx2.get(emulator.origin + "/v1/chat"), client.get("/reader")):
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert set(error) == {"code", "message"} and error["code"] == str(response.status_code)
    assert client.get("/no/such/route").status_code == 404 and client.get("/reader").status_code == 405


# --- tools -------------------------------------------------------------------------------------------------


def test_knowledge_retrieval_answers_from_the_base(client: httpx2.Client) -> None:
    tool = {"type": "retrieval", "retrieval": {"knowledge_id": "kb-1234", "prompt_template": "Use {{knowledge}}"}}
    body = ask("What does the handbook say about holidays?", tools=[tool])
    first, second = (
        client.post("/chat/completions", json=body).json(),
        client.post("/chat/completions", json=body).json(),
    )
    message = first["choices"][0]["message"]
    assert message == second["choices"][0]["message"] and first["choices"][0]["finish_reason"] == "stop"
    assert "knowledge base kb-1234" in message["content"] and "holidays" in message["content"]
    assert "Use {{knowledge}}" in message["reasoning_content"]


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tool_stream_only_where_the_model_supports_it(client: httpx2.Client) -> None:
    def call_deltas(model: str) -> list[dict[str, Any]]:
        body = ask("Use get_weather for Paris", model=model, tools=[WEATHER], stream=True, tool_stream=True)
        frames = [f[6:] for f in client.post("/chat/completions", json=body).text.split("\n\n") if f]
        deltas = [json.loads(f)["choices"][0]["delta"] for f in frames if f != "[DONE]"]
        return [c for d in deltas for c in d.get("tool_calls", ())]

    pieces = call_deltas("glm-4.6")
    assert len(pieces) > 1 and pieces[0]["function"]["arguments"] == ""
    (whole,) = call_deltas("glm-4-flash")
    assert json.loads(whole["function"]["arguments"]).keys() == {"city"}


# --- the tokenizer -----------------------------------------------------------------------------------------


def test_the_tokenizer_counts_a_prompt_as_the_chat_does(emulator: Emulator, client: httpx2.Client) -> None:
    """POST /tokenizer: the reference's answer shape, the count a chat's usage gives for the same prompt (its function
    tools included), nothing generated; the chat's own checks, and only function tools."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Use get_weather for Oslo"}]
    counted = client.post("/tokenizer", json={"model": "glm-4.6", "messages": messages, "tools": [WEATHER]})
    assert counted.status_code == 200
    body = counted.json()
    assert set(body) == {"id", "usage", "created", "request_id"} and body["created"] > 0
    usage = body["usage"]
    assert set(usage) == {"prompt_tokens", "image_tokens", "video_tokens", "total_tokens"}
    answer = client.post("/chat/completions", json={"model": "glm-4.6", "messages": messages, "tools": [WEATHER]})
    assert usage["prompt_tokens"] == usage["total_tokens"] == answer.json()["usage"]["prompt_tokens"]
    without_tools = client.post("/tokenizer", json={"model": "glm-4.6", "messages": messages}).json()["usage"]
    assert without_tools["prompt_tokens"] < usage["prompt_tokens"]
    named = client.post("/tokenizer", json={**ask("hi"), "request_id": "count-1234"})
    assert named.json()["request_id"] == "count-1234"
    assert error_of(client.post("/tokenizer", json=ask("hi", model="glm-nope"))) == (400, "1211")
    assert error_of(client.post("/tokenizer", json={"model": "glm-4.6", "messages": []})) == (400, "1214")
    assert error_of(client.post("/tokenizer", json={"model": "glm-4.6", "messages": messages[:1]})) == (400, "1214")
    search = {"type": "web_search", "web_search": {"enable": True}}
    assert error_of(client.post("/tokenizer", json=ask("hi", tools=[search]))) == (400, "1210")
    assert [e.path for e in emulator.state.exchanges].count("/api/paas/v4/tokenizer") == 7
