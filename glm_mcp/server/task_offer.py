"""A tool call the tasks extension may answer as a task: how long it waits, and the job it hands off.

The extension (`server/tasks.py`, and `server/tasks_2025.py` for the older form) opens an offer around a
call it may turn into a task (`offering_task`); the tool reads its wait there (`task_wait`: the short task
threshold), and the registration wrapper reports the job the call handed off (`report_hand_off`), typed,
instead of the extension reading it back out of the result. Its own module, so that the tools and the
registration need nothing else of tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["HandOff", "TaskOffer", "offering_task", "report_hand_off", "task_wait"]


@dataclass(frozen=True, slots=True)
class HandOff:
    """A job a call handed off, durably recorded: the task that follows it is `task_id`."""

    job_id: str
    suffix: str
    """Which tool's result the task ends with (`registration.TaskForm.suffix`)."""

    @property
    def task_id(self) -> str:
        return self.job_id + self.suffix


@dataclass(slots=True)
class TaskOffer:
    """One call that may become a task: the most it waits, and the job it handed off, once it has."""

    threshold: float
    handed_off: HandOff | None = None


_offer: ContextVar[TaskOffer | None] = ContextVar("glm_mcp_task_offer", default=None)


def task_wait(wait_seconds: float) -> float:
    """`wait_seconds`, cut to the task threshold when this call may become a task."""
    offer = _offer.get()
    return wait_seconds if offer is None else min(wait_seconds, offer.threshold)


@contextmanager
def offering_task(threshold: float) -> Iterator[TaskOffer]:
    """Within: the current call waits at most `threshold` seconds before it is handed off (as a task)."""
    offer = TaskOffer(threshold)
    token = _offer.set(offer)
    try:
        yield offer
    finally:
        _offer.reset(token)


def report_hand_off(hand_off: HandOff) -> None:
    """Tell the offer around this call, if there is one, that the call handed off a job."""
    offer = _offer.get()
    if offer is not None:
        offer.handed_off = hand_off
