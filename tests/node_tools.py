"""Outside checkers from the npm registry (MCP Inspector, conformance suite, mcpb), run on Node 22.

The machine's own Node is 20; these tools need 22, which `npm i node@22` brings. Everything is
installed on first use into `.cache/node-tools/` in the checkout and reused afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "node-tools"
TS_SDK = "@modelcontextprotocol/sdk@1.32.2"
"""The TypeScript MCP SDK, the client VS Code and many others are built on: scripts `require` it."""
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
"""The MCP Inspector, whose CLI (`mcp-inspector --cli`) lists and calls a server's tools from a shell."""
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332"
"""Claude Code, the most common client of this server: a native binary the package's postinstall puts in place."""


def _install(spec: str) -> Path:
    """`npm i <spec>` into its own prefix (once); returns the prefix's node_modules/.bin."""
    prefix = CACHE / re.sub(r"[^A-Za-z0-9.@-]+", "_", spec)
    bin_dir = prefix / "node_modules" / ".bin"
    if not (prefix / ".installed").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install the outside MCP checkers (apt-get install npm)")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(prefix), spec],
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
        (prefix / ".installed").touch()
    return bin_dir


def bin_path(spec: str, command: str) -> Path:
    """The executable `command` of package `spec`, installed (once), to run with an environment of the caller's own."""
    return _install(spec) / command


def node_modules(spec: str) -> Path:
    """The node_modules directory `spec` is installed in (once), for NODE_PATH."""
    return _install(spec).parent


def node_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with Node 22 first on PATH."""
    node_bin = _install("node@22")
    return {**os.environ, "PATH": f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}", **(extra or {})}


def run_node_tool(
    spec: str,
    command: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `command` (a bin of package `spec`, e.g. "@modelcontextprotocol/inspector@2.12.0") on Node 22."""
    bin_dir = _install(spec)
    return subprocess.run(
        [str(bin_dir / command), *args],
        env=node_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
