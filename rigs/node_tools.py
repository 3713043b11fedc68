"""Outside checkers from the npm registry (MCP Inspector, conformance suite, mcpb, Claude Code, ...), run on Node 22.

The machine's own Node is 20; these tools need 22, which `npm i node@22` brings. Each package is installed into its
own prefix in `.cache/node-tools/` of the checkout and reused afterwards. `scripts/test` installs them all before
the tests start (`python -m rigs.node_tools`, beside pip); a test still installs what is missing on first use.
Installs of one package are serialized by a lock file, since several pytest workers (or checkouts sharing the
cache) may ask for it at once and two `npm install`s into one prefix break each other.

Usage: python -m rigs.node_tools   # install every package of PACKAGES that is missing, at once
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "node-tools"
NODE = "node@22"
"""Node 22, which the tools below need (the machine's own Node is 20)."""
TS_SDK = "@modelcontextprotocol/sdk@1.32.2"
"""The TypeScript MCP SDK, the client VS Code and many others are built on: scripts `require` it."""
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
"""The MCP Inspector, whose CLI (`mcp-inspector --cli`) lists and calls a server's tools from a shell."""
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332"
"""Claude Code, the most common client of this server: a native binary the package's postinstall puts in place."""
MCPB = "@anthropic-ai/mcpb@2.1.2"
"""The Claude Desktop bundle's own tool: `mcpb validate` and `mcpb pack`."""
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.16"
"""The official MCP conformance suite, run against the HTTP server."""
OIDC_PROVIDER = "oidc-provider@9.13.3"
"""A real OpenID provider for the sign-in tests (tests/oidc.py)."""
PACKAGES = (NODE, TS_SDK, CLAUDE_CODE, MCPB, INSPECTOR, CONFORMANCE, OIDC_PROVIDER)
"""Every package the tests use: `scripts/test` installs them before the run, and no other can be installed."""


def _install(spec: str) -> Path:
    """`npm i <spec>` into its own prefix (once); returns the prefix's node_modules/.bin."""
    if spec not in PACKAGES:
        raise ValueError(f"{spec} is not in rigs.node_tools.PACKAGES: add it there, so scripts/test installs it")
    prefix = CACHE / re.sub(r"[^A-Za-z0-9.@-]+", "_", spec)
    bin_dir = prefix / "node_modules" / ".bin"
    if (prefix / ".installed").exists():
        return bin_dir
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the outside MCP checkers (apt-get install npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the process holding it dies
        if not (prefix / ".installed").exists():  # another process may have installed it while this one waited
            prefix.mkdir(exist_ok=True)
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
    node_bin = _install(NODE)
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


def install_all() -> int:
    """Install every package of PACKAGES at once (npm waits on the network, not the CPU); 1 if one failed."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(PACKAGES)) as pool:
        outcomes = dict(zip(PACKAGES, pool.map(_try_install, PACKAGES), strict=True))
    failed = {spec: failure for spec, failure in outcomes.items() if failure}
    for spec, failure in failed.items():
        print(f"rigs.node_tools: {spec} failed to install: {failure}", file=sys.stderr)
    ready = len(PACKAGES) - len(failed)
    print(
        f"rigs.node_tools: {ready} of {len(PACKAGES)} packages ready in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return 1 if failed else 0


def _try_install(spec: str) -> str:
    try:
        _install(spec)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return str(exc)
    return ""


if __name__ == "__main__":
    sys.exit(install_all())
