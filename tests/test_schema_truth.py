"""What the tools' schemas and descriptions tell the model is true where the server runs: no argument it cannot
honour there (`files` over HTTP without GLM_FILES_ROOTS, a `tool_choice` with one choice), no description that
claims inputs the tool lacks, the value forms the platform takes (`stop` as one word), and the vision model the
server itself names. Read through the SDK's client, as a model's client reads them, in process (over HTTP through
the ASGI app, so the fast tier keeps them)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.glm.models import sees_images
from glm_mcp.server.http import MCP_PATH, create_http_app
from tests.conftest import settings_for, upstream_calls
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

WITH_FILES = ("chat", "web_search_chat", "submit_async")
"""The tools that read files for the model (the `Attached` arguments)."""


@asynccontextmanager
async def over_http(settings: Settings) -> AsyncIterator[Client]:
    """The SDK's client on the server as `glm-mcp --transport http` makes it, through its ASGI app in process."""
    server = create_server(settings, over_http=True)
    app = create_http_app(server, settings)
    async with (
        server.session_manager.run(),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1", timeout=30) as http,
        Client(streamable_http_client("http://127.0.0.1" + MCP_PATH, http_client=http)) as client,
    ):
        yield client


async def schemas(client: Client) -> dict[str, dict[str, Any]]:
    return {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.md").write_text("the notes\n")
    return root


# --- files ----------------------------------------------------------------------------------------------------


async def test_files_is_offered_where_the_server_reads_the_callers_files(settings: Settings) -> None:
    async with Client(create_server(settings)) as client:  # in process, as over stdio: the caller's own disk
        offered = await schemas(client)
        instructions = client.instructions or ""
    assert all("files" in offered[name]["properties"] for name in WITH_FILES)
    assert "files: paths or globs" in instructions


async def test_over_http_without_roots_files_is_not_offered_and_still_refused(
    settings: Settings, emulator: Emulator, project: Path
) -> None:
    async with over_http(settings) as client:
        offered = await schemas(client)
        instructions = client.instructions or ""
        refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": [str(project / "notes.md")]}))
    assert [name for name, schema in offered.items() if "files" in schema["properties"]] == []
    assert "files:" not in instructions
    assert refused["error"] == "invalid_argument" and refused["field"] == "files"
    assert "off over HTTP" in refused["message"] and "GLM_FILES_ROOTS" in refused["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_over_http_with_roots_files_is_offered(emulator: Emulator, data_dir: Path, project: Path) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_FILES_ROOTS=str(project))
    async with over_http(settings) as client:
        offered = await schemas(client)
        ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["notes.md"]}))
    assert all("files" in offered[name]["properties"] for name in WITH_FILES)
    assert "the notes" in json.dumps(upstream_calls(emulator, "/chat/completions")[-1].body)


# --- submit_async ---------------------------------------------------------------------------------------------


async def test_submit_async_says_which_of_chats_inputs_it_lacks(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    chat, submit = tools["chat"], tools["submit_async"]
    lacking = set(chat.input_schema["properties"]) - set(submit.input_schema["properties"])
    assert lacking == {"conversation_id", "from_turn", "wait_seconds", "include_reasoning"}
    description = submit.description or ""
    assert "same inputs as chat" not in description
    assert all(name in description for name in lacking) and "return at once" in description
    assert "include_reasoning" in tools["get_result"].input_schema["properties"]


# --- tool_choice ----------------------------------------------------------------------------------------------


async def test_no_tool_offers_a_tool_choice_with_one_choice(client: Client, emulator: Emulator) -> None:
    """The platform takes only `"auto"` (docs/glm-endpoints.md), what it does anyway: no choice to offer."""
    assert [name for name, schema in (await schemas(client)).items() if "tool_choice" in schema["properties"]] == []
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    ok(await client.call_tool("chat", {"prompt": "Weather in Paris?", "tools": [weather]}))
    assert upstream_calls(emulator, "/chat/completions")[-1].body["tool_choice"] == "auto"


# --- stop -----------------------------------------------------------------------------------------------------


async def test_stop_takes_one_stop_word_as_a_string(client: Client, emulator: Emulator) -> None:
    """The platform's SDKs take `stop` as a string or a list; the model writes either form."""
    ask = {"prompt": "Tell me about lanterns", "model": "glm-4-flash"}
    full = ok(await client.call_tool("chat", ask))["text"]
    word = full.split()[12]
    stopped = ok(await client.call_tool("chat", {**ask, "stop": word}))
    assert upstream_calls(emulator, "/chat/completions")[-1].body["stop"] == [word]
    assert "finish_reason" not in stopped and stopped["text"] == full[: full.index(word)]  # ended, at `stop`
    listed = ok(await client.call_tool("chat", {**ask, "stop": [word]}))
    assert listed["text"] == stopped["text"]
    stop = (await schemas(client))["chat"]["properties"]["stop"]
    assert {option["type"] for option in stop["anyOf"]} == {"string", "array"}


# --- the vision model -----------------------------------------------------------------------------------------


def vision_models_named(text: str) -> set[str]:
    """The model codes in `text` that see images."""
    return {code for code in re.findall(r"\bglm-[0-9a-z.\-]*[0-9a-z]", text) if sees_images(code)}


@pytest.mark.parametrize("vision", ["", "glm-4.5v"])
async def test_the_schemas_name_the_vision_model_the_server_names(
    emulator: Emulator, data_dir: Path, project: Path, vision: str
) -> None:
    """The model a refused image points to (GLM_VISION_MODEL) is the one the schemas offer for images."""
    (project / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    env = {"GLM_DATA_DIR": str(data_dir), "GLM_FILES_ROOTS": str(project), "GLM_MCP_TOOLSETS": "all"}
    settings = settings_for(emulator, **env, **({"GLM_VISION_MODEL": vision} if vision else {}))
    async with Client(create_server(settings)) as client:
        listed = json.dumps([tool.model_dump(mode="json") for tool in (await client.list_tools()).tools])
        refused = failed(await client.call_tool("chat", {"prompt": "What is it?", "files": ["shot.png"]}))
    assert vision_models_named(listed) == {settings.models.vision} == vision_models_named(refused["message"])
    assert settings.models.vision == (vision or "glm-4.6v")
