"""A chat from the agent's workspace: files attached, the conversation continued, its turn recorded.

`prepare` turns a checked request into the one to send: the files read and attached to the user's
message (`files.py`, inside the roots of `roots.py`; documents and recordings made text through the
platform, `convert.py`, only when some are named), the conversation's system prompt and earlier
turns put in front (the oldest left out when they would not fit the model's context window), and the
size checked, before anything is read and again once everything is in. The new turn is recorded once
(`record_turn`): with its answer when the call ends within its wait (one write, not two, on every
chat's path), or at its hand-off, awaiting the answer the job then keeps (`keep_answer`). A call that
fails or is cancelled before either leaves no turn. Each returns the `ConversationNote` the result
says, typed; nothing is written back into the result afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
from mcp.server.mcpserver import Context

from glm_mcp.errors import ArgumentError
from glm_mcp.glm.models import (
    CHARS_PER_TOKEN,
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    context_window,
    estimated_tokens,
)
from glm_mcp.glm.types import (
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    MediaURL,
    Message,
    TextPart,
    VideoPart,
)
from glm_mcp.jobs import RegistryProblem, RegistryUnavailable
from glm_mcp.jobs.conversations import CONVERSATION_ID_PREFIX, Conversation, new_conversation_id, summary_of
from glm_mcp.server.state import AppState
from glm_mcp.tools.answer import ConversationNote, SentFile, problem_text
from glm_mcp.tools.workspace.convert import Room, convert
from glm_mcp.tools.workspace.files import Attachments, read_files
from glm_mcp.tools.workspace.roots import FilesUnavailable, allowed_roots

__all__ = [
    "ANSWER_RESERVE_TOKENS",
    "Continuation",
    "PendingTurn",
    "Prepared",
    "check_size",
    "is_turn",
    "keep_answer",
    "prepare",
    "read_each",
    "record_turn",
]

ANSWER_RESERVE_TOKENS = 4_096
"""Tokens of the context window kept free for the answer when the call sets no max_tokens (at most a quarter
of the window)."""


@dataclass(frozen=True, slots=True)
class Continuation:
    """The conversation a chat continues: none (a new one, "") or its id, and the turn to branch from."""

    conversation_id: str = ""
    from_turn: int | None = None


@dataclass(frozen=True, slots=True)
class PendingTurn:
    """The turn a call adds, until it is recorded: to a new conversation (`created`), or to `conversation_id`."""

    messages: list[dict[str, object]]
    created: Conversation | None = None
    branch_of: tuple[str, int] | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """The request to send, the files it carries, and the turn to record (for a chat that keeps conversations)."""

    request: ChatRequest
    files: tuple[SentFile, ...] = ()
    turns_left_out: int = 0
    pending: PendingTurn | None = None


async def prepare(
    app: AppState,
    ctx: Context,
    request: ChatRequest,
    *,
    files: list[str] | None,
    continued: Continuation | None = None,
) -> Prepared:
    """`request` with `files` and, for a chat that keeps conversations (`continued`), the conversation in it;
    raises `ArgumentError` before anything is sent."""
    check_size(request.messages, app.settings.upstream.max_prompt_chars)  # before a file is read or a turn loaded
    attachments = Attachments()
    if files:
        try:
            roots = await allowed_roots(ctx, app.settings)
        except FilesUnavailable as exc:
            raise ArgumentError("files", str(exc)) from None
        attachments = await anyio.to_thread.run_sync(read_files, files, roots, app.settings, request.model)
        if attachments.conversions:
            await convert(app, attachments, _room(app, request, attachments))
    messages = list(request.messages)
    system = messages.pop(0) if messages and messages[0].role == "system" else None
    question = _user_text(messages)
    new = attachments.attach(messages)
    conversation: Conversation | None = None
    history: list[list[Message]] = []
    if continued is not None:
        conversation, history, system = await _load(app, continued, system)
    kept, turns_left_out = _fit(system, history, new, request)
    request.messages = [*([system] if system else []), *(m for turn in kept for m in turn), *new]
    check_size(request.messages, app.settings.upstream.max_prompt_chars)
    pending = None
    if continued is not None:
        pending = _pending_turn(app, continued, conversation, system, new, question, attachments)
    return Prepared(request, tuple(attachments.sent), turns_left_out, pending)


async def read_each(app: AppState, ctx: Context, files: list[str], model: str) -> list[Attachments]:
    """The files `files` names, read and checked as `prepare` reads them (the same roots, and the same budgets for
    the call as a whole), one `Attachments` each: what a batch sends as one request per file."""
    try:
        roots = await allowed_roots(ctx, app.settings)
    except FilesUnavailable as exc:
        raise ArgumentError("files", str(exc)) from None
    attachments = await anyio.to_thread.run_sync(read_files, files, roots, app.settings, model)
    if attachments.conversions:
        left = app.settings.files.max_chars - attachments.text_chars
        await convert(app, attachments, Room(max(left, 0), "GLM_FILES_MAX_CHARS"))
    return attachments.each()


def check_size(messages: list[Message], limit: int) -> None:
    """Refuse an input larger than GLM_MAX_PROMPT_CHARS before it costs an upload and a refusal."""
    size = _prompt_chars(messages)
    if size > limit:
        raise ArgumentError(
            "messages" if len(messages) > 1 else "prompt",
            f"the input is {size:,} characters, over the limit of {limit:,} (GLM_MAX_PROMPT_CHARS). "
            "Shorten it or send it in parts.",
        )


def _prompt_chars(messages: list[Message]) -> int:
    """The size GLM_MAX_PROMPT_CHARS bounds: every message's text and media URLs (an image's base64)."""
    size = 0
    for message in messages:
        if isinstance(message.content, str):
            size += len(message.content)
        elif message.content:
            for part in message.content:
                size += len(part.text) if isinstance(part, TextPart) else len(_media_url(part).url)
    return size


_BLOCK_CHARS = 300
"""What the lines around a document's or a recording's text may add (its path, what it is, a note)."""


def _room(app: AppState, request: ChatRequest, attachments: Attachments) -> Room:
    """The characters of documents' and recordings' text this call can send beside everything else in it: the
    least of what is left of GLM_FILES_MAX_CHARS, of GLM_MAX_PROMPT_CHARS and of the model's context window (the
    answer's reserve kept free, the conversation's earlier turns not counted: they are left out first)."""
    settings = app.settings
    wrappers = _BLOCK_CHARS * len(attachments.conversions)
    text = len(attachments.text) + wrappers
    images = [part for _, part, _ in attachments.images]
    used = _prompt_chars(request.messages) + text + sum(len(part.image_url.url) for part in images)
    window = context_window(request.model)
    free = window - min(request.max_tokens or ANSWER_RESERVE_TOKENS, window // 4)
    tokens = sum(_tokens(m) for m in request.messages) + estimated_tokens(text) + len(images) * IMAGE_TOKENS
    bounds = [
        (settings.files.max_chars - attachments.text_chars - wrappers, "GLM_FILES_MAX_CHARS"),
        (settings.upstream.max_prompt_chars - used, "GLM_MAX_PROMPT_CHARS"),
        ((free - tokens - MESSAGE_OVERHEAD_TOKENS) * CHARS_PER_TOKEN, f"the context window of {request.model}"),
    ]
    chars, bound = min(bounds)
    return Room(max(chars, 0), bound)


def _media_url(part: ImagePart | VideoPart | FilePart) -> MediaURL:
    if isinstance(part, ImagePart):
        return part.image_url
    return part.video_url if isinstance(part, VideoPart) else part.file_url


def _user_text(messages: list[Message]) -> str:
    content = next((m.content for m in reversed(messages) if m.role == "user"), "")
    if isinstance(content, list):
        return " ".join(part.text for part in content if isinstance(part, TextPart))
    return content or ""


async def _load(
    app: AppState, continued: Continuation, system: Message | None
) -> tuple[Conversation | None, list[list[Message]], Message | None]:
    """The conversation `continued` names, its turns to send again, and its system prompt."""
    conversation_id = continued.conversation_id.strip()
    if not conversation_id:
        if continued.from_turn is not None:
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
    if continued.from_turn is not None:
        if continued.from_turn > len(turns):
            raise ArgumentError("from_turn", f"{conversation.id} has {len(turns)} turn(s); give 1 to {len(turns)}.")
        turns = turns[: continued.from_turn]
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
    continued: Continuation,
    conversation: Conversation | None,
    system: Message | None,
    new: list[Message],
    question: str,
    attachments: Attachments,
) -> PendingTurn:
    """The new turn to record (in a new conversation, or a branch, when needed)."""
    stored = [_kept(m, attachments).model_dump(mode="json", exclude_none=True) for m in new]
    if conversation is not None and continued.from_turn is None:
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
        branched_from=f"{conversation.id}:{continued.from_turn}" if conversation is not None else None,
    )
    branch_of = (conversation.id, continued.from_turn) if conversation is not None and continued.from_turn else None
    return PendingTurn(stored, created=created, branch_of=branch_of)


async def record_turn(app: AppState, prepared: Prepared, answer: str | None = None) -> ConversationNote:
    """Record the call's turn, with `answer` if it is complete; what the result says of the conversation. A
    registry failure is said in it, not fatal."""
    pending = prepared.pending
    left_out = prepared.turns_left_out
    if pending is None:
        return ConversationNote(turns_left_out=left_out)
    model = prepared.request.model
    try:
        if pending.created is not None:
            turn = await app.conversations.start_turn(
                pending.created, model=model, messages=pending.messages, branch_of=pending.branch_of, answer=answer
            )
            return ConversationNote(pending.created.id, turn, left_out)
        assert pending.conversation_id is not None
        turn = await app.conversations.add_turn(
            pending.conversation_id, model=model, messages=pending.messages, answer=answer
        )
        return ConversationNote(pending.conversation_id, turn, left_out)
    except RegistryUnavailable as exc:
        return ConversationNote(turns_left_out=left_out, notice=_not_kept(exc))


async def keep_answer(app: AppState, conversation: ConversationNote, answer: str) -> ConversationNote:
    """Keep a handed-off job's answer in the turn recorded for it; the note then says what became of it."""
    if conversation.conversation_id is None or conversation.turn is None:
        return conversation
    try:
        await app.conversations.answer(conversation.conversation_id, conversation.turn, answer)
    except RegistryUnavailable as exc:
        return ConversationNote(conversation.conversation_id, None, conversation.turns_left_out, _not_kept(exc))
    return conversation


def is_turn(task_id: str) -> bool:
    """Whether `task_id` names a kept turn (`<conversation_id>:<turn>`) rather than a job."""
    return task_id.startswith(CONVERSATION_ID_PREFIX)


def _not_kept(exc: RegistryUnavailable) -> str:
    return problem_text(RegistryProblem("turn_not_kept", exc))


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
