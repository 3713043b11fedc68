"""The API key never appears in anything the server writes: stdout, stderr at DEBUG, results, errors."""

from __future__ import annotations

import json
import re

import anyio
import pytest

from glm_mcp.emulator import Emulator
from tests.processes import COMMAND, server_env

pytestmark = pytest.mark.anyio

KEY_ID = "leakyid"
SECRET = "s3cr3t-value-that-must-not-leak"
JWT_SHAPE = re.compile(rb"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")


async def _everything_written(emulator: Emulator, **env: str) -> bytes:
    """Run a session of failing calls on a real stdio process; all of its stdout and stderr."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "chat", "arguments": {"prompt": "hi"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "submit_async", "arguments": {
            "prompt": "hi"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "chat", "arguments": {
            "prompt": "hi", "model": "glm-nope"}}},
    ]
    full_env = server_env(GLM_BASE_URL=emulator.base_url, GLM_LOG_LEVEL="DEBUG", **env)
    async with await anyio.open_process(COMMAND, env=full_env) as process:
        assert process.stdin and process.stdout and process.stderr
        await process.stdin.send(json.dumps(requests[0]).encode() + b"\n")
        out = b""
        with anyio.fail_after(30):
            while b'"id":1' not in out:
                out += await process.stdout.receive()
            await process.stdin.send(b"".join(json.dumps(r).encode() + b"\n" for r in requests[1:]))
            while not all(f'"id":{i},'.encode() in out for i in (2, 3, 4)):
                out += await process.stdout.receive()
        await process.stdin.aclose()
        with anyio.fail_after(10):
            await process.wait()
        err = b""
        async for chunk in process.stderr:
            err += chunk
    assert b'"isError":true' in out
    return out + err


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
async def test_a_refused_key_leaks_nowhere(emulator: Emulator, mode: str) -> None:
    written = await _everything_written(emulator, GLM_API_KEY=f"{KEY_ID}.{SECRET}", GLM_AUTH_MODE=mode)
    assert b"1000" in written  # the platform did refuse it, and the run did log
    assert SECRET.encode() not in written
    assert JWT_SHAPE.search(written) is None
    # What was sent really carried the key, so the absence above means something.
    sent = emulator.state.exchanges[0].headers["authorization"]
    assert (SECRET in sent) if mode == "bearer" else sent.startswith("Bearer eyJ")
