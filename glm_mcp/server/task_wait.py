"""How long a tool call waits when its caller takes MCP tasks: the short task threshold, set per call.

The tasks extension (`server/tasks.py`) sets it around a call it may turn into a task; the tools
read it where they read their wait. Its own module so the tools need nothing else of tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_threshold: ContextVar[float | None] = ContextVar("glm_mcp_task_threshold", default=None)


def task_wait(wait_seconds: float) -> float:
    """`wait_seconds`, cut to the task threshold when this call may become a task."""
    threshold = _threshold.get()
    return wait_seconds if threshold is None else min(wait_seconds, threshold)


@contextmanager
def waiting_for_task(threshold: float) -> Iterator[None]:
    """Within: the current call waits at most `threshold` seconds before it is handed off (as a task)."""
    token = _threshold.set(threshold)
    try:
        yield
    finally:
        _threshold.reset(token)
