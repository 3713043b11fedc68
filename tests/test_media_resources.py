"""Generated images and videos as MCP resources (glm_mcp/server/media.py, glm_mcp/jobs/media.py): a result links each
file as a `glm-media://` resource instead of carrying it as base64, and the client reads the bytes back while the
platform keeps them (or from the copy saved over stdio, also after a restart); then a read says what to do. Only the
caller a file was made for can read or list it. Driven over stdio and HTTP (real `glm-mcp` processes and the SDK's
client), raw stdio on a protocol without resource links, in process, and by Claude Code headless, which reads the
resource for its model."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import BlobResourceContents, CallToolResult, ErrorData, ImageContent, ResourceLink

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.glm.fetch import file_type
from glm_mcp.jobs import SERVER, Principal, SQLiteJobStore, sqlite
from glm_mcp.jobs.media import MediaRecord, MediaRecords, media_id
from glm_mcp.jobs.postgres import SCHEMA_VERSION, PostgresJobStore
from glm_mcp.server.auth import CLIENT_KEY_HEADER
from glm_mcp.server.http import MCP_PATH
from glm_mcp.server.media import TEMPLATE
from rigs.node_tools import TS_SDK, node_env, node_modules
from tests.claude_headless import SERVER as CLAUDE_SERVER
from tests.claude_headless import claude_print
from tests.conftest import GENERAL_KEY, settings_for, upstream_calls
from tests.emulator.test_endpoints import decode_png
from tests.fake_anthropic import Block, FakeAnthropic, text, tool_names, tool_results, tool_use
from tests.hostile_upstream import HostileUpstream, Reply, Request, json_reply
from tests.processes import COMMAND, RawStdio, http_server, server_env
from tests.test_schema_truth import over_http
from tests.test_tools import ok

pytestmark = pytest.mark.anyio

TOKEN = "media-tests-token-0123456789abcdef"
SECOND_KEY = "second.key-general-of-another-caller"
PROMPT = {"prompt": "a red fox in snow"}
URI = re.compile(r"glm-media://[0-9a-f]{32}/[\w.]+")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)


def links(result: CallToolResult) -> list[ResourceLink]:
    return [block for block in result.content if isinstance(block, ResourceLink)]


def inline_images(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def platform_file(url: str) -> bytes:
    """The file as the platform (the emulator) serves it at `url`."""
    response = httpx2.get(url, timeout=10)
    assert response.status_code == 200
    return response.content


async def read(client: Client, uri: str) -> tuple[bytes, str | None]:
    """The bytes and media type `resources/read` gives for `uri`."""
    (content,) = (await client.read_resource(uri)).contents
    assert isinstance(content, BlobResourceContents), content
    return base64.b64decode(content.blob), content.mime_type


async def read_refused(client: Client, uri: str) -> ErrorData:
    with pytest.raises(MCPError) as refused:
        await client.read_resource(uri)
    return refused.value.error


async def listed(client: Client) -> list[str]:
    return [str(resource.uri) for resource in (await client.list_resources()).resources]


def wait_past(url: str) -> None:
    """Until the `expires` a URL of the emulator states has passed, and the emulator's own expiry (the URL says it
    in whole seconds, cut)."""
    expires = int(re.search(r"expires=(\d+)", url).group(1))  # type: ignore[union-attr]
    while time.time() <= expires + 1.2:
        time.sleep(0.1)


@asynccontextmanager
async def connected(transport: str, env: dict[str, str], key: str | None = None) -> AsyncIterator[Client]:
    """The SDK's client on the real `glm-mcp` over `transport` (over HTTP with the token, and `key` as its own)."""
    if transport == "stdio":
        async with Client(StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=env)) as client:
            yield client
        return
    with http_server(env={**env, "GLM_MCP_HTTP_TOKEN": TOKEN}) as origin:
        async with calling(origin, key) as client:
            yield client


@asynccontextmanager
async def calling(origin: str, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", **({CLIENT_KEY_HEADER: key} if key else {})}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(origin + MCP_PATH, http_client=http)) as client,
    ):
        yield client


# --- an image, over the real transports --------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_generated_image_is_linked_as_a_resource_the_client_reads_back(
    transport: str, emulator: Emulator, tmp_path: Path
) -> None:
    images = tmp_path / "img"
    env = server_env(
        GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="images", GLM_IMAGE_DIR=str(images)
    )
    async with connected(transport, env) as client:
        result = await client.call_tool("generate_image", PROMPT)
        out = ok(result)
        (link,) = links(result)
        png = platform_file(out["url"])
        assert link.uri == out["resource"] and URI.fullmatch(link.uri), (link, out)
        assert (link.name, link.mime_type, link.size) == ("image.png", "image/png", len(png))
        assert inline_images(result) == []  # a client that takes a link carries no base64 in its conversation
        assert len(json.dumps(out)) < 1000  # nor in the structured content
        data, media_type = await read(client, link.uri)
        assert data == png and media_type == "image/png" and decode_png(data)[:2] == (1024, 1024)
        assert link.uri in await listed(client)
        templates = (await client.list_resource_templates()).resource_templates
        (template,) = [t for t in templates if t.uri_template == TEMPLATE]
        assert template.mime_type is None  # each read says its own
    if transport == "stdio":
        (copy,) = images.iterdir()
        assert out["saved_path"] == str(copy) and copy.read_bytes() == png  # GLM_IMAGE_DIR keeps its copies
    else:
        assert "saved_path" not in out and not images.exists()


async def test_a_link_read_after_its_url_expired_says_so_and_what_to_do(emulator: Emulator) -> None:
    emulator.config.file_ttl = 2
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="images")
    async with connected("http", env) as client:
        out = ok(await client.call_tool("generate_image", PROMPT))
        wait_past(out["url"])
        assert httpx2.get(out["url"], timeout=10).status_code == 404  # the platform no longer has it either
        refused = await read_refused(client, out["resource"])
    assert refused.code == -32602
    assert refused.message.startswith(f"{out['resource']} can no longer be read: the platform's URL for it expired")
    assert "Generate it again" in refused.message and "GLM_IMAGE_DIR" in refused.message
    assert isinstance(refused.data, dict) and refused.data["error"] == "media_expired"
    assert refused.data["uri"] == out["resource"]


async def test_over_stdio_the_saved_copy_serves_the_link_after_the_url_expired_and_a_restart(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The link is in the registry, so another process reads it; the copy is read while it is the image recorded."""
    emulator.config.file_ttl = 2
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_MCP_TOOLSETS="images",
        GLM_DATA_DIR=str(tmp_path / "data"),
        GLM_IMAGE_DIR=str(tmp_path / "img"),
    )
    async with connected("stdio", env) as client:
        out = ok(await client.call_tool("generate_image", PROMPT))
        png = platform_file(out["url"])
    wait_past(out["url"])
    async with connected("stdio", env) as restarted:
        assert await read(restarted, out["resource"]) == (png, "image/png")
        assert out["resource"] in await listed(restarted)
        Path(out["saved_path"]).write_bytes(PNG)  # the copy is no longer the image recorded
        refused = await read_refused(restarted, out["resource"])
    assert "expired" in refused.message and f"Its copy {out['saved_path']} is gone or was changed" in refused.message


# --- another caller -----------------------------------------------------------------------------------------


@pytest.fixture
def two_keys(emulator: Emulator) -> Iterator[Emulator]:
    keys = emulator.config.api_keys
    emulator.config.api_keys = (*keys, SECOND_KEY)
    try:
        yield emulator
    finally:
        emulator.config.api_keys = keys


async def test_another_caller_can_neither_read_nor_list_a_callers_image(two_keys: Emulator) -> None:
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=two_keys.base_url,
        GLM_MCP_TOOLSETS="images",
        GLM_MCP_HTTP_TOKEN=TOKEN,
        GLM_MCP_ALLOW_CLIENT_KEYS="true",
    )
    with http_server(env=env) as origin:
        async with calling(origin, SECOND_KEY) as owner:
            out = ok(await owner.call_tool("generate_image", PROMPT))
            assert (await read(owner, out["resource"]))[0] == platform_file(out["url"])
        made_up = "glm-media://" + "0" * 32 + "/image.png"
        for key in (GENERAL_KEY, None):  # another caller's key; the token alone (the server's key)
            async with calling(origin, key) as other:
                refused = await read_refused(other, out["resource"])
                unknown = await read_refused(other, made_up)
                assert out["resource"] not in await listed(other)
            assert refused.code == unknown.code == -32602
            assert refused.message.replace(out["resource"], "<uri>") == unknown.message.replace(made_up, "<uri>")
            assert isinstance(refused.data, dict) and refused.data["error"] == "unknown_media"
            assert out["url"] not in json.dumps(refused.model_dump())


# --- clients without links, and GLM_MEDIA_INLINE --------------------------------------------------------------


async def test_a_client_whose_protocol_has_no_resource_links_gets_the_image_inline(emulator: Emulator) -> None:
    """2025-03-26 has no `resource_link` block: its client gets the image itself, and the URI in the structured
    content, which it can read all the same."""
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="images")
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "old", "version": "0"}},
    }
    async with await anyio.open_process(COMMAND, env=env) as process:
        raw = RawStdio(process)
        await raw.send(initialize)
        assert (await raw.answer(1))["result"]["protocolVersion"] == "2025-03-26"
        call = {"name": "generate_image", "arguments": PROMPT}
        await raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        result = (await raw.answer(2, timeout=60))["result"]
        uri = result["structuredContent"]["resource"]
        await raw.send({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}})
        (content,) = (await raw.answer(3))["result"]["contents"]
        assert process.stdin is not None
        await process.stdin.aclose()
    assert [block["type"] for block in result["content"]] == ["text", "image"]
    png = platform_file(result["structuredContent"]["url"])
    assert base64.b64decode(result["content"][1]["data"]) == png
    assert base64.b64decode(content["blob"]) == png and content["mimeType"] == "image/png"


@pytest.mark.parametrize(("policy", "inline"), [("auto", False), ("always", True), ("never", False)])
async def test_glm_media_inline_says_whether_the_image_comes_inline_beside_its_link(
    emulator: Emulator, data_dir: Path, policy: str, inline: bool
) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="images", GLM_MEDIA_INLINE=policy)
    async with Client(create_server(settings)) as client:  # a client of 2026-07-28, which has links
        result = await client.call_tool("generate_image", PROMPT)
    assert len(links(result)) == 1 and ok(result)["resource"] == links(result)[0].uri
    assert len(inline_images(result)) == inline


# --- videos, covers and tasks -----------------------------------------------------------------------------------


async def test_a_video_its_cover_and_a_glm_image_task_are_linked_and_read_back(
    emulator: Emulator, data_dir: Path
) -> None:
    emulator.config.async_delay = 0.3
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="images,video,core")
    async with Client(create_server(settings)) as client:
        video = await client.call_tool("generate_video", {"prompt": "a lantern", "wait_seconds": 30})
        (made,) = ok(video)["videos"]
        assert [link.uri for link in links(video)] == [made["resource"], made["cover_resource"]]
        assert await read(client, made["resource"]) == (platform_file(made["url"]), "image/apng")  # the emulator's
        assert await read(client, made["cover_resource"]) == (platform_file(made["cover_url"]), "image/png")

        running = ok(await client.call_tool("generate_image", {**PROMPT, "model": "glm-image", "wait_seconds": 0}))
        done = await client.call_tool("get_result", {"task_id": running["task_id"], "wait_seconds": 30})
        (image,) = ok(done)["images"]
        assert [link.uri for link in links(done)] == [image["resource"]]
        again = await client.call_tool("get_result", {"task_id": running["task_id"]})  # from the registry
        assert ok(again)["images"] == [image] and links(again) == links(done)  # the same link, not a second one
        assert await read(client, image["resource"]) == (platform_file(image["url"]), "image/png")
        assert {made["resource"], made["cover_resource"], image["resource"]} <= set(await listed(client))
    assert len(upstream_calls(emulator, "/videos/generations")) == 1


# --- a platform that no longer serves it, a copy that changed ---------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Iterator[HostileUpstream]:
    with HostileUpstream() as upstream:
        yield upstream


def hostile_settings(api: HostileUpstream, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "GLM_API_KEY": "mediaid.media-secret-half-0123456789",
            "GLM_BASE_URL": api.base_url,
            "GLM_MAX_RETRIES": "0",
            "GLM_DATA_DIR": str(tmp_path / "data"),
            "GLM_IMAGE_DIR": str(tmp_path / "img"),
            "GLM_MCP_TOOLSETS": "images",
        }
    )


def serving(api: HostileUpstream, file: Reply) -> None:
    """The API answers an image request with a file of its own origin (its URL says it lasts), served as `file`."""

    def reply(request: Request) -> Reply:
        if request.path.endswith("/images/generations"):
            return json_reply({"created": 1, "data": [{"url": f"{api.base_url}/files/a.png?Expires=4000000000"}]})
        return file

    api.clear(reply)


async def test_a_file_the_platform_no_longer_serves_reads_as_gone(api: HostileUpstream, tmp_path: Path) -> None:
    """Object storage answers 403 for a file it dropped (or a signature it no longer takes) before the URL said."""
    serving(api, Reply(200, "OK", {"content-type": "image/png"}, PNG))
    async with over_http(hostile_settings(api, tmp_path)) as client:  # over HTTP: no copy
        out = ok(await client.call_tool("generate_image", PROMPT))
        assert await read(client, out["resource"]) == (PNG, "image/png")
        serving(api, Reply(403, "Forbidden", {"content-type": "application/xml"}, b"<Error>AccessDenied</Error>"))
        refused = await read_refused(client, out["resource"])
    assert "can no longer be read: the platform no longer serves it (HTTP 403)" in refused.message
    assert isinstance(refused.data, dict) and refused.data["error"] == "media_expired"


async def test_a_changed_copy_is_not_served_the_platforms_file_is(api: HostileUpstream, tmp_path: Path) -> None:
    serving(api, Reply(200, "OK", {"content-type": "image/png"}, PNG))
    async with Client(create_server(hostile_settings(api, tmp_path))) as client:  # in process: as stdio, a copy
        out = ok(await client.call_tool("generate_image", PROMPT))
        copy = Path(out["saved_path"])
        assert await read(client, out["resource"]) == (PNG, "image/png") and len(api.records) == 2  # from the copy
        copy.write_bytes(PNG + b"changed")
        assert await read(client, out["resource"]) == (PNG, "image/png") and len(api.records) == 3  # the platform's
        copy.unlink()
        copy.symlink_to(tmp_path / "elsewhere.png")
        (tmp_path / "elsewhere.png").write_bytes(PNG)  # the same content, through a link: not the copy
        assert await read(client, out["resource"]) == (PNG, "image/png") and len(api.records) == 4


async def test_a_copy_is_served_only_from_this_servers_glm_image_dir(api: HostileUpstream, tmp_path: Path) -> None:
    """The registry names the copy's path, and other processes share it: a server reads a copy only where it saves."""
    serving(api, Reply(200, "OK", {"content-type": "image/png"}, PNG))
    settings = hostile_settings(api, tmp_path)
    async with Client(create_server(settings)) as client:
        out = ok(await client.call_tool("generate_image", PROMPT))
    serving(api, Reply(404, "Not Found"))
    elsewhere = settings.replace(registry={"image_dir": tmp_path / "other"})
    async with Client(create_server(elsewhere)) as client:
        refused = await read_refused(client, out["resource"])
    async with Client(create_server(settings)) as client:
        assert await read(client, out["resource"]) == (PNG, "image/png")
    assert Path(out["saved_path"]).read_bytes() == PNG and "HTTP 404" in refused.message


# --- what is recognised ---------------------------------------------------------------------------------------


def test_files_are_told_by_their_bytes_as_images_or_videos() -> None:
    mp4 = b"\x00\x00\x00\x18ftypisom" + bytes(20)
    mov = b"\x00\x00\x00\x14ftypqt  " + bytes(20)
    webm = b"\x1a\x45\xdf\xa3" + bytes(20)
    actl = b"\x00\x00\x00\x08acTL" + bytes(12)
    apng = PNG[:33] + actl + b"\x00\x00\x00\x00IDAT"
    assert [file_type(data, "video") for data in (mp4, mov, webm, apng, PNG)] == [
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "image/apng",
        "image/png",
    ]
    assert [file_type(data, "image") for data in (mp4, webm, apng, PNG)] == [None, None, "image/apng", "image/png"]


# --- the registry -------------------------------------------------------------------------------------------------


async def check_media(store: SQLiteJobStore | PostgresJobStore) -> None:
    media = MediaRecords(store.database)
    alice = Principal("key:alice")
    url = "https://files.example/a.png?Expires=4000000000"
    record = MediaRecord(media_id(SERVER, url), SERVER, "image.png", "image/png", url, 4e9, "Image (cogview-4)")
    await media.put(record)
    await media.put(MediaRecord(media_id(SERVER, url), SERVER, "image.png", "image/png", url, 4e9, size=5, sha256="ab"))
    got = await media.get(record.id, principal=SERVER)
    assert got is not None and (got.title, got.size, got.sha256) == ("Image (cogview-4)", 5, "ab")  # filled in
    assert await media.get(record.id, principal=alice) is None and media_id(alice, url) != record.id
    assert [r.id for r in await media.recent(principal=SERVER, limit=10)] == [record.id]
    assert await media.recent(principal=alice, limit=10) == []
    old = MediaRecords(store.database, retention_days=1)
    gone = "https://files.example/old.png"
    await old.put(MediaRecord(media_id(alice, gone), alice, "image.png", "image/png", gone, time.time() - 3 * 86_400))
    fresh = "https://files.example/fresh.png"
    await old.put(MediaRecord(media_id(alice, fresh), alice, "image.png", "image/png", fresh, time.time()))
    assert [r.url for r in await media.recent(principal=alice, limit=10)] == [fresh]  # a write pruned the old one


async def test_media_records_on_sqlite_and_a_file_of_schema_6_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SQLiteJobStore(path, retention_days=7)
    await check_media(store)
    await store.aclose()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:  # as the release before made it
        db.executescript("DROP TABLE media; PRAGMA user_version = 6;")
    store = SQLiteJobStore(path, retention_days=7)
    await check_media(store)
    await store.aclose()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (sqlite.SCHEMA_VERSION,)


async def test_media_records_on_postgresql_and_a_database_of_schema_3_migrated(postgres: Any) -> None:
    async with PostgresJobStore(postgres.url, retention_days=7, lease_seconds=15) as store:
        await check_media(store)
    with psycopg.connect(postgres.url, autocommit=True) as db:  # as the release before made it
        db.execute("DROP TABLE media")
        db.execute("DELETE FROM glm_mcp_schema WHERE version > 3")
    async with PostgresJobStore(postgres.url, retention_days=7, lease_seconds=15) as store:
        await check_media(store)
    with psycopg.connect(postgres.url) as db:
        versions = db.execute("SELECT max(version) FROM glm_mcp_schema").fetchone()
    assert versions == (SCHEMA_VERSION,)


# --- an outside client: Claude Code reads the resource for its model --------------------------------------------


class DrawThenRead:
    """The fake model's script: load both tools, draw, then read the link the result gave, then end. What Claude Code
    read is kept (`contents`, and the file it saved the blob to, read before Claude Code exits and removes it)."""

    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []
        self.saved: bytes | None = None

    def __call__(self, body: dict[str, Any]) -> list[Block]:
        results = {result["tool_use_id"]: result for result in tool_results(body)}
        if "read" in results:
            if not self.contents:
                read = results["read"]["content"]
                self.contents = json.loads(read if isinstance(read, str) else read[0]["text"])["contents"]
                self.saved = Path(self.contents[0]["blobSavedTo"]).read_bytes()
            return [text("Done.")]
        if "draw" in results:
            found = URI.search(json.dumps(results["draw"]["content"]))
            if found is None:  # no link to read: the test says what came instead
                return [text("No link.")]
            return [tool_use("ReadMcpResourceTool", {"server": CLAUDE_SERVER, "uri": found.group()}, "read")]
        if f"mcp__{CLAUDE_SERVER}__generate_image" in tool_names(body):
            return [tool_use(f"mcp__{CLAUDE_SERVER}__generate_image", PROMPT, "draw")]
        if "ToolSearch" in tool_names(body) and "search" not in results:
            query = f"select:mcp__{CLAUDE_SERVER}__generate_image,ReadMcpResourceTool"
            return [tool_use("ToolSearch", {"query": query}, "search")]
        return [text("OK.")]


def test_claude_code_reads_the_linked_image_for_its_model(claude: Path, emulator: Emulator, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="images")
    server = {"type": "stdio", "command": COMMAND[0], "args": COMMAND[1:], "env": env}
    script = DrawThenRead()
    with FakeAnthropic(script) as fake:
        claude_print(
            claude, home, fake, server, "generate_image", tmp_path / "debug.log", also_allowed=("ReadMcpResourceTool",)
        )
    drawn = fake.result_for("draw")["content"]
    assert [block["type"] for block in drawn] == ["text", "text"]  # no image block: no base64 in the conversation
    link, structured = (block["text"] for block in drawn)  # the link as Claude Code writes it, our structured content
    assert link == f"[Resource link: image.png] {json.loads(structured)['resource']}"
    (content,) = script.contents
    assert content["uri"] == json.loads(structured)["resource"] and content["mimeType"] == "image/png"
    (response,) = upstream_calls(emulator, "/images/generations")
    assert response.response is not None
    assert script.saved == platform_file(response.response["data"][0]["url"])  # the emulator's PNG, as Claude saved it


TS_READ = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

(async () => {
  const [command, ...args] = JSON.parse(process.env.SERVER_COMMAND);
  const client = new Client({ name: "glm-mcp-media-test", version: "0.0.0" }, { capabilities: {} });
  await client.connect(new StdioClientTransport({ command, args, env: JSON.parse(process.env.SERVER_ENV) }));
  const drawn = await client.callTool({ name: "generate_image", arguments: { prompt: "a red fox in snow" } },
                                      undefined, { timeout: 120000 });
  const link = drawn.content.find((block) => block.type === "resource_link");
  const read = await client.readResource({ uri: link.uri });
  const listed = await client.listResources();
  console.log(JSON.stringify({ drawn, read, listed }));
  await client.close();
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


async def test_the_typescript_sdks_client_takes_the_link_and_reads_the_image(emulator: Emulator) -> None:
    """The client VS Code and many others are built on: it validates the result with its link, and reads it."""
    server = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="images")
    env = node_env(
        {
            "NODE_PATH": str(node_modules(TS_SDK)),
            "SERVER_COMMAND": json.dumps(COMMAND),
            "SERVER_ENV": json.dumps(server),
        }
    )
    with anyio.fail_after(180):
        done = await anyio.run_process(["node", "-e", TS_READ], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    (line,) = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    seen = json.loads(line)
    structured = seen["drawn"]["structuredContent"]
    assert [block["type"] for block in seen["drawn"]["content"]] == ["text", "resource_link"]
    (content,) = seen["read"]["contents"]
    assert content["uri"] == structured["resource"] and content["mimeType"] == "image/png"
    assert base64.b64decode(content["blob"]) == platform_file(structured["url"])
    assert structured["resource"] in [resource["uri"] for resource in seen["listed"]["resources"]]
