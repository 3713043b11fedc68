"""Stop stops, on every transport, and sockets stay bounded: real server processes, real clients, a slow emulator.

Each test watches what the upstream sees (`emulator.state.disconnects`): a stopped call is one
whose generation stream the emulator saw closed, not one whose client merely stopped listening.
"""

from __future__ import annotations

import json
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import Process

from glm_mcp.emulator import Emulator
from rigs.node_tools import TS_SDK, node_env, node_modules
from tests import processes
from tests.conftest import GENERAL_KEY
from tests.processes import COMMAND, RawStdio, http_server, http_server_process, scratch_dir, server_env

pytestmark = pytest.mark.anyio

SLOW_CHUNKS_S = 0.3
"""Between two chunks of a slow generation: ~30 chunks make it last 9 s or more."""
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def tool_call(request_id: int, name: str = "chat", **arguments: Any) -> dict[str, Any]:
    arguments = arguments or {"prompt": "Tell me about rivers."}
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def cancelled(request_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": "Stop"},
    }


async def wait_for(condition: Callable[[], bool], timeout: float = 10) -> float:
    """Seconds until `condition()` holds; fails past `timeout`."""
    start = anyio.current_time()
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)
    return anyio.current_time() - start


def slow_server_env(emulator: Emulator, **variables: str) -> dict[str, str]:
    emulator.config.chunk_delay = SLOW_CHUNKS_S
    return server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, **variables)


async def read_events(response: httpx2.Response, into: list[dict[str, Any]]) -> None:
    """The JSON-RPC messages of an SSE response, as they arrive."""
    async for line in response.aiter_lines():
        if line.startswith("data:") and line[5:].strip():
            into.append(json.loads(line[5:]))


async def stream_call(
    http: httpx2.AsyncClient, body: dict[str, Any], into: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> None:
    async with http.stream("POST", "/mcp", json=body, headers={**MCP_HEADERS, **(headers or {})}) as response:
        assert response.status_code == 200
        await read_events(response, into)


# Streamable HTTP, stateless (the default): a notice on its own POST


TS_ABORT = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const readline = require("node:readline");

(async () => {
  const client = new Client({ name: "glm-mcp-stop-test", version: "0.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(process.env.MCP_URL)));
  const controller = new AbortController();
  const call = client.callTool({ name: "chat", arguments: { prompt: "Stop me" } }, undefined,
                               { signal: controller.signal, timeout: 120000 });
  call.catch(() => {});
  console.log("calling");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line === "abort") {
      controller.abort("the user pressed Stop");
      try { await call; console.log("answered"); } catch (error) { console.log("aborted: " + error); }
    }
    if (line === "exit") break;
  }
  await client.close();
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


async def _line(process: Process) -> str:
    assert process.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        data += await process.stdout.receive(1)
    return data.decode().strip()


async def test_the_typescript_sdks_abort_stops_the_generation_within_a_second(emulator: Emulator) -> None:
    """AbortSignal: the TS SDK sends notifications/cancelled on a POST of its own and keeps the response open."""
    modules = node_modules(TS_SDK)
    with http_server(env=slow_server_env(emulator)) as origin:
        env = node_env({"NODE_PATH": str(modules), "MCP_URL": origin + "/mcp"})
        async with await anyio.open_process(["node", "-e", TS_ABORT], env=env) as node:
            assert node.stdin is not None
            with anyio.fail_after(30):
                assert await _line(node) == "calling"
            await wait_for(lambda: emulator.state.open_streams == 1)
            before = emulator.state.disconnects
            await node.stdin.send(b"abort\n")
            seconds = await wait_for(lambda: emulator.state.disconnects == before + 1, timeout=5)
            with anyio.fail_after(10):
                assert (await _line(node)).startswith("aborted")
            await node.stdin.send(b"exit\n")
            with anyio.fail_after(10):
                await node.wait()
    assert seconds < 1.0
    assert emulator.state.open_streams == 0


async def test_a_notice_on_its_own_post_stops_the_call_which_answers_cancelled(emulator: Emulator) -> None:
    with http_server(env=slow_server_env(emulator)) as origin:
        async with httpx2.AsyncClient(base_url=origin, timeout=30) as http:
            events: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream_call, http, tool_call(7), events)
                await wait_for(lambda: emulator.state.open_streams == 1)
                before = emulator.state.disconnects
                notice = await http.post("/mcp", json=cancelled(7), headers=MCP_HEADERS)
                assert notice.status_code == 202
                seconds = await wait_for(lambda: emulator.state.disconnects == before + 1, timeout=5)
    assert seconds < 1.0
    assert events[-1]["id"] == 7 and events[-1]["error"]["code"] == -32800  # the stream ended with an answer


async def test_an_ambiguous_notice_cancels_nothing_and_is_logged(emulator: Emulator) -> None:
    """Two calls in flight with the same caller and id cannot be told apart: both go on to their end."""
    emulator.config.chunk_delay = 0.04
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_ALLOW_CLIENT_KEYS="true")
    with http_server_process(env=env) as (process, origin):
        async with httpx2.AsyncClient(base_url=origin, timeout=30) as http:
            first: list[dict[str, Any]] = []
            second: list[dict[str, Any]] = []
            own_key: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream_call, http, tool_call(3), first)
                tg.start_soon(stream_call, http, tool_call(3), second)
                # the same id from another caller (its own GLM key): a notice from here is not theirs
                tg.start_soon(stream_call, http, tool_call(4), own_key, {"X-GLM-API-Key": GENERAL_KEY})
                await wait_for(lambda: emulator.state.open_streams == 3)
                assert (await http.post("/mcp", json=cancelled(3), headers=MCP_HEADERS)).status_code == 202
                assert (await http.post("/mcp", json=cancelled(4), headers=MCP_HEADERS)).status_code == 202
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    for events in (first, second, own_key):
        assert events[-1]["result"]["isError"] is False, events[-1]
    assert emulator.state.disconnects == 0
    assert "matches 2 calls in flight" in stderr.decode()


# Both HTTP modes: a client gone before its answer


def _raw_post(port: int, body: dict[str, Any], headers: dict[str, str]) -> socket.socket:
    """A POST to /mcp on a socket of our own, returned once the response has begun."""
    payload = json.dumps(body).encode()
    lines = ["POST /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in {**MCP_HEADERS, **headers}.items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


@pytest.mark.parametrize("mode", ["--stateless", "--sessionful"])
async def test_a_client_that_goes_away_stops_its_call(emulator: Emulator, mode: str) -> None:
    with http_server(mode, env=slow_server_env(emulator)) as origin:
        port = int(origin.rsplit(":", 1)[1])
        async with httpx2.AsyncClient(base_url=origin, timeout=30) as http:
            session: dict[str, str] = {}
            if mode == "--sessionful":
                opened = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
                session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
                await http.post("/mcp", json=INITIALIZED, headers={**MCP_HEADERS, **session})
            sock = _raw_post(port, tool_call(1), session)
            await wait_for(lambda: emulator.state.open_streams == 1)
            before = emulator.state.disconnects
            sock.close()  # the client crashed, its network went, its tab was closed
            seconds = await wait_for(lambda: emulator.state.disconnects == before + 1, timeout=5)
            jobs: list[dict[str, Any]] = []
            await stream_call(http, tool_call(2, "list_jobs", status="running"), jobs, session)
    assert seconds < 1.0
    assert "jobs" not in jobs[-1]["result"]["structuredContent"]  # none left running
    assert emulator.state.open_streams == 0


# HTTP shutdown past the grace


async def test_a_call_cut_off_by_the_shutdown_gets_a_json_rpc_error(emulator: Emulator) -> None:
    with http_server_process(env=slow_server_env(emulator, GLM_MCP_SHUTDOWN_GRACE="0.5")) as (process, origin):
        async with httpx2.AsyncClient(base_url=origin, timeout=30) as http:
            events: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream_call, http, tool_call(9), events)  # a torn response raises in here
                await wait_for(lambda: emulator.state.open_streams == 1)
                process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)  # and it exits
    assert events[-1]["id"] == 9
    assert "shutting down" in events[-1]["error"]["message"]
    assert emulator.state.open_streams == 0


async def test_the_shutdown_does_not_wait_for_a_request_whose_body_is_still_arriving(emulator: Emulator) -> None:
    """A client dribbling a body, one byte a second: its request never started, so nothing waits for it."""
    grace = 5.0
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_SHUTDOWN_GRACE=str(grace))
    with http_server_process(env=env) as (process, origin):
        logged = processes.drain(process)
        port = int(origin.rsplit(":", 1)[1])
        dribbler = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = ["POST /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Length: 1000"]
        head += [f"{name}: {value}" for name, value in MCP_HEADERS.items()]
        dribbler.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        closed = anyio.Event()

        async def dribble() -> None:
            try:
                while True:
                    await anyio.to_thread.run_sync(dribbler.sendall, b" ")
                    await anyio.sleep(1)
            except OSError:  # the server closed it
                closed.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(dribble)
            await anyio.sleep(1.5)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(lambda: process.wait(timeout=20))
            exited_after = time.monotonic() - started
            with anyio.fail_after(5):
                await closed.wait()
        dribbler.close()
    log = logged().decode()
    assert "timeout graceful shutdown exceeded" not in log and "shutdown grace" not in log, log
    assert exited_after < grace, f"{exited_after:.1f} s, as if waiting for the dribbling client"


# stdio


@contextmanager
def _killed_at_exit(process: Process) -> Iterator[None]:
    try:
        yield
    finally:
        if process.returncode is None:
            process.kill()


async def test_sigint_with_stdin_open_ends_the_server_mid_answer_and_closes_the_upstream(emulator: Emulator) -> None:
    """SIGINT alone ends the server while stdin stays open and an answer streams: it does not wait for the answer
    (tens of seconds at this chunk delay) nor for stdin to close. How fast is the benchmark's business, not a test's."""
    async with await anyio.open_process(COMMAND, env=slow_server_env(emulator)) as process:
        with _killed_at_exit(process):
            stdio = RawStdio(process)
            await stdio.initialize()
            await stdio.send(tool_call(1))
            await wait_for(lambda: emulator.state.open_streams == 1)
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(5):
                await process.wait()
    assert emulator.state.disconnects == 1 and emulator.state.open_streams == 0


async def test_sigint_then_sigterm_records_a_handed_off_job_as_interrupted_with_its_text(emulator: Emulator) -> None:
    """Claude Code's way to end a session: SIGINT, SIGTERM 0.1 s later, stdin never closed."""
    emulator.config.chunk_delay = 0.05
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_DATA_DIR=scratch_dir())
    async with await anyio.open_process(COMMAND, env=env) as process:
        with _killed_at_exit(process):
            stdio = RawStdio(process)
            await stdio.initialize()
            # No thinking, so that text (not reasoning) has arrived by the hand-off, even on a loaded machine.
            call = tool_call(1, prompt="Write a long essay about rivers.", wait_seconds=1.0, thinking="disabled")
            await stdio.send(call)
            handed_off = (await stdio.answer(1))["result"]["structuredContent"]
            assert handed_off["status"] == "running" and handed_off.get("text"), handed_off
            await anyio.sleep(0.4)  # more text arrives; the 1 s periodic save has not come yet
            process.send_signal(signal.SIGINT)
            await anyio.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(5):
                await process.wait()
    async with await anyio.open_process(COMMAND, env=env) as process:
        with _killed_at_exit(process):
            stdio = RawStdio(process)
            await stdio.initialize()
            await stdio.send(tool_call(2, "get_result", task_id=handed_off["job_id"]))
            result = (await stdio.answer(2))["result"]["structuredContent"]
            await process.stdin.aclose()  # type: ignore[union-attr]
    assert result["status"] == "interrupted" and result["error"]["error"] == "interrupted"
    assert result["partial_text"].startswith(handed_off["text"])
    assert len(result["partial_text"]) > len(handed_off["text"])  # what came after the hand-off is kept


async def test_a_request_id_in_use_is_refused_and_the_first_call_stays_cancellable(emulator: Emulator) -> None:
    async with await anyio.open_process(COMMAND, env=slow_server_env(emulator)) as process:
        with _killed_at_exit(process):
            stdio = RawStdio(process)
            await stdio.initialize()
            await stdio.send(tool_call(5))
            await wait_for(lambda: emulator.state.open_streams == 1)
            await stdio.send(tool_call(5, prompt="a second call, same id"))
            refused = await stdio.answer(5, timeout=5)
            assert refused["error"]["code"] == -32600 and "in use" in refused["error"]["message"]
            assert emulator.state.open_streams == 1  # the second one never ran
            await stdio.send(cancelled(5))
            await wait_for(lambda: emulator.state.disconnects == 1, timeout=5)
            await stdio.send(tool_call(5, name="list_jobs"))  # once cancelled, the id is free again
            assert "result" in await stdio.answer(5)
            await process.stdin.aclose()  # type: ignore[union-attr]


# Sockets and logs


async def test_a_token_in_the_query_string_never_reaches_the_log(emulator: Emulator) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_LOG_LEVEL="DEBUG")
    with http_server_process(env=env) as (process, origin):
        assert httpx2.get(origin + "/healthz?token=sekret-in-the-url").status_code == 200
        call = httpx2.post(origin + "/mcp?token=sekret-in-the-url", json=tool_call(1, "list_jobs"), headers=MCP_HEADERS)
        assert call.status_code == 200
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    log = stderr.decode()
    assert '"GET /healthz HTTP/1.1" 200' in log and '"POST /mcp HTTP/1.1" 200' in log  # the access log is on
    assert "sekret" not in log


def _lowered_open_files() -> None:
    """In the server's process before it starts: a soft open-files limit far below 1,000 sockets."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
async def test_a_thousand_idle_sockets_leave_healthz_and_tool_calls_answering(emulator: Emulator) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard open-files limit ({hard}) is below what 1,000 sockets need")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process opens them
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_HEADER_TIMEOUT="30")
    idle: list[socket.socket] = []
    try:
        with http_server_process(env=env, preexec_fn=_lowered_open_files) as (process, origin):
            port = int(origin.rsplit(":", 1)[1])
            for _ in range(1000):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            async with httpx2.AsyncClient(base_url=origin, timeout=10) as http:
                assert (await http.get("/healthz")).status_code == 200
                events: list[dict[str, Any]] = []
                await stream_call(http, tool_call(1, prompt="Still answering?"), events)
            assert events[-1]["result"]["isError"] is False
            if sys.platform == "linux":
                limits = Path(f"/proc/{process.pid}/limits").read_text().splitlines()
                line = next(line for line in limits if line.startswith("Max open files"))
                assert line.split()[3] == line.split()[4]  # soft raised to hard
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_socket_that_sends_no_headers_or_trickles_them_is_closed(emulator: Emulator) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_HEADER_TIMEOUT="1")
    with http_server(env=env) as origin:
        port = int(origin.rsplit(":", 1)[1])
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        trickling = socket.create_connection(("127.0.0.1", port), timeout=5)
        trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        closed_after: float | None = None
        try:
            while time.monotonic() - start < 5:
                trickling.sendall(b"X-Slow: a\r\n")  # a header line every 0.2 s, never the end
                time.sleep(0.2)
        except OSError:  # reset by the server
            closed_after = time.monotonic() - start
        assert closed_after is not None and closed_after < 3
        assert silent.recv(1) == b""  # closed by the server, not by the 5 s timeout here
        assert httpx2.get(origin + "/healthz").status_code == 200
        silent.close()
        trickling.close()


def _at_most_256_open_files() -> None:
    """In the server's process before it starts: an open-files limit of 256 it cannot raise (a small container's)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


class StderrLines:
    """A server's stderr read as it comes (a flood would otherwise fill the pipe and stall the server), each line
    with the time it was read."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.lines: list[tuple[float, bytes]] = []
        assert process.stderr is not None
        self._stderr = process.stderr
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stderr:
            self.lines.append((time.monotonic(), line))

    def since(self, start: float) -> list[str]:
        return [line.decode(errors="replace") for read, line in list(self.lines) if read >= start]


def _connect_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


async def _healthz(http: httpx2.AsyncClient, timeout: float = 10) -> int:
    """/healthz's status, retrying while connections are refused or time out (accept resumes within a second)."""
    with anyio.fail_after(timeout):
        while True:
            try:
                return (await http.get("/healthz", timeout=2)).status_code
            except httpx2.TransportError:
                await anyio.sleep(0.2)


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX resource limits, Linux's EMFILE on accept()")
async def test_under_256_open_files_the_server_answers_and_running_out_is_logged_once(emulator: Emulator) -> None:
    """A hard limit of 256: calls and probes are answered, past the connection cap the probes still are, out of
    descriptors altogether the server says so once instead of thousands of tracebacks a second, and it answers
    again once the sockets close."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1000:
        pytest.skip(f"the hard open-files limit ({hard}) is below what this test's sockets need")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process opens them
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_HEADER_TIMEOUT="60")
    idle: list[socket.socket] = []
    try:
        with http_server_process(env=env, preexec_fn=_at_most_256_open_files) as (process, origin):
            stderr = StderrLines(process)
            port = int(origin.rsplit(":", 1)[1])
            async with httpx2.AsyncClient(base_url=origin, timeout=10) as http:
                assert await _healthz(http) == 200
                events: list[dict[str, Any]] = []
                await stream_call(http, tool_call(1, prompt="Answering under 256 files?"), events)
                assert events[-1]["result"]["isError"] is False

                idle += _connect_idle(port, 200)  # past the cap (a quarter of 256 kept for the process's own files)
                await anyio.sleep(0.5)
                assert await _healthz(http) == 200
                busy = await http.post("/mcp", json=tool_call(2, "list_jobs"), headers=MCP_HEADERS)
                assert busy.status_code == 503

                start = time.monotonic()
                idle += _connect_idle(port, 200)  # and out of descriptors
                await anyio.sleep(3)
                exhausted = stderr.since(start)
                for sock in idle:
                    sock.close()
                idle.clear()
                assert await _healthz(http) == 200
                events = []
                await stream_call(http, tool_call(3, prompt="And again?"), events)
                assert events[-1]["result"]["isError"] is False
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    said = [line for line in exhausted if "out of file descriptors" in line]
    assert len(said) == 1 and "GLM_MCP_MAX_CONNECTIONS" in said[0], said
    assert len(exhausted) <= 5, f"{len(exhausted)} lines in 3 s, starting with {exhausted[:8]}"
