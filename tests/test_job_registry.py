"""Nothing submitted is lost: the job registry records jobs, answers for them after a restart, and
lists them. In process: the store itself, and servers that stop and start again on one data directory.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from pydantic import BaseModel

from glm_mcp.app import JOBS_FILE, create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.glm import StreamAccumulator
from glm_mcp.glm.types import ChatRequest, Message, TextPart
from glm_mcp.jobs import (
    SERVER,
    ChatStream,
    Job,
    JobKind,
    JobRecord,
    JobRunner,
    RegistryUnavailable,
    SQLiteJobStore,
    key_principal,
    records,
    sqlite,
)
from glm_mcp.jobs.owner import OwnerLock, owner_gone
from glm_mcp.jobs.store import Position, summarize
from glm_mcp.server.state import registry_of
from glm_mcp.tools.job_result import TaskResult
from tests.conftest import settings_for, upstream_calls
from tests.test_registry_failures import mounted_tmpfs, remount
from tests.test_stopping import wait_for
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

SLOW = {"thinking": "disabled"}  # content from the first chunk: a partial answer to save


@asynccontextmanager
async def opened(path: Path, retention_days: float = 7) -> AsyncIterator[SQLiteJobStore]:
    store = SQLiteJobStore(path, retention_days=retention_days)
    try:
        yield store
    finally:
        await store.aclose()


def record(job_id: str, created_at: float | None = None, kind: JobKind = "chat", **fields: Any) -> JobRecord:
    created_at = time.time() if created_at is None else created_at
    return JobRecord(job_id, kind, "glm-4.6", f"about {job_id}", created_at, **fields)


class NoOutcome:
    """An `Outcome` for a job that is never run: nothing to settle, nothing to answer."""

    async def settle(self, job: Job) -> None:
        raise AssertionError("never run")

    async def result(self, job: Job) -> BaseModel:
        raise AssertionError("never run")


async def _hand_off(client: Client, prompt: str, wait_seconds: float = 0.3) -> dict[str, Any]:
    out = ok(await client.call_tool("chat", {"prompt": prompt, "wait_seconds": wait_seconds, **SLOW}))
    assert out["status"] == "running"
    return out


# --- the per-call path --------------------------------------------------------------------------------


async def test_a_chat_that_ends_within_its_wait_records_no_job(client: Client, data_dir: Path) -> None:
    """Only its conversation turn is kept (so it can be continued); no job is."""
    ok(await client.call_tool("chat", {"prompt": "quick"}))
    ok(await client.call_tool("web_search_chat", {"question": "quick"}))
    with sqlite3.connect(data_dir / JOBS_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
        await wait_for(lambda: db.execute("SELECT COUNT(*) FROM turns").fetchone() == (2,))  # written behind
        assert db.execute("SELECT COUNT(*) FROM turns WHERE answer IS NOT NULL").fetchone() == (2,)


async def test_a_handed_off_job_is_recorded_before_its_id_returns_then_its_progress_and_result(
    client: Client, emulator: Emulator, data_dir: Path
) -> None:
    emulator.config.chunk_delay = 0.1
    early = await _hand_off(client, "A long essay on rivers.")
    async with opened(data_dir / JOBS_FILE) as store:
        first = await store.get(early["job_id"], principal=SERVER)
        assert first is not None and first.status == "running" and first.kind == "chat"
        assert first.summary == "A long essay on rivers." and first.model == "glm-4.6"
        await anyio.sleep(1.6)
        saved = await store.get(early["job_id"], principal=SERVER)
        assert saved is not None and saved.partial_text and saved.partial_text.startswith(early.get("text", ""))
        assert len(saved.partial_text) > len(early.get("text", ""))

        done = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 30}))
        assert done["status"] == "completed"
        with anyio.fail_after(5):
            while (
                final := await store.get(early["job_id"], principal=SERVER)
            ) is not None and final.status == "running":
                await anyio.sleep(0.02)
        assert final is not None and final.status == "completed" and final.partial_text is None
        assert TaskResult.model_validate_json(final.result or "").structured() == done


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A file where the data directory's parent should be: the registry can record nothing."""
    path = tmp_path / "a-file-not-a-directory"
    path.write_text("")
    return path


def unrecordable(emulator: Emulator, blocker: Path) -> Client:
    """A client of an in-process server whose job registry is under `blocker`."""
    return Client(create_server(settings_for(emulator, GLM_DATA_DIR=str(blocker / "data"))))


async def test_a_chat_handed_off_that_cannot_be_recorded_says_so_and_is_still_answered(
    emulator: Emulator, blocker: Path
) -> None:
    emulator.config.chunk_delay = 0.05
    async with unrecordable(emulator, blocker) as client:
        result = await client.call_tool("chat", {"prompt": "unrecordable", "wait_seconds": 0.2, **SLOW})
        early = ok(result)
        assert early["status"] == "running" and str(blocker) in early["not_recorded"]
        assert "Not recorded in the job registry" in result.content[0].text  # type: ignore[union-attr]
        done = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 30}))
        assert done["status"] == "completed" and done["not_recorded"] == early["not_recorded"]
        listing = failed(await client.call_tool("list_jobs", {}))
    assert listing["error"] == "registry_unavailable" and "GLM_DATA_DIR" in listing["hint"]
    assert str(blocker) in listing["message"]


async def test_a_task_the_registry_cannot_record_is_said_so_alike_by_its_submit_and_its_result(
    emulator: Emulator, blocker: Path
) -> None:
    """The runner keeps why the task is not recorded beside it, and get_result says that very fact again."""
    emulator.config.async_delay = 0.0
    async with unrecordable(emulator, blocker) as client:
        submitted = ok(await client.call_tool("submit_async", {"prompt": "unrecordable"}))
        done = ok(await client.call_tool("get_result", {"task_id": submitted["task_id"], "wait_seconds": 10}))
    assert str(blocker) in submitted["not_recorded"] and "Not recorded in the job registry" in submitted["not_recorded"]
    assert done["status"] == "completed" and done["not_recorded"] == submitted["not_recorded"]


async def test_what_the_registry_could_not_do_for_a_job_is_a_typed_fact_of_the_job(blocker: Path) -> None:
    """The domain job carries the problem and its cause, not a sentence: results word it (`tools/answer.py`)."""
    request = ChatRequest(model="glm-4.6", messages=[Message(role="user", content="unrecordable")])
    async with opened(blocker / JOBS_FILE) as store, anyio.create_task_group() as group:
        runner = JobRunner(group, store)
        stream = ChatStream(kind="chat", request=request, accumulator=StreamAccumulator())
        job = await runner.hand_off(stream, NoOutcome())
        problem = await runner.record_task(record("task_unrecorded", kind="async_task"))
        kept = runner.unrecorded_task("task_unrecorded", SERVER)
    assert job.not_recorded is not None and job.not_recorded.what == "not_recorded"
    assert problem is not None and problem.what == "not_recorded" and kept is not None and kept.problem == problem
    for cause in (job.not_recorded.cause, problem.cause):
        assert isinstance(cause, RegistryUnavailable) and str(blocker) in str(cause) and "GLM_DATA_DIR" in cause.fix
    assert runner.unrecorded_task("task_unrecorded", key_principal(b"s" * 32, "another")) is None


async def test_a_replaced_registry_is_a_fact_read_as_often_as_asked_and_the_next_result_says_it_once(
    settings: Settings, data_dir: Path
) -> None:
    """Reading what the store did uses nothing up: whoever reads it (here the test, as another part of the server
    could), the next result still says it, and only that one."""
    data_dir.mkdir()
    garbage = b"not a database " * 100
    (data_dir / JOBS_FILE).write_bytes(garbage)
    server = create_server(settings)
    async with Client(server) as client:
        store = registry_of(server)
        assert store is not None and store.replaced is None
        assert await store.page(principal=SERVER, status=None, limit=1, after=None) == []  # finds it, replaces it
        replaced = store.replaced
        assert replaced is not None and store.replaced == replaced  # a fact, not a take-once notice
        told = ok(await client.call_tool("list_jobs", {}))
        again = ok(await client.call_tool("list_jobs", {}))
        assert store.replaced == replaced
    assert (replaced.number, replaced.path, replaced.aside.read_bytes()) == (1, data_dir / JOBS_FILE, garbage)
    assert str(replaced.path) in told["registry_notice"] and str(replaced.aside) in told["registry_notice"]
    assert not again.get("registry_notice"), "the replacement is said once, by the next result"


# --- after a restart ----------------------------------------------------------------------------------


async def test_a_finished_job_is_answered_from_the_registry_after_a_restart(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.config.chunk_delay = 0.05
    async with Client(create_server(settings)) as client:
        early = await _hand_off(client, "Rivers of Asia")
        done = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 30}))
        await anyio.sleep(0.2)  # its result is written in the background
    calls = len(emulator.state.exchanges)
    async with Client(create_server(settings)) as client:
        again = await client.call_tool("get_result", {"task_id": early["job_id"]})
        assert ok(again) == done and done["result"]["text"] in again.content[0].text  # type: ignore[union-attr]
        listed = ok(await client.call_tool("list_jobs", {}))
    assert len(emulator.state.exchanges) == calls
    assert [(j["job_id"], j["status"]) for j in listed["jobs"]] == [(early["job_id"], "completed")]


async def test_a_stopping_server_records_its_running_jobs_as_interrupted_with_their_text(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.config.chunk_delay = 0.1
    async with Client(create_server(settings)) as client:
        early = await _hand_off(client, "An essay on tea")
        await anyio.sleep(0.5)
        status = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 0}))
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 5})
        out = ok(result)
        listed = ok(await client.call_tool("list_jobs", {"status": "interrupted"}))
    assert out["status"] == "interrupted" and out["error"]["error"] == "interrupted" and out["error"]["retryable"]
    assert out["partial_text"].startswith(status["partial_text"])
    assert "stopped" in result.content[0].text and out["partial_text"] in result.content[0].text  # type: ignore[union-attr]
    assert [j["job_id"] for j in listed["jobs"]] == [early["job_id"]]

    emulator.config.chunk_delay = 0
    async with Client(create_server(settings)) as client:
        whole = ok(await client.call_tool("chat", {"prompt": "An essay on tea", **SLOW}))
    assert whole["text"].startswith(out["partial_text"])


async def test_an_async_task_is_recorded_and_once_ended_never_polled_again(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.config.async_delay = 1.0
    async with Client(create_server(settings)) as client:
        task = ok(await client.call_tool("submit_async", {"prompt": "A story about a lighthouse"}))
        listed = ok(await client.call_tool("list_jobs", {}))
        assert listed["jobs"][0] | {"created_at": ""} == {
            "job_id": task["task_id"],
            "kind": "async_task",
            "status": "running",
            "model": "glm-4.6",
            "summary": "A story about a lighthouse",
            "created_at": "",
        }
    async with Client(create_server(settings)) as client:  # still running at the restart: polled as before
        done = ok(await client.call_tool("get_result", {"task_id": task["task_id"], "wait_seconds": 20}))
        assert done["status"] == "completed" and done["result"]["text"]
        polls = len(upstream_calls(emulator, task["task_id"]))
        assert ok(await client.call_tool("get_result", {"task_id": task["task_id"]})) == done
    async with Client(create_server(settings)) as client:
        assert ok(await client.call_tool("get_result", {"task_id": task["task_id"]})) == done
        listed = ok(await client.call_tool("list_jobs", {"status": "completed"}))
    assert len(upstream_calls(emulator, task["task_id"])) == polls
    assert [j["job_id"] for j in listed["jobs"]] == [task["task_id"]]


async def test_a_job_another_live_server_generates_is_waited_for_not_interrupted(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.config.chunk_delay = 0.05
    async with Client(create_server(settings)) as first, Client(create_server(settings)) as second:
        early = await _hand_off(first, "Mountains of Europe")
        seen = ok(await second.call_tool("list_jobs", {}))
        assert seen["jobs"][0]["status"] == "running"
        done = ok(await second.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 30}))
        assert done["status"] == "completed"
        assert done == ok(await first.call_tool("get_result", {"task_id": early["job_id"]}))


async def test_a_job_id_neither_running_nor_recorded_is_a_clear_error(client: Client) -> None:
    out = failed(await client.call_tool("get_result", {"task_id": "job_0123456789abcdef"}))
    assert out["error"] == "unknown_job"


# --- list_jobs ----------------------------------------------------------------------------------------


async def test_list_jobs_pages_newest_first_and_filters_by_status(client: Client, data_dir: Path) -> None:
    async with opened(data_dir / JOBS_FILE) as store:
        for i in range(25):  # every three share a creation time: the id breaks the tie
            await store.add(record(f"job_{i:02}", created_at=1_700_000_000 + i // 3), runs_here=False)
        for i in range(0, 25, 5):
            await store.finish(f"job_{i:02}", "completed", result="{}", partial_text=None)

    pages: list[list[str]] = []
    cursor = ""
    while True:
        out = ok(await client.call_tool("list_jobs", {"limit": 10, "cursor": cursor}))
        pages.append([job["job_id"] for job in out["jobs"]])
        if "next_cursor" not in out:
            break
        cursor = out["next_cursor"]
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [job_id for page in pages for job_id in page] == [f"job_{i:02}" for i in reversed(range(25))]

    completed = ok(await client.call_tool("list_jobs", {"status": "completed"}))
    assert [job["job_id"] for job in completed["jobs"]] == ["job_20", "job_15", "job_10", "job_05", "job_00"]
    assert completed["jobs"][-1]["created_at"] == "2023-11-14T22:13:20+00:00"

    result = await client.call_tool("list_jobs", {"limit": 2})
    text = result.content[0].text  # type: ignore[union-attr]
    assert "job_24" in text and "job_23" in text and ok(result)["next_cursor"] in text


async def test_list_jobs_refuses_what_it_did_not_give(client: Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cursor": "yesterday"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"status": "lost"}, "status"),
    ]
    for arguments, field in cases:
        result = await client.call_tool("list_jobs", arguments)
        assert result.is_error and field in result.content[0].text  # type: ignore[union-attr]


async def test_an_empty_registry_lists_no_jobs(client: Client) -> None:
    result = await client.call_tool("list_jobs", {})
    assert "jobs" not in ok(result) and result.content[0].text == "No jobs."  # type: ignore[union-attr]


# --- the store ----------------------------------------------------------------------------------------


async def test_a_job_is_added_once_and_stays_as_it_ended(tmp_path: Path) -> None:
    async with opened(tmp_path / JOBS_FILE) as store:
        await store.add(record("job_a"), runs_here=True)
        await store.add(dataclasses.replace(record("job_a"), summary="another"), runs_here=True)
        await store.finish("job_a", "completed", result='{"n": 1}', partial_text=None)
        await store.finish("job_a", "interrupted", result=None, partial_text="late")
        await store.save_partial("job_a", "later")
        ended = await store.get("job_a", principal=SERVER)
    assert ended is not None and ended.summary == "about job_a"
    assert (ended.status, ended.result, ended.partial_text) == ("completed", '{"n": 1}', None)


async def test_a_gone_owners_running_jobs_read_as_interrupted_and_a_live_ones_do_not(tmp_path: Path) -> None:
    path = tmp_path / JOBS_FILE
    async with opened(path) as live, opened(path) as reader:
        await live.add(record("job_live", partial_text="so far"), runs_here=True)
        await live.add(record("task_upstream", kind="async_task"), runs_here=False)
        dying = SQLiteJobStore(path, retention_days=7)
        await dying.add(record("job_dying", partial_text="half an answer"), runs_here=True)
        await dying.aclose()  # its lock goes, its job stays running: as after a SIGKILL

        statuses = {
            r.id: (r.status, r.partial_text)
            for r in await reader.page(principal=SERVER, status=None, limit=10, after=None)
        }
        assert statuses["job_live"] == ("running", "so far")
        assert statuses["task_upstream"] == ("running", None)
        assert statuses["job_dying"] == ("interrupted", "half an answer")


def test_an_owner_is_gone_once_its_lock_is_released(tmp_path: Path) -> None:
    lock = OwnerLock(tmp_path, "123-abc")
    assert not owner_gone(tmp_path, "123-abc")
    lock.release()
    assert owner_gone(tmp_path, "123-abc") and owner_gone(tmp_path, "never-was")


async def test_finished_jobs_are_pruned_after_the_retention_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "PRUNE_EVERY_S", 0)
    async with opened(tmp_path / JOBS_FILE, retention_days=0.3 / 86_400) as store:
        await store.add(record("job_old"), runs_here=True)
        await store.add(record("job_old_running"), runs_here=True)
        await store.finish("job_old", "failed", result="{}", partial_text=None)
        await anyio.sleep(0.4)
        await store.add(record("job_new"), runs_here=True)
        kept = [r.id for r in await store.page(principal=SERVER, status=None, limit=10, after=None)]
    assert kept == ["job_new", "job_old_running"]


async def test_a_registry_another_process_is_creating_is_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / JOBS_FILE
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # switching to WAL mode fails at once while this lasts: no busy timeout
    with caplog.at_level(logging.WARNING):
        async with opened(path) as store, anyio.create_task_group() as group:
            group.start_soon(functools.partial(store.add, record("job_a"), runs_here=True))
            await anyio.sleep(0.3)
            other.execute("COMMIT")
    assert other.execute("SELECT id FROM jobs").fetchall() == [("job_a",)]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert "no job registry" not in caplog.text
    other.close()


async def test_without_a_usable_data_dir_the_store_says_so_instead_of_pretending(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    async with opened(blocker / JOBS_FILE) as store:
        with pytest.raises(RegistryUnavailable) as refused:
            await store.add(record("job_a"), runs_here=True)
        with pytest.raises(RegistryUnavailable):
            await store.page(principal=SERVER, status=None, limit=10, after=None)
    assert str(blocker / JOBS_FILE) in str(refused.value) and "GLM_DATA_DIR" in refused.value.fix


V1_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, summary TEXT NOT NULL, created_at REAL NOT NULL,
    status TEXT NOT NULL, request_id TEXT, partial_text TEXT, result TEXT, owner TEXT, updated_at REAL NOT NULL
);
PRAGMA user_version = 1;
"""
"""The registry as glm-mcp wrote it before jobs had a principal."""


async def test_a_registry_of_schema_1_is_migrated_and_its_jobs_are_the_servers(tmp_path: Path) -> None:
    path = tmp_path / JOBS_FILE
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(V1_SCHEMA)
    old.execute(
        "INSERT INTO jobs VALUES ('task_old', 'async_task', 'glm-4.6', 'old', 1.0, 'running', "
        "NULL, NULL, NULL, NULL, 1.0)"
    )
    old.close()
    async with opened(path) as store:
        caller = key_principal(await store.principal_secret(), "someone.elses-key")
        assert (await store.get("task_old", principal=SERVER)) is not None
        assert (await store.get("task_old", principal=caller)) is None
        assert await store.page(principal=caller, status=None, limit=10, after=None) == []
        await store.add(record("job_new", principal=caller), runs_here=False)
        assert [r.id for r in await store.page(principal=caller, status=None, limit=10, after=None)] == ["job_new"]
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone() == (sqlite.SCHEMA_VERSION,)
    assert check.execute("SELECT id, principal FROM jobs ORDER BY id").fetchall() == [
        ("job_new", caller),
        ("task_old", "server"),
    ]
    check.close()


async def test_a_read_only_registry_of_schema_1_is_read_as_a_current_one(tmp_path: Path) -> None:
    """It cannot be migrated: its jobs read as the server's, a gone owner's as interrupted, with no write."""
    with mounted_tmpfs("1m") as disk:
        path = disk / JOBS_FILE
        old = sqlite3.connect(path, isolation_level=None)
        old.executescript(V1_SCHEMA)
        old.execute(
            "INSERT INTO jobs VALUES ('task_old', 'async_task', 'm', 'old', 1.0, 'running', "
            "NULL, NULL, NULL, NULL, 1.0)"
        )
        old.execute(
            "INSERT INTO jobs VALUES ('job_gone', 'chat', 'm', 'gone', 2.0, 'running', "
            "NULL, 'so far', NULL, '1-gone', 2.0)"
        )
        old.close()
        remount(disk, "ro")
        async with opened(path) as store:
            listed = await store.page(principal=SERVER, status=None, limit=10, after=None)
            running = await store.page(principal=SERVER, status="running", limit=10, after=None)
            gone = await store.get("job_gone", principal=SERVER)
            secret = await store.principal_secret()
            with pytest.raises(RegistryUnavailable, match="read-only"):
                await store.add(record("job_new"), runs_here=True)
    assert [(r.id, r.status, r.principal) for r in listed] == [
        ("job_gone", "interrupted", SERVER),
        ("task_old", "running", SERVER),
    ]
    assert [r.id for r in running] == ["task_old"]
    assert gone is not None and (gone.status, gone.partial_text) == ("interrupted", "so far")
    assert len(secret) == 32


async def test_every_process_sharing_a_registry_makes_the_same_principal_of_a_key(tmp_path: Path) -> None:
    async with opened(tmp_path / JOBS_FILE) as first, opened(tmp_path / JOBS_FILE) as second:
        secrets = [await first.principal_secret(), await second.principal_secret()]
    assert secrets[0] == secrets[1] and len(secrets[0]) == 32
    assert (
        key_principal(secrets[0], "a.key") == key_principal(secrets[1], "a.key") != key_principal(secrets[0], "b.key")
    )


def test_a_position_round_trips_through_its_text() -> None:
    position = Position(1_700_000_000.123456789, "task:with:colons")
    assert Position.parse(str(position)) == position
    with pytest.raises(ValueError):
        Position.parse("not-a-cursor")


def test_the_summary_is_the_start_of_the_last_user_message() -> None:
    def request(*messages: Message) -> ChatRequest:
        return ChatRequest(model="glm-4.6", messages=list(messages))

    assert summarize(request(Message(role="user", content="  Hello\n  there  "))) == "Hello there"
    parts = [TextPart(type="text", text="What is"), TextPart(type="text", text="in this image?")]
    conversation = request(
        Message(role="user", content="first"),
        Message(role="assistant", content="ok"),
        Message(role="user", content=parts),
    )
    assert summarize(conversation) == "What is in this image?"
    long = summarize(request(Message(role="user", content="word " * 100)))
    assert len(long) == 200 and long.endswith("…")
