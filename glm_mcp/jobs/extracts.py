"""What a document or a recording was read as, kept so that the same content is never paid for twice.

The text the platform's file parser made of a document, or its speech-to-text of a recording, is kept by the
file's SHA-256 and what read it (`file-parser:lite`, `glm-asr-2512`), in the job registry's own database, as
steps (`records.py`) that SQLite or PostgreSQL runs. Each belongs to the principal whose key paid for it, and
only that principal finds it: a cache shared across callers would tell one caller what another has read.
Extracts older than `EXTRACT_RETENTION_DAYS` are deleted. What cannot be done raises `RegistryUnavailable`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from glm_mcp.jobs.principal import Principal
from glm_mcp.jobs.records import Database, Retention, Steps

__all__ = ["EXTRACT_RETENTION_DAYS", "Extract", "ExtractRecords", "ExtractStore"]

EXTRACT_RETENTION_DAYS = 30


@dataclass(frozen=True, slots=True)
class Extract:
    """A file's content (its SHA-256, hex), what read it, and the text it was read as."""

    sha256: str
    source: str
    text: str
    created_at: float = 0.0
    """Unix time; 0 means now."""


class ExtractStore(Protocol):
    async def get(self, *, principal: Principal, sha256: str, source: str) -> Extract | None:
        """`principal`'s extract of this content by this source, if one is kept."""
        ...

    async def put(self, extract: Extract, *, principal: Principal) -> None:
        """Keep `extract` for `principal` (replacing one of the same content and source)."""
        ...


class ExtractRecords:
    """An `ExtractStore` on a SQL `Database`: the one implementation, for SQLite and PostgreSQL alike."""

    def __init__(self, database: Database, retention_days: float = EXTRACT_RETENTION_DAYS) -> None:
        self._database = database
        self._retention = Retention(retention_days)

    async def get(self, *, principal: Principal, sha256: str, source: str) -> Extract | None:
        return await self._database.run(self._get(principal, sha256, source), write=False)

    async def put(self, extract: Extract, *, principal: Principal) -> None:
        await self._database.run(self._put(extract, principal), write=True)

    @staticmethod
    def _get(principal: Principal, sha256: str, source: str) -> Steps[Extract | None]:
        rows = yield (
            "SELECT text, created_at FROM extracts WHERE principal = ? AND sha256 = ? AND source = ?",
            (principal, sha256, source),
        )
        return Extract(sha256, source, rows[0][0], rows[0][1]) if rows else None

    def _put(self, extract: Extract, principal: Principal) -> Steps[None]:
        now = time.time()
        yield (
            "INSERT INTO extracts (principal, sha256, source, text, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (principal, sha256, source) "
            "DO UPDATE SET text = excluded.text, created_at = excluded.created_at",
            (principal, extract.sha256, extract.source, extract.text, extract.created_at or now),
        )
        if (cutoff := self._retention.cutoff(now)) is not None:
            yield ("DELETE FROM extracts WHERE created_at < ?", (cutoff,))
