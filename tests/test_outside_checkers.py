"""The server judged by outside tools from npm, on Node 22: the official MCP conformance suite
against the HTTP server, and the MCP Inspector CLI calling every tool over stdio and over HTTP.

The conformance suite cannot send a bearer token, so it checks a loopback server without one
(the only place the server runs without a token); the Inspector checks the token-protected setup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from glm_mcp.server.http import MCP_PATH
from rigs.node_tools import CONFORMANCE, INSPECTOR, run_node_tool
from tests.conftest import GENERAL_KEY, settings_for
from tests.live_tools import Result, call_every_tool, calls_through, listed_tools, same_arguments
from tests.processes import COMMAND, http_server, scratch_dir, server_env

TOKEN = "outside-checkers-token-0123456789"

ANY_SERVER = ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]
WITH_SESSIONS = [*ANY_SERVER, "server-sse-multiple-streams"]
"""server-sse-multiple-streams runs on the session a server hands out, so it applies to sessionful mode only."""


@pytest.mark.parametrize(("mode", "scenarios"), [("--stateless", ANY_SERVER), ("--sessionful", WITH_SESSIONS)])
def test_the_conformance_suite_passes(emulator: Emulator, tmp_path: Path, mode: str, scenarios: list[str]) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    with http_server(mode, env=env) as origin:
        reports = {scenario: _conformance(origin + MCP_PATH, scenario, tmp_path / scenario) for scenario in scenarios}
    for scenario, checks in reports.items():
        assert checks and all(check["status"] in ("SUCCESS", "INFO") for check in checks), (scenario, checks)
        assert any(check["status"] == "SUCCESS" for check in checks), (scenario, checks)


def _conformance(url: str, scenario: str, output: Path) -> list[dict[str, Any]]:
    run = run_node_tool(CONFORMANCE, "conformance", "server", "--url", url, "--scenario", scenario, "-o", str(output))
    assert run.returncode == 0, run.stdout + run.stderr
    (checks,) = output.glob("*/checks.json")
    return list(json.loads(checks.read_text()))


class Inspector:
    """`mcp-inspector --cli` pointed at one server; each method is one run of the CLI."""

    def __init__(self, target: list[str], home: Path) -> None:
        self._target = target
        self._env = {"HOME": str(home)}  # its catalog and client config stay out of the developer's home

    def run(self, *args: str) -> dict[str, Any]:
        run = run_node_tool(
            INSPECTOR,
            "mcp-inspector",
            "--cli",
            *self._target,
            *args,
            "--connect-timeout",  # its default, 30 s, is short of a server starting while pytest's workers are busy
            "120000",
            "--format",
            "json",
            "-q",
            env=self._env,
            timeout=120,
        )
        answer = json.loads(run.stdout or run.stderr)
        assert isinstance(answer, dict)
        return answer

    async def call(self, name: str, arguments: dict[str, Any]) -> Result:
        """The call's result; an error the Inspector reports instead counts as a failed call."""
        answer = await anyio.to_thread.run_sync(
            lambda: self.run("--method", "tools/call", "--tool-name", name, "--tool-args-json", json.dumps(arguments))
        )
        return dict(answer["result"]) if "result" in answer else {"isError": True, "inspector": answer}


async def _lists_and_calls_every_tool(inspector: Inspector, emulator: Emulator) -> None:
    """The Inspector lists what the server itself lists, and every tool answers it without error.

    The arguments are found in process first (an Inspector run per attempt would be slow), then
    replayed by the Inspector.
    """
    async with Client(create_server(settings_for(emulator))) as client:
        tools = await listed_tools(client)
        working = await call_every_tool(tools, calls_through(client))
    listed = inspector.run("--method", "tools/list")
    assert [tool["name"] for tool in listed["result"]["tools"]] == [tool["name"] for tool in tools], listed
    outcomes = await call_every_tool(tools, inspector.call, same_arguments(working))
    failures = {name: result for name, (_, result) in outcomes.items() if result.get("isError")}
    assert set(outcomes) == {tool["name"] for tool in tools} and not failures, failures


@pytest.mark.anyio
async def test_the_inspector_calls_every_tool_over_stdio(emulator: Emulator, tmp_path: Path) -> None:
    env = {"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url, "GLM_DATA_DIR": scratch_dir()}
    variables = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    await _lists_and_calls_every_tool(Inspector([*variables, *COMMAND], tmp_path), emulator)


@pytest.mark.anyio
async def test_the_inspector_calls_every_tool_over_http_with_the_token(emulator: Emulator, tmp_path: Path) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_HTTP_TOKEN=TOKEN)
    with http_server(env=env) as origin:
        target = [origin + MCP_PATH, "--transport", "http"]
        refused = Inspector(target, tmp_path).run("--method", "tools/list")
        assert refused["error"]["code"] == "auth_required", refused
        inspector = Inspector([*target, "--header", f"Authorization: Bearer {TOKEN}"], tmp_path)
        await _lists_and_calls_every_tool(inspector, emulator)


@pytest.mark.anyio
async def test_the_inspector_accepts_our_error_results(emulator: Emulator, tmp_path: Path) -> None:
    """An isError result's structuredContent conforms to the tool's outputSchema too, which the Inspector checks."""
    env = {"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url, "GLM_DATA_DIR": scratch_dir()}
    variables = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    inspector = Inspector([*variables, *COMMAND], tmp_path)
    result = await inspector.call("chat", {"prompt": "hi", "model": "glm-9000"})
    assert result.get("isError") is True and "inspector" not in result, result
    assert result["structuredContent"]["glm_code"] == "1211"
