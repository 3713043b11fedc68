"""The HTTP transport's defences and deployment behaviour, against real server processes: the token,
Host and Origin checks, the body limit, callers' keys, exposure, probes, stateless replicas, SIGTERM."""

from __future__ import annotations

import contextlib
import gc
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from uvicorn.protocols.http.h11_impl import RequestResponseCycle

from glm_mcp.app import create_server
from glm_mcp.config import ConfigError, Http, Settings, Upstream
from glm_mcp.emulator import Emulator
from glm_mcp.errors import ClientKeyError
from glm_mcp.server.auth import CLIENT_KEY_HEADER, SharedTokenVerifier, caller_key, read_caller_key
from glm_mcp.server.http import MCP_PATH, READY_PATH, bounded_protocol, check_exposure, create_http_app
from tests.conftest import CODING_KEY, GENERAL_KEY, settings_for
from tests.live_tools import Outcomes, call_every_tool, calls_through, listed_tools, same_arguments
from tests.processes import COMMAND, drain, free_port, http_server, http_server_process, scratch_dir, server_env

TOKEN = "security-tests-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 64 * 1024
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
).encode()


@pytest.fixture(scope="module")
def secured(emulator_session: Emulator) -> Iterator[str]:
    """A token-protected server with a small body limit; its origin."""
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator_session.base_url,
        GLM_MCP_HTTP_TOKEN=TOKEN,
        GLM_MCP_MAX_BODY_BYTES=str(MAX_BODY),
    )
    with http_server(env=env) as origin:
        yield origin


def post(origin: str, headers: dict[str, str], body: bytes = INITIALIZE) -> httpx2.Response:
    accept = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    return httpx2.post(origin + MCP_PATH, content=body, headers={**accept, **headers}, timeout=10)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({}, INITIALIZE, 401, id="no token"),
        pytest.param({"Authorization": "Bearer not-the-token-but-as-long"}, INITIALIZE, 401, id="wrong token"),
        pytest.param({"Authorization": TOKEN}, INITIALIZE, 401, id="token without Bearer"),
        pytest.param({**BEARER, "Origin": "http://evil.example.com"}, INITIALIZE, 403, id="bad origin"),
        pytest.param({**BEARER, "Host": "evil.example.com"}, INITIALIZE, 421, id="bad host"),
        pytest.param(BEARER, b" " * (MAX_BODY + 1), 413, id="oversized body"),
        pytest.param({**BEARER, CLIENT_KEY_HEADER: GENERAL_KEY}, INITIALIZE, 400, id="caller key not allowed"),
        pytest.param({**BEARER, "Origin": "http://localhost:6274"}, INITIALIZE, 200, id="loopback origin"),
        pytest.param(BEARER, INITIALIZE, 200, id="good token"),
    ],
)
def test_each_refusal_has_its_own_status(secured: str, headers: dict[str, str], body: bytes, status: int) -> None:
    response = post(secured, headers, body)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    if status == 400:
        assert "GLM_MCP_ALLOW_CLIENT_KEYS" in response.text


def test_the_probes_need_no_token(secured: str) -> None:
    assert httpx2.get(secured + "/healthz").json()["status"] == "ok"
    assert httpx2.get(secured + READY_PATH).json() == {"status": "ready"}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_with_the_token_every_tool_works(secured: str, emulator: Emulator, mode: str) -> None:
    async with (
        httpx2.AsyncClient(headers=BEARER, timeout=30) as http,
        Client(streamable_http_client(secured + MCP_PATH, http_client=http), mode=mode) as client,
    ):
        tools = await listed_tools(client)
        outcomes = await call_every_tool(tools, calls_through(client))
    failures = {name: result for name, (_, result) in outcomes.items() if result.get("isError")}
    assert tools and set(outcomes) == {tool["name"] for tool in tools} and not failures, failures


@pytest.mark.anyio
async def test_a_replica_without_a_key_is_alive_but_not_ready() -> None:
    settings = Settings.from_env({})
    app = create_http_app(create_server(settings), settings)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get(READY_PATH)
    assert ready.status_code == 503 and "GLM_API_KEY" in ready.json()["reason"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_stateless_mcp_takes_post_only(secured: str, method: str) -> None:
    """A stateless GET would open an event stream nothing can ever be sent on, held open as long as its client
    likes; a DELETE has no session to end. Both are answered 405, naming POST, as the transport allows."""
    headers = {**BEARER, "Accept": "text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    response = httpx2.request(method, secured + MCP_PATH, headers=headers, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def _memory_kib(pid: int) -> dict[str, int]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def _post_all_but_the_last_byte(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = ["POST /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}", "Connection: close"]
    head += ["Content-Type: application/json", "Accept: application/json, text/event-stream"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:-1])
    return sock


def _rest_and_answer(sock: socket.socket, last: bytes) -> bytes:
    sock.sendall(last)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    return answer


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/status")
def test_concurrent_large_calls_hold_each_body_at_most_two_and_a_half_times(emulator: Emulator) -> None:
    """24 calls of ~4 MB at once, refused by the tool (a prompt over GLM_MAX_PROMPT_CHARS): the server's peak
    memory grows by less than 2.5 times the bodies. Each was held three times over (the SDK's own body buffer,
    the copy it hands on, the copy Starlette joins), now twice (the joined body and the parsed JSON)."""
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_LOG_LEVEL="WARNING")
    arguments = {"prompt": "a" * 4_000_000}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "chat", "arguments": arguments}}
    body = json.dumps(call).encode()
    count = 24
    with http_server_process(env=env) as (process, origin):
        port = int(origin.rsplit(":", 1)[1])
        time.sleep(0.5)
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # the peak starts from now
        before = _memory_kib(process.pid)["VmRSS"]
        with ThreadPoolExecutor(count) as pool:
            sockets = list(pool.map(lambda _: _post_all_but_the_last_byte(port, body), range(count)))
            time.sleep(0.5)  # all bodies in, but for their last byte: then all complete at once
            answers = list(pool.map(lambda sock: _rest_and_answer(sock, body[-1:]), sockets))
        peak = _memory_kib(process.pid)["VmHWM"]
    assert all(b"GLM_MAX_PROMPT_CHARS" in answer for answer in answers), answers[0][:500]
    growth = (peak - before) * 1024 / (count * len(body))
    assert growth < 2.5, f"the peak grew by {growth:.2f} times the bodies"


def test_an_abandoned_session_keeps_nothing_of_its_last_requests_connection(emulator: Emulator) -> None:
    """The SDK keeps each session's last request (its message, the Starlette request, its `receive`) until the
    session's next one, for up to its idle timeout. That `receive` led to uvicorn's request cycle, with the
    closed connection's parser, buffers and transport, and to the SDK's own copy of the body: a session whose
    client went away held all of it. Here, in-process to see what is alive, on a real socket."""
    settings = settings_for(emulator, GLM_MCP_STATELESS="false", GLM_DATA_DIR=scratch_dir())
    port = free_port()
    app = create_http_app(create_server(settings), settings)
    config = uvicorn.Config(app, port=port, http=bounded_protocol(10, 100), log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not running.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        for _ in range(10):  # clients that initialize, make a call, and are never heard of again
            with httpx2.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
                opened = http.post(MCP_PATH, content=INITIALIZE, headers={"Content-Type": "application/json"})
                session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
                http.post(MCP_PATH, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
                call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_jobs"}}
                assert http.post(MCP_PATH, json=call, headers=session).status_code == 200
        while running.server_state.connections:  # their connections are closed
            assert time.monotonic() < deadline
            time.sleep(0.05)
        gc.collect()
        ours = ("127.0.0.1", port)  # the emulator in this process is a uvicorn server too
        cycles = [o for o in gc.get_objects() if isinstance(o, RequestResponseCycle) and o.scope["server"] == ours]
    finally:
        running.should_exit = True
        thread.join(timeout=20)
    assert cycles == []
    assert not thread.is_alive()


# --- exposure -------------------------------------------------------------------------------


def test_the_server_refuses_an_exposed_address_without_a_token() -> None:
    command = [*COMMAND, "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())]
    run = subprocess.run(command, env=server_env(), capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "GLM_MCP_HTTP_TOKEN" in run.stderr and "--allow-insecure" in run.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_exposure(host, Settings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "glm-mcp.internal"])
def test_any_other_address_needs_a_token_or_an_explicit_insecure(host: str) -> None:
    with pytest.raises(ConfigError, match="GLM_MCP_HTTP_TOKEN"):
        check_exposure(host, Settings())
    check_exposure(host, Settings(http=Http(token=TOKEN)))
    check_exposure(host, Settings(http=Http(allow_insecure=True)))


# --- settings -------------------------------------------------------------------------------


def test_the_token_comes_from_the_variable_or_a_file_and_never_shows(tmp_path: Path) -> None:
    assert Settings.from_env({"GLM_MCP_HTTP_TOKEN": f" {TOKEN} "}).http.token == TOKEN
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    settings = Settings.from_env({"GLM_MCP_HTTP_TOKEN_FILE": str(secret)})
    assert settings.http.token == TOKEN and TOKEN not in repr(settings)


@pytest.mark.parametrize(
    "env",
    [
        {"GLM_MCP_HTTP_TOKEN": "short"},
        {"GLM_MCP_HTTP_TOKEN": "has spaces in the middle of it"},
        {"GLM_MCP_HTTP_TOKEN": TOKEN, "GLM_MCP_HTTP_TOKEN_FILE": "/etc/hostname"},
        {"GLM_MCP_HTTP_TOKEN_FILE": "/nonexistent/token"},
        {"GLM_MCP_ALLOWED_HOSTS": "https://example.com"},
        {"GLM_MCP_ALLOWED_ORIGINS": "example.com"},
        {"GLM_MCP_STATELESS": "sometimes"},
        {"GLM_MCP_MAX_BODY_BYTES": "10"},
        {"GLM_MCP_SHUTDOWN_GRACE": "-1"},
    ],
)
def test_bad_http_settings_are_refused_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="|".join(env)):
        Settings.from_env(env)


def test_http_settings_and_their_defaults() -> None:
    defaults = Settings.from_env({}).http
    assert (defaults.token, defaults.stateless, defaults.allow_insecure, defaults.allow_client_keys) == (
        None,
        True,
        False,
        False,
    )
    settings = Settings.from_env(
        {
            "GLM_MCP_ALLOWED_HOSTS": "mcp.example.com, glm-mcp:8000 ,",
            "GLM_MCP_ALLOWED_ORIGINS": "https://app.example.com",
            "GLM_MCP_STATELESS": "false",
            "GLM_MCP_ALLOW_CLIENT_KEYS": "yes",
        }
    )
    assert settings.http.allowed_hosts == ("mcp.example.com", "glm-mcp:8000")
    assert settings.http.allowed_origins == ("https://app.example.com",)
    assert not settings.http.stateless and settings.http.allow_client_keys


# --- configured hosts and origins -----------------------------------------------------------


@pytest.mark.anyio
async def test_configured_hosts_and_origins_are_answered_and_origins_get_cors() -> None:
    settings = Settings.from_env(
        {"GLM_MCP_ALLOWED_HOSTS": "mcp.example.com", "GLM_MCP_ALLOWED_ORIGINS": "https://app.example.com"}
    )
    server = create_server(settings)
    app = create_http_app(server, settings)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with (
        server.session_manager.run(),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://mcp.example.com:8443") as http,
    ):
        ok = await http.post(MCP_PATH, content=INITIALIZE, headers={**headers, "Origin": "https://app.example.com"})
        other_host = await http.post(MCP_PATH, content=INITIALIZE, headers={**headers, "Host": "evil.example.com"})
        preflight = await http.options(
            MCP_PATH,
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        refused = await http.options(
            MCP_PATH, headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
    assert ok.status_code == 200 and other_host.status_code == 421
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert refused.status_code == 400


# --- callers' own keys ----------------------------------------------------------------------


def raw(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]


def test_a_callers_key_is_used_only_when_allowed() -> None:
    allowed = Settings(http=Http(allow_client_keys=True))
    header = CLIENT_KEY_HEADER.lower().replace("-", "_")
    assert read_caller_key([], allowed) is None
    assert read_caller_key(raw(x_other="1"), allowed) is None
    with pytest.raises(ClientKeyError, match="empty"):  # present but blank: never the server's key instead
        read_caller_key(raw(**{header: "  "}), allowed)
    key = read_caller_key([(CLIENT_KEY_HEADER.upper().encode(), b" caller.secret-of-the-caller ")], allowed)
    assert key == "caller.secret-of-the-caller"
    credentials = caller_key(key, allowed, b"s" * 32).credentials
    assert credentials.authorization() == "Bearer caller.secret-of-the-caller"
    assert CLIENT_KEY_HEADER in credentials.source and "secret-of-the-caller" not in repr(credentials)
    with pytest.raises(ClientKeyError, match="GLM_MCP_ALLOW_CLIENT_KEYS"):
        read_caller_key(raw(**{header: "caller.secret"}), Settings())


def test_a_callers_key_follows_the_servers_auth_mode() -> None:
    jwt = Settings(http=Http(allow_client_keys=True), upstream=Upstream(auth_mode="jwt"))
    header = CLIENT_KEY_HEADER.lower().replace("-", "_")
    with pytest.raises(ClientKeyError, match=re.escape("<id>.<secret>")):
        read_caller_key(raw(**{header: "nodot"}), jwt)
    key = read_caller_key(raw(**{header: "caller.secret-long-enough-for-hs256"}), jwt)
    assert key is not None and caller_key(key, jwt, b"s" * 32).credentials.mode == "jwt"


@pytest.mark.anyio
async def test_the_verifier_accepts_exactly_the_token() -> None:
    verifier = SharedTokenVerifier(TOKEN)
    assert (await verifier.verify_token(TOKEN)) is not None
    for wrong in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper()):
        assert (await verifier.verify_token(wrong)) is None


@pytest.mark.anyio
async def test_neither_the_token_nor_a_callers_key_reaches_the_log(emulator: Emulator) -> None:
    caller_key = "callerid.caller-secret-that-must-not-leak"
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_MCP_HTTP_TOKEN=TOKEN,
        GLM_MCP_ALLOW_CLIENT_KEYS="true",
        GLM_LOG_LEVEL="DEBUG",
    )
    with http_server_process(env=env) as (process, origin):
        logged = drain(process)  # the DEBUG log outgrows a pipe's buffer: read it as it comes
        assert post(origin, {**BEARER, CLIENT_KEY_HEADER: caller_key}).status_code == 200
        assert post(origin, {"Authorization": "Bearer " + caller_key}).status_code == 401
        async with (
            httpx2.AsyncClient(headers={**BEARER, CLIENT_KEY_HEADER: caller_key}, timeout=30) as http,
            Client(streamable_http_client(origin + MCP_PATH, http_client=http), mode="legacy") as client,
        ):
            tools = await listed_tools(client)
            await call_every_tool(tools[:1], calls_through(client))
    output = logged()
    assert output, "the server logged nothing at DEBUG: this test would prove nothing"
    assert TOKEN.encode() not in output and b"caller-secret" not in output


# --- stateless replicas ---------------------------------------------------------------------


class TakingTurns(httpx2.AsyncBaseTransport):
    """A load balancer inside the client: each request goes to the next server in turn."""

    def __init__(self, origins: list[str]) -> None:
        self._targets = [httpx2.URL(origin) for origin in origins]
        self._transport = httpx2.AsyncHTTPTransport()
        self.sent: Counter[int | None] = Counter()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = self._targets[sum(self.sent.values()) % len(self._targets)]
        self.sent[target.port] += 1
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["Host"] = request.url.netloc.decode()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


@pytest.mark.anyio
async def test_stateless_replicas_taking_turns_answer_as_one_server(emulator: Emulator) -> None:
    """Initialize on one process, list on the other, a job started on one and fetched from the other."""
    env = server_env(
        GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_HTTP_TOKEN=TOKEN, GLM_DATA_DIR=scratch_dir()
    )
    with http_server(env=env) as first, http_server(env=env) as second:
        balancer = TakingTurns([first, second])
        async with (
            httpx2.AsyncClient(transport=balancer, headers=BEARER, timeout=30) as http,
            Client(streamable_http_client(first + MCP_PATH, http_client=http), mode="legacy") as client,
        ):
            tools = await listed_tools(client)
            replicas = await call_every_tool(tools, calls_through(client))
    # Turn by turn: each replica answered about half of the requests (initialize, list, one or more per tool).
    assert len(balancer.sent) == 2 and min(balancer.sent.values()) >= sum(balancer.sent.values()) // 2, balancer.sent

    emulator.state.clear()  # the prompt cache too: both runs meet the same emulator
    async with Client(create_server(settings_for(emulator), over_http=True)) as client:  # as the replicas serve it
        assert await listed_tools(client) == tools
        alone = await call_every_tool(tools, calls_through(client), same_arguments(replicas))
    assert _comparable(replicas) == _comparable(alone)


def _comparable(outcomes: Outcomes) -> dict[str, Any]:
    """Each tool's outcome, its structured fields and its text, without ids, counts and times."""
    return {
        name: (
            result.get("isError"),
            sorted(result.get("structuredContent") or {}),
            [re.sub(r"\S*\d\S*", "#", part.get("text", "")) for part in result["content"]],
        )
        for name, (_, result) in outcomes.items()
    }


# --- SIGTERM --------------------------------------------------------------------------------


async def _a_call_that_reaches_the_api(emulator: Emulator) -> tuple[str, dict[str, Any]]:
    """The first listed tool, with arguments that work, whose call goes out to the GLM API."""
    async with Client(create_server(settings_for(emulator))) as client:
        call = calls_through(client)
        reaching: list[tuple[str, dict[str, Any]]] = []

        async def watched(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            before = len(emulator.state.exchanges)
            result = await call(name, arguments)
            if len(emulator.state.exchanges) > before and not result.get("isError"):
                reaching.append((name, arguments))
            return result

        await call_every_tool(await listed_tools(client), watched)
    return reaching[0]


@pytest.mark.anyio
async def test_sigterm_stops_accepting_and_lets_the_call_in_flight_finish(emulator: Emulator) -> None:
    name, arguments = await _a_call_that_reaches_the_api(emulator)
    emulator.config.latency = 2.0
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_SHUTDOWN_GRACE="20")
    with http_server_process(env=env) as (process, origin):
        outcome: dict[str, Any] = {}
        async with Client(origin + MCP_PATH, mode="legacy") as client, anyio.create_task_group() as group:
            await client.list_tools()  # as clients do: the SDK's would list them after the call, too late

            async def in_flight() -> None:
                outcome["result"] = await client.call_tool(name, arguments)

            group.start_soon(in_flight)
            with anyio.fail_after(30):  # the call is in flight once it has reached the API (not after a guess)
                while emulator.state.in_flight < 1:
                    await anyio.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            await anyio.sleep(0.5)
            with pytest.raises(httpx2.ConnectError):  # no new connections from the signal on
                httpx2.get(origin + "/healthz", timeout=2)
        assert not outcome["result"].is_error, outcome["result"]
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_sigterm_gives_up_on_a_call_after_the_grace_period(emulator: Emulator) -> None:
    name, arguments = await _a_call_that_reaches_the_api(emulator)
    emulator.config.latency = 6.0
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_SHUTDOWN_GRACE="1")
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    with http_server_process(env=env) as (process, origin):
        async with httpx2.AsyncClient(timeout=30) as http, anyio.create_task_group() as group:

            async def in_flight() -> None:
                with contextlib.suppress(httpx2.HTTPError):
                    await http.post(origin + MCP_PATH, json=call, headers=headers)

            group.start_soon(in_flight)
            await anyio.sleep(1.0)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(lambda: process.wait(timeout=10))
            stopped_after = time.monotonic() - started
    assert stopped_after < 4, f"{stopped_after:.1f} s for a grace period of 1 s"


@pytest.mark.anyio
async def test_a_callers_own_key_serves_that_call_only(emulator: Emulator) -> None:
    """One deployment, several GLM accounts: the header's key is sent upstream for that call alone."""
    env = server_env(GLM_BASE_URL=emulator.base_url, GLM_MCP_HTTP_TOKEN=TOKEN, GLM_MCP_ALLOW_CLIENT_KEYS="true")
    with http_server(env=env) as origin:

        async def call(tool: str, arguments: dict[str, object], key: str | None) -> Any:
            headers = {**BEARER, **({CLIENT_KEY_HEADER: key} if key else {})}
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(origin + "/mcp", http_client=http)) as client,
            ):
                return await client.call_tool(tool, arguments)

        answered = await call("chat", {"prompt": "with my own key"}, GENERAL_KEY)
        assert not answered.is_error
        assert emulator.state.exchanges[-1].headers["authorization"] == f"Bearer {GENERAL_KEY}"

        refused = (await call("chat", {"prompt": "wrong plan"}, CODING_KEY)).structured_content
        assert refused["glm_code"] == "1113"

        unknown = (await call("chat", {"prompt": "bad key"}, "someone.elses-wrong-key")).structured_content
        assert unknown["glm_code"] == "1000" and CLIENT_KEY_HEADER in unknown["hint"]
        assert "elses-wrong-key" not in str(unknown)

        no_key = (await call("chat", {"prompt": "no key at all"}, None)).structured_content
        assert no_key["error"] == "missing_api_key"  # the server itself has none: nothing borrowed

        listing = (await call("list_jobs", {}, GENERAL_KEY)).structured_content
        assert "jobs" not in listing  # this caller's own jobs: none (tests/test_principals.py has more)
