"""What documents and recordings were read as, kept by content in the job registry (glm_mcp/jobs/extracts.py): owned
by who paid, replaced not duplicated, aged out; the table made by a migration on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from glm_mcp.jobs import SERVER, Principal, SQLiteJobStore, sqlite
from glm_mcp.jobs.extracts import Extract, ExtractRecords
from glm_mcp.jobs.postgres import SCHEMA_VERSION, PostgresJobStore

pytestmark = pytest.mark.anyio
ALICE = Principal("key:alice")
DIGEST = "ab" * 32


async def check_extracts(store: SQLiteJobStore | PostgresJobStore) -> None:
    extracts = ExtractRecords(store.database)
    await extracts.put(Extract(DIGEST, "file-parser:lite", "the text"), principal=SERVER)
    got = await extracts.get(principal=SERVER, sha256=DIGEST, source="file-parser:lite")
    assert got is not None and got.text == "the text" and got.created_at > time.time() - 60
    assert await extracts.get(principal=ALICE, sha256=DIGEST, source="file-parser:lite") is None  # not hers
    assert await extracts.get(principal=SERVER, sha256=DIGEST, source="glm-asr-2512") is None  # not read that way
    await extracts.put(Extract(DIGEST, "file-parser:lite", "read again"), principal=SERVER)
    again = await extracts.get(principal=SERVER, sha256=DIGEST, source="file-parser:lite")
    assert again is not None and again.text == "read again"
    old = ExtractRecords(store.database, retention_days=1)
    await old.put(Extract("cd" * 32, "glm-asr-2512", "old words", created_at=time.time() - 3 * 86_400), principal=ALICE)
    await old.put(Extract("ef" * 32, "glm-asr-2512", "new words"), principal=ALICE)  # a write prunes the old
    assert await old.get(principal=ALICE, sha256="cd" * 32, source="glm-asr-2512") is None
    assert await old.get(principal=ALICE, sha256="ef" * 32, source="glm-asr-2512") is not None


async def test_extracts_on_sqlite_and_a_file_of_schema_5_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SQLiteJobStore(path, retention_days=7)
    await check_extracts(store)
    await store.aclose()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:  # as the release before made it
        db.executescript("DROP TABLE extracts; PRAGMA user_version = 5;")
    store = SQLiteJobStore(path, retention_days=7)
    await check_extracts(store)
    await store.aclose()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (sqlite.SCHEMA_VERSION,) == (7,)


async def test_extracts_on_postgresql_and_a_database_of_schema_2_migrated(postgres: Any) -> None:
    async with PostgresJobStore(postgres.url, retention_days=7, lease_seconds=15) as store:
        await check_extracts(store)
    with psycopg.connect(postgres.url, autocommit=True) as db:  # as the release before made it
        db.execute("DROP TABLE extracts")
        db.execute("DELETE FROM glm_mcp_schema WHERE version > 2")
    async with PostgresJobStore(postgres.url, retention_days=7, lease_seconds=15) as store:
        await check_extracts(store)
    with psycopg.connect(postgres.url) as db:
        versions = db.execute("SELECT version FROM glm_mcp_schema ORDER BY version").fetchall()
    assert versions == [(1,), (2,), (3,), (4,)] and SCHEMA_VERSION == 4
