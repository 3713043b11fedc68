"""Assembling a streamed chat into the completion a non-streamed call would have returned."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from glm_mcp.glm.auth import Credentials
from glm_mcp.glm.text import scrub_stream_text

if TYPE_CHECKING:
    from glm_mcp.glm.types import (
        ChatCompletion,
        ChatCompletionChunk,
        Usage,
        WebSearchItem,
    )


@dataclass(slots=True)
class _ToolCallParts:
    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StreamAccumulator:
    """Folds chunks into one completion: text and reasoning concatenated, tool calls joined by
    index, and the finish reason, usage and sources taken from the last chunk that carries them.

    Each chunk was scrubbed of the key by the client that parsed it, but a form of the key split across two
    chunks is whole only here: every text read out (`text`, `tail`, `completion`) is scrubbed of the
    `credentials` once joined, and while the stream runs an end that may begin a form is held back. Make one
    with `GLMClient.accumulator()`, which knows the key its stream was sent with.
    """

    credentials: Credentials | None = None
    id: str = ""
    request_id: str | None = None
    created: int | None = None
    model: str = ""
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    web_search: list[WebSearchItem] | None = None
    content_chars: int = 0
    reasoning_chars: int = 0
    chunks: int = 0

    def add(self, chunk: ChatCompletionChunk) -> None:
        """Fold one chunk in: text and reasoning appended, tool-call pieces joined by index, the last finish reason,
        usage and sources kept."""
        self.chunks += 1
        self.id = chunk.id or self.id
        self.request_id = chunk.request_id or self.request_id
        self.created = chunk.created or self.created
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.web_search is not None:
            self.web_search = chunk.web_search
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                self.content.append(delta.content)
                self.content_chars += len(delta.content)
            if delta.reasoning_content:
                self.reasoning.append(delta.reasoning_content)
                self.reasoning_chars += len(delta.reasoning_content)
            for call in delta.tool_calls or ():
                parts = self.tool_calls.setdefault(call.index, _ToolCallParts())
                parts.id = call.id or parts.id
                parts.type = call.type or parts.type
                if call.function is not None:
                    parts.name = call.function.name or parts.name
                    if call.function.arguments:
                        parts.arguments.append(call.function.arguments)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason

    @property
    def text(self) -> str:
        """The answer so far, scrubbed of the key."""
        return self._shown(self.content)

    def tail(self, chars: int) -> str:
        """The last `chars` characters of the answer so far (or of the reasoning, before any answer).

        Only the last pieces are read, a form's length further back than `chars`, so that a form the cut falls
        inside is whole when they are scrubbed; what a form left at their start is not shown.
        """
        source = self.content if self.content else self.reasoning
        longest = self.credentials.longest_form if self.credentials is not None else 0
        out: list[str] = []
        size = 0
        for piece in reversed(source):
            out.append(piece)
            size += len(piece)
            if size >= chars + longest:
                break
        text = self._shown(reversed(out))
        if self.credentials is not None and len(out) < len(source):  # the window starts inside the text
            text = text[self.credentials.partial_form_at_start(text) :]
        return text[-chars:]

    def _shown(self, pieces: Iterable[str]) -> str:
        return scrub_stream_text("".join(pieces), self.credentials, finished=self.finish_reason is not None)

    def completion(self) -> ChatCompletion:
        """The completion assembled so far (complete once the stream has ended)."""
        from glm_mcp.glm.types import AssistantMessage, ChatCompletion, Choice, FunctionCall, ToolCall

        message = AssistantMessage(
            content=self.text,
            reasoning_content=self._shown(self.reasoning) or None,
            tool_calls=[
                ToolCall(
                    id=parts.id,
                    type=parts.type,
                    index=index,
                    function=FunctionCall(name=parts.name, arguments=self._shown(parts.arguments)),
                )
                for index, parts in sorted(self.tool_calls.items())
            ]
            or None,
        )
        return ChatCompletion(
            id=self.id,
            request_id=self.request_id or self.id or None,
            created=self.created,
            model=self.model,
            choices=[Choice(index=0, finish_reason=self.finish_reason, message=message)],
            usage=self.usage,
            web_search=self.web_search,
        )
