"""A batch job as a result says it: its progress while the platform runs it, then every item's answer or error.

What `get_result` (and a batch's task) returns for a batch job (`TaskResult.batch`): made from the registry's
record of it (`glm_mcp.jobs.batches`: a `BatchProgress` while it runs, its `BatchOutcome` once it has ended).
The answers are paged like any long answer: `offset` counts characters of the answers' text, item after item
in the batch's order, so a page holds the items whose text falls in it (the first and last perhaps in part),
and `next_offset` is where the next page starts. An error is never cut, and counts no characters.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.errors import ArgumentError
from glm_mcp.jobs.batches import BatchOutcome, BatchProgress, ItemOutcome
from glm_mcp.server.result import Result, paragraphs

__all__ = ["BatchAnswer", "BatchReport"]


class BatchAnswer(BaseModel):
    """One request of the batch, and what became of it."""

    model_config = ConfigDict(defer_build=True)

    custom_id: str = Field(description="Its id in the batch (item-0001, …), in the order the items were given.")
    item: str = Field(description="What it was: the start of its prompt, or the file it read.")
    status: Literal["answered", "failed", "not_run"] = Field(
        description="not_run: the batch ended (cancelled, expired, failed) before it ran."
    )
    text: str | None = Field(None, description="The answer; on a page, the part of it that falls there.")
    error: str | None = Field(None, description="Why it failed or did not run.")
    part: str | None = Field(None, description="Present when `text` is part of a longer answer: which part.")


class BatchReport(Result):
    """A batch job: the platform's progress on it, and once it has ended its items' answers, a page at a time."""

    FIRST: ClassVar[tuple[str, ...]] = ("platform_status", "total", "answered", "failed")

    batch_id: str = Field(description="The platform's id of the batch.")
    platform_status: str = Field(
        description="validating, in_progress, finalizing, cancelling; then completed, failed, expired or cancelled."
    )
    total: int = Field(0, description="Requests in the batch.")
    answered: int = Field(0, description="Requests answered so far.")
    failed: int = Field(0, description="Requests that failed so far.")
    not_run: int | None = Field(None, description="Once it has ended: requests it never ran.")
    answers: list[BatchAnswer] = Field(default_factory=list, description="Once it has ended: the items of this page.")
    answer_chars: int | None = Field(None, description="Once it has ended: characters of all the answers' text.")
    offset: int | None = Field(None, description="Where in them this page starts.")
    next_offset: int | None = Field(
        None, description="There is more: call get_result with this job's id as task_id and this offset."
    )
    problems: list[str] | None = Field(None, description="What the platform found wrong with the batch's input.")
    tokens: str | None = Field(None, description="Once it has ended: the tokens it cost, at the batch price.")
    notice: str | None = None

    @classmethod
    def running(cls, progress: BatchProgress) -> BatchReport:
        return cls(
            batch_id=progress.batch_id,
            platform_status=progress.status,
            total=len(progress.items),
            answered=progress.completed,
            failed=progress.failed,
            notice=progress.notice,
        )

    @classmethod
    def ended(cls, outcome: BatchOutcome) -> BatchReport:
        """The whole outcome: every item (`page` cuts what a reader gets)."""
        count = {status: sum(1 for i in outcome.items if i.status == status) for status in ("answered", "failed")}
        return cls(
            batch_id=outcome.batch_id,
            platform_status=outcome.status,
            total=len(outcome.items),
            answered=count["answered"],
            failed=count["failed"],
            not_run=len(outcome.items) - count["answered"] - count["failed"],
            answers=[_answer(item) for item in outcome.items],
            answer_chars=sum(len(item.text) for item in outcome.items),
            problems=outcome.problems or None,
            tokens=f"{outcome.prompt_tokens:,} in ({outcome.cached_tokens:,} cached) / "
            f"{outcome.completion_tokens:,} out, for {outcome.answered} answered request(s)",
            notice=outcome.notice,
        )

    def page(self, offset: int, limit: int | None) -> BatchReport:
        """This (whole) report as a reader asked for it: the answers whose text falls in [offset, offset + limit)."""
        if self.answer_chars is None:
            return self
        total = self.answer_chars
        if offset > total:
            raise ArgumentError("offset", f"the answers have {total:,} characters; give 0 to {total:,}.")
        if limit is None or (offset == 0 and total <= limit):
            return self
        end = offset + limit
        shown: list[BatchAnswer] = []
        start = 0
        for answer in self.answers:
            text = answer.text or ""
            stop = start + len(text)
            empty_here = start == stop and offset <= start and (start < end or end >= total)
            if empty_here or (stop > offset and start < end):
                cut_from, cut_to = max(offset - start, 0), min(end - start, len(text))
                part = None
                if (cut_from, cut_to) != (0, len(text)):
                    part = f"characters {cut_from:,} to {cut_to:,} of its {len(text):,}"
                shown.append(answer.model_copy(update={"text": text[cut_from:cut_to] or None, "part": part}))
            start = stop
        return self.model_copy(update={"answers": shown, "offset": offset, "next_offset": end if end < total else None})

    def to_text(self) -> str:
        counts = f"{self.answered} of {self.total} answered, {self.failed} failed"
        if self.not_run is None:
            head = f"Batch {self.batch_id} is {self.platform_status} on the platform: {counts}."
            return paragraphs(head, f"NOTE: {self.notice}" if self.notice else "")
        head = f"Batch {self.batch_id} {self.platform_status}: {counts}, {self.not_run} not run."
        lines = []
        for answer in self.answers:
            title = f"[{answer.custom_id}] {answer.item}"
            if answer.error:
                title += f" — {answer.status.upper().replace('_', ' ')}: {answer.error}"
            if answer.part:
                title += f" ({answer.part})"
            lines.append(f"{title}\n{answer.text}" if answer.text else title)
        more = ""
        if self.next_offset is not None:
            more = f"[More answers: call get_result with this job's task_id and offset={self.next_offset}.]"
        return paragraphs(
            head,
            "Problems with the input:\n" + "\n".join(f"- {p}" for p in self.problems) if self.problems else "",
            "\n\n".join(lines),
            more,
            f"Tokens: {self.tokens}." if self.tokens else "",
            f"NOTE: {self.notice}" if self.notice else "",
        )


def _answer(item: ItemOutcome) -> BatchAnswer:
    return BatchAnswer(
        custom_id=item.custom_id, item=item.label, status=item.status, text=item.text or None, error=item.error
    )
