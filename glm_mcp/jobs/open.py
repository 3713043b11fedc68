"""Which job registry a server uses: the SQLite file by default, PostgreSQL when GLM_MCP_DATABASE_URL is set;
and the conversations and usage kept in the same database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

from glm_mcp.config import ConfigError, Settings
from glm_mcp.jobs.conversations import ConversationRecords, ConversationStore
from glm_mcp.jobs.sqlite import SQLiteJobStore
from glm_mcp.jobs.store import JobRecords
from glm_mcp.jobs.usage import UsageRecords, UsageStore

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


def record_stores(settings: Settings, store: JobRecords) -> tuple[ConversationStore, UsageStore]:
    """The conversations and the usage kept in `store`'s own database, so that every process (or replica)
    sharing the job registry shares them too."""
    conversations = ConversationRecords(store.database, retention_days=settings.registry.conversation_retention_days)
    return conversations, UsageRecords(store.database)


def sqlite_path(settings: Settings) -> Path:
    return settings.registry.data_dir / JOBS_FILE
