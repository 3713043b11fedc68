"""Every argument mistake comes back one way, on every transport: a structured `invalid_argument`
naming the field, what was wrong and what is allowed, with nothing sent upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from tests.conftest import GENERAL_KEY
from tests.processes import COMMAND, http_server, server_env

pytestmark = pytest.mark.anyio

MISTAKES: list[tuple[str, dict[str, Any], str, str]] = [
    # tool, arguments, the field named, words the message must carry (what is allowed or expected)
    ("chat", {"promt": "hi"}, "promt", "Did you mean `prompt`?"),
    ("chat", {"prompt": "hi", "temprature": 0.5}, "temprature", "Did you mean `temperature`?"),
    ("chat", {"prompt": "hi", "temperature": 3}, "temperature", "less than or equal to 1; got 3"),
    ("chat", {"prompt": "hi", "thinking": "maybe"}, "thinking", "'enabled' or 'disabled'; got 'maybe'"),
    ("chat", {"prompt": 5}, "prompt", "a valid string; got 5"),
    ("chat", {"prompt": "hi", "max_tokens": "many"}, "max_tokens", "a valid integer"),
    ("chat", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "'user', 'assistant'"),
    ("chat", {"prompt": "hi", "messages": [{"role": "user", "content": "x"}]}, "messages", "not both"),
    ("web_search_chat", {}, "question", "required"),
    ("web_search_chat", {"question": "q", "count": 99}, "count", "less than or equal to 50"),
    ("get_result", {"task_id": "../../etc/passwd"}, "task_id", "pattern"),
    ("list_jobs", {"status": "lost"}, "status", "'running', 'completed'"),
    ("submit_async", {"prompt": "hi", "json_outpt": True}, "json_outpt", "Did you mean `json_output`?"),
]


def assert_refused(result: Any, field: str, words: str) -> None:
    assert result.is_error
    failure = result.structured_content
    assert failure["error"] == "invalid_argument" and failure["field"] == field, failure
    assert failure["retryable"] is False
    assert words in failure["message"], failure["message"]
    text = result.content[0].text
    assert text.startswith(f"Error: Invalid argument `{field}`"), text
    assert "pydantic" not in text and "validation error for" not in text, text


async def check_every_mistake(client: Client, emulator: Emulator) -> None:
    for name, arguments, field, words in MISTAKES:
        assert_refused(await client.call_tool(name, arguments), field, words)
    assert emulator.state.exchanges == [], "an argument mistake reached the upstream"
    ok = await client.call_tool("chat", {"prompt": "the control case goes through"})
    assert not ok.is_error and len(emulator.state.exchanges) == 1


async def test_in_process(settings: Settings, emulator: Emulator) -> None:
    async with Client(create_server(settings)) as client:
        await check_every_mistake(client, emulator)


async def test_over_stdio(emulator: Emulator) -> None:
    params = StdioServerParameters(
        command=COMMAND[0],
        args=COMMAND[1:],
        env=server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url),
    )
    async with Client(params, mode="legacy") as client:
        await check_every_mistake(client, emulator)


@asynccontextmanager
async def http_client(emulator: Emulator) -> AsyncIterator[Client]:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    with http_server(env=env) as origin:
        async with Client(origin + "/mcp", mode="legacy") as client:
            yield client


async def test_over_http(emulator: Emulator) -> None:
    async with http_client(emulator) as client:
        await check_every_mistake(client, emulator)


async def test_a_list_sent_as_json_text_is_still_read(settings: Settings, emulator: Emulator) -> None:
    """Some clients send array arguments as JSON strings; they are read as the SDK would read them."""
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("chat", {"messages": '[{"role": "user", "content": "hi"}]'})
    assert not result.is_error, result.content
