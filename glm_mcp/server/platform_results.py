"""What the platform tools beyond chat return, written for the model like every result (`results.Result`):
no nulls or empties, what to read first ahead of the rest, `next` for work that goes on."""

from __future__ import annotations

from typing import Any, ClassVar

from mcp.types import ContentBlock
from pydantic import BaseModel, Field

from glm_mcp.glm.models import ModelKind
from glm_mcp.glm.types import WebSearchResponse
from glm_mcp.jobs import JobKind, JobState
from glm_mcp.server.results import RegistryNotes, Result, Source, ToolFailure, next_call
from glm_mcp.tools.media_files import VideoFile


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


class SearchResults(Result):
    """Web search results, without a model's answer."""

    FIRST: ClassVar[tuple[str, ...]] = ("results", "note")

    query: str
    results: list[Source] = Field(default_factory=list, description="In rank order. Absent when none was found.")
    note: str | None = Field(None, description="Said when the search found nothing.")
    request_id: str | None = None

    @classmethod
    def from_response(cls, query: str, response: WebSearchResponse) -> SearchResults:
        results = [Source.from_item(item) for item in response.search_result]
        return cls(
            query=query,
            results=results,
            note=None if results else "Nothing found: try other words, another engine, or no filters.",
            request_id=response.request_id or response.id or None,
        )

    def to_text(self) -> str:
        if not self.results:
            return self.note or ""
        return "\n\n".join(
            f"[{s.ref or i}] {s.title or '(untitled)'} — {s.url or 'no link'}"
            + (f" ({', '.join(x for x in (s.media, s.publish_date) if x)})" if s.media or s.publish_date else "")
            + (f"\n{s.snippet}" if s.snippet else "")
            for i, s in enumerate(self.results, 1)
        )


class PageResult(Result):
    """A web page as the platform's reader gave it."""

    FIRST: ClassVar[tuple[str, ...]] = ("title", "url", "next", "content")

    url: str
    title: str = ""
    description: str = ""
    published: str | None = None
    content: str = Field("", description="The page as markdown or text (this part of it, when it is long).")
    total_chars: int | None = Field(None, description="The whole content's length, when it is cut.")
    next_offset: int | None = Field(None, description="Where the rest starts, when the content is cut.")
    next: str | None = Field(None, description="When cut: the exact call that reads on.")
    metadata: dict[str, str] = Field(default_factory=dict, description="The page's meta tags.")
    links: dict[str, str] = Field(default_factory=dict, description="Link text to URL, when asked for.")
    images: dict[str, str] = Field(default_factory=dict, description="Image caption to URL, when asked for.")
    request_id: str | None = None

    def to_text(self) -> str:
        head = f"# {self.title}\n{self.url}" if self.title else self.url
        links = "\n".join(f"- [{text}]({url})" for text, url in self.links.items())
        return _join(head, self.description, self.content, self.next or "", "Links:\n" + links if links else "")


class ImageResult(RegistryNotes):
    """A generated image: shown as image content beside this, with its URL and when that expires."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "task_id", "url", "expires_at", "saved_path")

    status: JobState = Field("completed", description="running: still being made; `next` says how to get it.")
    next: str | None = Field(None, description="With status running: the exact call that gets the image.")
    task_id: str | None = Field(None, description="With status running: pass it to get_result.")
    url: str = Field("", description="Where the platform serves the image, until expires_at.")
    expires_at: str = Field("", description="When the URL stops working (ISO 8601 UTC).")
    saved_path: str | None = Field(None, description="A copy saved on this machine (stdio only).")
    model: str = ""
    media_type: str = ""
    bytes: int | None = Field(None, description="The image's size.")
    request_id: str | None = None
    note: str | None = Field(None, description="What could not be done (a copy not saved, the image not shown).")
    content: list[Any] = Field(default_factory=list, exclude=True)
    """The MCP content blocks sent beside the text (the image itself)."""

    def extra_content(self) -> list[ContentBlock]:
        return list(self.content)

    def to_text(self) -> str:
        if self.status == "running":
            return _join(f"The image is still being made. {self.next}", self._registry_text())
        saved = f"Saved as {self.saved_path}." if self.saved_path else ""
        return _join(f"Image ({self.model}): {self.url}\nThe URL expires {self.expires_at}.", saved, self.note or "")


class VideoJob(RegistryNotes):
    """A video the platform makes: a job, and once it is done its video and cover URLs."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "task_id", "videos", "error")

    status: JobState = Field(description="running: being made (minutes); completed: `videos` has it.")
    next: str | None = Field(None, description="With status running: the exact call that gets the video.")
    task_id: str = Field(description="Pass it to get_result.")
    videos: list[VideoFile] = Field(default_factory=list)
    error: ToolFailure | None = None
    model: str = ""
    request_id: str | None = None
    attempts: int = Field(1, description="Requests sent to submit it, when more than one.")

    def to_text(self) -> str:
        if self.videos:
            listing = "\n".join(
                f"- {v.url}" + (f" (cover {v.cover_url})" if v.cover_url else "") + f", expires {v.expires_at}"
                for v in self.videos
            )
            return _join(f"Video ready ({self.model}):\n{listing}", self._registry_text())
        if self.status == "running":
            return _join(f"Video task {self.task_id} is being made ({self.model}). {self.next}", self._registry_text())
        reason = self.error.to_text() if self.error else ""
        return _join(f"Video task {self.task_id} {self.status}.", reason, self._registry_text())

    @classmethod
    def running_next(cls, task_id: str, wait_seconds: float) -> str:
        return next_call(task_id, wait_seconds, "for the video")


class ModelEntry(BaseModel):
    id: str
    kind: ModelKind | None = None
    vision: bool | None = None
    reasoning: bool | None = None
    context_tokens: int | None = None
    max_output_tokens: int | None = None
    known: bool = Field(True, description="false: not in glm-mcp's table; what it can do is not known here.")


class ModelList(Result):
    """The models this key can use, each with what it can do."""

    models: list[ModelEntry] = Field(default_factory=list)
    note: str | None = None

    def to_text(self) -> str:
        def line(m: ModelEntry) -> str:
            if not m.known:
                return f"- {m.id}: not in glm-mcp's table (capabilities unknown)"
            traits: list[str] = [m.kind or "chat"]
            traits += [word for word, on in (("vision", m.vision), ("reasoning", m.reasoning)) if on]
            if m.context_tokens:
                traits.append(f"context {m.context_tokens:,}")
            if m.max_output_tokens:
                traits.append(f"output {m.max_output_tokens:,}")
            return f"- {m.id}: {', '.join(traits)}"

        return _join("\n".join(line(m) for m in self.models) or "No models.", self.note or "")


class UsageRow(BaseModel):
    day: str | None = Field(None, description="UTC, YYYY-MM-DD.")
    model: str | None = None
    calls: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = Field(None, description="Estimated, from the price table; absent when its price is unknown.")


class QuotaWindow(BaseModel):
    window: str = Field(description="5 hours, week or month (tool calls).")
    used_percent: float | None = None
    used: int | None = None
    limit: int | None = None
    resets_at: str | None = Field(None, description="ISO 8601 UTC.")


class UsageReport(Result):
    """What the calls made through this server cost, and the Coding Plan's quota."""

    FIRST: ClassVar[tuple[str, ...]] = ("since", "rows", "total_cost")

    since: str = Field(description="The first day counted (UTC).")
    caller: str = Field(description="Whose calls: this server's key, or your own key.")
    rows: list[UsageRow] = Field(default_factory=list)
    total_cost: float | None = Field(None, description="Estimated, for the rows with a known price.")
    currency: str = "USD"
    unpriced: list[str] = Field(default_factory=list, description="Models with no price in the table.")
    plan_level: str | None = Field(None, description="The GLM Coding Plan's level, for a coding-plan key.")
    quota: list[QuotaWindow] = Field(default_factory=list, description="The Coding Plan's quota windows.")
    note: str | None = None

    def to_text(self) -> str:
        lines = [
            " · ".join(
                part
                for part in (
                    row.day or "",
                    row.model or "",
                    f"{row.calls} calls",
                    f"{row.prompt_tokens} in / {row.completion_tokens} out",
                    f"~{row.cost:.4f} {self.currency}" if row.cost is not None else "",
                )
                if part
            )
            for row in self.rows
        ]
        quota = "\n".join(
            f"- {q.window}: {q.used_percent:g}% used" + (f", resets {q.resets_at}" if q.resets_at else "")
            for q in self.quota
            if q.used_percent is not None
        )
        total = f"Estimated total: {self.total_cost:.4f} {self.currency}." if self.total_cost is not None else ""
        return _join(
            f"Usage since {self.since} ({self.caller}):\n" + ("\n".join(lines) or "no calls recorded"),
            total,
            f"Coding Plan ({self.plan_level}) quota:\n{quota}" if quota else "",
            self.note or "",
        )


__all__ = ["ImageResult", "JobKind", "ModelList", "PageResult", "SearchResults", "UsageReport", "VideoJob"]
