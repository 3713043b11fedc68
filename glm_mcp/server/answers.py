"""What a result says about the workspace: the files sent, the conversation it belongs to, and long answers in pages.

Clients cap what a tool may return (Claude Code cuts a result at 25,000 tokens by default), so an
answer longer than GLM_MAX_RESULT_CHARS comes as its beginning plus a note saying how much there
is and how to read on: `get_result` with the turn's (or job's) id and `offset`. The whole answer
stays where that call reads it (the conversation's turn, or the job's recorded result); an answer
that is kept nowhere is returned whole, since nothing may be lost.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SentFile(BaseModel):
    """One file sent to the model: what GLM saw."""

    path: str = Field(description="Relative to its root.")
    kind: str = Field(description="text or image.")
    bytes: int
    chars: int | None = Field(None, description="Characters of a text file.")


class SentFiles(BaseModel):
    files: list[SentFile] | None = Field(None, description="The files sent with the message, as GLM saw them.")

    def _files_text(self) -> str:
        if not self.files:
            return ""
        listed = ", ".join(
            f"{f.path} ({f.chars:,} chars)" if f.chars is not None else f"{f.path} (image, {f.bytes:,} bytes)"
            for f in self.files
        )
        return f"Files sent: {listed}."


class ConversationNotes(SentFiles):
    conversation_id: str | None = Field(
        None, description="Pass it back as conversation_id to continue this conversation."
    )
    turn: int | None = Field(None, description="This turn's number in the conversation (for from_turn).")
    turns_left_out: int | None = Field(
        None,
        description="Oldest turns left out of what was sent, so the conversation fits the model's context window.",
    )
    conversation_notice: str | None = Field(None, description="Why this turn is not kept, when it is not.")

    def _conversation_text(self) -> str:
        parts = []
        if self.conversation_id:
            parts.append(f'conversation_id="{self.conversation_id}" (turn {self.turn}) continues it.')
        if self.turns_left_out:
            parts.append(
                f"NOTE: the {self.turns_left_out} oldest turn(s) were left out so the conversation fits the "
                "model's context window."
            )
        if self.conversation_notice:
            parts.append(f"NOTE: {self.conversation_notice}")
        return " ".join(parts)


class Paged(BaseModel):
    answer_chars: int | None = Field(
        None, description="Present when `text` is one page of a longer answer: its whole length in characters."
    )
    offset: int | None = Field(None, description="Where in the whole answer this page starts.")
    next_offset: int | None = Field(
        None, description="There is more: call get_result with task_id=read_more and this offset."
    )
    read_more: str | None = Field(None, description="The id get_result reads the rest of the answer under.")

    def _page_text(self) -> str:
        if self.answer_chars is None:
            return ""
        start = self.offset or 0
        end = self.next_offset if self.next_offset is not None else self.answer_chars
        shown = f"[Characters {start:,} to {end:,} of a {self.answer_chars:,}-character answer."
        if self.next_offset is None:
            return shown + " This is its end.]"
        return shown + f' For the next part, call get_result with task_id="{self.read_more}" and offset={end}.]'


def page_of(text: str, offset: int, limit: int, ref: str | None) -> dict[str, object]:
    """The fields of a result showing `text` from `offset`, at most `limit` characters; {} when it fits whole.

    Without `ref` (the answer is kept nowhere to be read again) the text is left whole."""
    if ref is None or (offset == 0 and len(text) <= limit):
        return {}
    end = min(offset + limit, len(text))
    return {
        "text": text[offset:end],
        "answer_chars": len(text),
        "offset": offset,
        "next_offset": end if end < len(text) else None,
        "read_more": ref,
    }
