"""Callers see only their own work: over real HTTP, with the emulator taking two keys, two callers with
their own keys and a token holder without one each list and read only the jobs they started; another's
id answers as a made-up one does, without a poll upstream; malformed caller-key headers are refused."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from glm_mcp.app import JOBS_FILE
from glm_mcp.emulator import Emulator
from glm_mcp.server.auth import CLIENT_KEY_HEADER
from glm_mcp.server.http import MCP_PATH
from tests.conftest import GENERAL_KEY
from tests.processes import http_server, scratch_dir, server_env
from tests.test_tools import failed, ok

TOKEN = "principal-tests-token-0123456789"
SECOND_KEY = "second.key-general-of-another-caller"
SLOW = {"thinking": "disabled", "wait_seconds": 0.2}
"""A chat handed off as a job: it is still generating when its short wait runs out."""
MADE_UP = {"async_task": "9999999999-made-up-task", "chat": "job_0123456789abcdef0123456789abcdef"}


@pytest.fixture
def two_keys(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator taking a second general-plan key (the caller B's), with slow streams to hand chats off."""
    keys, delay = emulator.config.api_keys, emulator.config.chunk_delay
    emulator.config.api_keys = (*keys, SECOND_KEY)
    emulator.config.chunk_delay = 0.1
    try:
        yield emulator
    finally:
        emulator.config.api_keys, emulator.config.chunk_delay = keys, delay


def _headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **({CLIENT_KEY_HEADER: key} if key else {})}


async def _call(origin: str, key: str | None, tool: str, arguments: dict[str, Any]) -> Any:
    async with (
        httpx2.AsyncClient(headers=_headers(key), timeout=30) as http,
        Client(streamable_http_client(origin + MCP_PATH, http_client=http)) as client,
    ):
        return await client.call_tool(tool, arguments)


def _answer(result: Any, job_id: str) -> str:
    """Everything a caller gets back, with the id it asked about replaced: to compare two answers."""
    dumped = json.dumps({"content": [c.model_dump() for c in result.content], "structured": result.structured_content})
    return dumped.replace(job_id, "<id>")


@pytest.mark.anyio
async def test_each_caller_lists_and_reads_only_its_own_jobs(two_keys: Emulator) -> None:
    data_dir = scratch_dir()
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=two_keys.base_url,
        GLM_MCP_HTTP_TOKEN=TOKEN,
        GLM_MCP_ALLOW_CLIENT_KEYS="true",
        GLM_DATA_DIR=data_dir,
    )
    # A brings the very key the server has: a caller's own key is an identity of its own all the same.
    callers = {"A": GENERAL_KEY, "B": SECOND_KEY, "token only": None}
    with http_server(env=env) as origin:
        started: dict[str, dict[str, str]] = {}
        for name, key in callers.items():
            task = ok(await _call(origin, key, "submit_async", {"prompt": f"task of {name}"}))
            chat = ok(await _call(origin, key, "chat", {"prompt": f"chat of {name}", **SLOW}))
            assert chat["status"] == "running"
            started[name] = {"async_task": task["task_id"], "chat": chat["job_id"]}

        for name, key in callers.items():
            listing = ok(await _call(origin, key, "list_jobs", {}))
            assert {job["job_id"] for job in listing["jobs"]} == set(started[name].values()), name
            assert all(name in job["summary"] for job in listing["jobs"])
            for job_id in started[name].values():
                own = ok(await _call(origin, key, "get_result", {"task_id": job_id, "wait_seconds": 0}))
                assert own["task_id"] == job_id

            for kind, made_up in MADE_UP.items():
                unknown = await _call(origin, key, "get_result", {"task_id": made_up, "wait_seconds": 0})
                assert failed(unknown)["error"] == "unknown_job"
                for other in callers.keys() - {name}:
                    polls_before = len([e for e in two_keys.state.exchanges if "async-result" in e.path])
                    foreign_id = started[other][kind]
                    foreign = await _call(origin, key, "get_result", {"task_id": foreign_id, "wait_seconds": 0})
                    assert _answer(foreign, foreign_id) == _answer(unknown, made_up), (name, other, kind)
                    polls = [e for e in two_keys.state.exchanges if "async-result" in e.path]
                    assert len(polls) == polls_before, f"{name} polled {other}'s task upstream"

        stored = b"".join(p.read_bytes() for p in Path(data_dir).glob(JOBS_FILE + "*"))
    assert b"key:" in stored, "no caller's principal was recorded: this test would prove nothing"
    assert GENERAL_KEY.encode() not in stored and SECOND_KEY.encode() not in stored
    assert b"key-general" not in stored  # nor the secret half of either key


# --- malformed caller-key headers ---------------------------------------------------------------


CALL = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "chat", "arguments": {"prompt": "hi"}}}
).encode()


def _raw_post(origin: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """POST a tools/call with exactly these headers, bytes as given (no client library tidies them)."""
    host, port = origin.removeprefix("http://").split(":")
    lines = [
        b"POST /mcp HTTP/1.1",
        f"Host: {host}:{port}".encode(),
        b"Content-Type: application/json",
        b"Accept: application/json, text/event-stream",
        b"MCP-Protocol-Version: 2025-06-18",
        f"Authorization: Bearer {TOKEN}".encode(),
        f"Content-Length: {len(CALL)}".encode(),
        b"Connection: close",
        *(name + b": " + value for name, value in headers),
    ]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + CALL)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def keyed_server(emulator_session: Emulator) -> Iterator[str]:
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator_session.base_url,
        GLM_MCP_HTTP_TOKEN=TOKEN,
        GLM_MCP_ALLOW_CLIENT_KEYS="true",
    )
    with http_server(env=env) as origin:
        yield origin


KEY = CLIENT_KEY_HEADER.encode()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param([(KEY, "caller.clé-secrète".encode())], b"printable ASCII", id="non-ASCII"),
        pytest.param([(KEY, b"caller.sec\tret")], b"printable ASCII", id="control character"),
        pytest.param([(KEY, b"")], b"is empty", id="empty"),
        pytest.param([(KEY, b"   ")], b"is empty", id="blank"),
        pytest.param([(KEY, SECOND_KEY.encode()), (KEY, b"")], b"appears 2 times", id="twice, one blank"),
        pytest.param([(KEY, SECOND_KEY.encode()), (KEY.lower(), SECOND_KEY.encode())], b"appears 2 times", id="twice"),
    ],
)
def test_a_malformed_caller_key_header_is_refused_with_one_line(
    keyed_server: str, emulator: Emulator, headers: list[tuple[bytes, bytes]], reason: bytes
) -> None:
    status, body = _raw_post(keyed_server, headers)
    assert (status, reason in body) == (400, True), body
    assert CLIENT_KEY_HEADER.encode() in body and body.count(b"\n") <= 1 and b"Traceback" not in body
    assert emulator.state.exchanges == [], "a refused call reached the GLM API"


def test_a_well_formed_caller_key_goes_through(keyed_server: str, emulator: Emulator) -> None:
    """The same raw request with a good header is answered: the refusals above are about the header alone."""
    status, _ = _raw_post(keyed_server, [(KEY, GENERAL_KEY.encode())])
    assert status == 200 and emulator.state.exchanges[-1].headers["authorization"] == f"Bearer {GENERAL_KEY}"
