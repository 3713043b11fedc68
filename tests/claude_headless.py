"""Claude Code run headless for the tests (tests/test_claude_code.py over stdio, tests/test_claude_code_http.py over
Streamable HTTP): the pinned executable, an environment that reaches nothing but loopback, and one `claude -p`
session whose model is a scripted fake (tests/fake_anthropic.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from rigs.node_tools import CLAUDE_CODE, NODE, bin_path
from tests.fake_anthropic import FakeAnthropic

SERVER = "glm"
"""The name our server has in the MCP config: Claude Code calls its tools mcp__glm__<tool>."""


def claude_executable() -> Path:
    """Claude Code's executable, installed from npm on first use."""
    return bin_path(CLAUDE_CODE, "claude")


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    """Nothing from the developer's environment (no key, no settings): a fresh HOME and config dir,
    the fake for the API, and everything Claude Code would fetch from elsewhere turned off."""
    return {
        "PATH": f"{bin_path(NODE, 'node').parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def claude_print(
    claude: Path,
    home: Path,
    fake: FakeAnthropic,
    server: dict[str, Any],
    tool: str,
    debug_log: Path,
    also_allowed: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`claude -p` with only `server` (an `mcpServers` entry) configured, allowed to call its `tool` (and Claude
    Code's own tools `also_allowed`); the model is `fake`. Claude Code's own log goes to `debug_log`."""
    completed = subprocess.run(
        [
            str(claude),
            "-p",
            f"Use the {tool} tool of the {SERVER} server.",
            "--mcp-config",
            json.dumps({"mcpServers": {SERVER: server}}),
            "--strict-mcp-config",
            "--allowedTools",
            f"mcp__{SERVER}__{tool}",
            *also_allowed,
            "--output-format",
            "json",
            "--no-session-persistence",
            "--debug-file",
            str(debug_log),
        ],
        env=claude_env(home, fake.base_url),
        cwd=home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    assert not fake.unknown_paths(), fake.unknown_paths()
    return completed


def claude_mcp_get(claude: Path, home: Path, server: dict[str, Any]) -> str:
    """What `claude mcp get` shows the user for `server` once added (user scope, in `home`): it connects to check."""
    home.mkdir(exist_ok=True)
    add = ["mcp", "add-json", "-s", "user", SERVER, json.dumps(server)]
    return claude_commands(claude, home, add, ["mcp", "get", SERVER]).stdout


def claude_shell(
    claude: Path, home: Path, line: str, cwd: Path | None = None, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`line` run by bash as a user types it, `claude` on PATH, in `home` (as `claude_commands`) with `variables`
    set (what a line names as `$VARIABLE`): the shell splits and expands it, Claude Code parses it, the test
    neither. Its outcome, whatever it is, so the test can show what Claude Code said."""
    env = claude_env(home, "http://127.0.0.1:9")
    env = {**env, "PATH": f"{claude.parent}{os.pathsep}{env['PATH']}", **variables}
    return subprocess.run(
        ["bash", "-c", line],
        env=env,
        cwd=cwd or home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def claude_added_servers(home: Path, project: Path | None = None) -> dict[str, Any]:
    """The servers `claude mcp add` stored for `project` (default `home`) in local scope: Claude Code's own reading
    of the command line, from the file it keeps them in (`.claude.json` in its config dir)."""
    stored = json.loads((home / ".claude" / ".claude.json").read_text())
    return dict(stored["projects"][str((project or home).resolve())].get("mcpServers", {}))


def claude_commands(claude: Path, home: Path, *commands: list[str]) -> subprocess.CompletedProcess[str]:
    """Claude Code's own CLI run with each of `commands` in turn, in `home` (the user's configuration is never
    touched, and no model is asked); each must succeed. The last one's outcome."""
    env = claude_env(home, "http://127.0.0.1:9")
    completed: subprocess.CompletedProcess[str] | None = None
    for command in commands:
        completed = subprocess.run(
            [str(claude), *command],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, (command, completed.stdout, completed.stderr)
    assert completed is not None
    return completed
