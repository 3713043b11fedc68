"""Two more servers doing the same call, measured in the same run as glm-mcp and its floor (issue 25).

- The peer `glm-mcp` 0.8.1 from the package index (bench/context.py installs it into `.cache/bench/`): FastMCP
  4, its tool `glm_chat(message, model)`, a plain function FastMCP runs on a worker thread, which makes one
  unstreamed request through the `openai` client (its own defaults: temperature 0.7, max_tokens 2048,
  top_p 0.95), pointed at the emulator by `GLM_API_KEY` and `GLM_BASE_URL`.
- A Node server on the TypeScript SDK (bench/node_server.mjs; Node 22 and the SDK installed by
  `rigs.node_tools` into `.cache/node-tools/`), whose tool `chat(prompt)` makes the same streamed request as
  the bare Python server's and returns its text.

Both are measured over stdio with the raw JSON-RPC client, beside the bare Python server
(`python -m bench.bare_server`), which is the floor of their figures. They are for comparison: no target.
When one cannot be installed or started here, its figures are left out and the run says why.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.clients import PROMPT, cold_start
from bench.context import PEER, peer_command, peer_env
from bench.processes import cpu_seconds, shown

ROOT = Path(__file__).resolve().parents[1]
NODE_SERVER = Path(__file__).with_name("node_server.mjs")
ROUNDS = 5
"""CPU per call is read from /proc at the bounds of this many rounds of calls; the figure is the median."""


@dataclass(frozen=True)
class Other:
    """A server measured beside glm-mcp: how to start it against an upstream, and its chat call."""

    label: str
    command: list[str]
    env: dict[str, str]
    tool: str
    arguments: dict[str, Any]
    how: str

    @property
    def shown(self) -> str:
        """The command, its paths in this checkout relative to it (.cache/...)."""
        return shown([os.path.relpath(arg, ROOT) if arg.startswith(f"{ROOT}{os.sep}") else arg for arg in self.command])


def others(origin: str, env: dict[str, str], bare_env: dict[str, str], model: str) -> tuple[list[Other], list[str]]:
    """The peer and the Node server pointed at `origin`, each started once to check it answers `tools/list`
    (installed on first use), and a note for each one left out and why.

    `env` is glm-mcp's environment against `origin`, `bare_env` the bare server's (its request body and key),
    `model` the model glm-mcp asks for (the peer is asked for the same).
    """
    found: list[Other] = []
    notes: list[str] = []
    peer = peer_command()
    if peer is None:
        notes.append(f"Peers: {PEER} could not be installed here (pip, offline?): its figures are left out.")
    else:
        found.append(
            Other(
                f"peer {PEER.replace('==', ' ')}",
                peer,
                peer_env(env),
                "glm_chat",
                {"message": PROMPT, "model": model},
                "tools/call glm_chat (one unstreamed request, through the openai client)",
            )
        )
    node, why_not = _node_command(origin)
    if node is None:
        notes.append(f"Peers: the Node TS SDK server cannot run here ({why_not}): its figures are left out.")
    else:
        found.append(
            Other(
                "Node TS SDK server",
                node,
                bare_env,
                "chat",
                {"prompt": PROMPT},
                "tools/call chat (the same streamed request as the bare server's, read to the end)",
            )
        )
    started: list[Other] = []
    for other in found:
        try:
            cold_start(other.command, other.env)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            notes.append(f"Peers: {other.label} did not answer tools/list ({exc}): its figures are left out.")
        else:
            started.append(other)
            notes.append(DESCRIBED[other.label])
    return started, notes


DESCRIBED = {
    f"peer {PEER.replace('==', ' ')}": (
        f"Peers: the peer {PEER} (FastMCP 4) is called as `glm_chat(message, model)`, a plain function FastMCP runs "
        "on a worker thread: it makes one unstreamed request (stream false) through the openai client, with its own "
        "defaults (temperature 0.7, max_tokens 2048, top_p 0.95), and returns the whole text; GLM_API_KEY and "
        "GLM_BASE_URL point it at the emulator, its usage log (GLM_MCP_LOG_DIR) goes to a temporary directory, and "
        "FASTMCP_CHECK_FOR_UPDATES=off keeps its banner from asking PyPI (the banner itself is left on, as users "
        "run it). The emulator answers the same text streamed or not."
    ),
    "Node TS SDK server": (
        "Peers: the Node TS SDK server is bench/node_server.mjs on Node 22 and @modelcontextprotocol/sdk 1.32.2 "
        "(McpServer, stdio), copied beside the SDK's node_modules in .cache/node-tools/: its tool chat(prompt) "
        "makes the bare server's streamed request with fetch, reads the SSE to the end and returns the joined text."
    ),
}


def _node_command(origin: str) -> tuple[list[str] | None, str]:
    """`node <copy of node_server.mjs> --upstream origin`, Node 22 and the SDK installed on first use; else why not."""
    try:
        from rigs.node_tools import NODE, TS_SDK, bin_path, node_modules

        node = bin_path(NODE, "node")
        prefix = node_modules(TS_SDK).parent
    except ImportError as exc:
        return None, f"rigs.node_tools is not importable: {exc}"
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        return None, f"Node 22 or the TypeScript SDK could not be installed: {exc}"
    # An ES module resolves imports from where it lies: the copy lies beside the SDK's node_modules.
    script = prefix / "bench-node-server.mjs"
    source = NODE_SERVER.read_bytes()
    if not script.exists() or script.read_bytes() != source:
        with tempfile.NamedTemporaryFile(dir=prefix, suffix=".tmp", delete=False) as out:
            out.write(source)
        os.replace(out.name, script)  # atomic: checkouts sharing the cache may write it at once
    if shutil.which(str(node)) is None:
        return None, f"{node} is not executable"
    return [str(node), str(script), "--upstream", origin], ""


@dataclass
class CpuRounds:
    """Server CPU ms per call of some processes over interleaved calls: utime + stime from /proc, read at the
    bounds of rounds of calls; each one's figure is the median of its rounds."""

    pids: dict[str, int]
    _last: dict[str, float] = field(default_factory=dict)
    _rounds: dict[str, list[float]] = field(default_factory=dict)

    def start(self) -> None:
        self._last = {key: cpu_seconds(pid) for key, pid in self.pids.items()}
        self._rounds = {key: [] for key in self.pids}

    def end_round(self, calls: int) -> None:
        """A round of `calls` calls to each process has ended since the last mark."""
        for key, pid in self.pids.items():
            now = cpu_seconds(pid)
            self._rounds[key].append((now - self._last[key]) * 1000 / calls)
            self._last[key] = now

    @property
    def tick_ms(self) -> float:
        """The resolution of the CPU times read from /proc."""
        return 1000 / os.sysconf("SC_CLK_TCK")

    def ms_per_call(self, key: str) -> float:
        return statistics.median(self._rounds[key])

    def rounds(self, key: str) -> int:
        return len(self._rounds[key])
