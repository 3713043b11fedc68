"""A batch as an MCP task on the raw 2026-07-28 wire (`io.modelcontextprotocol/tasks`), each message checked against
the extension's JSON Schema: the batch call becomes a task at once, tasks/get follows the platform's progress to the
batch's answers, and tasks/cancel, sent to another run of the server, cancels the batch on the platform."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from glm_mcp.emulator import Emulator
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import scratch_dir, server_env
from tests.test_tasks import conforms, poll, stdio_server

pytestmark = pytest.mark.anyio


def env_for(emulator: Emulator, data_dir: str, item_seconds: float) -> dict[str, str]:
    emulator.config.batch_validating = 0.2
    emulator.config.batch_item_seconds = item_seconds
    emulator.config.batch_finalizing = 0.2
    return server_env(
        GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="core,batch", GLM_DATA_DIR=data_dir
    )


def arguments(count: int) -> dict[str, Any]:
    return {"name": "batch", "arguments": {"prompts": [f"Question {i}" for i in range(count)], "model": "glm-4-flash"}}


async def test_a_batch_call_is_a_task_that_ends_with_the_batchs_answers(emulator: Emulator) -> None:
    env = env_for(emulator, scratch_dir(), 0.1)
    async with stdio_server(env) as (wire, _):
        answer = await wire("tools/call", arguments(10))
        created = answer["result"]
        conforms("CreateTaskResult", created)
        assert created["resultType"] == "task" and created["status"] == "working"
        task_id = created["taskId"]
        assert task_id.startswith("job_") and task_id.endswith(".batch")
        states = await poll(wire, task_id)
    messages = [state["statusMessage"] for state in states[:-1]]
    assert any(message.startswith("batch in_progress: ") for message in messages), messages
    final = states[-1]
    assert final["status"] == "completed" and not final["result"].get("isError")
    report = final["result"]["structuredContent"]["batch"]
    assert report["platform_status"] == "completed" and (report["total"], report["answered"]) == (10, 10)


async def test_tasks_cancel_sent_to_another_run_cancels_the_batch_on_the_platform(emulator: Emulator) -> None:
    data_dir = scratch_dir()
    env = env_for(emulator, data_dir, 0.5)  # 30 items: 15 s, far longer than the test needs
    async with stdio_server(env) as (wire, _):
        task_id = (await wire("tools/call", arguments(30)))["result"]["taskId"]
    async with stdio_server(env) as (wire, _):  # another run, on the same registry
        cancelled = await wire("tasks/cancel", {"taskId": task_id})
        assert cancelled["result"]["resultType"] == "complete", cancelled
        states = await poll(wire, task_id)
    assert states[-1]["status"] == "cancelled" and "result" not in states[-1]
    (cancel,) = [e for e in upstream_calls(emulator, "/cancel") if e.method == "POST"]
    batch_id = cancel.path.split("/")[-2]
    with anyio.fail_after(10):
        status = httpx2.get(
            f"{emulator.base_url}/batches/{batch_id}", headers={"Authorization": f"Bearer {GENERAL_KEY}"}
        ).json()["status"]
    assert status == "cancelled"
