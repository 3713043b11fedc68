"""The platform tools beyond chat end to end: the SDK's Client in process (and one call each over stdio and HTTP),
the server, the emulator on a real socket. Each check compares what the tool returned with what the emulator sent."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, ImageContent, TextContent

from glm_mcp.app import create_server
from glm_mcp.config import ConfigError, Settings
from glm_mcp.emulator import FAIL_MARKER, Emulator
from glm_mcp.jobs import Principal, SQLiteJobStore
from glm_mcp.jobs.usage import UsageRecord, UsageRecords
from tests.conftest import CODING_KEY, GENERAL_KEY, settings_for, upstream_calls
from tests.emulator.test_endpoints import decode_png
from tests.processes import http_server, server_env
from tests.test_tools import failed, ok
from tests.test_transports import stdio

pytestmark = pytest.mark.anyio

CORE = {"chat", "web_search_chat", "submit_async", "get_result", "list_jobs", "list_conversations"}
ALL = CORE | {"web_search", "read_url", "generate_image", "generate_video", "list_models", "usage", "batch"}


@pytest.fixture
def all_settings(emulator: Emulator, data_dir: Path) -> Settings:
    return settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all")


@pytest.fixture
async def client(all_settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(all_settings)) as client:
        yield client


# --- toolsets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toolsets", "expected"),
    [
        ("", CORE | {"web_search", "read_url"}),
        ("core", CORE),
        ("core,images", CORE | {"generate_image"}),
        ("video, Models", {"generate_video", "list_models"}),
        ("all", ALL),
    ],
)
async def test_toolsets_choose_what_tools_list_shows(emulator: Emulator, toolsets: str, expected: set[str]) -> None:
    async with Client(create_server(settings_for(emulator, GLM_MCP_TOOLSETS=toolsets))) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == expected


def test_an_unknown_toolset_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"GLM_MCP_TOOLSETS.*unknown toolsets imagez"):
        Settings.from_env({"GLM_MCP_TOOLSETS": "core,imagez"})


async def test_each_new_tool_fits_its_context_budget(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ALL - CORE:
        size = len(json.dumps(tools[name].input_schema, separators=(",", ":")))
        assert size <= 1_600, (name, size)
        assert tools[name].output_schema is not None


# --- web_search and read_url ---------------------------------------------------------------------------------


async def test_web_search_returns_the_platforms_results_without_an_answer(client: Client, emulator: Emulator) -> None:
    args = {"query": "volcano research", "engine": "search_pro", "count": 4, "domain": "www.example.org"}
    out = ok(await client.call_tool("web_search", {**args, "recency": "oneWeek", "content_size": "high"}))
    (call,) = upstream_calls(emulator, "/web_search")
    assert call.body == {
        "search_query": "volcano research",
        "search_engine": "search_pro",
        "count": 4,
        "search_domain_filter": "www.example.org",
        "search_recency_filter": "oneWeek",
        "content_size": "high",
        "request_id": call.body["request_id"],
    }
    assert call.response is not None
    assert [r["url"] for r in out["results"]] == [item["link"] for item in call.response["search_result"]]
    assert out["results"][0]["snippet"] == call.response["search_result"][0]["content"]
    assert upstream_calls(emulator, "/chat/completions") == []  # no model was asked


async def test_web_search_errors(client: Client, emulator: Emulator) -> None:
    refused = failed(await client.call_tool("web_search", {"query": "x", "engine": "search_pro_sogou", "count": 15}))
    assert refused["error"] == "invalid_argument" and refused["field"] == "count"
    assert upstream_calls(emulator, "/web_search") == []
    out_of_range = failed(await client.call_tool("web_search", {"query": "x", "count": 51}))
    assert out_of_range["field"] == "count"


async def test_read_url_returns_the_page_and_pages_a_long_one(emulator: Emulator, data_dir: Path) -> None:
    url = "https://example.com/blog/rust-async-runtimes"
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MAX_RESULT_CHARS="1000")
    async with Client(create_server(settings)) as client:
        first = ok(await client.call_tool("read_url", {"url": url, "links": True}))
        page = upstream_calls(emulator, "/reader")[-1].response["reader_result"]
        assert first["title"] == page["title"] and first["metadata"] == page["metadata"]
        assert first["links"] == page["links"]
        assert len(page["content"]) > 1000, "the emulator's page is long enough to need a second part"
        assert first["content"] == page["content"][:1000] and first["next_offset"] == 1000
        assert f"offset={first['next_offset']}" in first["next"]
        rest = ok(await client.call_tool("read_url", {"url": url, "offset": first["next_offset"]}))
        assert first["content"] + rest["content"][: len(page["content"]) - 1000] == page["content"]
        text = ok(await client.call_tool("read_url", {"url": url, "format": "text"}))
        assert "](" not in text["content"]


async def test_read_url_errors(client: Client, emulator: Emulator) -> None:
    assert failed(await client.call_tool("read_url", {"url": "ftp://example.com/x"}))["field"] == "url"
    assert upstream_calls(emulator, "/reader") == []
    out = failed(await client.call_tool("read_url", {"url": "https://nowhere.invalid/page"}))
    assert out["error"] == "upstream_error" and out["glm_code"] == "1210" and out["http_status"] == 400


# --- images --------------------------------------------------------------------------------------------------


async def test_generate_image_returns_image_content_a_client_can_display(
    emulator: Emulator, all_settings: Settings
) -> None:
    """With GLM_MEDIA_INLINE=always (by default a client that can take a link gets the link alone:
    tests/test_media_resources.py)."""
    all_settings = all_settings.replace(results={"media_inline": "always"})
    async with Client(create_server(all_settings)) as client:
        result = await client.call_tool("generate_image", {"prompt": "a red fox in snow", "size": "864x1152"})
    out = ok(result)
    (call,) = upstream_calls(emulator, "/images/generations")
    assert call.body is not None and call.body["model"] == "cogview-4" and call.body["size"] == "864x1152"
    assert call.response is not None and out["url"] == call.response["data"][0]["url"]
    expires = int(parse_qs(urlsplit(out["url"]).query)["expires"][0])
    assert out["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
    (image,) = [block for block in result.content if isinstance(block, ImageContent)]
    assert image.mime_type == "image/png"
    data = base64.b64decode(image.data)
    assert decode_png(data)[:2] == (864, 1152)  # a real PNG of the asked size
    saved = Path(out["saved_path"])  # in process counts as stdio: a copy is kept where the setting says
    assert saved.parent == all_settings.registry.images_dir and saved.read_bytes() == data


async def test_glm_image_is_a_task_that_get_result_finishes(client: Client, emulator: Emulator) -> None:
    emulator.config.async_delay = 0.3
    out = ok(
        await client.call_tool("generate_image", {"prompt": "a lighthouse", "model": "glm-image", "wait_seconds": 0})
    )
    assert out["status"] == "running" and out["task_id"] in out["next"]
    listed = ok(await client.call_tool("list_jobs", {}))
    assert listed["jobs"][0]["job_id"] == out["task_id"] and listed["jobs"][0]["kind"] == "image_task"
    done = ok(await client.call_tool("get_result", {"task_id": out["task_id"], "wait_seconds": 10}))
    poll = upstream_calls(emulator, "/async-result/" + out["task_id"])[-1].response
    assert done["status"] == "completed" and done["kind"] == "image_task"
    assert [i["url"] for i in done["images"]] == [i["url"] for i in poll["image_result"]]


async def test_generate_image_errors(client: Client, emulator: Emulator) -> None:
    out = failed(await client.call_tool("generate_image", {"prompt": "x", "size": "1000x1000"}))
    assert out["error"] == "upstream_error" and out["http_status"] == 400  # not a multiple of 16: the platform says
    assert failed(await client.call_tool("generate_image", {"prompt": "x", "size": "big"}))["field"] == "size"
    assert failed(await client.call_tool("generate_image", {"prompt": "x", "model": "dall-e"}))["glm_code"] == "1211"


# --- video ---------------------------------------------------------------------------------------------------


async def test_generate_video_is_a_job_whose_result_has_the_video_and_cover(client: Client, emulator: Emulator) -> None:
    emulator.config.async_delay = 0.3
    job = ok(await client.call_tool("generate_video", {"prompt": "a cat on a piano", "wait_seconds": 0}))
    submit = upstream_calls(emulator, "/videos/generations")[-1]
    assert submit.body is not None and submit.body["model"] == "cogvideox-flash"
    assert job["status"] == "running" and job["task_id"] == submit.response["id"]
    assert job["task_id"] in job["next"] and "get_result" in job["next"]
    done = ok(await client.call_tool("get_result", {"task_id": job["task_id"], "wait_seconds": 10}))
    poll = upstream_calls(emulator, "/async-result/" + job["task_id"])[-1].response
    assert done["status"] == "completed" and done["kind"] == "video_task"
    (video,) = poll["video_result"]
    assert done["videos"][0]["url"] == video["url"] and done["videos"][0]["cover_url"] == video["cover_image_url"]
    again = ok(await client.call_tool("get_result", {"task_id": job["task_id"]}))
    assert again["videos"] == done["videos"]  # kept in the registry: the platform is not asked again
    assert len(upstream_calls(emulator, "/async-result/" + job["task_id"])) == len(
        [c for c in emulator.state.exchanges if c.path.endswith(job["task_id"])]
    )


async def test_a_failed_video_says_so(client: Client, emulator: Emulator) -> None:
    emulator.config.async_delay = 0.0
    out = ok(await client.call_tool("generate_video", {"prompt": f"x {FAIL_MARKER}", "wait_seconds": 5}))
    assert out["status"] == "failed" and out["error"]["error"] == "media_failed" and "videos" not in out
    assert failed(await client.call_tool("generate_video", {}))["field"] == "prompt"


# --- models --------------------------------------------------------------------------------------------------


async def test_list_models_says_what_each_can_do_and_marks_the_unknown(
    client: Client, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator.config, "models", (*emulator.config.models, "mystery-9"))
    out = ok(await client.call_tool("list_models", {}))
    listed = upstream_calls(emulator, "/models")[-1].response
    assert [m["id"] for m in out["models"]] == sorted(m["id"] for m in listed["data"])
    models = {m["id"]: m for m in out["models"]}
    assert models["glm-4.6v"] == {
        "id": "glm-4.6v",
        "kind": "chat",
        "vision": True,
        "reasoning": True,
        "context_tokens": 131072,
        "max_output_tokens": 32768,
    }
    assert models["glm-4-flash"]["vision"] is False and models["glm-4-flash"]["max_output_tokens"] == 4095
    assert models["mystery-9"] == {"id": "mystery-9", "known": False} and "1 model" in out["note"]
    resource = await client.read_resource("glm://models")
    assert json.loads(resource.contents[0].text)["models"] == out["models"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "env", "default"),
    [
        ("image", {}, "cogview-4"),
        ("video", {}, "cogvideox-flash"),
        ("image", {"GLM_IMAGE_MODEL": "cogview-4-250304"}, "cogview-4-250304"),
        ("video", {"GLM_VIDEO_MODEL": "cogvideox-3"}, "cogvideox-3"),
    ],
)
async def test_list_models_names_the_media_models_the_server_uses_when_the_platform_lists_none(
    emulator: Emulator, data_dir: Path, kind: str, env: dict[str, str], default: str
) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all", **env)
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("list_models", {"kind": kind})
    out, text = ok(result), text_of(result)
    platform = [m["id"] for m in upstream_calls(emulator, "/models")[-1].response["data"]]
    assert not any(m.startswith(("cogview", "glm-image", "cogvideo", "vidu")) for m in platform)  # chat models only
    models = out["models"]
    served = emulator.config.image_models if kind == "image" else emulator.config.video_models
    assert models[0] == {"id": default, "kind": kind, "default": True, "listed": False}
    assert len(models) > 1 and all(m["kind"] == kind and m["listed"] is False for m in models)
    assert {m["id"] for m in models} <= set(served)  # each is one the (emulated) platform generates with
    assert f"uses {default} (GLM_{kind.upper()}_MODEL)" in out["note"]
    assert f"- {default}: {kind}, the default, not in the platform's list" in text and "No models." not in text


# --- usage ---------------------------------------------------------------------------------------------------


async def test_usage_reports_tokens_by_day_and_model_with_an_estimated_cost(emulator: Emulator, data_dir: Path) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all", GLM_PRICES="glm-4.6=1/10")
    async with Client(create_server(settings)) as client:
        ok(await client.call_tool("chat", {"prompt": "Count the stars."}))
        ok(await client.call_tool("chat", {"prompt": "And the planets."}))
        ok(await client.call_tool("web_search", {"query": "stars"}))
        report = ok(await client.call_tool("usage", {"by": "model"}))
    usages = [c.response["usage"] for c in upstream_calls(emulator, "/chat/completions")]
    rows = {row["model"]: row for row in report["rows"]}
    prompt, completion = sum(u["prompt_tokens"] for u in usages), sum(u["completion_tokens"] for u in usages)
    assert rows["glm-4.6"]["calls"] == 2
    assert (rows["glm-4.6"]["prompt_tokens"], rows["glm-4.6"]["completion_tokens"]) == (prompt, completion)
    assert rows["glm-4.6"]["cost"] == pytest.approx((prompt * 1 + completion * 10) / 1e6)
    assert rows["search_std"] == {"model": "search_std", "calls": 1, "billed": "per call", "cost": 0.01}
    assert report["total_cost"] == pytest.approx(rows["glm-4.6"]["cost"] + 0.01)
    assert "quota" not in report  # a general key has no Coding Plan


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_usage_prices_what_is_billed_per_call_and_marks_what_has_no_price(
    emulator: Emulator, data_dir: Path
) -> None:
    """Searches, page reads, images and videos carry no tokens: each row says it is billed per call, with the
    platform's per-call price (docs/usage.md) or, where none is known, unpriced, left out of the total, in the
    structured result and in its text alike."""
    emulator.config.async_delay = 0.0
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all")
    async with Client(create_server(settings)) as client:
        ok(await client.call_tool("web_search", {"query": "lanterns"}))
        ok(await client.call_tool("read_url", {"url": "https://example.com/a"}))
        ok(await client.call_tool("read_url", {"url": "https://example.com/b"}))
        ok(await client.call_tool("generate_image", {"prompt": "a lantern", "model": "cogview-4"}))
        ok(await client.call_tool("generate_video", {"prompt": "a lantern", "wait_seconds": 10}))  # cogvideox-flash
        result = await client.call_tool("usage", {"by": "model"})
    report, text = ok(result), text_of(result)
    rows = {row["model"]: row for row in report["rows"]}
    assert rows["search_std"] == {"model": "search_std", "calls": 1, "billed": "per call", "cost": 0.01}
    assert rows["cogview-4"] == {"model": "cogview-4", "calls": 1, "billed": "per call", "cost": 0.01}
    assert rows["web-reader"] == {"model": "web-reader", "calls": 2, "billed": "per call", "unpriced": True}
    assert rows["cogvideox-flash"] == {"model": "cogvideox-flash", "calls": 1, "billed": "per call", "unpriced": True}
    assert report["unpriced"] == ["cogvideox-flash", "web-reader"]
    assert report["total_cost"] == pytest.approx(0.02)
    lines = {line.split(" · ")[0]: line for line in text.splitlines() if " · " in line}
    assert lines["search_std"] == "search_std · 1 call · ~0.0100 USD (per call)"
    assert lines["web-reader"] == "web-reader · 2 calls · unpriced (per call, no price known)"
    assert "Estimated total: 0.0200 USD, leaving out what has no price (cogvideox-flash, web-reader)." in text
    assert "1 calls" not in text


async def test_glm_prices_sets_a_price_per_call(emulator: Emulator, data_dir: Path) -> None:
    env = {"GLM_DATA_DIR": str(data_dir), "GLM_MCP_TOOLSETS": "all", "GLM_PRICES": "web-reader=0.005,search=0.02"}
    async with Client(create_server(settings_for(emulator, **env))) as client:
        ok(await client.call_tool("web_search", {"query": "lanterns"}))
        ok(await client.call_tool("read_url", {"url": "https://example.com/a"}))
        ok(await client.call_tool("read_url", {"url": "https://example.com/b"}))
        report = ok(await client.call_tool("usage", {"by": "model"}))
    rows = {row["model"]: row for row in report["rows"]}
    assert rows["web-reader"]["cost"] == pytest.approx(0.01) and rows["search_std"]["cost"] == pytest.approx(0.02)
    assert "unpriced" not in report and report["total_cost"] == pytest.approx(0.03)


async def test_each_caller_sees_only_their_own_usage(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.sqlite3", retention_days=7)
    usage = UsageRecords(store.database)
    try:
        await usage.record(UsageRecord(principal=Principal("key:a"), tool="chat", model="glm-4.6", prompt_tokens=5))
        await usage.record(UsageRecord(principal=Principal("key:b"), tool="chat", model="glm-4.6", prompt_tokens=7))
        await usage.record(UsageRecord(principal=Principal("key:a"), tool="chat", model="glm-4.5", prompt_tokens=1))
        mine = await usage.totals(principal=Principal("key:a"), since=0, by="model")
    finally:
        await store.aclose()
    assert sorted((t.model, t.prompt_tokens) for t in mine) == [("glm-4.5", 1), ("glm-4.6", 5)]


async def test_a_coding_plan_key_gets_the_plans_quota(emulator: Emulator, data_dir: Path) -> None:
    env = {"GLM_API_KEY": CODING_KEY, "GLM_BASE_URL": emulator.coding_base_url, "GLM_DATA_DIR": str(data_dir)}
    settings = Settings.from_env({**env, "GLM_MCP_TOOLSETS": "all"})
    async with Client(create_server(settings)) as client:
        ok(await client.call_tool("chat", {"prompt": "Hello plan"}))
        report = ok(await client.call_tool("usage", {}))
    quota = upstream_calls(emulator, "/api/monitor/usage/quota/limit")[-1].response["data"]
    assert report["plan_level"] == quota["level"]
    assert [q["used_percent"] for q in report["quota"]] == [limit["percentage"] for limit in quota["limits"]]
    assert [q["window"] for q in report["quota"]] == ["5 hours (tokens)", "week (tokens)", "month (tool calls)"]


# --- over the real transports ---------------------------------------------------------------------------------


async def test_each_new_tool_answers_over_stdio(emulator: Emulator, tmp_path: Path) -> None:
    emulator.config.async_delay = 0.0
    env = {"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url, "GLM_IMAGE_DIR": str(tmp_path / "img")}
    async with Client(stdio("--toolsets", "all", **env), mode="legacy") as client:
        assert {t.name for t in (await client.list_tools()).tools} == ALL
        outs = {name: await client.call_tool(name, args) for name, args in CALLS.items()}
    for name, result in outs.items():
        assert not result.is_error, (name, result.content)
    image = ok(outs["generate_image"])
    assert Path(image["saved_path"]).parent == tmp_path / "img" and Path(image["saved_path"]).is_file()


async def test_each_new_tool_answers_over_http(emulator: Emulator) -> None:
    emulator.config.async_delay = 0.0
    env = server_env(
        GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="all", GLM_MEDIA_INLINE="always"
    )
    with http_server(env=env) as origin:
        async with Client(origin + "/mcp") as client:
            outs = {name: await client.call_tool(name, args) for name, args in CALLS.items()}
    for name, result in outs.items():
        assert not result.is_error, (name, result.content)
    image = outs["generate_image"]
    assert any(isinstance(block, ImageContent) for block in image.content)
    assert "saved_path" not in ok(image)  # over HTTP the server's disk is not the caller's


CALLS: dict[str, dict[str, Any]] = {
    "web_search": {"query": "lanterns"},
    "read_url": {"url": "https://example.com/lanterns"},
    "generate_image": {"prompt": "a lantern"},
    "generate_video": {"prompt": "a lantern", "wait_seconds": 10},
    "list_models": {},
    "usage": {},
}


async def test_the_usage_table_survives_a_restart(emulator: Emulator, all_settings: Settings) -> None:
    async with Client(create_server(all_settings)) as client:
        ok(await client.call_tool("chat", {"prompt": "Remember me."}))
    await anyio.sleep(0)
    async with Client(create_server(all_settings)) as client:
        report = ok(await client.call_tool("usage", {"by": "day"}))
    assert report["rows"][0]["calls"] == 1 and report["rows"][0]["prompt_tokens"] > 0


async def test_a_handed_off_chat_is_counted_in_usage_once_its_job_ends(emulator: Emulator, client: Client) -> None:
    """A chat that outlives its wait is paid for all the same: its job records the tokens when it ends."""
    emulator.config.chunk_delay = 0.02
    early = ok(await client.call_tool("chat", {"prompt": "A slow one.", "thinking": "disabled", "wait_seconds": 0.2}))
    assert early["status"] == "running"
    before = ok(await client.call_tool("usage", {"by": "model"}))
    assert "glm-4.6" not in {row["model"] for row in before.get("rows", [])}, "counted before it was generated"
    done = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 30}))
    assert done["status"] == "completed"
    report = ok(await client.call_tool("usage", {"by": "model"}))
    usage = upstream_calls(emulator, "/chat/completions")[-1].response["usage"]
    row = next(row for row in report["rows"] if row["model"] == "glm-4.6")
    assert row["calls"] == 1
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
