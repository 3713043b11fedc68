"""Starting the processes a benchmark measures: emulator, servers, and reading their memory."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx2

PYTHON = sys.executable
GLM_MCP = [PYTHON, "-m", "glm_mcp"]
BARE_SERVER = [PYTHON, "-m", "bench.bare_server"]
EMULATOR_KEY = "emulator.key-general"
START_TIMEOUT_S = 30.0


def shown(command: list[str]) -> str:
    """A command as a user would type it (the interpreter shown as `python`)."""
    return shlex.join(["python", *command[1:]] if command[0] == PYTHON else command)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(base_url: str, **variables: str) -> dict[str, str]:
    """The environment of a glm-mcp under test: the emulator's key and URL, a fresh job registry, and
    none of the developer's GLM settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GLM_", "ZAI_", "ZHIPUAI_"))}
    data_dir = tempfile.mkdtemp(prefix="glm-mcp-bench-")
    return {**keep, "GLM_API_KEY": EMULATOR_KEY, "GLM_BASE_URL": base_url, "GLM_DATA_DIR": data_dir, **variables}


def bytecode_written() -> list[str]:
    """Writes the bytecode of glm_mcp and bench (the checkout's modules the cold start imports) where Python looks
    for it, as installing a package does (pip compiles it): with PYTHONDONTWRITEBYTECODE set, or a source changed
    since its .pyc was written, every start would compile them again, a cost the bare server's SDK (installed,
    compiled) never pays and no installed glm-mcp pays either. A note when it cannot (a read-only checkout)."""
    import compileall
    from pathlib import Path

    import glm_mcp

    packages = [Path(glm_mcp.__file__).parent, Path(__file__).parent]
    if all(compileall.compile_dir(package, quiet=1) for package in packages):
        return []
    return [f"cold start: the bytecode of {', '.join(map(str, packages))} could not be written; each start compiles it"]


def memory_kib(pid: int, field: str) -> int:
    """`VmRSS` (resident now) or `VmHWM` (resident at its peak) of a process, in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    origin: str
    command: list[str]


def _wait_for_port(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listened on {port}") from None
            time.sleep(0.02)


@contextmanager
def running(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[Running]:
    """`command` started and listening on `port`; stopped on exit."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(process, port)
        yield Running(process, f"http://127.0.0.1:{port}", command)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def emulator(latency: float = 0.0, chunk_delay: float = 0.0) -> Iterator[Running]:
    """The emulator in its own process; `origin` is its API base URL."""
    port = free_port()
    command = [PYTHON, "-m", "bench.emulator", str(port), str(latency), str(chunk_delay)]
    with running(command, port) as proc:
        proc.origin += "/api/paas/v4"
        yield proc


@contextmanager
def http_server(env: dict[str, str]) -> Iterator[Running]:
    """`glm-mcp --transport http` on a free port, ready once /healthz answers."""
    port = free_port()
    with running([*GLM_MCP, "--transport", "http", "--port", str(port)], port, env) as proc:
        deadline = time.monotonic() + START_TIMEOUT_S
        while httpx2.get(proc.origin + "/healthz", timeout=2).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the HTTP server did not become healthy")
            time.sleep(0.05)
        yield proc
