"""What the model reads through Claude Code, the most common client of this server, driven headless.

`claude -p` runs for real (the npm package, pinned, installed on first use), with our server from an
`--mcp-config` (stdio, `python -m glm_mcp` against the GLM emulator, behind a recording shim) and
`ANTHROPIC_BASE_URL` at a scripted fake of the Messages API (tests/fake_anthropic.py). The fake
plays the model: it loads our tool through ToolSearch (Claude Code defers MCP tools), calls it, and
ends the turn. The next Messages request Claude Code sends carries the `tool_result`: exactly what
a real model would have read. The shim (tests/mcp_shim.py) records every JSON-RPC line and every
signal our server got.

Claude Code needs no network here beyond loopback: the variables in `claude_env` turn off its
auto-updater, telemetry, error reports and the other traffic it makes at start, and a dummy API key
with a base URL is all the login it asks for.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from tests.claude_headless import SERVER, claude_print
from tests.conftest import GENERAL_KEY, settings_for
from tests.fake_anthropic import Block, CallOneTool, FakeAnthropic
from tests.processes import COMMAND, scratch_dir, server_env

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="the recording shim uses Linux's parent-death signal; Claude Code is x64 here"
)

CALL_ID = CallOneTool.block_id
SHIM = Path(__file__).with_name("mcp_shim.py")
PROTOCOL = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
SLOW_CHUNKS_S = 0.2
"""Between two chunks of the emulator's stream, for a chat that outlives its wait."""
HANDED_OFF = {"prompt": "Tell me about rivers.", "wait_seconds": 1, "thinking": "disabled"}
"""A chat that is still generating when its wait runs out, with some of its answer written (no reasoning first)."""
REQUEST_ID = re.compile(r"glm-mcp-[0-9a-f]{32}")


@dataclass
class Run:
    """One `claude -p` session: the fake model's view, our server's view, Claude Code's own output."""

    fake: FakeAnthropic = field(repr=False)
    events: list[dict[str, Any]] = field(repr=False)
    completed: subprocess.CompletedProcess[str] = field(repr=False)
    debug_log: str = field(repr=False)
    """Claude Code's own log (`--debug-file`): what it did with our server, and when it signalled it."""

    def tool_result(self) -> Block:
        """The `tool_result` block Claude Code sent its model for our tool's call."""
        return self.fake.result_for(CALL_ID)

    def model_read(self) -> str:
        """The text of that tool_result: what the model reads."""
        content = self.tool_result()["content"]
        if isinstance(content, str):
            return content
        return "".join(block["text"] for block in content if block.get("type") == "text")

    def received(self, method: str) -> list[dict[str, Any]]:
        """The JSON-RPC requests with `method` that our server received from Claude Code."""
        messages = [json.loads(e["line"]) for e in self.events if e["event"] == "in" and e["line"].strip()]
        return [m for m in messages if m.get("method") == method]

    def answered(self, request_id: object) -> dict[str, Any]:
        """Our server's answer to the request `request_id`."""
        for event in self.events:
            if event["event"] == "out" and (message := json.loads(event["line"])).get("id") == request_id:
                return dict(message)
        raise LookupError(f"no answer to {request_id!r}")

    def at(self, event: str) -> list[float]:
        return [e["t"] for e in self.events if e["event"] == event]

    def signals(self) -> list[tuple[str, float]]:
        return [(e["name"], e["t"]) for e in self.events if e["event"] == "signal"]


def run_claude(
    claude: Path,
    emulator: Emulator,
    tmp_path: Path,
    arguments: dict[str, Any],
    tool: str = "chat",
    end_after: float = 0.0,
    **server_vars: str,
) -> Run:
    """`claude -p` with our server on `emulator`, the model scripted to call `tool` with `arguments` once
    (and to end its turn `end_after` seconds after the result)."""
    home = tmp_path / "home"
    home.mkdir()
    shim_log = tmp_path / "shim.jsonl"
    debug_log = tmp_path / "claude-debug.log"
    # Claude Code starts the server with an environment of its own plus this `env`: only GLM_ settings.
    env = {
        k: v
        for k, v in server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, **server_vars).items()
        if k.startswith("GLM_")
    }
    server = {
        "type": "stdio",
        "command": sys.executable,
        "args": [str(SHIM), str(shim_log), "--", *COMMAND],
        "env": {**env, "PYTHONUNBUFFERED": "1"},
    }
    with FakeAnthropic(CallOneTool(f"mcp__{SERVER}__{tool}", arguments, end_after=end_after)) as fake:
        completed = claude_print(claude, home, fake, server, tool, debug_log)
    events = [json.loads(line) for line in shim_log.read_text().splitlines()]
    return Run(fake, events, completed, debug_log.read_text() if debug_log.exists() else "")


def _same_request(text: str) -> str:
    """`text` with the request ids (one per request) made the same."""
    return REQUEST_ID.sub("glm-mcp-<request id>", text)


def _wait_gone(pid: int, timeout: float = 15) -> None:
    """Until process `pid` (not our child: the shim's) has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} still running")


@pytest.fixture
def slow(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator generating slowly: a chat outlives a short wait."""
    emulator.config.chunk_delay = SLOW_CHUNKS_S
    yield emulator


# What the model reads ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_successful_call_hands_the_model_our_structured_content_json(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    arguments = {"prompt": "Name three rivers in China."}
    run = run_claude(claude, emulator, tmp_path, arguments)
    read = run.model_read()
    emulator.state.clear()  # the platform's prompt cache too: the same call, as new
    async with Client(create_server(settings_for(emulator, GLM_DATA_DIR=scratch_dir()))) as client:
        direct = await client.call_tool("chat", arguments)
    assert not direct.is_error and direct.structured_content is not None
    text_copy = "".join(getattr(block, "text", "") for block in direct.content)

    assert "is_error" not in run.tool_result()
    given = json.loads(read)  # JSON: our structuredContent, not the text copy
    expected = dict(direct.structured_content)
    assert given.keys() == expected.keys()
    assert given.pop("request_id") != expected.pop("request_id")  # a request of its own, the same answer
    assert given.pop("conversation_id") != expected.pop("conversation_id")  # each call starts its own
    assert given == expected
    assert read != text_copy and given["text"] in text_copy


@pytest.mark.anyio
async def test_a_failing_call_hands_the_model_our_text_copy(claude: Path, emulator: Emulator, tmp_path: Path) -> None:
    emulator.inject("error:1113", path="/chat/completions")  # insufficient balance: not retried
    arguments = {"prompt": "Name three rivers in China."}
    run = run_claude(claude, emulator, tmp_path, arguments)
    emulator.inject("error:1113", path="/chat/completions")
    async with Client(create_server(settings_for(emulator, GLM_DATA_DIR=scratch_dir()))) as client:
        direct = await client.call_tool("chat", arguments)
    assert direct.is_error and direct.structured_content is not None
    text_copy = "".join(getattr(block, "text", "") for block in direct.content)

    assert run.tool_result().get("is_error") is True
    read = run.model_read()
    assert _same_request(read) == _same_request(text_copy)  # the text copy, whole, and nothing else
    assert read.startswith("Error: ")  # what went wrong first…
    hint = direct.structured_content["hint"]
    assert hint and hint in read  # …then what to do


@pytest.mark.anyio
async def test_a_call_with_a_misspelt_argument_hands_the_model_our_text_copy(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    """Claude Code passes the call on as the model wrote it: our own argument check answers it."""
    arguments = {"promt": "Name three rivers in China."}
    run = run_claude(claude, emulator, tmp_path, arguments)
    async with Client(create_server(settings_for(emulator, GLM_DATA_DIR=scratch_dir()))) as client:
        direct = await client.call_tool("chat", arguments)
    assert direct.is_error and direct.structured_content is not None
    text_copy = "".join(getattr(block, "text", "") for block in direct.content)

    assert [c["params"]["arguments"] for c in run.received("tools/call")] == [arguments]
    assert run.tool_result().get("is_error") is True
    read = run.model_read()
    assert _same_request(read) == _same_request(text_copy)
    assert read.startswith("Error: ") and "promt" in read


def test_a_handed_off_call_hands_the_model_the_job_id_and_the_partial_text(
    claude: Path, slow: Emulator, tmp_path: Path
) -> None:
    run = run_claude(claude, slow, tmp_path, HANDED_OFF)
    assert "is_error" not in run.tool_result()
    given = json.loads(run.model_read())
    assert given["status"] == "running"
    assert given["job_id"].startswith("job_")
    assert given["text"]  # the answer so far


def test_a_handed_off_call_tells_the_model_its_next_step_in_what_it_reads(
    claude: Path, slow: Emulator, tmp_path: Path
) -> None:
    """Claude Code drops the text copy of a success, so the call to make next is in the structured content,
    first, and nothing in it is null or empty."""
    given = json.loads(run_claude(claude, slow, tmp_path, HANDED_OFF).model_read())
    assert list(given)[:3] == ["status", "next", "job_id"], given
    assert f'Call get_result with task_id="{given["job_id"]}"' in given["next"]
    assert [name for name, value in given.items() if value in (None, "", [], {})] == []


# The session: protocol, capabilities, and how it ends ---------------------------------------------


def test_claude_code_speaks_2026_07_28_and_declares_no_tasks_extension_in_print_mode(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    run = run_claude(claude, emulator, tmp_path, {"prompt": "Hello"})
    requests = [json.loads(e["line"]) for e in run.events if e["event"] == "in"]
    first = requests[0]
    # No `initialize`: the first request is the 2026-07-28 era's server/discover, each request carrying its version.
    assert first["method"] == "server/discover"
    assert not run.received("initialize")
    assert {r.get("params", {}).get("_meta", {}).get("io.modelcontextprotocol/protocolVersion") for r in requests} == {
        PROTOCOL
    }
    assert TASKS in run.answered(first["id"])["result"]["capabilities"]["extensions"]  # we offer it…
    (call,) = run.received("tools/call")
    capabilities = call["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]
    assert TASKS not in capabilities.get("extensions", {})  # …a -p session does not take it
    assert "task" not in call["params"]


def test_at_exit_claude_code_sends_sigint_then_sigterm_and_keeps_stdin_open(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    """Claude Code sends SIGINT; SIGTERM 0.1 s later if the server is still there; SIGKILL 0.4 s after that.
    It never closes stdin before: the server must stop on the signals alone, and within 0.5 s."""
    run = run_claude(claude, emulator, tmp_path, {"prompt": "Hello"})
    signals = run.signals()
    (sigint, *later) = signals
    assert sigint[0] == "SIGINT", signals
    closed = run.at("in_closed")
    assert not closed or closed[0] > sigint[1]  # stdin stays open: it closes only with Claude Code
    exits = run.at("exit")
    assert exits, "the server did not end within 0.5 s of SIGINT: Claude Code SIGKILLed it (and the shim)"
    if exits[0] - sigint[1] > 0.15:  # still stopping 0.1 s after SIGINT (it always is today)
        assert [name for name, _ in later] == ["SIGTERM"], signals
        assert later[0][1] - sigint[1] >= 0.05, signals


@pytest.mark.anyio
async def test_a_job_in_flight_at_exit_is_interrupted_with_its_partial_text(
    claude: Path, slow: Emulator, tmp_path: Path
) -> None:
    data_dir = scratch_dir()
    # The model ends its turn a little after the hand-off: the answer has grown past what was handed off.
    run = run_claude(claude, slow, tmp_path, HANDED_OFF, end_after=0.5, GLM_DATA_DIR=data_dir)
    handed_off = json.loads(run.model_read())
    assert handed_off["status"] == "running"
    (child,) = [e["pid"] for e in run.events if e["event"] == "child"]
    _wait_gone(child)

    params = StdioServerParameters(
        command=COMMAND[0],
        args=COMMAND[1:],
        env=server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=slow.base_url, GLM_DATA_DIR=data_dir),
    )
    async with Client(params, mode="legacy") as client:
        later = await client.call_tool("get_result", {"task_id": handed_off["job_id"]})
    assert later.structured_content is not None
    result = dict(later.structured_content)
    assert result["status"] == "interrupted", result
    partial = result.get("partial_text") or result.get("text") or ""
    # What had arrived at the signal, saved then: more than the hand-off saved (the next periodic save is 1 s away).
    assert partial.startswith(handed_off["text"]) and len(partial) > len(handed_off["text"]), (partial, handed_off)
