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
`BatchedConversations`, the server's on SQLite, writes them behind the answer (`behind.py`) and reads
what waits from its own view.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Protocol

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.behind import WriteBehind
from glm_mcp.jobs.principal import Principal
from glm_mcp.jobs.records import Database, Retention, Rows, Steps, one
from glm_mcp.jobs.store import SUMMARY_CHARS

logger = logging.getLogger(__name__)

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
        await self._database.run(self._answer(conversation_id, number, answer), write=True)

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
        numbered: tuple[int, float] | None = None,
    ) -> Steps[int]:
        """One transaction: a chat call's new conversation and its first turn."""
        yield from self._insert(conversation, branch_of)
        return (yield from self._add_turn(conversation.id, model, messages, answer, numbered))

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

    def _add_turn(
        self,
        conversation_id: str,
        model: str,
        messages: str,
        answer: str | None,
        numbered: tuple[int, float] | None = None,
    ) -> Steps[int]:
        """The turn, numbered after the last one; or, `numbered`, as the (number, time) given when it was queued
        (`BatchedConversations`), unless another process has taken that number meanwhile."""
        number, now = numbered or (None, time.time())
        # The conversation's row first: it locks the row (PostgreSQL), so continuations of one conversation from
        # several replicas take their numbers in turn; each then sees the turns committed before it.
        yield ("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        rows: Rows = []
        if number is not None:
            rows = yield (
                "INSERT INTO turns (conversation_id, number, model, messages, answer, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, number) DO NOTHING RETURNING number",
                (conversation_id, number, model, messages, answer, now),
            )
        if not rows:
            rows = yield (
                "INSERT INTO turns (conversation_id, number, model, messages, answer, created_at) "
                "SELECT ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, ? FROM turns WHERE conversation_id = ? "
                "RETURNING number",
                (conversation_id, model, messages, answer, now, conversation_id),
            )
            if number is not None:
                logger.warning(
                    "turn %d of %s was taken by another process meanwhile: it is kept as turn %d",
                    number,
                    conversation_id,
                    rows[0][0],
                )
        if (cutoff := self._retention.cutoff(now)) is not None:
            yield (
                "DELETE FROM turns WHERE conversation_id IN (SELECT id FROM conversations WHERE updated_at < ?)",
                (cutoff,),
            )
            yield ("DELETE FROM conversations WHERE updated_at < ?", (cutoff,))
        return int(rows[0][0])

    def _answer(self, conversation_id: str, number: int, answer: str) -> Steps[Rows]:
        """An answer is written once: a turn that has one keeps it."""
        update = "UPDATE turns SET answer = ? WHERE conversation_id = ? AND number = ? AND answer IS NULL"
        return one((update, (answer, conversation_id, number)))

    def _select(self, where: str, parameters: tuple[object, ...], limit: int) -> Steps[list[Conversation]]:
        rows = yield (
            "SELECT c.id, c.principal, c.system, c.summary, c.created_at, c.updated_at, "
            "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id), c.branched_from "
            f"FROM conversations c WHERE {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (*parameters, limit),
        )
        return [Conversation(*row) for row in rows]


MAX_KNOWN = 4096
"""Conversations whose last turn number `BatchedConversations` remembers (the most recently used)."""


@dataclass(frozen=True, slots=True)
class _Queued:
    """A turn queued to be written, and the time it was made."""

    turn: Turn
    at: float


class BatchedConversations(ConversationRecords):
    """A `ConversationStore` whose writes leave the call's path: queued to a `WriteBehind`, written together.

    Until they are written, `get` and `turns` merge what this process queued (its view) with what the
    database has, turn by turn number, so a call continuing or branching a conversation that an earlier
    call of this process wrote sees every turn at once; the view is taken before the database is read, so
    a flush in between only makes the two agree. A principal sees only its own: a queued conversation
    carries its principal, and a queued turn of a written conversation shows only where the database
    shows that conversation. `recent` writes what is queued first.

    A turn is numbered when it is queued: after the last turn this process has read or queued in that
    conversation (read from the database when it knows none). Two processes continuing one conversation
    in the same moment may pick the same number: the one written second is kept under the next free
    number, and the log says so.
    """

    def __init__(self, database: Database, *, retention_days: float, behind: WriteBehind) -> None:
        super().__init__(database, retention_days=retention_days)
        self._behind = behind
        self._started: dict[str, tuple[Conversation, tuple[str, int] | None]] = {}
        """Conversations queued and not yet written, each with the (conversation, turn) it branches from."""
        self._queued: dict[str, dict[int, _Queued]] = {}
        """Turns queued and not yet written, by conversation and number."""
        self._answers: dict[str, dict[int, str]] = {}
        """Answers queued for turns, by conversation and number."""
        self._last: OrderedDict[str, int] = OrderedDict()
        """The last turn number known here, by conversation."""

    async def add_turn(
        self, conversation_id: str, *, model: str, messages: list[dict[str, Any]], answer: str | None = None
    ) -> int:
        number = await self._next_number(conversation_id)
        at, encoded = time.time(), json.dumps(messages)
        self._queued.setdefault(conversation_id, {})[number] = _Queued(Turn(number, model, messages, answer), at)
        try:
            await self._behind.write(
                lambda: self._add_turn(conversation_id, model, encoded, answer, (number, at)),
                settled=lambda: self._forget_turn(conversation_id, number),
            )
        except RegistryUnavailable:
            if self._last.get(conversation_id) == number:
                self._last[conversation_id] = number - 1
            raise
        return number

    async def start_turn(
        self,
        conversation: Conversation,
        *,
        model: str,
        messages: list[dict[str, Any]],
        branch_of: tuple[str, int] | None,
        answer: str | None = None,
    ) -> int:
        number = (branch_of[1] if branch_of else 0) + 1  # after the turns a branch copies
        at, encoded = time.time(), json.dumps(messages)
        self._started[conversation.id] = (conversation, branch_of)
        self._queued.setdefault(conversation.id, {})[number] = _Queued(Turn(number, model, messages, answer), at)
        self._know(conversation.id, number)
        await self._behind.write(
            lambda: self._start_turn(conversation, branch_of, model, encoded, answer, (number, at)),
            settled=lambda: self._forget_turn(conversation.id, number, started=True),
        )
        return number

    async def answer(self, conversation_id: str, number: int, answer: str) -> None:
        self._answers.setdefault(conversation_id, {}).setdefault(number, answer)
        await self._behind.write(
            lambda: self._answer(conversation_id, number, answer),
            settled=lambda: self._forget_answer(conversation_id, number, answer),
        )

    async def get(self, conversation_id: str, *, principal: Principal) -> Conversation | None:
        started, queued = self._started.get(conversation_id), self._queued_turns(conversation_id)
        found = await super().get(conversation_id, principal=principal)
        if found is None:
            if started is None or started[0].principal != principal:
                return None
            found = started[0]
        later = [q for q in queued if q.turn.number > found.turns]
        if not later:
            return found
        return replace(
            found,
            turns=max(q.turn.number for q in later),
            updated_at=max(found.updated_at, *(q.at for q in later)),
        )

    async def turns(self, conversation_id: str, *, principal: Principal) -> list[Turn]:
        started, queued = self._started.get(conversation_id), self._queued_turns(conversation_id)
        answers = dict(self._answers.get(conversation_id, {}))
        kept = await super().turns(conversation_id, principal=principal)
        if not kept:
            if started is None or started[0].principal != principal:
                return []
            if (branch_of := started[1]) is not None:  # the turns its write will copy
                source, upto = branch_of
                kept = [t for t in await self.turns(source, principal=principal) if t.number <= upto]
        numbers = {t.number for t in kept}
        turns = sorted([*kept, *(q.turn for q in queued if q.turn.number not in numbers)], key=lambda t: t.number)
        turns = [replace(t, answer=answers[t.number]) if t.answer is None and t.number in answers else t for t in turns]
        if turns:
            self._know(conversation_id, turns[-1].number)
        return turns

    async def recent(self, *, principal: Principal, limit: int, before: tuple[float, str] | None) -> list[Conversation]:
        await self._behind.settle()
        return await super().recent(principal=principal, limit=limit, before=before)

    # --- the view -------------------------------------------------------------------------------------

    def _queued_turns(self, conversation_id: str) -> list[_Queued]:
        return list(self._queued.get(conversation_id, {}).values())

    async def _next_number(self, conversation_id: str) -> int:
        if conversation_id not in self._last:
            select = "SELECT COALESCE(MAX(number), 0) FROM turns WHERE conversation_id = ?"
            rows = await self._database.run(one((select, (conversation_id,))), write=False)
            self._know(conversation_id, int(rows[0][0]))
        queued = max(self._queued.get(conversation_id, {}), default=0)
        number = max(self._last.get(conversation_id, 0), queued) + 1
        self._know(conversation_id, number)
        return number

    def _know(self, conversation_id: str, number: int) -> None:
        self._last[conversation_id] = max(number, self._last.get(conversation_id, 0))
        self._last.move_to_end(conversation_id)
        while len(self._last) > MAX_KNOWN:
            self._last.popitem(last=False)

    def _forget_turn(self, conversation_id: str, number: int, *, started: bool = False) -> None:
        if started:
            self._started.pop(conversation_id, None)
        queued = self._queued.get(conversation_id, {})
        queued.pop(number, None)
        if not queued:
            self._queued.pop(conversation_id, None)

    def _forget_answer(self, conversation_id: str, number: int, answer: str) -> None:
        answers = self._answers.get(conversation_id, {})
        if answers.get(number) is answer:
            del answers[number]
        if not answers:
            self._answers.pop(conversation_id, None)
