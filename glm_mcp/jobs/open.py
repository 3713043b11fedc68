"""Which job registry a server uses: the SQLite file by default, PostgreSQL when GLM_MCP_DATABASE_URL is set;
and the conversations and usage kept in the same database (written behind the answer on SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

from glm_mcp.config import ConfigError, Settings
from glm_mcp.jobs.behind import WriteBehind
from glm_mcp.jobs.conversations import BatchedConversations, ConversationRecords, ConversationStore
from glm_mcp.jobs.sqlite import SQLiteJobStore
from glm_mcp.jobs.store import JobRecords
from glm_mcp.jobs.usage import BatchedUsage, UsageRecords, UsageStore

JOBS_FILE = "jobs.sqlite3"


@asynccontextmanager
async def open_job_store(settings: Settings) -> AsyncIterator[JobRecords]:
    """The store for `settings`, open for the `async with` block and closed after it.

    psycopg is imported only here, and only for a database URL: a server on SQLite (every desktop
    install) needs none of it, which is why it is an optional extra (`glm-mcp-server[postgres]`).
    """
    registry = settings.registry
    if not registry.database_url:
        async with aclosing(SQLiteJobStore(sqlite_path(settings), retention_days=registry.job_retention_days)) as s:
            yield s
        return
    try:
        from glm_mcp.jobs.postgres import PostgresJobStore
    except ImportError as exc:
        raise ConfigError(
            f"GLM_MCP_DATABASE_URL is set, but psycopg is not installed ({exc}): install glm-mcp-server[postgres]"
        ) from exc
    store = PostgresJobStore(
        registry.database_url, retention_days=registry.job_retention_days, lease_seconds=registry.lease_seconds
    )
    async with store:
        yield store


@asynccontextmanager
async def open_record_stores(
    settings: Settings, store: JobRecords
) -> AsyncIterator[tuple[ConversationStore, UsageStore]]:
    """The conversations and the usage kept in `store`'s own database, so that every process (or replica) sharing
    the job registry shares them too; open for the `async with` block.

    On the SQLite file they are written behind the answer (`WriteBehind`), and the last ones when the block ends:
    the file's other readers are the user's other processes, which never continue a conversation in the moment it
    is answered. On PostgreSQL they are written on the call's path: another replica is asked for the next turn
    of a conversation, or for the usage, right after the answer, and must find it.
    """
    retention_days = settings.registry.conversation_retention_days
    if not isinstance(store, SQLiteJobStore):
        yield ConversationRecords(store.database, retention_days=retention_days), UsageRecords(store.database)
        return
    async with WriteBehind(store.database).open() as behind:
        yield (
            BatchedConversations(store.database, retention_days=retention_days, behind=behind),
            BatchedUsage(store.database, behind=behind),
        )


def sqlite_path(settings: Settings) -> Path:
    return settings.registry.data_dir / JOBS_FILE
