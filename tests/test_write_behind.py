"""Conversation turns and usage records are written behind the answer (`jobs/behind.py`), on the SQLite registry.

The call answers without waiting for the registry; every later call of the same process reads what it
wrote at once (continue, branch, get_result on a turn, list, usage), a principal sees only its own, a
clean stop writes what waits (SIGTERM, SIGINT, stdin closed, the HTTP server's shutdown), and a registry
that stops taking writes makes the writes wait on the call again, so that their failure is said.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import JOBS_FILE, create_server
from glm_mcp.emulator import Emulator
from glm_mcp.jobs import SERVER, SQLiteJobStore, behind, key_principal, sqlite
from glm_mcp.jobs.conversations import BatchedConversations, Conversation
from glm_mcp.jobs.usage import BatchedUsage, UsageRecord
from tests.conftest import GENERAL_KEY, settings_for, upstream_calls
from tests.processes import RawStdio, http_server_process, server_env
from tests.test_stopping import INITIALIZE, INITIALIZED, tool_call
from tests.test_tools import ok

pytestmark = pytest.mark.anyio

ALICE = key_principal(b"s" * 32, "alice.key")
NEVER_S = 3600.0
"""A flush interval no test outlasts: what waits is written only when a reader or the stop asks for it."""
WAITING = [
    sys.executable,
    "-c",
    f"import glm_mcp.jobs.behind as b; b.FLUSH_EVERY_S = {NEVER_S}\n"
    "from glm_mcp.cli import main; raise SystemExit(main())",
]
"""`glm-mcp` whose writes wait until it stops (or a reader asks)."""


def sent(emulator: Emulator, index: int) -> list[tuple[str, str]]:
    """The (role, content) of the messages of the `index`th chat request the emulator received."""
    body = upstream_calls(emulator, "/chat/completions")[index].body
    assert body is not None
    return [(m["role"], m["content"]) for m in body["messages"]]


def on_disk(data_dir: Path) -> tuple[list[tuple[str, int, bool]], int]:
    """The turns in the registry file (conversation, number, answered) and the calls its usage counts."""
    with sqlite3.connect(data_dir / JOBS_FILE) as db:
        turns = db.execute("SELECT conversation_id, number, answer IS NOT NULL FROM turns ORDER BY 1, 2").fetchall()
        (calls,) = db.execute("SELECT COALESCE(SUM(calls), 0) FROM usage").fetchone()
    db.close()
    return [(c, n, bool(a)) for c, n, a in turns], int(calls)


async def test_a_chat_answers_and_keeps_its_turn_while_another_process_holds_the_registrys_write_lock(
    emulator: Emulator, data_dir: Path
) -> None:
    """The turn and the usage wait in this process, not on the call: written once the other process lets go."""
    async with Client(create_server(settings_for(emulator, GLM_DATA_DIR=str(data_dir)))) as client:
        ok(await client.call_tool("chat", {"prompt": "A first call, written at once."}))
        other = sqlite3.connect(data_dir / JOBS_FILE, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # a writer elsewhere, e.g. another glm-mcp in a long transaction
        try:
            with anyio.fail_after(4):  # within the registry's 5 s busy timeout: the call does not wait on the lock
                out = ok(await client.call_tool("chat", {"prompt": "While it is locked."}))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert out["conversation_id"] and out["turn"] == 1 and not out.get("conversation_notice")
        again = ok(await client.call_tool("chat", {"prompt": "And then?", "conversation_id": out["conversation_id"]}))
    assert again["turn"] == 2
    assert sent(emulator, -1)[:2] == [("user", "While it is locked."), ("assistant", out["text"])]
    turns, calls = on_disk(data_dir)
    assert [(n, answered) for c, n, answered in turns if c == out["conversation_id"]] == [(1, True), (2, True)]
    assert calls == 3


async def test_what_waits_to_be_written_is_read_at_once_by_every_later_call(
    emulator: Emulator, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(behind, "FLUSH_EVERY_S", NEVER_S)
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all")
    async with Client(create_server(settings)) as client:
        first = ok(await client.call_tool("chat", {"prompt": "First question."}))  # its usage: written at once
        conversation = first["conversation_id"]
        second = ok(await client.call_tool("chat", {"prompt": "Second question.", "conversation_id": conversation}))
        third = ok(await client.call_tool("chat", {"prompt": "Third question.", "conversation_id": conversation}))
        branch = ok(
            await client.call_tool(
                "chat", {"prompt": "Another third.", "conversation_id": conversation, "from_turn": 2}
            )
        )
        read = ok(await client.call_tool("get_result", {"task_id": f"{conversation}:3"}))
        waiting = on_disk(data_dir)
        listed = ok(await client.call_tool("list_conversations", {}))  # writes what waits, then lists
        report = ok(await client.call_tool("usage", {"by": "model"}))
    assert waiting == ([], 1), "written on the calls' path, not behind them"
    assert (second["turn"], third["turn"], branch["turn"]) == (2, 3, 3)
    asked = [("user", "First question."), ("assistant", first["text"]), ("user", "Second question.")]
    assert sent(emulator, 2)[:4] == [*asked, ("assistant", second["text"])]  # the third saw the waiting second
    assert sent(emulator, 3)[:5] == [*asked, ("assistant", second["text"]), ("user", "Another third.")]
    assert read["result"]["text"] == third["text"]
    turns = {c["conversation_id"]: c["turns"] for c in listed["conversations"]}
    assert turns == {conversation: 3, branch["conversation_id"]: 3}
    assert [row["calls"] for row in report["rows"] if row["model"] == "glm-4.6"] == [4]
    written, calls = on_disk(data_dir)
    assert len(written) == 6 and all(answered for *_, answered in written) and calls == 4


async def test_a_waiting_conversation_is_its_principals_only(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / JOBS_FILE, retention_days=7)
    queue = behind.WriteBehind(store.database, every=NEVER_S)
    try:
        async with queue.open():
            conversations = BatchedConversations(store.database, retention_days=30, behind=queue)
            usage = BatchedUsage(store.database, behind=queue)
            said = [{"role": "user", "content": "Mine?"}]
            now = time.time()
            await conversations.start_turn(  # the first write: made at once
                Conversation("conv_a", SERVER, "", "Mine?", now, now, 0), model="m", messages=said, branch_of=None
            )
            assert await conversations.add_turn("conv_a", model="m", messages=said, answer="yes") == 2
            await conversations.start_turn(
                Conversation("conv_b", SERVER, "", "Mine?", now, now, 0, "conv_a:2"),
                model="m",
                messages=said,
                branch_of=("conv_a", 2),
            )
            await usage.record(UsageRecord(SERVER, "chat", "m", prompt_tokens=5))
            for conversation_id in ("conv_a", "conv_b"):
                assert await conversations.get(conversation_id, principal=ALICE) is None
                assert await conversations.turns(conversation_id, principal=ALICE) == []
            assert [(t.number, t.answer) for t in await conversations.turns("conv_b", principal=SERVER)] == [
                (1, None),
                (2, "yes"),
                (3, None),
            ]
            got = await conversations.get("conv_b", principal=SERVER)
            assert got is not None and (got.turns, got.branched_from) == (3, "conv_a:2")
            assert await conversations.recent(principal=ALICE, limit=10, before=None) == []
            assert await usage.totals(principal=ALICE, since=0, by="model") == []
            assert [t.prompt_tokens for t in await usage.totals(principal=SERVER, since=0, by="model")] == [5]
    finally:
        await store.aclose()


async def test_once_a_write_behind_failed_the_next_waits_on_its_call_and_its_failure_is_said(
    emulator: Emulator, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What waited when the registry stopped taking writes is written once it takes them again."""
    monkeypatch.setattr(behind, "FLUSH_EVERY_S", NEVER_S)
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_S", 0.3)
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all")
    async with Client(create_server(settings)) as client:
        first = ok(await client.call_tool("chat", {"prompt": "Written at once."}))
        other = sqlite3.connect(data_dir / JOBS_FILE, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        try:
            waited = ok(await client.call_tool("chat", {"prompt": "Waits to be written."}))
            await client.call_tool("list_conversations", {})  # writes what waits: the lock refuses it
            refused = ok(await client.call_tool("chat", {"prompt": "Written on its call, and refused."}))
        finally:
            other.execute("ROLLBACK")
            other.close()
        kept = ok(await client.call_tool("chat", {"prompt": "Written on its call again."}))
    assert waited["turn"] == 1 and kept["turn"] == 1
    assert not refused.get("conversation_id") and "locked by another process" in refused["conversation_notice"]
    turns, _ = on_disk(data_dir)
    assert {c for c, *_ in turns} == {first["conversation_id"], waited["conversation_id"], kept["conversation_id"]}


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "stdin closed", "SIGTERM over HTTP"])
async def test_a_clean_stop_right_after_an_answer_writes_what_waits(
    emulator: Emulator, tmp_path: Path, stop: str
) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_DATA_DIR=str(tmp_path))
    calls = [tool_call(1, prompt="First question."), tool_call(2, prompt="Second question.")]
    answers: list[dict[str, Any]] = []
    if stop == "SIGTERM over HTTP":
        with http_server_process(env=env, command=WAITING) as (process, origin):
            async with Client(origin + "/mcp") as client:
                for call in calls:
                    answers.append(ok(await client.call_tool("chat", call["params"]["arguments"])))
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    else:
        async with await anyio.open_process(WAITING, env=env) as running:
            try:
                stdio = RawStdio(running)
                await stdio.send(INITIALIZE)
                await stdio.answer(0)
                await stdio.send(INITIALIZED)
                for call in calls:
                    await stdio.send(call)
                    answers.append((await stdio.answer(call["id"]))["result"]["structuredContent"])
                if stop == "stdin closed":
                    await running.stdin.aclose()  # type: ignore[union-attr]
                else:
                    running.send_signal(getattr(signal, stop))
                with anyio.fail_after(10):
                    await running.wait()
            finally:
                if running.returncode is None:
                    running.kill()
    turns, usage = on_disk(tmp_path)
    assert sorted((c, n) for c, n, answered in turns if answered) == sorted((a["conversation_id"], 1) for a in answers)
    assert usage == 2
