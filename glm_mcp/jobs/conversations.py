"""Conversations that outlive the process: their turns kept in the job registry's database, owned like jobs.

A conversation is a system prompt and numbered turns; a turn is the messages the caller sent
(with the files' text as it was sent; an image is kept as a line naming it, not its bytes) and
the assistant's answer (not its reasoning). A turn is recorded with its answer when the call ends
within its wait (one write), or, when the call is handed off as a job, awaiting its answer, which
the job records once it is complete; so a chat another process is still generating never puts a
half answer in the history: a turn without an answer is left out of it.
A branch is a new conversation starting with the first turns of another.

`ConversationStore` is the interface; `ConversationRecords` implements it once, as steps
(`records.py`) run in the job registry's own database (`JobRecords.database`): the SQLite file of the
jobs, through its worker thread, so it shares its behaviour on full, read-only and corrupt files, or
the replicas' shared PostgreSQL database. What cannot be done raises `RegistryUnavailable`.
Conversations whose last turn is older than `retention_days` are deleted with their turns.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from glm_mcp.jobs.principal import Principal
from glm_mcp.jobs.records import Database, Retention, Steps, one
from glm_mcp.jobs.store import SUMMARY_CHARS

CONVERSATION_ID_PREFIX = "conv_"


@dataclass(frozen=True, slots=True)
class Turn:
    number: int
    model: str
    messages: list[dict[str, Any]]
    """As `glm.types.Message` dumps them."""
    answer: str | None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    principal: Principal
    system: str
    summary: str
    created_at: float
    updated_at: float
    turns: int
    """How many turns it has (answered or not)."""
    branched_from: str | None = None


def new_conversation_id() -> str:
    return f"{CONVERSATION_ID_PREFIX}{secrets.token_hex(12)}"


def summary_of(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"


class ConversationStore(Protocol):
    """Conversations shared by every server process using the same store; each principal sees only its own.

    Whatever cannot be done raises `RegistryUnavailable`, never anything else.
    """

    async def add_turn(
        self, conversation_id: str, *, model: str, messages: list[dict[str, Any]], answer: str | None = None
    ) -> int:
        """Add a turn, with its answer when it is already complete, else awaiting it; its number."""
        ...

    async def start_turn(
        self,
        conversation: Conversation,
        *,
        model: str,
        messages: list[dict[str, Any]],
        branch_of: tuple[str, int] | None,
        answer: str | None = None,
    ) -> int:
        """Record a new conversation (a branch when `branch_of` is given: with copies of the first turns of
        (conversation id, turn)) and its first turn, as one write; the turn's number."""
        ...

    async def answer(self, conversation_id: str, number: int, answer: str) -> None:
        """Record the complete answer of a turn."""
        ...

    async def get(self, conversation_id: str, *, principal: Principal) -> Conversation | None:
        """The conversation, if `principal` owns it (None for an unknown one and another's alike)."""
        ...

    async def turns(self, conversation_id: str, *, principal: Principal) -> list[Turn]:
        """Its turns, oldest first (none for another principal's)."""
        ...

    async def recent(self, *, principal: Principal, limit: int, before: tuple[float, str] | None) -> list[Conversation]:
        """Up to `limit` of `principal`'s conversations, most recently continued first, from after the
        (updated_at, id) of the last one listed before."""
        ...


class ConversationRecords:
    """A `ConversationStore` on a SQL `Database`: the one implementation, for SQLite and PostgreSQL alike."""

    def __init__(self, database: Database, *, retention_days: float) -> None:
        self._database = database
        self._retention = Retention(retention_days)

    async def add_turn(
        self, conversation_id: str, *, model: str, messages: list[dict[str, Any]], answer: str | None = None
    ) -> int:
        return await self._database.run(
            self._add_turn(conversation_id, model, json.dumps(messages), answer), write=True
        )

    async def start_turn(
        self,
        conversation: Conversation,
        *,
        model: str,
        messages: list[dict[str, Any]],
        branch_of: tuple[str, int] | None,
        answer: str | None = None,
    ) -> int:
        return await self._database.run(
            self._start_turn(conversation, branch_of, model, json.dumps(messages), answer), write=True
        )

    async def answer(self, conversation_id: str, number: int, answer: str) -> None:
        update = "UPDATE turns SET answer = ? WHERE conversation_id = ? AND number = ? AND answer IS NULL"
        await self._database.run(one((update, (answer, conversation_id, number))), write=True)

    async def get(self, conversation_id: str, *, principal: Principal) -> Conversation | None:
        rows = await self._database.run(
            self._select("c.id = ? AND c.principal = ?", (conversation_id, principal), 1), write=False
        )
        return rows[0] if rows else None

    async def turns(self, conversation_id: str, *, principal: Principal) -> list[Turn]:
        select = (
            "SELECT t.number, t.model, t.messages, t.answer FROM turns t JOIN conversations c "
            "ON c.id = t.conversation_id WHERE t.conversation_id = ? AND c.principal = ? ORDER BY t.number"
        )
        rows = await self._database.run(one((select, (conversation_id, principal))), write=False)
        return [Turn(number, model, json.loads(messages), answer) for number, model, messages, answer in rows]

    async def recent(self, *, principal: Principal, limit: int, before: tuple[float, str] | None) -> list[Conversation]:
        """`principal`'s conversations, most recently continued first, starting before `before`."""
        where, parameters = "c.principal = ?", list[object]([principal])
        if before is not None:
            where += " AND (c.updated_at, c.id) < (?, ?)"
            parameters += [*before]
        return await self._database.run(self._select(where, tuple(parameters), limit), write=False)

    # --- the steps ------------------------------------------------------------------------------------

    def _start_turn(
        self,
        conversation: Conversation,
        branch_of: tuple[str, int] | None,
        model: str,
        messages: str,
        answer: str | None,
    ) -> Steps[int]:
        """One transaction: a chat call's new conversation and its first turn."""
        yield from self._insert(conversation, branch_of)
        return (yield from self._add_turn(conversation.id, model, messages, answer))

    def _insert(self, conversation: Conversation, branch_of: tuple[str, int] | None) -> Steps[None]:
        yield (
            "INSERT INTO conversations (id, principal, system, summary, branched_from, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                conversation.id,
                conversation.principal,
                conversation.system,
                conversation.summary,
                conversation.branched_from,
                conversation.created_at,
                conversation.updated_at,
            ),
        )
        if branch_of is not None:
            yield (
                "INSERT INTO turns (conversation_id, number, model, messages, answer, created_at) "
                "SELECT ?, number, model, messages, answer, created_at FROM turns "
                "WHERE conversation_id = ? AND number <= ?",
                (conversation.id, *branch_of),
            )

    def _add_turn(self, conversation_id: str, model: str, messages: str, answer: str | None) -> Steps[int]:
        now = time.time()
        # The conversation's row first: it locks the row (PostgreSQL), so continuations of one conversation from
        # several replicas take their numbers in turn; each then sees the turns committed before it.
        yield ("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        rows = yield (
            "INSERT INTO turns (conversation_id, number, model, messages, answer, created_at) "
            "SELECT ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, ? FROM turns WHERE conversation_id = ? RETURNING number",
            (conversation_id, model, messages, answer, now, conversation_id),
        )
        if (cutoff := self._retention.cutoff(now)) is not None:
            yield (
                "DELETE FROM turns WHERE conversation_id IN (SELECT id FROM conversations WHERE updated_at < ?)",
                (cutoff,),
            )
            yield ("DELETE FROM conversations WHERE updated_at < ?", (cutoff,))
        return int(rows[0][0])

    def _select(self, where: str, parameters: tuple[object, ...], limit: int) -> Steps[list[Conversation]]:
        rows = yield (
            "SELECT c.id, c.principal, c.system, c.summary, c.created_at, c.updated_at, "
            "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id), c.branched_from "
            f"FROM conversations c WHERE {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (*parameters, limit),
        )
        return [Conversation(*row) for row in rows]
