"""Starting the real `glm-mcp` command as a subprocess, as an MCP client would."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import anyio
import httpx2

COMMAND = [sys.executable, "-m", "glm_mcp"]


def server_env(**variables: str) -> dict[str, str]:
    """A clean environment: none of the developer's GLM settings leak into a test, and the job registry
    is a fresh one unless GLM_DATA_DIR is given."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GLM_", "ZAI_", "ZHIPUAI_"))}
    return {**keep, "PYTHONUNBUFFERED": "1", "GLM_DATA_DIR": scratch_dir(), **variables}


def scratch_dir() -> str:
    """A new directory, removed when the test run ends."""
    path = tempfile.mkdtemp(prefix="glm-mcp-test-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def http_server(*args: str, env: dict[str, str]) -> Iterator[str]:
    """`glm-mcp … --transport http` on a free port; yields its origin once /healthz answers."""
    with http_server_process(*args, env=env) as (_, origin):
        yield origin


@contextmanager
def http_server_process(
    *args: str,
    env: dict[str, str],
    preexec_fn: Callable[[], None] | None = None,
    command: Sequence[str] = COMMAND,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`http_server`, yielding the process too (to kill it); `preexec_fn` runs in the child before it starts."""
    port = free_port()
    with listening(
        [*args, "--transport", "http", "--port", str(port)], port, env=env, preexec_fn=preexec_fn, command=command
    ) as running:
        yield running


@contextmanager
def listening(
    args: list[str],
    port: int,
    *,
    env: dict[str, str],
    preexec_fn: Callable[[], None] | None = None,
    command: Sequence[str] = COMMAND,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`<command> <args>` (by default `glm-mcp`) serving on `port`; yields the process and its origin once /healthz
    answers."""
    process = subprocess.Popen(
        [*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec_fn
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"glm-mcp {' '.join(args)} exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx2.get(origin + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"glm-mcp {' '.join(args)} did not come up")
            time.sleep(0.05)
        yield process, origin
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def drain(process: subprocess.Popen[bytes]) -> Callable[[], bytes]:
    """Read the process's stdout and stderr as it writes them (a full pipe would block a process that logs a lot,
    at DEBUG); the returned function gives all of it once the process has ended."""
    chunks: list[bytes] = []

    def read(stream: IO[bytes]) -> None:
        while block := stream.read1(65536):  # type: ignore[attr-defined]
            chunks.append(block)

    streams = [stream for stream in (process.stdout, process.stderr) if stream is not None]
    readers = [threading.Thread(target=read, args=(stream,), daemon=True) for stream in streams]
    for reader in readers:
        reader.start()

    def output() -> bytes:
        process.wait(timeout=20)
        for reader in readers:
            reader.join(timeout=20)
        return b"".join(chunks)

    return output


class RawStdio:
    """The real command over stdio, line by line, with stdin kept open: what a client without an SDK sees.

    Every line the server writes must be a JSON-RPC 2.0 message (anything else on stdout fails here);
    `seen` keeps them all, in order, and `answer` returns the one answering a request id.
    """

    def __init__(self, process: Any) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []
        self._answers: dict[Any, dict[str, Any]] = {}
        self._buffer = b""

    async def initialize(self, protocol_version: str = "2025-06-18") -> dict[str, Any]:
        """The handshake: `initialize` (id "initialize"), its answer (returned), then `notifications/initialized`."""
        hello = {"protocolVersion": protocol_version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
        await self.send({"jsonrpc": "2.0", "id": "initialize", "method": "initialize", "params": hello})
        answer = await self.answer("initialize")
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    async def send(self, *messages: dict[str, Any] | str) -> None:
        """Send each message as one line (a string as it is: a test's malformed line)."""
        lines = (m if isinstance(m, str) else json.dumps(m) for m in messages)
        await self.process.stdin.send("".join(line + "\n" for line in lines).encode())

    async def answer(self, request_id: Any, timeout: float = 20) -> dict[str, Any]:
        key = json.dumps(request_id)  # ids a fuzzed line sends may be anything JSON
        with anyio.fail_after(timeout):
            while key not in self._answers:
                self._buffer += await self.process.stdout.receive()
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line[:200]
                    self.seen.append(message)
                    if "id" in message:
                        self._answers[json.dumps(message["id"])] = message
        return self._answers.pop(key)
