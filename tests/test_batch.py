"""The batch tool in process, against the emulator: prompts and files become one platform batch, its progress and
then every item's answer come back through get_result, paged; a cancel reaches the platform; the tokens are priced
at the batch price. Real processes (restarts, outside clients, the transports) are tests/test_batch_processes.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.emulator import FAIL_MARKER, SENSITIVE_MARKER, Emulator
from glm_mcp.glm.models import PRICES, Price, parse_prices, price_of
from glm_mcp.tools.batch import MAX_ITEMS
from tests.conftest import settings_for, upstream_calls

pytestmark = pytest.mark.anyio
HANG_S = 60.0


@pytest.fixture
def fast(emulator: Emulator) -> Emulator:
    emulator.config.batch_validating = 0.1
    emulator.config.batch_item_seconds = 0.01
    emulator.config.batch_finalizing = 0.1
    return emulator


async def client_for(emulator: Emulator, data_dir: Path, **env: str) -> AsyncIterator[Client]:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="core,batch,usage", **env)
    async with Client(create_server(settings)) as client:
        yield client


@pytest.fixture
async def client(fast: Emulator, data_dir: Path) -> AsyncIterator[Client]:
    async for client in client_for(fast, data_dir, GLM_MAX_RESULT_CHARS="1000"):
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def ended(client: Client, job_id: str) -> dict[str, Any]:
    with anyio.fail_after(HANG_S):
        while (result := await call(client, "get_result", {"task_id": job_id, "wait_seconds": 5}))[
            "status"
        ] == "running":
            pass
    return result


async def every_answer(client: Client, job_id: str) -> tuple[dict[str, str], dict[str, str], int]:
    """Each item's text, read page after page from next_offset, each item's status, and how many pages."""
    texts: dict[str, str] = {}
    statuses: dict[str, str] = {}
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = (await call(client, "get_result", {"task_id": job_id, "offset": offset}))["batch"]
        pages += 1
        for answer in page["answers"]:
            texts[answer["custom_id"]] = texts.get(answer["custom_id"], "") + answer.get("text", "")
            statuses[answer["custom_id"]] = answer["status"]
        offset = page.get("next_offset")
    return texts, statuses, pages


def uploaded_lines(emulator: Emulator) -> list[dict[str, Any]]:
    """The JSONL the last batch was made of, as the emulator stored it."""
    created = [e for e in upstream_calls(emulator, "/batches") if e.method == "POST"][-1]
    assert created.body is not None
    upload = emulator.state.upload(created.body["input_file_id"])
    if upload is None:  # deleted once the batch ended (auto_delete_input_file)
        raise AssertionError("the input file is gone")
    return [json.loads(line) for line in upload.data.decode().splitlines()]


async def test_prompts_run_as_one_batch_and_every_answer_comes_back_paged(client: Client, fast: Emulator) -> None:
    prompts = [f"Classify issue {i}: the build is slow" for i in range(12)]
    prompts[3] += f" {FAIL_MARKER}"
    prompts[7] += f" {SENSITIVE_MARKER}"
    started = await call(client, "batch", {"prompts": prompts, "model": "glm-4.6", "system": "Be brief."})
    assert started["status"] == "running" and started["items"] == 12 and started["job_id"].startswith("job_")
    job_id, batch_id = started["job_id"], started["batch_id"]
    lines = uploaded_lines(fast)
    assert [line["custom_id"] for line in lines] == [f"item-{i:04d}" for i in range(1, 13)]
    assert all(line["url"] == "/v4/chat/completions" and line["method"] == "POST" for line in lines)
    assert lines[0]["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": prompts[0]},
    ]

    result = await ended(client, job_id)
    report = result["batch"]
    assert result["status"] == "completed" and report["batch_id"] == batch_id
    assert (report["total"], report["answered"], report["failed"]) == (12, 10, 2)

    # Every page, read on from next_offset, holds the answers whole and in order.
    texts, statuses, pages = await every_answer(client, job_id)
    assert list(statuses) == [f"item-{i:04d}" for i in range(1, 13)]
    assert pages > 2  # 1,000 characters a page (GLM_MAX_RESULT_CHARS)
    batch = fast.state.batch(batch_id)
    assert batch is not None
    expected = {
        line.custom_id: line.output["response"]["body"]["choices"][0]["message"]["content"]
        for line in batch.lines
        if line.output
    }
    assert {k: v for k, v in texts.items() if statuses[k] == "answered"} == expected
    assert statuses["item-0004"] == statuses["item-0008"] == "failed"

    listed = await call(client, "list_jobs", {})
    assert [(j["job_id"], j["kind"], j["status"]) for j in listed["jobs"]] == [(job_id, "batch", "completed")]


async def test_the_batch_costs_half_the_chat_price_in_usage(client: Client, fast: Emulator) -> None:
    started = await call(client, "batch", {"prompts": ["one", "two", "three"], "model": "glm-4.6"})
    await ended(client, started["job_id"])
    report = await call(client, "usage", {"by": "model"})
    (row,) = report["rows"]
    assert row["model"] == "glm-4.6@batch" and row["calls"] == 3
    batch = fast.state.batch(started["batch_id"])
    assert batch is not None
    usages = [line.output["response"]["body"]["usage"] for line in batch.lines if line.output]
    prompt, completion = sum(u["prompt_tokens"] for u in usages), sum(u["completion_tokens"] for u in usages)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    chat = PRICES["glm-4.6"]
    assert isinstance(chat, Price)
    assert row["cost"] == pytest.approx((prompt * chat.input + completion * chat.output) / 1e6 / 2, abs=1e-6)


def test_a_batch_price_is_half_unless_the_table_says_otherwise() -> None:
    assert price_of("glm-4.6@batch", PRICES) == Price(0.3, 1.1)
    assert price_of("glm-4.7-flash@batch", PRICES) == Price(0.0, 0.0)
    assert price_of("no-such-model@batch", PRICES) is None
    table = {**PRICES, **parse_prices("glm-4.6@batch=0.25/1")}
    assert price_of("glm-4.6@batch", table) == Price(0.25, 1.0)


async def test_one_instruction_over_files_is_one_request_per_file(
    fast: Emulator, data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "work"
    (root / "docs").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (root / "docs" / f"{name}.md").write_text(f"# {name}\nThe {name} file's own text.\n")
    async for client in client_for(fast, data_dir, GLM_FILES_ROOTS=str(root)):
        started = await call(client, "batch", {"instruction": "Summarise this file.", "files": ["docs/*.md"]})
        assert [f["path"] for f in started["files"]] == ["docs/a.md", "docs/b.md", "docs/c.md"]
        lines = uploaded_lines(fast)
        for line, name in zip(lines, "abc", strict=True):
            (message,) = line["body"]["messages"]
            assert message["content"].startswith('Summarise this file.\n\n<file path="docs/' + name)
            assert f"The {name} file's own text." in message["content"]
            assert "The " + next(n for n in "abc" if n != name) + " file" not in message["content"]
        result = await ended(client, started["job_id"])
    assert [a["item"] for a in result["batch"]["answers"]] == ["file docs/a.md", "file docs/b.md", "file docs/c.md"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({}, "prompts"),
        ({"prompts": ["one", "  "]}, "prompts"),
        ({"prompts": ["one"], "files": ["*.md"], "instruction": "x"}, "prompts"),
        ({"files": ["*.md"]}, "instruction"),
        ({"prompts": ["x"] * (MAX_ITEMS + 1)}, "prompts"),
        ({"cancel": "job_1", "prompts": ["one"]}, "cancel"),
    ],
)
async def test_refused_arguments_send_nothing(
    client: Client, fast: Emulator, arguments: dict[str, Any], field: str
) -> None:
    result = await client.call_tool("batch", arguments)
    assert result.is_error and result.structured_content is not None
    assert (
        result.structured_content["error"] == "invalid_argument" and f"`{field}" in result.structured_content["message"]
    )
    assert upstream_calls(fast) == []


async def test_a_cancel_reaches_the_platform_and_the_job_ends_cancelled(client: Client, fast: Emulator) -> None:
    fast.config.batch_item_seconds = 0.2
    started = await call(client, "batch", {"prompts": [f"q{i}" for i in range(40)]})
    job_id, batch_id = started["job_id"], started["batch_id"]
    with anyio.fail_after(HANG_S):
        while (await call(client, "get_result", {"task_id": job_id, "wait_seconds": 0}))["batch"].get(
            "answered", 0
        ) < 2:
            await anyio.sleep(0.1)
    stopping = await call(client, "batch", {"cancel": job_id})
    assert stopping["platform_status"] == "cancelling" and stopping["job_id"] == job_id
    assert [e.method for e in upstream_calls(fast, f"/batches/{batch_id}/cancel")] == ["POST"]
    result = await ended(client, job_id)
    report = result["batch"]
    assert result["status"] == "cancelled" and report["platform_status"] == "cancelled"
    assert report["answered"] >= 2 and report["not_run"] == 40 - report["answered"]
    _, statuses, _ = await every_answer(client, job_id)
    assert len(statuses) == 40 and set(statuses.values()) == {"answered", "not_run"}
    again = await call(client, "batch", {"cancel": job_id})
    assert "already ended" in again["note"]
    unknown = await client.call_tool("batch", {"cancel": "job_nobody"})
    assert unknown.is_error and unknown.structured_content and unknown.structured_content["error"] == "unknown_job"
