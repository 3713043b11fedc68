"""What every tool result is: a pydantic model written for the model that reads it, and its short text copy.

Claude Code hands its model only `structuredContent`, so that is written for the model: no null,
empty or default-valued fields (the output schema leaves them optional), and the keys in a useful
order, what to read or do first (`FIRST`) ahead of the rest. Clients that ignore `structuredContent`
show the text copy (`to_text`) instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mcp.types import ContentBlock
from pydantic import BaseModel, ConfigDict

__all__ = ["Result", "paragraphs", "partial_answer"]


class Result(BaseModel):
    """A tool's result, as a language model reads it."""

    model_config = ConfigDict(defer_build=True)  # built on first use: start builds no model (cold start)

    FIRST: ClassVar[tuple[str, ...]] = ()

    def structured(self) -> dict[str, Any]:
        """The `structuredContent` of this result."""
        dumped = _pruned(self.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
        first = {key: dumped.pop(key) for key in self.FIRST if key in dumped}
        return {**first, **dumped}

    def to_text(self) -> str:  # pragma: no cover - each result says itself
        raise NotImplementedError

    def extra_content(self) -> list[ContentBlock]:
        """Blocks sent beside the text copy (an image), when the result has any."""
        return []

    def handed_off(self) -> str | None:
        """The id of the job this result hands off, durably recorded, so that the call may be answered as a
        task instead (`server/tasks.py`); None for every other result."""
        return None


def paragraphs(*parts: str) -> str:
    """The non-empty `parts`, a blank line between each."""
    return "\n\n".join(part for part in parts if part)


def partial_answer(text: str | None) -> str:
    """The text copy's paragraph for what a model had written before it stopped."""
    return "Partial answer:\n" + text if text else ""


def _pruned(value: Any) -> Any:
    """`value` without its empty strings, lists and objects, at any depth: they tell a model nothing."""
    if isinstance(value, dict):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ("", [], {})}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value
