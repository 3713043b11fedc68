"""A model's answer as a result says it (`ChatResult`, `WebSearchResult`), and what the result says besides.

Besides the answer, a result may say which files were sent, which conversation the answer belongs to,
which page of a long answer it shows and what went wrong in the job registry. Each of those is a typed
value passed back by the call that knows it (`SentFile` from reading the files, `ConversationNote`
from recording the turn, `Page` from cutting the answer, the registry's `RegistryProblem`s and
`RegistryReplaced`, worded here as a `RegistryNote`), and one builder, `ChatResult.compose`, makes the
result of them, once.

Clients cap what a tool may return (Claude Code cuts a result at 25,000 tokens by default), so an
answer longer than GLM_MAX_RESULT_CHARS comes as its beginning plus a note saying how much there is
and how to read on: `get_result` with the turn's (or job's) id and `offset`. The whole answer stays
where that call reads it (the conversation's turn, or the job's recorded result); an answer that is
kept nowhere is returned whole, since nothing may be lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Literal, Self, TypedDict, overload
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.errors import ArgumentError
from glm_mcp.glm.types import ChatCompletion, WebSearchItem, split_answer
from glm_mcp.jobs import ChatKind, Job, JobStore, RegistryProblem
from glm_mcp.server.result import Result, paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.tools.estimates import Estimated, TokenEstimate
from glm_mcp.tools.functions import FunctionCallRequest, feed_back

__all__ = [
    "NO_SOURCES",
    "REASONING_PREVIEW_CHARS",
    "RESULT_TYPES",
    "Answer",
    "ChatResult",
    "ConversationNote",
    "ConversationNotes",
    "Page",
    "Paged",
    "RegistryNote",
    "RegistryNotes",
    "SentFile",
    "SentFiles",
    "Source",
    "TokenUsage",
    "WebSearchResult",
    "next_call",
    "page_of",
    "problem_text",
    "registry_note",
]

REASONING_PREVIEW_CHARS = 300
"""How much of the model's reasoning a result shows unless the call asks for all of it (`include_reasoning`)."""


# --- the files sent -----------------------------------------------------------------------------------------


class SentFile(BaseModel):
    """One file sent to the model: what GLM saw."""

    model_config = ConfigDict(defer_build=True)

    path: str = Field(description="Relative to its root.")
    kind: str = Field(description="text, image, document or audio.")
    bytes: int
    chars: int | None = Field(None, description="Characters of text sent (a document's or a recording's: its text).")
    read_by: str | None = Field(None, description="What made a document or recording text, and whether it was kept.")
    sent_part: str | None = Field(None, description="Which part of a document's text was sent, when not all of it.")


class SentFiles(BaseModel):
    model_config = ConfigDict(defer_build=True)

    files: list[SentFile] | None = Field(None, description="The files sent with the message, as GLM saw them.")

    def files_text(self) -> str:
        if not self.files:
            return ""
        listed = ", ".join(
            f"{f.path} (image, {f.bytes:,} bytes)" if f.chars is None
            else f"{f.path} ({f.chars:,} chars{f'; {f.read_by}' if f.read_by else ''}"
            f"{f'; {f.sent_part}' if f.sent_part else ''})"
            for f in self.files
        )  # fmt: skip
        return f"Files sent: {listed}."


# --- the conversation ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationNote:
    """What a result says of the conversation its answer belongs to, as recording the turn left it."""

    conversation_id: str | None = None
    turn: int | None = None
    """The turn's number; None when it is not kept."""
    turns_left_out: int = 0
    """The oldest turns left out of what was sent, so that the conversation fits the model's context window."""
    notice: str | None = None
    """Why the turn is not kept, when it is not."""

    @property
    def ref(self) -> str | None:
        """The id `get_result` reads this turn's answer under, once it is kept."""
        return f"{self.conversation_id}:{self.turn}" if self.conversation_id and self.turn else None


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

    def conversation_note(self) -> ConversationNote:
        return ConversationNote(self.conversation_id, self.turn, self.turns_left_out or 0, self.conversation_notice)

    def conversation_text(self) -> str:
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


# --- pages --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a long answer, and where the rest is read (`get_result` on `read_more` from `next_offset`)."""

    text: str
    answer_chars: int
    offset: int
    next_offset: int | None
    read_more: str


def page_of(text: str, offset: int, limit: int, ref: str | None) -> Page | None:
    """`text` from `offset`, at most `limit` characters; None when it is shown whole (it fits, or it is kept
    nowhere to be read again: no `ref`). An offset past its end is an `ArgumentError`."""
    if offset > len(text):
        raise ArgumentError("offset", f"the answer has {len(text):,} characters; give 0 to {len(text):,}.")
    if ref is None or (offset == 0 and len(text) <= limit):
        return None
    end = min(offset + limit, len(text))
    return Page(text[offset:end], len(text), offset, end if end < len(text) else None, ref)


class Paged(BaseModel):
    model_config = ConfigDict(defer_build=True)

    answer_chars: int | None = Field(
        None, description="Present when `text` is one page of a longer answer: its whole length in characters."
    )
    offset: int | None = Field(None, description="Where in the whole answer this page starts.")
    next_offset: int | None = Field(
        None, description="There is more: call get_result with task_id=read_more and this offset."
    )
    read_more: str | None = Field(None, description="The id get_result reads the rest of the answer under.")

    def page_text(self) -> str:
        if self.answer_chars is None:
            return ""
        start = self.offset or 0
        end = self.next_offset if self.next_offset is not None else self.answer_chars
        shown = f"[Characters {start:,} to {end:,} of a {self.answer_chars:,}-character answer."
        if self.next_offset is None:
            return shown + " This is its end.]"
        return shown + f' For the next part, call get_result with task_id="{self.read_more}" and offset={end}.]'


# --- the job registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryNote:
    """What a result says about the job registry when something there went wrong: never kept quiet. Its sentences
    are made here, from the registry's typed facts (`RegistryProblem`, `RegistryReplaced`), and nowhere else."""

    not_recorded: str | None = None
    """Why this job is not in the registry (or its end is not), when it is not."""
    notice: str | None = None
    """Something else the registry did: a save that failed while the job ran, a corrupt file moved aside."""

    @classmethod
    def of_job(cls, job: Job) -> RegistryNote:
        """What a job's result says of the registry: why it (or its end) is not recorded, a save that failed."""
        return cls(problem_text(job.not_recorded), problem_text(job.registry_problem))


@overload
def problem_text(problem: RegistryProblem) -> str: ...


@overload
def problem_text(problem: RegistryProblem | None) -> str | None: ...


def problem_text(problem: RegistryProblem | None) -> str | None:
    """The sentence a result says `problem` in (None for none)."""
    if problem is None:
        return None
    cause = problem.cause
    match problem.what:
        case "not_recorded":
            return (
                f"Not recorded in the job registry: {cause} Keep this id: list_jobs does not show it, and only this "
                f"server process can answer get_result for it, until it stops. {cause.fix}"
            )
        case "progress_not_saved":
            return (
                f"Its answer so far could not always be saved while it ran ({cause}): a crash then would have lost "
                "more of it."
            )
        case "end_not_recorded":
            return (
                f"Its result is not in the job registry: {cause} {cause.fix} Only this server process has it, until "
                "it stops or the registry is back; another reads the job as still running, or interrupted."
            )
        case "turn_not_kept":
            return (
                f"This turn is not kept ({cause} {cause.fix}): it cannot be continued, and its answer comes whole, "
                "however long."
            )


_TOLD: WeakKeyDictionary[JobStore, int] = WeakKeyDictionary()
"""The number of each registry's last replacement a result has said (`RegistryReplaced.number`)."""


def registry_note(app: AppState, problem: RegistryProblem | None = None) -> RegistryNote:
    """The registry's note for the result being made: `problem` (its job not recorded), and the registry's last
    replacement when no result has said it yet, so that it is said once, by the next result."""
    replaced = app.store.replaced
    if replaced is None or _TOLD.get(app.store, 0) >= replaced.number:
        return RegistryNote(problem_text(problem))
    _TOLD[app.store] = replaced.number
    return RegistryNote(
        problem_text(problem),
        f"The job registry {replaced.path} was corrupt ({replaced.cause}): it was moved aside to {replaced.aside} "
        "and a fresh one was started, so the jobs recorded before are not listed. The old file is kept for "
        "inspection.",
    )


class RegistryNotes(Result):
    not_recorded: str | None = Field(
        None,
        description="Present when this job is not in the job registry: why, and what to fix. Keep its id: "
        "list_jobs does not show it, and only this server process can answer get_result for it, until it stops.",
    )
    registry_notice: str | None = Field(
        None, description="Something that happened to the job registry, for example a corrupt file moved aside."
    )

    def registry_text(self) -> str:
        return paragraphs(
            f"NOTE: {self.not_recorded}" if self.not_recorded else "",
            f"NOTE: {self.registry_notice}" if self.registry_notice else "",
        )


# --- the answer ---------------------------------------------------------------------------------------------


class TokenUsage(BaseModel):
    model_config = ConfigDict(defer_build=True)

    prompt_tokens: int = Field(description="Tokens read, including cached ones.")
    completion_tokens: int = Field(description="Tokens written, including reasoning.")
    cached_tokens: int = Field(0, description="Prompt tokens served from the platform's cache (cheaper).")


class Source(BaseModel):
    """One web page the answer drew on; the answer cites it as `[ref]`."""

    model_config = ConfigDict(defer_build=True)

    ref: str | None = Field(None, description="The citation mark used in the answer, e.g. ref_1.")
    title: str | None = None
    url: str | None = None
    media: str | None = Field(None, description="The site or publication.")
    publish_date: str | None = None
    snippet: str | None = Field(None, description="The text of the page the model read.")

    @classmethod
    def from_item(cls, item: WebSearchItem) -> Source:
        return cls(
            ref=item.refer,
            title=item.title,
            url=item.link,
            media=item.media,
            publish_date=item.publish_date,
            snippet=item.content,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A model's answer as results say it: whole, or so far, while its job (`job_id`) still generates it."""

    text: str
    model: str
    cut_short: str | None = None
    """What to change when max_tokens ended the generation before the answer began."""
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    request_id: str | None = None
    tool_calls: list[FunctionCallRequest] | None = None
    next: str | None = None
    attempts: int = 1
    sources: tuple[Source, ...] = ()
    """The web search's results, when it searched."""
    job_id: str | None = None
    """Set while the answer is still being generated, by this job."""

    @classmethod
    def of_completion(cls, completion: ChatCompletion, attempts: int = 1, *, model: str = "") -> Answer:
        """A whole completion's answer; `model` names the model when the platform did not."""
        message = completion.message
        text, reasoning = split_answer(message.content, message.reasoning_content)
        usage = completion.usage
        reasoning_tokens = (usage.reasoning_tokens if usage else 0) or (
            _estimated_tokens(reasoning) if reasoning else 0
        )
        return cls(
            text=text,
            model=completion.model or model,
            cut_short=_cut_before_the_answer(completion, text, reasoning_tokens),
            reasoning=reasoning,
            reasoning_tokens=reasoning_tokens or None,
            finish_reason=None if completion.finish_reason == "stop" else completion.finish_reason,
            usage=None
            if usage is None
            else TokenUsage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
            ),
            request_id=completion.request_id or completion.id or None,
            tool_calls=[FunctionCallRequest.from_call(call) for call in message.tool_calls]
            if message.tool_calls
            else None,
            next=feed_back("chat") if message.tool_calls else None,
            attempts=attempts,
            sources=tuple(Source.from_item(item) for item in completion.web_search or ()),
        )

    @classmethod
    def so_far(cls, job: Job, *, wait_seconds: float) -> Answer:
        """The answer of a job that outlived the call's wait, as far as it has come, with the call that gets the
        rest. Before the first chunk the stream has named no model yet: the request's model is the one answering."""
        stream = job.stream
        partial = cls.of_completion(stream.accumulator.completion(), stream.attempts.count, model=stream.model)
        return cls(
            text=partial.text,
            model=stream.model,
            reasoning=partial.reasoning,
            reasoning_tokens=partial.reasoning_tokens,
            request_id=partial.request_id,
            tool_calls=partial.tool_calls,
            next=next_call(job.id, wait_seconds, "for the rest of the answer"),
            attempts=stream.attempts.count,
            job_id=job.id,
        )


class _SearchFields(TypedDict, total=False):
    """What a web search's result adds to them."""

    sources: list[Source]
    note: str | None


class ChatResult(RegistryNotes, ConversationNotes, Paged, Estimated):
    """An answer from a GLM model, or the start of one that is still being generated."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "job_id", "cut_short", "text")

    status: Literal["completed", "running"] = Field(
        "completed",
        description="Absent when the whole answer is here. running: the wait ran out first; `text` is the answer "
        "so far and the generation goes on: `next` says how to get the rest.",
    )
    next: str | None = Field(
        None, description="With status running: the exact call that gets the rest; with tool_calls: how to answer them."
    )
    job_id: str | None = Field(None, description="With status running: pass it to get_result as task_id.")
    text: str = Field("", description="The answer (so far, when status is running).")
    cut_short: str | None = Field(
        None, description="Present when max_tokens ended the generation before the answer began: what to change."
    )
    tool_calls: list[FunctionCallRequest] | None = Field(None, description="Function calls the model asked for.")
    reasoning: str | None = Field(
        None,
        description="The model's reasoning, when thinking was on: its beginning, ending in …, unless the call "
        "set include_reasoning.",
    )
    reasoning_tokens: int | None = Field(
        None, description="How long the reasoning is, in tokens (part of usage.completion_tokens)."
    )
    model: str = Field("", description="The model that answered.")
    finish_reason: str | None = Field(
        None,
        description="Why generation stopped, when not simply at the end: length (max_tokens reached), tool_calls, "
        "model_context_window_exceeded.",
    )
    usage: TokenUsage | None = None
    request_id: str | None = Field(None, description="The platform's request id, for support and tracing.")
    attempts: int = Field(1, description="Requests sent to the platform for this answer, when more than one.")

    @classmethod
    def compose(
        cls,
        answer: Answer,
        *,
        files: Sequence[SentFile] = (),
        conversation: ConversationNote | None = None,
        page: Page | None = None,
        registry: RegistryNote | None = None,
        full_reasoning: bool = True,
        estimate: TokenEstimate | None = None,
    ) -> Self:
        """The result of `answer`, with what the call knows of its files, conversation, page and registry (and its
        prompt's count, made before sending): the one builder of every chat result. Its reasoning is whole with
        `full_reasoning`, else its beginning."""
        conversation = conversation or ConversationNote()
        registry = registry or RegistryNote()
        reasoning = answer.reasoning
        if not full_reasoning and reasoning is not None and len(reasoning) > REASONING_PREVIEW_CHARS:
            reasoning = reasoning[:REASONING_PREVIEW_CHARS].rstrip() + "…"
        return cls(
            status="running" if answer.job_id else "completed",
            next=answer.next,
            job_id=answer.job_id,
            text=page.text if page else answer.text,
            cut_short=answer.cut_short,
            tool_calls=answer.tool_calls,
            reasoning=reasoning,
            reasoning_tokens=answer.reasoning_tokens,
            model=answer.model,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            request_id=answer.request_id,
            attempts=answer.attempts,
            files=list(files) or None,
            conversation_id=conversation.conversation_id,
            turn=conversation.turn,
            turns_left_out=conversation.turns_left_out or None,
            conversation_notice=conversation.notice,
            answer_chars=page.answer_chars if page else None,
            offset=page.offset if page else None,
            next_offset=page.next_offset if page else None,
            read_more=page.read_more if page else None,
            not_recorded=registry.not_recorded,
            registry_notice=registry.notice,
            prompt_estimate=estimate,
            **cls._search_fields(answer),
        )

    @classmethod
    def _search_fields(cls, answer: Answer) -> _SearchFields:
        return {}

    def answer(self) -> Answer:
        """This result's answer, whole (it is read again from where it is kept, in pages: `read`)."""
        return Answer(
            text=self.text,
            model=self.model,
            cut_short=self.cut_short,
            reasoning=self.reasoning,
            reasoning_tokens=self.reasoning_tokens,
            finish_reason=self.finish_reason,
            usage=self.usage,
            request_id=self.request_id,
            tool_calls=self.tool_calls,
            next=self.next,
            attempts=self.attempts,
            job_id=self.job_id,
        )

    def read(self, page: Page | None, *, full_reasoning: bool) -> Self:
        """This (whole, kept) result as a reader asked for it: showing `page` of its answer, its reasoning whole or
        its beginning."""
        registry = RegistryNote(self.not_recorded, self.registry_notice)
        return self.compose(
            self.answer(),
            files=self.files or (),
            conversation=self.conversation_note(),
            page=page,
            registry=registry,
            full_reasoning=full_reasoning,
        )

    def handed_off(self) -> str | None:
        return self.job_id if self.status == "running" and not self.not_recorded else None

    def to_text(self) -> str:
        if self.status == "running":
            return paragraphs(
                f"Still generating when this call's wait ran out; the answer goes on in the background. {self.next}",
                self.registry_text(),
                self.files_text(),
                self.conversation_text(),
                "Answer so far:\n" + self.text if self.text else "",
            )
        return paragraphs(
            self.cut_short or "",
            self.text,
            self.page_text(),
            _tool_calls_text(self.tool_calls, self.next),
            self.workspace_footer(),
        )

    def workspace_footer(self) -> str:
        return paragraphs(self.files_text(), self.conversation_text(), self.estimate_text(), self._footer())

    def _footer(self) -> str:
        parts = [f"model {self.model}"]
        if self.finish_reason:
            parts.append(f"finish_reason {self.finish_reason}")
        if self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        if self.usage:
            cached = f", {self.usage.cached_tokens} cached" if self.usage.cached_tokens else ""
            parts.append(f"tokens {self.usage.prompt_tokens} in{cached} / {self.usage.completion_tokens} out")
        if self.reasoning_tokens:
            parts.append(f"reasoning {self.reasoning_tokens} tokens in structured output")
        return "[" + " · ".join(parts) + "]"


def next_call(task_id: str, wait_seconds: float, what: str) -> str:
    """The one sentence a result gives for what to do next: the exact call, and how long it will wait."""
    return (
        f'Call get_result with task_id="{task_id}" {what}; it waits up to {wait_seconds:g} s for the job to end '
        "and can be called again."
    )


NO_SOURCES = "The web search found no sources; the answer comes from the model alone."
SOURCES_LATER = "The sources arrive with the end of the answer."


class WebSearchResult(ChatResult):
    """An answer researched on the web, with the sources it cites."""

    sources: list[Source] = Field(
        default_factory=list, description="The search results the model was given, in rank order."
    )
    note: str | None = Field(None, description="Said when the search found nothing.")

    FIRST: ClassVar[tuple[str, ...]] = (*ChatResult.FIRST, "note", "sources")

    @classmethod
    def _search_fields(cls, answer: Answer) -> _SearchFields:
        if answer.job_id:
            return {"sources": [], "note": SOURCES_LATER}
        return {"sources": list(answer.sources), "note": None if answer.sources else NO_SOURCES}

    def answer(self) -> Answer:
        return replace(super().answer(), sources=tuple(self.sources))

    def to_text(self) -> str:
        if self.status == "running":
            return super().to_text()
        listing = "\n".join(
            f"[{s.ref or i}] {s.title or '(untitled)'} — {s.url or 'no link'}"
            + (f" ({s.media}, {s.publish_date})" if s.media and s.publish_date else "")
            for i, s in enumerate(self.sources, 1)
        )
        return paragraphs(
            self.text,
            self.page_text(),
            "Sources:\n" + listing if listing else self.note or "",
            self.workspace_footer(),
        )


RESULT_TYPES: dict[ChatKind, type[ChatResult]] = {"chat": ChatResult, "web_search_chat": WebSearchResult}
"""The result of each kind of chat job."""


def _cut_before_the_answer(completion: ChatCompletion, text: str, reasoning_tokens: int) -> str | None:
    """What to change when max_tokens stopped the model before it wrote any answer: an empty `text` with
    `finish_reason: length` says nothing by itself. A thinking model spends the tokens on its reasoning first."""
    if completion.finish_reason != "length" or text or completion.message.tool_calls:
        return None
    if not reasoning_tokens:
        return "The answer was cut before it began: max_tokens ran out first. Call again with a larger max_tokens."
    return (
        f"The answer was cut before it began: max_tokens ran out while the model was still reasoning "
        f"({reasoning_tokens} tokens of reasoning), so it wrote no answer. Call again with a larger max_tokens, "
        'or with thinking "disabled".'
    )


def _estimated_tokens(text: str) -> int:
    """About four characters a token, when the platform did not count (a stream cut before its usage)."""
    return max(1, round(len(text) / 4))


def _tool_calls_text(calls: list[FunctionCallRequest] | None, next_step: str | None) -> str:
    if not calls:
        return ""
    return paragraphs("The model asks to call:\n" + "\n".join(call.to_text() for call in calls), next_step or "")
