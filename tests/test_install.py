"""README command 1 on a fresh copy of the checkout: `scripts/serve` makes .venv, installs there (never into
the system's Python), and starts the demo a newcomer then calls, as the README says.

The copy is made from the files git tracks (or would track), so nothing of this checkout's .venv helps;
pip may use its cache and the package registries, as a newcomer's would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from tests.processes import free_port, server_env

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = sys._base_executable  # type: ignore[attr-defined]  # the interpreter the .venv was made from

pytestmark = pytest.mark.anyio


def fresh_copy(target: Path) -> Path:
    """The checkout as a clone would have it (tracked and new files, nothing git ignores)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(source.stat().st_mode)
    return target


def system_has_glm_mcp() -> bool:
    return subprocess.run([SYSTEM_PYTHON, "-c", "import glm_mcp"], cwd="/", capture_output=True).returncode == 0


async def test_command_1_installs_into_the_checkouts_venv_and_serves_the_demo(tmp_path: Path) -> None:
    checkout = fresh_copy(tmp_path / "glm-mcp")
    assert not (checkout / ".venv").exists()
    assert not system_has_glm_mcp()
    env = server_env(PYTHON=SYSTEM_PYTHON)
    env.pop("VIRTUAL_ENV", None)

    installed = subprocess.run(
        [str(checkout / "scripts" / "serve"), "--version"], env=env, capture_output=True, text=True, timeout=600
    )
    assert installed.returncode == 0, installed.stderr
    from glm_mcp import __version__

    assert installed.stdout.strip() == f"glm-mcp {__version__}"
    program = checkout / ".venv" / "bin" / "glm-mcp"
    assert f"clients start it as {program}" in installed.stderr
    assert program.is_file() and not system_has_glm_mcp(), "installed into the system's Python"

    port = free_port()
    demo = subprocess.Popen(
        [str(checkout / "scripts" / "serve"), "demo", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        origin = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert demo.poll() is None, demo.stderr.read().decode()  # type: ignore[union-attr]
            try:
                if httpx2.get(origin + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "the demo did not come up"
            time.sleep(0.1)
        async with Client(origin + "/mcp") as client:
            answer = await client.call_tool("chat", {"prompt": "Hello from a fresh clone"})
        assert not answer.is_error and answer.structured_content
        assert "made up by the GLM emulator" in answer.structured_content["model"]
    finally:
        demo.terminate()
        demo.wait(timeout=20)
    said = demo.stderr.read().decode()  # type: ignore[union-attr]
    assert f"Next, point an MCP client at {origin}/mcp:" in said  # tests/test_cli.py runs each printed command
    assert f"claude mcp add --transport http glm-demo {origin}/mcp" in said
