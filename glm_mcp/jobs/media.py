"""The images and videos the platform made for each caller, kept so that their links can be read back later.

A generated file is a temporary URL on the platform (and, over stdio, a copy on this machine). Each one offered to a
caller as a resource is recorded here, in the job registry's own database, as steps (`records.py`) that SQLite or
PostgreSQL runs: where the platform serves it and until when, what it is, and where its copy is. It belongs to the
principal it was made for, and only that principal finds it, so one caller's link reads as unknown to another.
Its id is a hash of the principal and the URL, so the same file offered again (get_result asked twice) is the same
record and the same link. A record is kept until `MEDIA_RETENTION_DAYS` after its URL expired, so that a read of an
expired one says so rather than "unknown". What cannot be done raises `RegistryUnavailable`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from glm_mcp.jobs.principal import Principal
from glm_mcp.jobs.records import Database, Retention, Steps

__all__ = ["MEDIA_RETENTION_DAYS", "MediaRecord", "MediaRecords", "MediaStore", "media_id"]

MEDIA_RETENTION_DAYS = 30
"""Days a record is kept after the platform's URL expired (its copy, if any, stays readable until then)."""


def media_id(principal: Principal, url: str) -> str:
    """The id of the file at `url` made for `principal`: the same for the same pair, different for another caller."""
    return hashlib.sha256(f"{principal}\n{url}".encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """One generated file as it was offered: its id and name (its resource's URI), what it is, where it lives."""

    id: str
    principal: Principal
    name: str
    """Its file name in the URI (`image.png`, `video.mp4`, `cover.jpg`)."""
    mime_type: str
    url: str
    """Where the platform serves it."""
    expires_at: float
    """When that URL stops working (unix time)."""
    title: str = ""
    """What it is, for a person (`Image (cogview-4)`)."""
    size: int | None = None
    """Its bytes, when it was read to be offered."""
    sha256: str | None = None
    """Its content's hash (hex), when it was read: a copy is served only if it still has this content."""
    saved_path: str | None = None
    """A copy on this machine (stdio)."""
    created_at: float = 0.0
    """Unix time; 0 means now."""


class MediaStore(Protocol):
    async def put(self, record: MediaRecord) -> None:
        """Keep `record` (the same id again keeps the first, filling in what it lacked)."""
        ...

    async def get(self, record_id: str, *, principal: Principal) -> MediaRecord | None:
        """`principal`'s file of that id, if one is kept."""
        ...

    async def recent(self, *, principal: Principal, limit: int) -> list[MediaRecord]:
        """`principal`'s latest `limit` files, newest first."""
        ...


_COLUMNS = "id, principal, name, mime_type, url, expires_at, title, size, sha256, saved_path, created_at"


class MediaRecords:
    """A `MediaStore` on a SQL `Database`: the one implementation, for SQLite and PostgreSQL alike."""

    def __init__(self, database: Database, retention_days: float = MEDIA_RETENTION_DAYS) -> None:
        self._database = database
        self._retention = Retention(retention_days)

    async def put(self, record: MediaRecord) -> None:
        await self._database.run(self._put(record), write=True)

    async def get(self, record_id: str, *, principal: Principal) -> MediaRecord | None:
        rows = await self._database.run(self._select("id = ? AND principal = ?", (record_id, principal)), write=False)
        return rows[0] if rows else None

    async def recent(self, *, principal: Principal, limit: int) -> list[MediaRecord]:
        where = "principal = ? ORDER BY created_at DESC, id DESC LIMIT ?"
        return await self._database.run(self._select(where, (principal, limit)), write=False)

    @staticmethod
    def _select(where: str, parameters: tuple[object, ...]) -> Steps[list[MediaRecord]]:
        rows = yield (f"SELECT {_COLUMNS} FROM media WHERE {where}", parameters)
        return [
            MediaRecord(
                id=row[0],
                principal=Principal(row[1]),
                name=row[2],
                mime_type=row[3],
                url=row[4],
                expires_at=row[5],
                title=row[6],
                size=row[7],
                sha256=row[8],
                saved_path=row[9],
                created_at=row[10],
            )
            for row in rows
        ]

    def _put(self, record: MediaRecord) -> Steps[None]:
        now = time.time()
        yield (
            f"INSERT INTO media ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "size = COALESCE(media.size, excluded.size), sha256 = COALESCE(media.sha256, excluded.sha256), "
            "saved_path = COALESCE(media.saved_path, excluded.saved_path)",
            (
                record.id,
                record.principal,
                record.name,
                record.mime_type,
                record.url,
                record.expires_at,
                record.title,
                record.size,
                record.sha256,
                record.saved_path,
                record.created_at or now,
            ),
        )
        if (cutoff := self._retention.cutoff(now)) is not None:
            yield ("DELETE FROM media WHERE expires_at < ?", (cutoff,))
