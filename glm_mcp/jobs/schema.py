"""The registry's schema, declared once for SQLite and PostgreSQL: its tables, its indexes, its versions.

`TABLES` and `INDEXES` are the schema as this glm-mcp makes it, each statement `IF NOT EXISTS`: run in
order, they create what a database lacks and leave what it has. So they are also the migration from any
older version, after the few changes that creating cannot make (a column added to a table that exists,
an index replaced), which each dialect lists under the version that brought them (`Upgrade`); a released
upgrade is never edited. The two databases differ in little, said here as data (`Dialect`): the SQL of a
unix time and of a token count, the version they are at (SQLite's count began a release earlier), and
PostgreSQL's own objects for several replicas (their leases, the trigger that notifies a job's change).
Where the version is kept, and how migrating processes queue, is each engine's (`sqlite.py`, `postgres.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CHANNEL = "glm_mcp_jobs"
"""What PostgreSQL's trigger notifies on every change of a job, with the job's id."""

TABLES = (
    """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,           -- async_task | chat | web_search_chat | image_task | video_task
    model TEXT NOT NULL,
    summary TEXT NOT NULL,        -- the start of the prompt or question
    created_at {real} NOT NULL,   -- unix time
    status TEXT NOT NULL,         -- running | completed | failed | cancelled | interrupted (JobState)
    request_id TEXT,
    partial_text TEXT,            -- a chat job's answer so far
    result TEXT,                  -- the get_result JSON, once it ended
    owner TEXT,                   -- the PROCESS generating a chat job (pid-token); NULL for async tasks
    updated_at {real} NOT NULL,   -- unix time of the last change
    principal TEXT NOT NULL DEFAULT 'server'  -- WHO created it: server | key:<hmac> (principal.py)
)""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",  # the principal secret
    """CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,      -- WHO it belongs to, as for jobs: server | key:<hmac>
    system TEXT NOT NULL,         -- the system prompt, '' for none
    summary TEXT NOT NULL,        -- the start of its first question
    branched_from TEXT,           -- '<conversation id>:<turn>' for a branch
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL    -- unix time of its last turn: retention counts from it
)""",
    """CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL,
    number INTEGER NOT NULL,      -- 1, 2, ...
    model TEXT NOT NULL,
    messages TEXT NOT NULL,       -- JSON: the messages the caller sent in this turn, files' text included
    answer TEXT,                  -- the assistant's answer; NULL until it is complete (or if it never was)
    created_at {real} NOT NULL,
    PRIMARY KEY (conversation_id, number)
)""",
    """CREATE TABLE IF NOT EXISTS usage (
    principal TEXT NOT NULL,      -- WHO paid for it, as for jobs: server | key:<hmac>
    at {real} NOT NULL,           -- unix time the call ended
    tool TEXT NOT NULL,           -- the tool that made the call: chat, web_search, generate_image, ...
    model TEXT NOT NULL,          -- the model (or search engine) that answered
    prompt_tokens {bigint} NOT NULL,
    completion_tokens {bigint} NOT NULL,
    cached_tokens {bigint} NOT NULL,
    calls INTEGER NOT NULL        -- requests the platform billed (1; images: the images made)
)""",
    """CREATE TABLE IF NOT EXISTS extracts (
    principal TEXT NOT NULL,      -- WHO paid for it, as for jobs: server | key:<hmac>
    sha256 TEXT NOT NULL,         -- the file's content, hex
    source TEXT NOT NULL,         -- what read it: file-parser:lite, glm-asr-2512
    text TEXT NOT NULL,           -- what it was read as (extracts.py)
    created_at {real} NOT NULL,   -- unix time: retention counts from it
    PRIMARY KEY (principal, sha256, source)
)""",
    """CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,          -- the id in its glm-media:// URI: a hash of principal and url (media.py)
    principal TEXT NOT NULL,      -- WHO it was made for, as for jobs: server | key:<hmac>
    name TEXT NOT NULL,           -- its file name in the URI: image.png, video.mp4, cover.jpg
    mime_type TEXT NOT NULL,
    url TEXT NOT NULL,            -- where the platform serves it
    expires_at {real} NOT NULL,   -- unix time that URL stops working: retention counts from it
    title TEXT NOT NULL,          -- what it is, for a person
    size {bigint},                -- its bytes, when read
    sha256 TEXT,                  -- its content, hex, when read: a copy is served only if it still matches
    saved_path TEXT,              -- a copy on this machine (stdio)
    created_at {real} NOT NULL
)""",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_by_principal ON jobs (principal, created_at DESC, id DESC)",  # list_jobs
    "CREATE INDEX IF NOT EXISTS jobs_running ON jobs (owner) WHERE status = 'running'",  # whose owner is gone
    "CREATE INDEX IF NOT EXISTS jobs_ended ON jobs (updated_at) WHERE status <> 'running'",  # retention
    "CREATE INDEX IF NOT EXISTS conversations_by_principal ON conversations (principal, updated_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS conversations_by_age ON conversations (updated_at)",  # retention
    "CREATE INDEX IF NOT EXISTS usage_by_principal ON usage (principal, at)",
    "CREATE INDEX IF NOT EXISTS extracts_by_age ON extracts (created_at)",  # retention
    "CREATE INDEX IF NOT EXISTS media_by_principal ON media (principal, created_at DESC, id DESC)",  # resources/list
    "CREATE INDEX IF NOT EXISTS media_by_expiry ON media (expires_at)",  # retention
)
REPLICAS = (
    "CREATE TABLE IF NOT EXISTS replicas (owner TEXT PRIMARY KEY, lease_until TIMESTAMPTZ NOT NULL, "
    "started_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    f"""CREATE OR REPLACE FUNCTION glm_mcp_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('{CHANNEL}', NEW.id); RETURN NULL; END $$""",
    """DO $$ BEGIN
        CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION glm_mcp_job_changed();
    EXCEPTION WHEN duplicate_object THEN NULL;
    END $$""",
)
"""PostgreSQL's own: each replica's lease (`postgres.py`), and the trigger that notifies a job's change."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What a database of a version before `version` needs besides the tables and indexes it lacks."""

    version: int
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database engine takes the schema."""

    version: int
    """The version of the schema this glm-mcp makes."""
    types: Mapping[str, str]
    """The SQL of the types the engines spell differently: `real` (unix times), `bigint` (token counts)."""
    upgrades: tuple[Upgrade, ...] = ()
    own: tuple[str, ...] = ()
    """The engine's own objects, made after the shared ones."""

    def migration(self, version: int) -> list[str]:
        """The statements that bring a database of schema `version` (0: a new one) to `self.version`."""
        if version >= self.version:
            return []
        upgrades = [statement for u in self.upgrades if 0 < version < u.version for statement in u.statements]
        return [*upgrades, *(statement.format_map(self.types) for statement in (*TABLES, *INDEXES)), *self.own]


SQLITE = Dialect(
    version=7,
    types={"real": "REAL", "bigint": "INTEGER"},
    upgrades=(
        # 2: jobs got their principal; every job recorded before belongs to the server's key. (3: conversations,
        # 4: usage, 6: extracts, 7: media, only created.)
        Upgrade(2, ("ALTER TABLE jobs ADD COLUMN principal TEXT NOT NULL DEFAULT 'server'",)),
        # 5: the indexes PostgreSQL has: running jobs by owner, ended ones by age (for retention).
        Upgrade(5, ("DROP INDEX IF EXISTS jobs_newest", "DROP INDEX IF EXISTS jobs_running")),
    ),
)
"""Kept in `PRAGMA user_version`."""
POSTGRES = Dialect(
    version=4,  # 1: jobs, meta, the replicas' leases and the trigger; 2: conversations, turns, usage; 3: extracts;
    # 4: media
    types={"real": "DOUBLE PRECISION", "bigint": "BIGINT"},
    own=REPLICAS,
)
"""Kept in the `glm_mcp_schema` table, a row per version."""
