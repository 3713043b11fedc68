"""What a tool costs the agent's context: the size of `tools/list` and of a typical result, beside a peer.

Claude Code hands its model a successful result's `structuredContent` JSON (the text copy only for an
error), and Cursor and VS Code put every tool definition in context up front, so these sizes are
paid in every conversation. Tokens are estimated at four characters each (English JSON averages
3.5-4.5 with the common tokenizers); the characters are exact, as sent on the wire (compact JSON).
The whole `tools/list` is counted in bytes (UTF-8), for the default toolsets (target: at most 30 KB)
and for all of them (GLM_MCP_TOOLSETS=all).

The peer is `glm-mcp` 0.8.1 from the package index, installed on first use into
`.cache/bench/peer-glm-mcp` (it is not a dependency of this project), pointed at the same emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from bench.figures import Figure
from bench.processes import GLM_MCP, server_env, shown

PEER = "glm-mcp==0.8.1"
PEER_DIR = Path(__file__).resolve().parents[1] / ".cache" / "bench" / "peer-glm-mcp"
PROMPT = "In two sentences: what is a mutex?"
CHARS_PER_TOKEN = 4
TOOLS_LIST_TARGET_BYTES = 30_000


def wire(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def wire_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def peer_command() -> list[str] | None:
    """The peer's server command, installing it on first use; None when it cannot be installed here."""
    executable = PEER_DIR / "bin" / "glm-mcp"
    if not executable.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEER_DIR)], check=True, capture_output=True)
            subprocess.run(
                [str(PEER_DIR / "bin" / "python"), "-m", "pip", "install", "--quiet", PEER],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError):
            return None
    # By its venv's interpreter, not its shebang: a cache made from another checkout names that checkout's path.
    return [str(PEER_DIR / "bin" / "python"), str(executable)]


def peer_env(env: dict[str, str]) -> dict[str, str]:
    """The peer's environment beside glm-mcp's `env`: it reads the same GLM_API_KEY and GLM_BASE_URL; its usage log
    goes to a temporary directory (not ~/.glm-mcp), and FastMCP's banner does not ask PyPI for a newer release.
    Without PYTHONPATH: a checkout on it (`PYTHONPATH=$PWD python -m bench`) would put this project's `glm_mcp`
    in place of the peer's own."""
    log_dir = tempfile.mkdtemp(prefix="glm-mcp-bench-peer-")
    keep = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**keep, "GLM_MCP_LOG_DIR": log_dir, "FASTMCP_CHECK_FOR_UPDATES": "off"}


async def measure(command: list[str], env: dict[str, str], chat_tool: str, arguments: dict[str, Any]) -> dict[str, int]:
    """Sizes of `command`'s tool list and of one chat answer, as its client's model would read them."""
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with Client(params, mode="legacy") as client:
        tools = (await client.list_tools()).tools
        listed = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
        result = await client.call_tool(chat_tool, arguments)
    shown_to_model: Any = result.structured_content
    if result.is_error or shown_to_model is None:  # such clients then show the text
        shown_to_model = [block.model_dump(mode="json", exclude_none=True) for block in result.content]
    return {
        "tools": len(tools),
        "input_schemas": sum(wire(tool["inputSchema"]) for tool in listed),
        "tools_list": wire_bytes({"tools": listed}),
        "result": wire(shown_to_model),
    }


async def context_cost(base_url: str) -> tuple[list[Figure], list[str]]:
    ours = await measure(GLM_MCP, server_env(base_url), "chat", {"prompt": PROMPT})
    everything = await measure(GLM_MCP, server_env(base_url, GLM_MCP_TOOLSETS="all"), "chat", {"prompt": PROMPT})
    notes = [
        f"Context: glm-mcp lists {ours['tools']} tools ({everything['tools']} with GLM_MCP_TOOLSETS=all); a result "
        "is what Claude Code shows its model (structuredContent JSON). Tokens ≈ characters / 4."
    ]
    peer = peer_command()
    if peer is None:
        notes.append(f"Context: the peer {PEER} could not be installed here; our figures are shown alone.")
        for key, (name, unit) in _NAMES.items():
            print(f"{name}: {ours[key]} {unit} (≈{ours[key] // CHARS_PER_TOKEN} tokens)", flush=True)
        print(f"{_ALL_TOOLSETS}: {everything['tools_list']} bytes", flush=True)
        return [], notes
    env = peer_env(server_env(base_url))
    theirs = await measure(peer, env, "glm_chat", {"message": PROMPT, "model": "glm-4.6"})
    notes.append(f"Context: the peer {PEER} lists {theirs['tools']} tools.")
    floor_command = f"{PEER} ({shown(peer)})"
    figures = [
        Figure(
            name,
            ours[key],
            theirs[key],
            unit,
            shown(GLM_MCP),
            floor_command,
            *_target(key, ours[key]),
            detail=f"≈{ours[key] // CHARS_PER_TOKEN} vs ≈{theirs[key] // CHARS_PER_TOKEN} tokens; floor = the peer",
        )
        for key, (name, unit) in _NAMES.items()
    ]
    figures.append(
        Figure(
            _ALL_TOOLSETS,
            everything["tools_list"],
            theirs["tools_list"],
            "bytes",
            "GLM_MCP_TOOLSETS=all " + shown(GLM_MCP),
            floor_command,
            detail=f"{everything['tools']} tools vs {theirs['tools']}; floor = the peer",
        )
    )
    return figures, notes


def _target(key: str, value: int) -> tuple[str, bool | None]:
    """The target a figure is judged against, and whether it is met: only the whole default `tools/list` has one."""
    if key != "tools_list":
        return "", None
    return f"<= {TOOLS_LIST_TARGET_BYTES} bytes", value <= TOOLS_LIST_TARGET_BYTES


_NAMES = {
    "input_schemas": ("context: tools/list input schemas", "chars"),
    "tools_list": ("context: tools/list whole, default toolsets", "bytes"),
    "result": ("context: a typical chat result as the model reads it", "chars"),
}
_ALL_TOOLSETS = "context: tools/list whole, all toolsets"
