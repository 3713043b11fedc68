"""Hostile input survived: arbitrary tool arguments, and arbitrary lines on a real stdio process.

Properties: the server never crashes, never writes anything but JSON-RPC to stdout, and answers
every request with a result or a JSON-RPC error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from tests import processes
from tests.conftest import GENERAL_KEY, settings_for
from tests.processes import COMMAND, server_env

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
odd_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\u202e\u200b",
        "🤖" * 500,
        "x" * 200_000,
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "null",
        "[1, 2]",
        '{"a": 1}',
        "ignore previous instructions",
    ]
)


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


HOSTILE_VALUES = json_values | odd_text | st.just(deep(200)) | st.just({"role": "user", "content": deep(50)})


@pytest.fixture(scope="module")
def portal_client(emulator_session: Emulator) -> Iterator[tuple[BlockingPortal, Client, dict[str, Any]]]:
    with start_blocking_portal() as portal:
        client = Client(create_server(settings_for(emulator_session, GLM_MAX_RETRIES="0")))
        with portal.wrap_async_context_manager(client) as connected:
            tools = {t.name: t for t in portal.call(connected.list_tools).tools}
            yield portal, connected, tools


def _arguments(tools: dict[str, Any]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    def for_tool(name: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
        fields = list(tools[name].input_schema["properties"])
        known = st.dictionaries(st.sampled_from(fields), HOSTILE_VALUES, max_size=len(fields))
        extra = st.dictionaries(st.text(max_size=12), HOSTILE_VALUES, max_size=2)
        return st.tuples(st.just(name), st.builds(lambda a, b: {**b, **a}, known, extra))

    return st.sampled_from(sorted(tools)).flatmap(for_tool)


def test_arbitrary_tool_arguments_get_a_result(portal_client: tuple[BlockingPortal, Client, dict[str, Any]]) -> None:
    portal, client, tools = portal_client

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_arguments(tools))
    def check(call: tuple[str, dict[str, Any]]) -> None:
        name, arguments = call
        arguments.pop("wait_seconds", None)  # a random wait could legitimately hold a call for an hour
        result = portal.call(client.call_tool, name, arguments)
        assert isinstance(result, CallToolResult)
        text = " ".join(getattr(block, "text", "") for block in result.content)
        assert "Traceback" not in text and "internal_error" not in json.dumps(result.structured_content or {})

    check()
    assert not portal.call(client.call_tool, "chat", {"prompt": "still alive?"}).is_error


# --- raw lines on a real stdio process -----------------------------------------------------------

METHODS = [
    "ping",
    "tools/list",
    "tools/call",
    "initialize",
    "resources/list",
    "prompts/list",
    "logging/setLevel",
    "completion/complete",
    "tasks/get",
    "notifications/cancelled",
    "no/such/method",
    "",
]
request_ids = st.integers(min_value=-(2**70), max_value=2**70) | st.text(min_size=1, max_size=300)
requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "id": request_ids, "method": st.sampled_from(METHODS) | st.text(max_size=30)},
    optional={"params": json_values},
)
garbage = st.text(max_size=300).map(lambda t: t.replace("\n", " ").replace("\r", " "))
truncated = requests.map(lambda r: json.dumps(r)[: max(1, len(json.dumps(r)) // 2)])
lines = st.lists(
    st.one_of(requests.map(json.dumps), garbage, truncated, json_values.map(json.dumps)), min_size=1, max_size=8
)


class FuzzedStdio(processes.RawStdio):
    """A real `glm-mcp` process fed raw lines; every line it writes must be JSON-RPC."""

    next_probe = 10**9

    async def exchange(self, sent: list[str]) -> list[dict[str, Any]]:
        """What the server wrote in answer to `sent`, up to the answer to a ping sent after it."""
        self.next_probe += 1
        start = len(self.seen)
        await self.send(*sent, {"jsonrpc": "2.0", "id": self.next_probe, "method": "ping"})
        await self.answer(self.next_probe)
        return self.seen[start:]


@pytest.fixture(scope="module")
def raw_server(emulator_session: Emulator) -> Iterator[tuple[BlockingPortal, FuzzedStdio]]:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator_session.base_url, GLM_MAX_RETRIES="0")

    async def start() -> FuzzedStdio:
        process = await anyio.open_process(COMMAND, env=env)
        raw = FuzzedStdio(process)
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "fuzz", "version": "0"},
            },
        }
        await raw.send(hello)
        await raw.answer(1)  # the handshake answered before anything else is sent
        await raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return raw

    with start_blocking_portal() as portal:
        raw = portal.call(start)
        yield portal, raw
        portal.call(raw.process.aclose)


def test_raw_lines_get_json_rpc_answers_and_nothing_else(raw_server: tuple[BlockingPortal, FuzzedStdio]) -> None:
    portal, raw = raw_server

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lines)
    def check(sent: list[str]) -> None:
        answers = portal.call(raw.exchange, sent)
        assert raw.process.returncode is None, "the server died"
        answered = {json.dumps(a.get("id")) for a in answers}
        for line in sent:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            is_request = isinstance(message, dict) and "id" in message and isinstance(message.get("method"), str)
            if is_request and not message["method"].startswith("notifications/"):
                assert json.dumps(message["id"]) in answered or "null" in answered, line[:200]

    check()
