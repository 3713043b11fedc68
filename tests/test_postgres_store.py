"""The PostgreSQL job registry on a real server: schema migrated once under replicas starting together,
records and principals as on SQLite, readers woken by NOTIFY, leases, concurrent writers, the database
going away and coming back; conversations and usage in the same database, shared by every replica."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs import SERVER, JobRecord, Principal, SQLiteJobStore, sqlite
from glm_mcp.jobs.conversations import Conversation, ConversationRecords
from glm_mcp.jobs.postgres import SCHEMA_VERSION, PostgresJobStore, redacted
from glm_mcp.jobs.usage import UsageRecord, UsageRecords

pytestmark = pytest.mark.anyio
ALICE = Principal("key:alice")


def opened(url: str, lease_seconds: float = 15) -> PostgresJobStore:
    return PostgresJobStore(url, retention_days=7, lease_seconds=lease_seconds)


def record(job_id: str, principal: Principal = SERVER, kind: Any = "chat") -> JobRecord:
    return JobRecord(job_id, kind, "glm-4.6", f"summary of {job_id}", time.time(), principal=principal)


async def test_replicas_starting_together_migrate_the_schema_once(postgres: Any) -> None:
    async with contextlib.AsyncExitStack() as stack:
        stores = [await stack.enter_async_context(opened(postgres.url)) for _ in range(6)]
        async with anyio.create_task_group() as tg:  # every one migrates at its first call, all at once
            for i, store in enumerate(stores):
                tg.start_soon(functools.partial(store.add, record(f"job_{i}"), runs_here=False))
    with psycopg.connect(postgres.url) as db:
        versions = db.execute("SELECT version FROM glm_mcp_schema ORDER BY version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert db.execute("SELECT count(*) FROM jobs").fetchone() == (6,)


async def test_records_principals_and_pages_as_on_sqlite(postgres: Any) -> None:
    async with opened(postgres.url) as store:
        await store.add(record("job_mine"), runs_here=True)
        await store.add(record("task_alice", ALICE, "async_task"), runs_here=False)
        await store.add(record("job_mine"), runs_here=True)  # twice: the first stays
        await store.save_partial("job_mine", "so far")
        got = await store.get("job_mine", principal=SERVER)
        assert got is not None and got.partial_text == "so far" and got.status == "running"
        assert await store.get("task_alice", principal=SERVER) is None  # another's reads as unknown
        assert await store.known("task_alice") and not await store.known("task_nobody")
        await store.finish("job_mine", "completed", result='{"ok": 1}', partial_text=None)
        await store.finish("job_mine", "failed", result="{}", partial_text=None)  # ended: left as it is
        ended = await store.get("job_mine", principal=SERVER)
        assert ended is not None and (ended.status, ended.result) == ("completed", '{"ok": 1}')
        assert [r.id for r in await store.page(principal=ALICE, status=None, limit=10, after=None)] == ["task_alice"]
        secret = await store.principal_secret()
    async with opened(postgres.url) as again:
        assert await again.principal_secret() == secret  # the same for every replica


async def test_a_reader_is_woken_by_the_change_not_by_polling(postgres: Any) -> None:
    async with opened(postgres.url) as writer, opened(postgres.url) as reader:
        await writer.add(record("job_watched"), runs_here=True)
        while not reader.listening:
            await anyio.sleep(0.05)
        async with reader.watch("job_watched") as changes:

            async def change_soon() -> None:
                await anyio.sleep(0.3)
                await writer.save_partial("job_watched", "a little more")

            async with anyio.create_task_group() as tg:
                tg.start_soon(change_soon)
                started = time.monotonic()
                await changes.wait(30)
                waited = time.monotonic() - started
        assert waited < 10, f"woken after {waited:.1f} s: the notice never came"
        got = await reader.get("job_watched", principal=SERVER)
        assert got is not None and got.partial_text == "a little more"


def writer(url: str, name: str, count: int, *more: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.pg_job_writer", url, name, str(count), *more]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


async def test_concurrent_writers_lose_nothing(postgres: Any) -> None:
    count = 300
    writers = [writer(postgres.url, name, count) for name in ("a", "b", "c")]
    for process in writers:
        out, _ = process.communicate(timeout=240)
        assert process.returncode == 0 and json.loads(out)["done"] == count
    with psycopg.connect(postgres.url) as db:
        rows = db.execute("SELECT id, status FROM jobs").fetchall()
    assert len(rows) == 3 * count + count  # each writer's own, and the shared ones once
    assert {status for _, status in rows} == {"completed"}


async def test_a_killed_replicas_jobs_read_interrupted_once_its_lease_lapses(postgres: Any) -> None:
    held = writer(postgres.url, "k", 1, "hold")
    assert held.stdout is not None
    try:
        for line in held.stdout:
            if line.strip() == "held":
                break
        async with opened(postgres.url, lease_seconds=1.5) as other:
            got = await other.get("job_k_held", principal=SERVER)
            assert got is not None and got.status == "running"  # its lease is live
            async with other.watch("job_k_held") as changes:
                held.kill()
                held.wait()
                deadline = time.monotonic() + 30
                while (got := await other.get("job_k_held", principal=SERVER)) and got.status == "running":
                    assert time.monotonic() < deadline, "the lease never lapsed"
                    await changes.wait(deadline - time.monotonic())
            assert got is not None and (got.status, got.partial_text) == ("interrupted", "held so far")
            listed = await other.page(principal=SERVER, status="interrupted", limit=10, after=None)
            assert [r.id for r in listed] == ["job_k_held"]
    finally:
        held.kill()


async def test_the_database_going_away_and_coming_back(postgres: Any) -> None:
    async with opened(postgres.url) as store:
        await store.add(record("job_before"), runs_here=False)
        await store.check()
        conversations, usage = ConversationRecords(store.database, retention_days=30), UsageRecords(store.database)
        postgres.stop()
        try:
            with pytest.raises(RegistryUnavailable) as gone:
                await store.get("job_before", principal=SERVER)
            assert gone.value.kind == "registry_unavailable"
            assert "tests-only-password" not in str(gone.value) and "GLM_MCP_DATABASE_URL" in gone.value.fix
            with pytest.raises(RegistryUnavailable):
                await store.check()
            with pytest.raises(RegistryUnavailable):  # conversations and usage fail the same way, and only so
                await conversations.start_turn(conversation("conv_away"), model="m", messages=[], branch_of=None)
            with pytest.raises(RegistryUnavailable):
                await conversations.recent(principal=SERVER, limit=5, before=None)
            with pytest.raises(RegistryUnavailable):
                await usage.record(UsageRecord(principal=SERVER, tool="chat", model="glm-4.6"))
        finally:
            postgres.start()
        deadline = time.monotonic() + 30
        while True:  # the pool reconnects by itself
            try:
                got = await store.get("job_before", principal=SERVER)
                break
            except RegistryUnavailable:
                assert time.monotonic() < deadline, "the pool never reconnected"
                await anyio.sleep(0.2)
        assert got is not None and got.id == "job_before"
        await store.check()


# --- conversations and usage ------------------------------------------------------------------------------


def conversation(conversation_id: str, principal: Principal = SERVER, *, at: float | None = None) -> Conversation:
    now = time.time() if at is None else at
    return Conversation(conversation_id, principal, "Be brief.", f"about {conversation_id}", now, now, 0)


async def recorded(store: PostgresJobStore, url: str, c: Conversation) -> None:
    """`c` in the database with no turn yet, as of its own `updated_at` (the stores make one with its first turn)."""
    await store.check()  # the schema is made at a store's first call
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO conversations (id, principal, system, summary, branched_from, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (c.id, c.principal, c.system, c.summary, c.branched_from, c.created_at, c.updated_at),
        )


def said(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_a_conversation_written_through_one_replica_is_read_through_another(postgres: Any) -> None:
    async with opened(postgres.url) as one, opened(postgres.url) as other:
        here = ConversationRecords(one.database, retention_days=30)
        there = ConversationRecords(other.database, retention_days=30)
        assert await here.start_turn(conversation("conv_a"), model="glm-4.6", messages=said("1?"), branch_of=None) == 1
        await here.answer("conv_a", 1, "one")
        assert await there.add_turn("conv_a", model="glm-4.5", messages=said("2?")) == 2
        await there.answer("conv_a", 2, "two")
        await here.answer("conv_a", 2, "changed")  # an answer is written once
        assert await here.add_turn("conv_a", model="glm-4.6", messages=said("3?")) == 3  # left unanswered
        turns = await there.turns("conv_a", principal=SERVER)
        assert [(t.number, t.model, t.messages, t.answer) for t in turns] == [
            (1, "glm-4.6", said("1?"), "one"),
            (2, "glm-4.5", said("2?"), "two"),
            (3, "glm-4.6", said("3?"), None),
        ]
        got = await there.get("conv_a", principal=SERVER)
        assert got is not None and (got.system, got.summary, got.turns) == ("Be brief.", "about conv_a", 3)

        # Another's conversation reads exactly like one that does not exist.
        assert await there.get("conv_a", principal=ALICE) is None
        assert await there.turns("conv_a", principal=ALICE) == []
        assert await there.recent(principal=ALICE, limit=10, before=None) == []

        # A branch: a new conversation starting with copies of the first turns.
        branch = Conversation("conv_b", SERVER, "Be brief.", "about conv_a", time.time(), time.time(), 0, "conv_a:1")
        assert await there.start_turn(branch, model="glm-4.6", messages=said("1b?"), branch_of=("conv_a", 1)) == 2
        copied = await here.turns("conv_b", principal=SERVER)
        assert [(t.number, t.answer) for t in copied] == [(1, "one"), (2, None)]
        assert [t.number for t in await here.turns("conv_a", principal=SERVER)] == [1, 2, 3]  # the original stays
        branched = await here.get("conv_b", principal=SERVER)
        assert branched is not None and branched.branched_from == "conv_a:1"

        # Pages, most recently continued first, from the (updated_at, id) of the last one listed.
        await here.start_turn(conversation("conv_c", ALICE), model="glm-4.6", messages=said("c?"), branch_of=None)
        first = await here.recent(principal=SERVER, limit=1, before=None)
        assert [c.id for c in first] == ["conv_b"]
        rest = await there.recent(principal=SERVER, limit=10, before=(first[0].updated_at, first[0].id))
        assert [c.id for c in rest] == ["conv_a"]
        assert [c.id for c in await there.recent(principal=ALICE, limit=10, before=None)] == ["conv_c"]


async def test_conversations_past_their_retention_are_deleted_with_their_turns(postgres: Any) -> None:
    long_ago = time.time() - 40 * 86_400
    async with opened(postgres.url) as store:
        await recorded(store, postgres.url, conversation("conv_old", at=long_ago))
        with psycopg.connect(postgres.url, autocommit=True) as db:  # a turn of 40 days ago
            db.execute("INSERT INTO turns VALUES ('conv_old', 1, 'glm-4.6', '[]', 'old', %s)", (long_ago,))
        fresh = ConversationRecords(store.database, retention_days=30)  # a replica starting: prunes at its first turn
        await fresh.start_turn(conversation("conv_new"), model="glm-4.6", messages=said("new"), branch_of=None)
        assert await fresh.get("conv_old", principal=SERVER) is None
        assert await fresh.get("conv_new", principal=SERVER) is not None
    with psycopg.connect(postgres.url) as db:
        assert db.execute("SELECT conversation_id FROM turns").fetchall() == [("conv_new",)]


async def test_concurrent_turns_from_two_replicas_are_numbered_1_to_n_with_none_lost(postgres: Any) -> None:
    each = 40
    async with opened(postgres.url) as one, opened(postgres.url) as other:  # two pools: two replicas
        stores = [ConversationRecords(s.database, retention_days=30) for s in (one, other)]
        await recorded(one, postgres.url, conversation("conv_busy"))
        numbers: list[int] = []

        async def add(replica: int, i: int) -> None:
            numbers.append(await stores[replica].add_turn("conv_busy", model="m", messages=said(f"{replica}-{i}")))

        async with anyio.create_task_group() as tg:
            for i in range(each):
                for replica in (0, 1):
                    tg.start_soon(add, replica, i)
        turns = await stores[1].turns("conv_busy", principal=SERVER)
    assert sorted(numbers) == list(range(1, 2 * each + 1))
    assert [t.number for t in turns] == list(range(1, 2 * each + 1))
    sent = sorted(t.messages[0]["content"] for t in turns)
    assert sent == sorted(f"{replica}-{i}" for replica in (0, 1) for i in range(each))  # each once, none lost


async def test_usage_from_every_replica_is_summed_by_day_and_model_per_principal(postgres: Any) -> None:
    day = 86_400.0
    today = time.time() // day * day + 3600
    async with opened(postgres.url) as one, opened(postgres.url) as other:
        here, there = UsageRecords(one.database), UsageRecords(other.database)
        for store, principal, model, at, tokens in (
            (here, SERVER, "glm-4.6", today, 10),
            (there, SERVER, "glm-4.6", today, 20),
            (there, SERVER, "glm-4.5-air", today, 5),
            (here, SERVER, "glm-4.6", today - day, 7),
            (here, ALICE, "glm-4.6", today, 1000),  # another's, never counted as ours
            (there, SERVER, "glm-4.6", today - 30 * day, 99),  # before the span asked about
        ):
            await store.record(UsageRecord(principal, "chat", model, tokens, 2 * tokens, 1, 1, at))
        since = today - 3 * day

        def shown(totals: list[Any]) -> list[tuple[str, str, int, int, int, int]]:
            return [(t.day, t.model, t.calls, t.prompt_tokens, t.completion_tokens, t.cached_tokens) for t in totals]

        def iso(at: float) -> str:
            return time.strftime("%Y-%m-%d", time.gmtime(at))

        assert shown(await here.totals(principal=SERVER, since=since, by="day_model")) == [
            (iso(today), "glm-4.6", 2, 30, 60, 2),
            (iso(today), "glm-4.5-air", 1, 5, 10, 1),
            (iso(today - day), "glm-4.6", 1, 7, 14, 1),
        ]
        assert shown(await there.totals(principal=SERVER, since=since, by="model")) == [
            ("", "glm-4.6", 3, 37, 74, 3),
            ("", "glm-4.5-air", 1, 5, 10, 1),
        ]
        assert shown(await there.totals(principal=SERVER, since=since, by="day")) == [
            (iso(today), "", 3, 35, 70, 3),
            (iso(today - day), "", 1, 7, 14, 1),
        ]
        assert shown(await there.totals(principal=ALICE, since=since, by="day")) == [(iso(today), "", 1, 1000, 2000, 1)]


SCHEMA_1 = (
    """CREATE TABLE jobs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, summary TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, request_id TEXT, partial_text TEXT, result TEXT,
        owner TEXT, updated_at DOUBLE PRECISION NOT NULL, principal TEXT NOT NULL DEFAULT 'server'
    )""",
    "CREATE INDEX jobs_by_principal ON jobs (principal, created_at DESC, id DESC)",
    "CREATE INDEX jobs_running ON jobs (owner) WHERE status = 'running'",
    "CREATE INDEX jobs_ended ON jobs (updated_at) WHERE status <> 'running'",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE replicas (owner TEXT PRIMARY KEY, lease_until TIMESTAMPTZ NOT NULL, "
    "started_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    """CREATE FUNCTION glm_mcp_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('glm_mcp_jobs', NEW.id); RETURN NULL; END $$""",
    "CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION glm_mcp_job_changed()",
)
"""The registry's schema as the release that made version 1 created it."""


def make_schema_1(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE glm_mcp_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())")
        for statement in SCHEMA_1:
            db.execute(statement)
        db.execute("INSERT INTO glm_mcp_schema (version) VALUES (1)")


async def test_a_database_of_schema_1_is_migrated_with_its_jobs_kept(postgres: Any) -> None:
    make_schema_1(postgres.url)  # what the previous release made
    with psycopg.connect(postgres.url, autocommit=True) as db:
        db.execute(
            "INSERT INTO jobs (id, kind, model, summary, created_at, status, updated_at) "
            "VALUES ('job_old', 'chat', 'glm-4.6', 'old', 1.0, 'completed', 1.0)"
        )
    async with opened(postgres.url) as one, opened(postgres.url) as other:
        async with anyio.create_task_group() as tg:  # both at once, at their first call: one of them migrates
            tg.start_soon(UsageRecords(one.database).record, UsageRecord(SERVER, "chat", "glm-4.6", 3))
            started = ConversationRecords(other.database, retention_days=30).start_turn
            tg.start_soon(functools.partial(started, conversation("conv_new"), model="m", messages=[], branch_of=None))
        old = await other.get("job_old", principal=SERVER)
        assert old is not None and old.status == "completed"
    with psycopg.connect(postgres.url) as db:
        versions = db.execute("SELECT version FROM glm_mcp_schema ORDER BY version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)] and SCHEMA_VERSION >= 2
        assert db.execute("SELECT tool, prompt_tokens FROM usage").fetchall() == [("chat", 3)]


Shape = tuple[dict[str, dict[str, bool]], dict[str, tuple[str, tuple[str, ...], bool]]]
"""Each table's columns (whether each is required), and each index's table, columns and whether it is partial."""


def sqlite_shape(path: Path) -> Shape:
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns: dict[str, dict[str, bool]] = {}
        for table in tables:  # a PRIMARY KEY column is required in PostgreSQL, and in SQLite only by declaration
            for _, name, _, notnull, _, pk in db.execute(f"PRAGMA table_info({table})"):
                columns.setdefault(table, {})[name] = bool(notnull or pk)
        indexes = {
            name: (table, tuple(column for _, _, column in db.execute(f"PRAGMA index_info({name})")), " WHERE " in sql)
            for name, table, sql in db.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    return columns, indexes


def postgres_shape(url: str) -> Shape:
    """The shape of glm-mcp's tables, without PostgreSQL's own (the replicas' leases, the schema's versions)."""
    columns: dict[str, dict[str, bool]] = {}
    with psycopg.connect(url) as db:
        for table, column, nullable in db.execute(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'"
        ):
            columns.setdefault(table, {})[column] = nullable == "NO"
        indexes = {
            name: (table, tuple(names), partial)
            for name, table, names, partial in db.execute(
                "SELECT i.relname, t.relname, array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY "
                "AS k(number, place) JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.number "
                "ORDER BY k.place), x.indpred IS NOT NULL FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "WHERE NOT x.indisprimary AND t.relnamespace = 'public'::regnamespace"
            )
            if table not in {"replicas", "glm_mcp_schema"}
        }
        triggers = db.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()
    assert triggers == [("jobs_changed",)]  # the change notices, once
    return {t: c for t, c in columns.items() if t not in {"replicas", "glm_mcp_schema"}}, indexes


SQLITE_4_INDEXES = """
DROP INDEX IF EXISTS jobs_running; DROP INDEX IF EXISTS jobs_ended; DROP INDEX IF EXISTS conversations_by_age;
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_running ON jobs (status, owner);
PRAGMA user_version = 4;
"""
"""A current file turned into one of schema 4, whose tables were the same: its indexes then."""


async def test_sqlite_and_postgresql_have_one_schema_made_new_or_migrated(postgres: Any, tmp_path: Path) -> None:
    """Declared once (glm_mcp/jobs/schema.py): the same tables, columns and indexes in both databases."""

    async def first_call(path: Path) -> None:  # a file is made, or migrated, at its store's first call
        store = SQLiteJobStore(path, retention_days=7)
        await store.known("job_a")
        await store.aclose()

    new_file, old_file = tmp_path / "new.sqlite3", tmp_path / "old.sqlite3"
    await first_call(new_file)
    await first_call(old_file)
    with contextlib.closing(sqlite3.connect(old_file, isolation_level=None)) as db:
        db.executescript(SQLITE_4_INDEXES)
    await first_call(old_file)
    with contextlib.closing(sqlite3.connect(old_file)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (sqlite.SCHEMA_VERSION,)

    async with opened(postgres.url) as store:
        await store.check()
    new_database = postgres_shape(postgres.url)
    postgres.reset()
    make_schema_1(postgres.url)
    async with opened(postgres.url) as store:
        await store.check()
    migrated_database = postgres_shape(postgres.url)

    shape = sqlite_shape(new_file)
    assert {"jobs", "meta", "conversations", "turns", "usage"} <= set(shape[0]) and "jobs_ended" in shape[1]
    assert sqlite_shape(old_file) == shape
    assert new_database == shape
    assert migrated_database == shape


def test_the_password_is_never_shown() -> None:
    assert redacted("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redacted("postgresql://h/db") == "postgresql://h/db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@h:port/db",
        "postgresql://u:secret@[::1/db",
        "postgresql://u:sec@ret@h/db",
        "postgresql://h/db?sslmode=require&password=secret",
    ],
)
def test_the_password_of_a_malformed_url_is_never_shown(url: str) -> None:
    shown = redacted(url)
    assert "secret" not in shown and "ret@" not in shown and "***" in shown
