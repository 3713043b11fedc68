"""A chat from the agent's workspace: files attached, the conversation continued, the answer kept and paged.

`prepare` turns a checked request into the one to send: the files read and attached to the
user's message, the conversation's system prompt and earlier turns put in front (the oldest left
out when they would not fit the model's context window), and the size checked again. The new turn
is recorded once: with its answer by `finish` when the call ends within its wait (one write, not
two, on every chat's path), or by `record_turn` when it is handed off, awaiting the answer the job
then records. A call that fails or is cancelled before either leaves no turn. `finish` returns the
answer in pages of at most GLM_MAX_RESULT_CHARS; `turn_result` reads a kept turn again, from any
offset, for `get_result`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from glm_mcp.errors import ArgumentError, UnknownJobError
from glm_mcp.glm.models import IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS, context_window, estimated_tokens
from glm_mcp.glm.types import ChatRequest, ContentPart, ImagePart, Message, TextPart, split_answer
from glm_mcp.jobs import Job, RegistryUnavailable
from glm_mcp.jobs.conversations import CONVERSATION_ID_PREFIX, Conversation, new_conversation_id, summary_of
from glm_mcp.server.answers import SentFile, page_of
from glm_mcp.server.arguments import Attached, Continued, _check_size
from glm_mcp.server.results import ChatResult, RegistryNotes, TaskResult
from glm_mcp.server.state import AppState
from glm_mcp.tools.workspace.files import Attachments, read_files
from glm_mcp.tools.workspace.roots import FilesUnavailable, allowed_roots

ANSWER_RESERVE_TOKENS = 4_096
"""Tokens of the context window kept free for the answer when the call sets no max_tokens (at most a quarter
of the window)."""


@dataclass(frozen=True, slots=True)
class PendingTurn:
    """The turn a call adds, until it is recorded: to a new conversation (`created`), or to `conversation_id`."""

    messages: list[dict[str, object]]
    created: Conversation | None = None
    branch_of: tuple[str, int] | None = None
    conversation_id: str | None = None


@dataclass(slots=True)
class Prepared:
    """The request to send, and what its result must say about files and the conversation."""

    request: ChatRequest
    files: list[SentFile] = field(default_factory=list)
    conversation_id: str | None = None
    turn: int | None = None
    turns_left_out: int = 0
    notice: str | None = None
    pending: PendingTurn | None = None

    @property
    def ref(self) -> str | None:
        """The id `get_result` reads this turn's answer under, once it is kept."""
        return f"{self.conversation_id}:{self.turn}" if self.conversation_id and self.turn else None

    def notes(self) -> dict[str, object]:
        return {
            "files": self.files or None,
            "conversation_id": self.conversation_id,
            "turn": self.turn,
            "turns_left_out": self.turns_left_out or None,
            "conversation_notice": self.notice,
        }


async def prepare(app: AppState, ctx: Context, args: Attached, request: ChatRequest) -> Prepared:
    """`request` with the files and, for arguments that carry one, the conversation in it; raises
    `ArgumentError` before anything is sent."""
    attachments = Attachments()
    if args.files:
        try:
            roots = await allowed_roots(ctx, app.settings)
        except FilesUnavailable as exc:
            raise ArgumentError("files", str(exc)) from None
        attachments = await anyio.to_thread.run_sync(read_files, args.files, roots, app.settings, request.model)
    messages = list(request.messages)
    system = messages.pop(0) if messages and messages[0].role == "system" else None
    question = _user_text(messages)
    new = attachments.attach(messages)
    prepared = Prepared(request, attachments.sent)
    conversation: Conversation | None = None
    history: list[list[Message]] = []
    if isinstance(args, Continued):
        conversation, history, system = await _load(app, args, system)
    kept, prepared.turns_left_out = _fit(system, history, new, request)
    request.messages = [*([system] if system else []), *(m for turn in kept for m in turn), *new]
    _check_size(request.messages, app.settings.max_prompt_chars)
    if isinstance(args, Continued):
        prepared.pending = _pending_turn(app, args, conversation, system, new, question, attachments)
    return prepared


def _user_text(messages: list[Message]) -> str:
    content = next((m.content for m in reversed(messages) if m.role == "user"), "")
    if isinstance(content, list):
        return " ".join(part.text for part in content if isinstance(part, TextPart))
    return content or ""


async def _load(
    app: AppState, args: Continued, system: Message | None
) -> tuple[Conversation | None, list[list[Message]], Message | None]:
    """The conversation `args` continues, its turns to send again, and its system prompt."""
    conversation_id = args.conversation_id.strip()
    if not conversation_id:
        if args.from_turn is not None:
            raise ArgumentError("from_turn", "it needs conversation_id: the conversation to branch from.")
        return None, [], system
    conversation = None
    if conversation_id.startswith(CONVERSATION_ID_PREFIX) and len(conversation_id) <= 100:
        conversation = await app.conversations.get(conversation_id, principal=app.principal)
    if conversation is None:
        raise ArgumentError(
            "conversation_id",
            f"{conversation_id[:100]} is unknown: no conversation of yours has that id (they are kept "
            "GLM_CONVERSATION_RETENTION_DAYS days after their last turn). list_conversations lists yours.",
        )
    given = system.content if system is not None and isinstance(system.content, str) else ""
    if given and given != conversation.system:
        raise ArgumentError(
            "system",
            "a conversation keeps the system prompt it started with: leave `system` out to continue it, or "
            "start a new conversation for another one.",
        )
    turns = await app.conversations.turns(conversation.id, principal=app.principal)
    if args.from_turn is not None:
        if args.from_turn > len(turns):
            raise ArgumentError("from_turn", f"{conversation.id} has {len(turns)} turn(s); give 1 to {len(turns)}.")
        turns = turns[: args.from_turn]
    history = [
        [*(Message.model_validate(m) for m in turn.messages), Message(role="assistant", content=turn.answer)]
        for turn in turns
        if turn.answer  # a turn never answered (it failed, or is still generating) is not part of the history
    ]
    kept_system = Message(role="system", content=conversation.system) if conversation.system else None
    return conversation, history, kept_system


def _tokens(message: Message) -> int:
    content = message.content
    if isinstance(content, list):
        chars = sum(len(p.text) for p in content if isinstance(p, TextPart))
        images = sum(1 for p in content if not isinstance(p, TextPart))
    else:
        chars, images = len(content or ""), 0
    return MESSAGE_OVERHEAD_TOKENS + estimated_tokens(chars) + images * IMAGE_TOKENS


def _fit(
    system: Message | None, history: list[list[Message]], new: list[Message], request: ChatRequest
) -> tuple[list[list[Message]], int]:
    """The turns of `history` that fit the model's context window with the new turn, and how many were left out."""
    window = context_window(request.model)
    budget = window - min(request.max_tokens or ANSWER_RESERVE_TOKENS, window // 4)
    fixed = sum(_tokens(m) for m in new) + (_tokens(system) if system else 0)
    sizes = [sum(_tokens(m) for m in turn) for turn in history]
    left_out = 0
    while left_out < len(history) and fixed + sum(sizes[left_out:]) > budget:
        left_out += 1
    return history[left_out:], left_out


def _pending_turn(
    app: AppState,
    args: Continued,
    conversation: Conversation | None,
    system: Message | None,
    new: list[Message],
    question: str,
    attachments: Attachments,
) -> PendingTurn:
    """The new turn to record (in a new conversation, or a branch, when needed)."""
    stored = [_kept(m, attachments).model_dump(mode="json", exclude_none=True) for m in new]
    if conversation is not None and args.from_turn is None:
        return PendingTurn(stored, conversation_id=conversation.id)
    now = time.time()
    created = Conversation(
        id=new_conversation_id(),
        principal=app.principal,
        system=system.content if system is not None and isinstance(system.content, str) else "",
        summary=conversation.summary if conversation is not None else summary_of(question),
        created_at=now,
        updated_at=now,
        turns=0,
        branched_from=f"{conversation.id}:{args.from_turn}" if conversation is not None else None,
    )
    branch_of = (conversation.id, args.from_turn) if conversation is not None and args.from_turn else None
    return PendingTurn(stored, created=created, branch_of=branch_of)


async def record_turn(app: AppState, prepared: Prepared, answer: str | None = None) -> None:
    """Record the call's turn, with `answer` if it is complete; a registry failure is said, not fatal."""
    pending, prepared.pending = prepared.pending, None
    if pending is None:
        return
    model = prepared.request.model
    try:
        if pending.created is not None:
            prepared.turn = await app.conversations.start_turn(
                pending.created, model=model, messages=pending.messages, branch_of=pending.branch_of, answer=answer
            )
            prepared.conversation_id = pending.created.id
        else:
            assert pending.conversation_id is not None
            prepared.turn = await app.conversations.add_turn(
                pending.conversation_id, model=model, messages=pending.messages, answer=answer
            )
            prepared.conversation_id = pending.conversation_id
    except RegistryUnavailable as exc:
        prepared.notice = _not_kept(exc)


def _not_kept(exc: RegistryUnavailable) -> str:
    return f"This turn is not kept ({exc} {exc.fix}): it cannot be continued, and its answer comes whole, however long."


def _kept(message: Message, attachments: Attachments) -> Message:
    """`message` as the conversation keeps it: an image's bytes are not kept, a line naming it is."""
    if not isinstance(message.content, list):
        return message
    names = {id(part): (path, size) for path, part, size in attachments.images}
    parts: list[ContentPart] = []
    for part in message.content:
        if isinstance(part, ImagePart) and not part.image_url.url.startswith(("http://", "https://")):
            path, size = names.get(id(part), ("an image", 0))
            parts.append(TextPart(type="text", text=f"[{path} ({size:,} bytes) was shown here; it is not kept]"))
        else:
            parts.append(part)
    return message.model_copy(update={"content": parts})


# --- after the answer ------------------------------------------------------------------------------


async def finish(app: AppState, prepared: Prepared, result: ChatResult) -> ChatResult:
    """`result` with its notes, its turn kept in the conversation with the answer, and paged if it is long."""
    await record_turn(app, prepared, result.text)
    result = result.model_copy(update=prepared.notes())
    return paged(result, 0, app.settings.max_result_chars, prepared.ref)


def running(prepared: Prepared, result: ChatResult) -> ChatResult:
    """A handed-off call's result (its turn recorded by `record_turn`, awaiting the answer its job will keep)."""
    return result.model_copy(update=prepared.notes())


async def finished_job(app: AppState, prepared: Prepared, job: Job) -> None:
    """Keep a handed-off job's answer in its conversation; its result says what became of it."""
    if job.completion is not None:
        answer = split_answer(job.completion.message.content, job.completion.message.reasoning_content)[0]
        await _keep(app, prepared, answer)
    job.result_notes = prepared.notes()


def with_notes(result: TaskResult, notes: dict[str, object]) -> TaskResult:
    if result.result is None or not notes:
        return result
    return result.model_copy(update={"result": result.result.model_copy(update=notes)})


async def _keep(app: AppState, prepared: Prepared, answer: str) -> None:
    if prepared.conversation_id is not None and prepared.turn is not None:
        try:
            await app.conversations.answer(prepared.conversation_id, prepared.turn, answer)
        except RegistryUnavailable as exc:
            prepared.notice, prepared.turn = _not_kept(exc), None


def paged(result: ChatResult, offset: int, limit: int, ref: str | None) -> ChatResult:
    """`result` showing at most `limit` characters of its answer from `offset` (readable again under `ref`)."""
    if offset > len(result.text):
        raise ArgumentError(
            "offset", f"the answer has {len(result.text):,} characters; give 0 to {len(result.text):,}."
        )
    fields = page_of(result.text, offset, limit, ref)
    return result.model_copy(update=fields) if fields else result


def paged_task(result: TaskResult, offset: int, limit: int) -> TaskResult:
    """A job's result with its answer paged; the whole answer stays in the registry under the job's id."""
    if result.result is None:
        return result
    return result.model_copy(update={"result": paged(result.result, offset, limit, result.task_id)})


def is_turn(task_id: str) -> bool:
    return task_id.startswith(CONVERSATION_ID_PREFIX)


async def turn_result(app: AppState, ref: str, offset: int) -> TaskResult:
    """The answer of a kept turn (`<conversation_id>:<turn>`), from `offset`."""
    conversation_id, _, number = ref.rpartition(":")
    turns = await app.conversations.turns(conversation_id, principal=app.principal) if number.isdigit() else []
    turn = next((t for t in turns if t.number == int(number)), None)
    if turn is None:
        raise UnknownJobError(
            f"{ref} is unknown: no turn of a conversation of yours has that id (`<conversation_id>:<turn>`)."
        )
    if turn.answer is None:
        raise UnknownJobError(
            f"Turn {turn.number} of {conversation_id} has no answer kept: it failed, or is still being generated "
            "(get_result on its job_id says which)."
        )
    chat = ChatResult(text=turn.answer, model=turn.model, conversation_id=conversation_id, turn=turn.number)
    chat = paged(chat, offset, app.settings.max_result_chars, ref)
    return TaskResult(task_id=ref, kind="chat", status="completed", model=turn.model, result=chat)


# --- list_conversations -----------------------------------------------------------------------------


class ConversationSummary(BaseModel):
    conversation_id: str = Field(description="Pass it to chat or web_search_chat as conversation_id.")
    question: str = Field(description="The start of its first question.")
    turns: int
    updated_at: str = Field(description="Its last turn, ISO 8601 UTC.")
    branched_from: str | None = Field(None, description="`<conversation_id>:<turn>` it branched from.")


class ConversationList(RegistryNotes):
    """A page of the caller's conversations, most recently continued first."""

    conversations: list[ConversationSummary] = Field(default_factory=list, description="Absent when there are none.")
    next_cursor: str | None = Field(None, description="There are older ones: pass this as `cursor`.")

    def to_text(self) -> str:
        if not self.conversations:
            return "No conversations."
        lines = [
            f"- {c.conversation_id} · {c.turns} turn(s) · {c.updated_at} · {c.question}" for c in self.conversations
        ]
        more = f'\n\nOlder ones: call list_conversations with cursor="{self.next_cursor}".' if self.next_cursor else ""
        return "Conversations, most recent first (pass an id as conversation_id):\n" + "\n".join(lines) + more


def conversation_list(records: list[Conversation], limit: int) -> ConversationList:
    page = records[:limit]
    cursor = f"{page[-1].updated_at!r}:{page[-1].id}" if len(records) > limit else None
    return ConversationList(
        conversations=[
            ConversationSummary(
                conversation_id=c.id,
                question=c.summary,
                turns=c.turns,
                updated_at=datetime.fromtimestamp(c.updated_at, UTC).isoformat(timespec="seconds"),
                branched_from=c.branched_from,
            )
            for c in page
        ],
        next_cursor=cursor,
    )
