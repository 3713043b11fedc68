"""The batch tool through real server processes: a 50-item batch over stdio and over Streamable HTTP driven by the
SDK's client, a server SIGTERMed mid-batch and started again on the same registry (it takes the batch over and
follows it to its end with no call made), a cancel made in another run reaching the platform, and the TypeScript
SDK's client (what VS Code is built on) running a batch as a task.

Every wait is bounded only to catch a hang; the emulator's batches are made fast or slow as each test needs.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from glm_mcp.emulator import Emulator
from glm_mcp.jobs.batches import RESUME_FIRST_S
from glm_mcp.jobs.open import JOBS_FILE
from glm_mcp.server.auth import CLIENT_KEY_HEADER
from glm_mcp.server.http import MCP_PATH
from rigs.node_tools import TS_SDK, node_env, node_modules
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import COMMAND, http_server, http_server_process, scratch_dir, server_env

pytestmark = pytest.mark.anyio
HANG_S = 90.0
TOOLSETS = "core,batch"


def env_for(emulator: Emulator, data_dir: str | None = None, **variables: str) -> dict[str, str]:
    return server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_DATA_DIR=data_dir or scratch_dir(),
        **{"GLM_MCP_TOOLSETS": TOOLSETS, **variables},
    )


def timing(emulator: Emulator, item_seconds: float) -> None:
    emulator.config.batch_validating = 0.2
    emulator.config.batch_item_seconds = item_seconds
    emulator.config.batch_finalizing = 0.2


@asynccontextmanager
async def stdio_client(env: dict[str, str]) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=env)
    async with Client(params, mode="legacy") as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None, result
    assert not result.is_error, result.structured_content
    return dict(result.structured_content)


async def until_ended(client: Client, job_id: str) -> dict[str, Any]:
    with anyio.fail_after(HANG_S):
        while (result := await call(client, "get_result", {"task_id": job_id, "wait_seconds": 10}))[
            "status"
        ] == "running":
            pass
    return result


def prompts(count: int) -> list[str]:
    return [f"Label issue #{i}: 'the page loads slowly on mobile'" for i in range(count)]


def platform_status(emulator: Emulator, batch_id: str) -> str:
    """The batch as the platform (the emulator) has it now, asked the way a client asks."""
    response = httpx2.get(
        f"{emulator.base_url}/batches/{batch_id}", headers={"Authorization": f"Bearer {GENERAL_KEY}"}, timeout=10
    )
    return str(response.json()["status"])


def registry_row(data_dir: str, job_id: str) -> tuple[str, str | None]:
    """(status, owner) of a job as the registry file has it, read from outside the server."""
    with sqlite3.connect(Path(data_dir) / JOBS_FILE, timeout=10) as db:
        status, owner = db.execute("SELECT status, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return status, owner


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_50_item_batch_completes(transport: str, emulator: Emulator) -> None:
    timing(emulator, 0.02)
    env = env_for(emulator)
    if transport == "stdio":
        async with stdio_client(env) as client:
            started = await call(client, "batch", {"prompts": prompts(50), "model": "glm-4-flash"})
            result = await until_ended(client, started["job_id"])
    else:
        with http_server(env=env) as origin:
            async with Client(origin + "/mcp") as client:
                started = await call(client, "batch", {"prompts": prompts(50), "model": "glm-4-flash"})
                result = await until_ended(client, started["job_id"])
    report = result["batch"]
    assert result["status"] == "completed" and (report["total"], report["answered"]) == (50, 50)
    assert platform_status(emulator, started["batch_id"]) == "completed"


async def test_a_batch_survives_a_sigterm_mid_way_and_the_next_server_follows_it_to_its_end(emulator: Emulator) -> None:
    timing(emulator, 0.15)  # 50 items: about 8 s on the platform
    data_dir = scratch_dir()
    env = env_for(emulator, data_dir)
    with http_server_process(env=env) as (process, origin):
        async with Client(origin + "/mcp") as client:
            started = await call(client, "batch", {"prompts": prompts(50)})
            job_id, batch_id = started["job_id"], started["batch_id"]
            with anyio.fail_after(HANG_S):
                while (await call(client, "get_result", {"task_id": job_id, "wait_seconds": 0}))["batch"][
                    "platform_status"
                ] != "in_progress":
                    await anyio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
    status, first_owner = registry_row(data_dir, job_id)
    assert status == "running" and first_owner is not None  # not interrupted: the platform still runs it
    assert platform_status(emulator, batch_id) in ("in_progress", "finalizing")
    polled_before = len(upstream_calls(emulator, f"/batches/{batch_id}"))

    with http_server_process(env=env) as (_, origin):
        # No call made: the new server takes the batch over and follows it to its end on its own.
        with anyio.fail_after(HANG_S):
            while (row := registry_row(data_dir, job_id))[0] == "running":
                await anyio.sleep(0.2)
        assert row[0] == "completed" and row[1] not in (None, first_owner)
        assert len(upstream_calls(emulator, f"/batches/{batch_id}")) > polled_before
        async with Client(origin + "/mcp") as client:
            result = await call(client, "get_result", {"task_id": job_id})
            listed = await call(client, "list_jobs", {})
    report = result["batch"]
    assert result["status"] == "completed" and (report["total"], report["answered"], report.get("failed", 0)) == (
        50,
        50,
        0,
    )
    assert [(j["job_id"], j["status"]) for j in listed["jobs"]] == [(job_id, "completed")]


async def test_a_cancel_made_in_another_run_reaches_the_platform(emulator: Emulator) -> None:
    timing(emulator, 0.5)  # 40 items: 20 s, far longer than the test needs
    data_dir = scratch_dir()
    env = env_for(emulator, data_dir)
    async with stdio_client(env) as client:
        started = await call(client, "batch", {"prompts": prompts(40)})
    job_id, batch_id = started["job_id"], started["batch_id"]
    assert platform_status(emulator, batch_id) in ("validating", "in_progress")

    async with stdio_client(env) as client:  # another run of the server, on the same registry
        stopping = await call(client, "batch", {"cancel": job_id})
        assert stopping["platform_status"] == "cancelling"
        result = await until_ended(client, job_id)
    assert [e.method for e in upstream_calls(emulator, f"/batches/{batch_id}/cancel")] == ["POST"]
    assert platform_status(emulator, batch_id) == "cancelled"
    report = result["batch"]
    assert result["status"] == "cancelled" and report["platform_status"] == "cancelled"
    assert report["answered"] + report["not_run"] == 40 and report["not_run"] > 0


TS_BATCH = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

(async () => {
  const [command, ...args] = JSON.parse(process.env.SERVER_COMMAND);
  const capabilities = { tasks: { list: {}, cancel: {}, requests: {} } };
  const client = new Client({ name: "glm-mcp-batch-test", version: "0.0.0" }, { capabilities });
  await client.connect(new StdioClientTransport({ command, args, env: JSON.parse(process.env.SERVER_ENV) }));
  const out = (value) => console.log(JSON.stringify(value));
  await client.listTools();  // as a client does first: it learns there which tools may become tasks
  const stream = client.experimental.tasks.callToolStream(
    { name: "batch", arguments: JSON.parse(process.env.ARGUMENTS) }, undefined, { timeout: 120000 });
  for await (const message of stream) out(message);
  out({ listed: (await client.callTool({ name: "list_jobs", arguments: {} })).structuredContent });
  await client.close();
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


async def test_the_typescript_sdk_runs_a_batch_as_a_task(emulator: Emulator) -> None:
    """The TS SDK's client (2025-11-25 tasks, as VS Code speaks them): the batch call becomes a task at once, which
    it follows to the batch's answers."""
    timing(emulator, 0.05)
    env = node_env(
        {
            "NODE_PATH": str(node_modules(TS_SDK)),
            "SERVER_COMMAND": json.dumps(COMMAND),
            "SERVER_ENV": json.dumps(env_for(emulator)),
            "ARGUMENTS": json.dumps({"prompts": prompts(12), "model": "glm-4-flash"}),
        }
    )
    with anyio.fail_after(HANG_S + 60):
        done = await anyio.run_process(["node", "-e", TS_BATCH], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    messages, listed = lines[:-1], lines[-1]["listed"]
    assert messages[0]["type"] == "taskCreated"
    task_id = messages[0]["task"]["taskId"]
    assert task_id.endswith(".batch") and task_id.startswith("job_")
    assert messages[-1]["type"] == "result" and not messages[-1]["result"].get("isError")
    report = messages[-1]["result"]["structuredContent"]["batch"]
    assert report["platform_status"] == "completed" and (report["total"], report["answered"]) == (12, 12)
    assert [a["custom_id"] for a in report["answers"]][:1] == ["item-0001"]
    assert [(j["job_id"], j["kind"], j["status"]) for j in listed["jobs"]] == [
        (task_id.removesuffix(".batch"), "batch", "completed")
    ]


SECOND_KEY = "second.key-general-of-another-caller"
TOKEN = "batch-tests-token-0123456789abcdef"


async def call_as(origin: str, key: str | None, tool: str, arguments: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", **({CLIENT_KEY_HEADER: key} if key else {})}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(origin + MCP_PATH, http_client=http)) as client,
    ):
        return await client.call_tool(tool, arguments)


async def test_a_batch_of_a_callers_own_key_is_theirs_and_only_their_key_follows_it(emulator: Emulator) -> None:
    """Made with a caller's own key: another caller cannot read or cancel it; after a restart no process takes it
    over with the server's key (which cannot read it), and the caller's next get_result follows it, with their key."""
    keys = emulator.config.api_keys
    emulator.config.api_keys = (*keys, SECOND_KEY)
    try:
        timing(emulator, 0.05)
        data_dir = scratch_dir()
        env = env_for(emulator, data_dir, GLM_MCP_HTTP_TOKEN=TOKEN, GLM_MCP_ALLOW_CLIENT_KEYS="true")
        with http_server_process(env=env) as (process, origin):
            started = await call_as(origin, SECOND_KEY, "batch", {"prompts": prompts(30)})
            assert not started.is_error, started.structured_content
            job_id, batch_id = started.structured_content["job_id"], started.structured_content["batch_id"]
            for tool, arguments in (("get_result", {"task_id": job_id}), ("batch", {"cancel": job_id})):
                other = await call_as(origin, None, tool, arguments)
                assert other.is_error and other.structured_content["error"] == "unknown_job"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) is not None
        _, first_owner = registry_row(data_dir, job_id)
        with http_server_process(env=env) as (_, origin):
            await anyio.sleep(RESUME_FIRST_S + 2)  # past the new server's first look for batches to take over
            assert registry_row(data_dir, job_id) == ("running", first_owner)  # not with the server's key
            result = await call_as(origin, SECOND_KEY, "get_result", {"task_id": job_id, "wait_seconds": 60})
        assert not result.is_error and result.structured_content["status"] == "completed"
        assert result.structured_content["batch"]["answered"] == 30
        signed = {e.headers["authorization"] for e in upstream_calls(emulator) if batch_id in e.path}
        assert signed == {f"Bearer {SECOND_KEY}"}
    finally:
        emulator.config.api_keys = keys


async def test_a_server_without_the_batch_toolset_takes_no_batch_over(emulator: Emulator) -> None:
    timing(emulator, 0.15)
    data_dir = scratch_dir()
    with http_server_process(env=env_for(emulator, data_dir)) as (process, origin):
        async with Client(origin + "/mcp") as client:
            started = await call(client, "batch", {"prompts": prompts(50)})
            job_id, batch_id = started["job_id"], started["batch_id"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
    _, first_owner = registry_row(data_dir, job_id)
    polled_before = len(upstream_calls(emulator, f"/batches/{batch_id}"))

    # Start-up work only a batch server does: a core server never looks for batches to take over.
    with http_server_process(env=env_for(emulator, data_dir, GLM_MCP_TOOLSETS="core")):
        await anyio.sleep(3 * 2.0)  # three times the first look of a batch server (RESUME_FIRST_S)
        assert registry_row(data_dir, job_id) == ("running", first_owner)
        assert len(upstream_calls(emulator, f"/batches/{batch_id}")) == polled_before
