"""Working from the agent's workspace, end to end: files and images by path, conversations kept in the registry
(across restarts and processes), context-window trimming, and long answers read page by page.

The SDK's Client drives the server (in process, or as a real stdio or HTTP subprocess) against the emulator on a
real socket; every check compares the tool's result with what the emulator actually received and answered.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.types import ListRootsResult, Root

from glm_mcp.app import JOBS_FILE, create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.jobs import SERVER, SQLiteJobStore, key_principal
from glm_mcp.jobs.conversations import Conversation, ConversationRecords
from tests.conftest import GENERAL_KEY, settings_for, upstream_calls
from tests.processes import COMMAND, http_server, server_env
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

LONG = 60_000


def png(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG image; `padding` bytes of an ancillary chunk make it as large as a test needs."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    extra = chunk(b"tEXt", b"c\0" + b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project tree, with a file outside it and links that lead out."""
    root = tmp_path / "project"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main() -> None:\n    print('hello')\n")
    (root / "src" / "pkg" / "util.py").write_text("def helper(x: int) -> int:\n    return x + 1\n")
    (root / "src" / "pkg" / "data.json").write_text('{"answer": 42}\n')
    (root / "README.md").write_text("# Project\n\nIt says hello.\n")
    (root / "shot.png").write_bytes(png())
    (root / "blob.txt").write_bytes(b"text\0with a NUL\xff\xfe")
    outside = tmp_path / "secret.txt"
    outside.write_text("the server's own secret\n")
    (root / "escape.txt").symlink_to(outside)
    return root


def sent_text(emulator: Emulator) -> str:
    """Every text the last chat request carried, joined."""
    body = upstream_calls(emulator, "/chat/completions")[-1].body
    assert body is not None
    texts = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part["text"] for part in content if part.get("type") == "text"]
    return "\n".join(texts)


def last_body(emulator: Emulator) -> dict[str, Any]:
    body = upstream_calls(emulator, "/chat/completions")[-1].body
    assert body is not None
    return dict(body)


def answer_of(emulator: Emulator) -> str:
    response = upstream_calls(emulator, "/chat/completions")[-1].response
    assert response is not None
    return str(response["choices"][0]["message"]["content"])


def in_roots(emulator: Emulator, data_dir: Path, *roots: Path, **env: str) -> Settings:
    return settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_FILES_ROOTS=os.pathsep.join(map(str, roots)), **env)


# --- files -----------------------------------------------------------------------------------------------


async def test_text_files_and_globs_are_sent_as_blocks_naming_each_file(
    emulator: Emulator, data_dir: Path, project: Path
) -> None:
    async with Client(create_server(in_roots(emulator, data_dir, project))) as client:
        out = ok(
            await client.call_tool(
                "chat", {"prompt": "Review these.", "files": ["src/**/*.py", str(project / "README.md"), "src/app.py"]}
            )
        )
    text = sent_text(emulator)
    for relative, language in (("src/app.py", "python"), ("src/pkg/util.py", "python"), ("README.md", "markdown")):
        content = (project / relative).read_text()
        assert f'<file path="{relative}" language="{language}">\n{content}\n</file>' in text
    assert text.startswith("Review these.")
    assert text.count('<file path="src/app.py"') == 1, "a file named twice is sent once"
    assert "data.json" not in text
    assert [(f["path"], f["kind"], f["bytes"], f["chars"]) for f in out["files"]] == [
        (r, "text", (project / r).stat().st_size, len((project / r).read_text()))
        for r in ("src/app.py", "src/pkg/util.py", "README.md")
    ]
    assert "Files sent: src/app.py" in await _text_of(emulator, data_dir, project)


async def _text_of(emulator: Emulator, data_dir: Path, project: Path) -> str:
    async with Client(create_server(in_roots(emulator, data_dir, project))) as client:
        result = await client.call_tool("chat", {"prompt": "Again.", "files": ["src/app.py"]})
    return str(result.content[0].text)  # type: ignore[union-attr]


async def test_an_image_goes_to_a_vision_model_as_an_image_part(
    emulator: Emulator, data_dir: Path, project: Path
) -> None:
    async with Client(create_server(in_roots(emulator, data_dir, project))) as client:
        out = ok(
            await client.call_tool(
                "chat", {"prompt": "What is in it?", "files": ["shot.png", "src/app.py"], "model": "glm-4.6v"}
            )
        )
    exchange = upstream_calls(emulator, "/chat/completions")[-1]
    assert exchange.status == 200  # the emulator checked the image part: base64 of a real image within 5 MB
    parts = last_body(emulator)["messages"][-1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert [base64.b64decode(p["image_url"]["url"]) for p in images] == [(project / "shot.png").read_bytes()]
    assert '<file path="src/app.py"' in parts[0]["text"]
    assert {"path": "shot.png", "kind": "image", "bytes": len(png())}.items() <= out["files"][0].items()
    # The conversation keeps a line naming the image, not its bytes.
    with sqlite3.connect(data_dir / JOBS_FILE) as db:
        (kept,) = db.execute("SELECT messages FROM turns").fetchone()
    assert "shot.png" in kept and images[0]["image_url"]["url"] not in kept


@pytest.mark.parametrize(
    ("arguments", "env", "said"),
    [
        ({"files": ["blob.txt"]}, {}, ["blob.txt is binary"]),
        ({"files": ["nul.txt"]}, {}, ["nul.txt is binary"]),  # valid UTF-8, but a NUL says it is no text
        ({"files": ["src/**/*.rs"]}, {}, ["src/**/*.rs", "matches no file"]),
        ({"files": ["missing.py"]}, {}, ["missing.py does not exist"]),
        ({"files": ["src"]}, {}, ["src is a directory"]),
        ({"files": ["src/**/*.py"]}, {"GLM_FILES_MAX_CHARS": "50"}, ["src/pkg/util.py", "GLM_FILES_MAX_CHARS", "50"]),
        ({"files": ["shot.png"]}, {}, ["shot.png is an image", "glm-4.6 cannot see", "glm-4.6v", "GLM_VISION_MODEL"]),
        (
            {"files": ["shot.png"], "model": "glm-4.5v"},
            {"GLM_FILES_MAX_IMAGE_BYTES": "10"},
            ["shot.png", "GLM_FILES_MAX_IMAGE_BYTES", "10"],
        ),
        ({"files": ["big.png"], "model": "glm-4.5v"}, {}, ["big.png", "5,242,880", "5 MB"]),
        ({"files": ["fake.png"], "model": "glm-4.5v"}, {}, ["fake.png", "not one"]),
        ({"files": ["escape.txt"]}, {}, ["escape.txt is outside", "GLM_FILES_ROOTS"]),  # not where it leads
        ({"files": ["../secret.txt"]}, {}, ["outside", "GLM_FILES_ROOTS"]),
        ({"files": ["src/../../secret.txt"]}, {}, ["outside"]),
        ({"files": ["*.txt"]}, {}, ["outside"]),  # a glob that reaches a link out of the root is refused too
    ],
)
async def test_what_cannot_be_sent_whole_is_refused_before_anything_is_sent(
    emulator: Emulator, data_dir: Path, project: Path, arguments: dict[str, Any], env: dict[str, str], said: list[str]
) -> None:
    (project / "big.png").write_bytes(png(padding=5 * 1024 * 1024))
    (project / "fake.png").write_text("not a picture")
    (project / "nul.txt").write_bytes(b"looks\0like text")
    async with Client(create_server(in_roots(emulator, data_dir, project, **env))) as client:
        result = await client.call_tool("chat", {"prompt": "Look.", **arguments})
    failure = failed(result)
    assert failure["error"] == "invalid_argument" and failure["field"] == "files"
    for words in said:
        assert words in failure["message"], (words, failure["message"])
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_submit_async_and_web_search_chat_take_files_too(
    emulator: Emulator, data_dir: Path, project: Path
) -> None:
    async with Client(create_server(in_roots(emulator, data_dir, project))) as client:
        submitted = ok(await client.call_tool("submit_async", {"prompt": "Review.", "files": ["src/app.py"]}))
        assert "def main()" in sent_text(emulator) and submitted["files"][0]["path"] == "src/app.py"
        searched = ok(
            await client.call_tool("web_search_chat", {"question": "Is it idiomatic?", "files": ["README.md"]})
        )
        assert '<file path="README.md"' in sent_text(emulator) and searched["files"][0]["path"] == "README.md"


async def test_roots_the_client_declares_win_over_the_setting(
    emulator: Emulator, data_dir: Path, project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("other notes\n")

    async def roots(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=project.as_uri(), name="project")])

    settings = in_roots(emulator, data_dir, other)
    async with Client(create_server(settings), mode="legacy", list_roots_callback=roots) as client:
        ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["src/app.py"]}))
        refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": [str(other / "notes.md")]}))
    assert "def main()" in sent_text(emulator)
    assert "outside" in refused["message"] and "the roots your client declared" in refused["message"]
    assert str(project) in refused["message"]
    # Without declared roots, the setting's directories are the ones.
    async with Client(create_server(settings), mode="legacy") as client:
        ok(await client.call_tool("chat", {"prompt": "Read.", "files": [str(other / "notes.md")]}))
        refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": [str(project / "README.md")]}))
    assert "other notes" in sent_text(emulator) and "GLM_FILES_ROOTS" in refused["message"]


async def test_without_roots_or_setting_the_working_directory_is_the_root(
    emulator: Emulator, data_dir: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "src")
    async with Client(create_server(settings_for(emulator, GLM_DATA_DIR=str(data_dir)))) as client:
        ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["pkg/util.py"]}))
        refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": ["../README.md"]}))
    assert '<file path="pkg/util.py"' in sent_text(emulator)
    assert "outside" in refused["message"] and "working directory" in refused["message"]


async def test_files_over_http_are_off_unless_the_setting_is_given(emulator: Emulator, project: Path) -> None:
    base = {"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url}
    with http_server(env=server_env(**base)) as origin:
        async with Client(origin + "/mcp") as client:
            off = (await client.list_tools()).tools
            refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": [str(project / "README.md")]}))
    assert refused["field"] == "files" and "off over HTTP" in refused["message"]
    assert "GLM_FILES_ROOTS" in refused["message"] and upstream_calls(emulator, "/chat/completions") == []
    assert [tool.name for tool in off if "files" in tool.input_schema["properties"]] == []  # not offered either
    with http_server(env=server_env(**base, GLM_FILES_ROOTS=str(project))) as origin:
        async with Client(origin + "/mcp") as client:
            on = (await client.list_tools()).tools
            ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["README.md"]}))
    assert '<file path="README.md"' in sent_text(emulator)
    offered = [tool.name for tool in on if "files" in tool.input_schema["properties"]]
    assert offered == ["chat", "web_search_chat", "submit_async"]


# --- conversations ---------------------------------------------------------------------------------------


def stdio(data_dir: Path, emulator: Emulator, **env: str) -> StdioServerParameters:
    variables = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_DATA_DIR=str(data_dir), **env)
    return StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=variables)


async def test_a_conversation_continues_across_a_restart_and_from_a_second_process(
    emulator: Emulator, data_dir: Path
) -> None:
    async with Client(stdio(data_dir, emulator)) as first:
        one = ok(await first.call_tool("chat", {"prompt": "Name a river.", "system": "Answer briefly."}))
        first_answer = answer_of(emulator)
    assert one["conversation_id"].startswith("conv_") and one["turn"] == 1

    async with Client(stdio(data_dir, emulator)) as restarted:  # a new process on the same registry
        two = ok(
            await restarted.call_tool("chat", {"prompt": "And a lake?", "conversation_id": one["conversation_id"]})
        )
        body = last_body(emulator)
        assert [(m["role"], m["content"]) for m in body["messages"]] == [
            ("system", "Answer briefly."),
            ("user", "Name a river."),
            ("assistant", first_answer),
            ("user", "And a lake?"),
        ]
        assert two["conversation_id"] == one["conversation_id"] and two["turn"] == 2
        assert two["usage"]["cached_tokens"] > 0  # the platform's cache served the repeated prefix
        second_answer = answer_of(emulator)

        async with Client(stdio(data_dir, emulator)) as beside:  # a second process, running at the same time
            three = ok(await beside.call_tool("chat", {"prompt": "A sea?", "conversation_id": one["conversation_id"]}))
            assert [m["content"] for m in last_body(emulator)["messages"]][-3:] == [
                "And a lake?",
                second_answer,
                "A sea?",
            ]
            assert three["turn"] == 3
            listed = ok(await beside.call_tool("list_conversations", {}))
    assert listed["conversations"][0] == {
        "conversation_id": one["conversation_id"],
        "question": "Name a river.",
        "turns": 3,
        "updated_at": listed["conversations"][0]["updated_at"],
    }  # not a branch: no branched_from


async def test_a_branch_continues_from_an_earlier_turn(client: Client, emulator: Emulator) -> None:
    one = ok(await client.call_tool("chat", {"prompt": "First question."}))
    first_answer = answer_of(emulator)
    ok(await client.call_tool("chat", {"prompt": "Second question.", "conversation_id": one["conversation_id"]}))
    branch = ok(
        await client.call_tool(
            "chat", {"prompt": "Another second.", "conversation_id": one["conversation_id"], "from_turn": 1}
        )
    )
    assert [m["content"] for m in last_body(emulator)["messages"]] == [
        "First question.",
        first_answer,
        "Another second.",
    ]
    assert branch["conversation_id"] != one["conversation_id"] and branch["turn"] == 2
    listed = ok(await client.call_tool("list_conversations", {"limit": 1}))
    assert listed["conversations"][0]["branched_from"] == f"{one['conversation_id']}:1"
    older = ok(await client.call_tool("list_conversations", {"limit": 1, "cursor": listed["next_cursor"]}))
    assert older["conversations"][0]["conversation_id"] == one["conversation_id"]
    for bad, field in (
        ({"conversation_id": one["conversation_id"], "from_turn": 9}, "from_turn"),
        ({"conversation_id": "conv_nothing"}, "conversation_id"),
        ({"from_turn": 1}, "from_turn"),
        ({"conversation_id": one["conversation_id"], "system": "Be someone else."}, "system"),
    ):
        assert failed(await client.call_tool("chat", {"prompt": "x", **bad}))["field"] == field


async def test_a_turn_is_kept_once_it_has_an_answer_or_a_job_and_a_failed_call_leaves_none(
    client: Client, emulator: Emulator, settings: Settings
) -> None:
    failed(await client.call_tool("chat", {"prompt": "Nobody answers this.", "model": "glm-9000"}))
    assert not ok(await client.call_tool("list_conversations", {})).get("conversations")
    one = ok(await client.call_tool("chat", {"prompt": "First question."}))
    failed(
        await client.call_tool("chat", {"prompt": "x", "conversation_id": one["conversation_id"], "model": "glm-9000"})
    )
    two = ok(await client.call_tool("chat", {"prompt": "Second question.", "conversation_id": one["conversation_id"]}))
    assert (one["turn"], two["turn"]) == (1, 2)  # the failed continuation took no number
    store = SQLiteJobStore(settings.registry.data_dir / JOBS_FILE, retention_days=7)
    try:
        conversations = ConversationRecords(store.database, retention_days=30)
        with anyio.fail_after(5):  # read as another process reads it: once the turns are written behind the answers
            while len(turns := await conversations.turns(one["conversation_id"], principal=SERVER)) < 2:
                await anyio.sleep(0.02)
    finally:
        await store.aclose()
    assert [(t.number, t.answer) for t in turns] == [(1, one["text"]), (2, two["text"])]


async def test_a_conversation_is_its_principals_only(tmp_path: Path) -> None:
    jobs = SQLiteJobStore(tmp_path / JOBS_FILE, retention_days=7)
    store = ConversationRecords(jobs.database, retention_days=30)
    mine, theirs = SERVER, key_principal(b"s" * 32, "someone-else.key")
    conversation = Conversation("conv_a", mine, "", "Mine?", 1.0, 1.0, 0)
    await store.start_turn(
        conversation, model="glm-4.6", messages=[{"role": "user", "content": "Mine?"}], branch_of=None
    )
    assert (await store.get("conv_a", principal=mine)) is not None
    assert await store.get("conv_a", principal=theirs) is None
    assert await store.turns("conv_a", principal=theirs) == []
    assert await store.recent(principal=theirs, limit=10, before=None) == []
    await jobs.aclose()


async def test_the_oldest_turns_are_left_out_when_the_conversation_would_not_fit(
    client: Client, emulator: Emulator
) -> None:
    """glm-4-airx reads 8,000 tokens: three turns of 6,000 characters do not fit together."""
    prompts = [f"Turn {n}: " + ("word " * 1200) for n in (1, 2, 3)]
    first = ok(await client.call_tool("chat", {"prompt": prompts[0], "model": "glm-4-airx"}))
    second = ok(
        await client.call_tool(
            "chat", {"prompt": prompts[1], "model": "glm-4-airx", "conversation_id": first["conversation_id"]}
        )
    )
    assert second.get("turns_left_out") is None and prompts[0] in sent_text(emulator)
    third = ok(
        await client.call_tool(
            "chat", {"prompt": prompts[2], "model": "glm-4-airx", "conversation_id": first["conversation_id"]}
        )
    )
    sent = sent_text(emulator)
    assert third["turns_left_out"] == 1 and prompts[0] not in sent and prompts[1] in sent and prompts[2] in sent
    assert "oldest turn(s) were left out" in (await _last_text(client, first["conversation_id"], prompts[2]))


async def _last_text(client: Client, conversation_id: str, prompt: str) -> str:
    result = await client.call_tool(
        "chat", {"prompt": prompt, "model": "glm-4-airx", "conversation_id": conversation_id}
    )
    return str(result.content[0].text)  # type: ignore[union-attr]


# --- long answers ----------------------------------------------------------------------------------------


async def read_whole(client: Client, first: dict[str, Any]) -> str:
    """The whole answer, from the first page and get_result with offsets until next_offset is absent."""
    text, result = first["text"], first
    while result.get("next_offset") is not None:
        page = ok(
            await client.call_tool("get_result", {"task_id": result["read_more"], "offset": result["next_offset"]})
        )
        result = page["result"]
        assert result["offset"] == len(text)
        text += result["text"]
    return str(text)


async def test_a_long_answer_comes_in_pages_that_add_up_to_the_whole(client: Client, emulator: Emulator) -> None:
    first = ok(await client.call_tool("chat", {"prompt": f"Write at length. [emulator:chars={LONG}]"}))
    whole = answer_of(emulator)
    assert len(whole) >= LONG
    assert len(first["text"]) == 20_000 and first["answer_chars"] == len(whole) and first["next_offset"] == 20_000
    assert await read_whole(client, first) == whole
    text = (await client.call_tool("chat", {"prompt": f"Again. [emulator:chars={LONG}]"})).content[0].text  # type: ignore[union-attr]
    assert "offset=20000" in text and "get_result" in text and len(text) < 25_000
    past = failed(await client.call_tool("get_result", {"task_id": first["read_more"], "offset": len(whole) + 1}))
    assert past["field"] == "offset"


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): waits for the hand-off, ~10 s
async def test_a_long_answer_of_a_handed_off_job_is_paged_too(client: Client, emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.001
    running = ok(await client.call_tool("chat", {"prompt": f"Long. [emulator:chars={LONG}]", "wait_seconds": 0}))
    assert running["status"] == "running" and running["conversation_id"]
    done = ok(await client.call_tool("get_result", {"task_id": running["job_id"], "wait_seconds": 60}))
    whole = answer_of(emulator)
    assert done["result"]["read_more"] == running["job_id"] and done["result"]["conversation_id"]
    assert await read_whole(client, done["result"]) == whole
    # ... and the conversation has it whole, to continue from.
    ok(await client.call_tool("chat", {"prompt": "Shorter?", "conversation_id": running["conversation_id"]}))
    assert whole in sent_text(emulator)


# --- done when --------------------------------------------------------------------------------------------


async def test_review_three_files_follow_up_after_a_restart_and_read_a_60000_character_answer(
    emulator: Emulator, data_dir: Path, project: Path
) -> None:
    """What the issue asks: no file content in the agent's own messages, only paths."""
    env = {"GLM_FILES_ROOTS": str(project)}
    files = ["src/app.py", "src/pkg/util.py", "README.md"]
    async with Client(stdio(data_dir, emulator, **env)) as agent:
        review = ok(await agent.call_tool("chat", {"prompt": "Review these three files.", "files": files}))
    assert [f["path"] for f in review["files"]] == files
    contents = [(project / f).read_text() for f in files]
    assert all(content in sent_text(emulator) for content in contents)

    async with Client(stdio(data_dir, emulator, **env)) as agent:  # the server was restarted
        arguments = {
            "prompt": f"Which one should I fix first? Explain in depth. [emulator:chars={LONG}]",
            "conversation_id": review["conversation_id"],
        }
        assert not any(content.strip() in str(arguments) for content in contents)
        follow_up = ok(await agent.call_tool("chat", arguments))
        sent = sent_text(emulator)
        assert all(content in sent for content in contents), "the files' text is in the kept history"
        whole = answer_of(emulator)
        assert len(whole) >= LONG and follow_up["answer_chars"] == len(whole)
        assert await read_whole(agent, follow_up) == whole


async def test_the_last_page_says_it_is_the_end_and_offers_no_next_part(client: Client, emulator: Emulator) -> None:
    first = ok(await client.call_tool("chat", {"prompt": f"Write at length. [emulator:chars={LONG}]"}))
    whole = answer_of(emulator)
    last_offset = (len(whole) - 1) // 20_000 * 20_000
    last = await client.call_tool("get_result", {"task_id": first["read_more"], "offset": last_offset})
    page = ok(last)["result"]
    assert page["text"] == whole[last_offset:] and page["offset"] == last_offset
    assert page["answer_chars"] == len(whole) and "next_offset" not in page
    text = last.content[0].text  # type: ignore[union-attr]
    assert f"of a {len(whole):,}-character answer. This is its end." in text and "For the next part" not in text
