"""Keeping a long call visible: `notifications/progress` while a stream runs, until it ends or the deadline.

Clients that reset their time limit on progress keep waiting as long as notifications come, so
a silent upstream still gets a heartbeat. Notifications are rate-limited however fast tokens
arrive, and `progress` counts seconds since the call started (strictly increasing, as the spec
requires), with `total` the seconds the call will wait before handing back a job id.
"""

from __future__ import annotations

import math
import time

import anyio
from mcp.server.mcpserver import Context

from glm_mcp.jobs import ChatStream

__all__ = [
    "FIRST_HEARTBEAT_S",
    "HEARTBEAT_S",
    "MIN_INTERVAL_S",
    "TAIL_CHARS",
    "ProgressReporter",
    "describe",
    "follow",
]

MIN_INTERVAL_S = 0.25
"""At most four notifications a second."""
HEARTBEAT_S = 5.0
"""A notification at least this often while nothing arrives (clients commonly reset at 10 s or more)."""
FIRST_HEARTBEAT_S = MIN_INTERVAL_S
"""The first "waiting" notification, when no chunk has come by then."""
TAIL_CHARS = 60


class ProgressReporter:
    """Sends the progress notifications of one tool call."""

    def __init__(self, ctx: Context, total: float | None) -> None:
        self._ctx = ctx
        self._total = total
        self._start = time.monotonic()
        self._value = 0.0
        self.last_sent = -math.inf

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    async def send(self, message: str) -> None:
        self._value = max(round(self.elapsed, 3), self._value + 0.001)
        self.last_sent = time.monotonic()
        await self._ctx.report_progress(self._value, self._total, message)


async def follow(stream: ChatStream, reporter: ProgressReporter, wait_seconds: float) -> bool:
    """Wait up to `wait_seconds` for `stream`, reporting what arrives; True when it has ended.

    The first words are reported the moment they arrive: the rate limit only spaces notifications
    that carry text, and the first "waiting" heartbeat comes FIRST_HEARTBEAT_S in, so a notice
    sent just before the first chunk cannot hold that chunk back.
    """
    start = time.monotonic()
    deadline = start + wait_seconds
    first_beat = start + FIRST_HEARTBEAT_S
    reported_chunks = 0
    accumulator = stream.accumulator
    while not stream.done:
        now = time.monotonic()
        if now >= deadline:
            return False
        changed = stream.changed()
        beat_at = max(reporter.last_sent + HEARTBEAT_S, first_beat)
        with anyio.move_on_after(min(deadline, beat_at) - now):
            await changed.wait()
        if stream.done:
            break
        now = time.monotonic()
        fresh = accumulator.chunks != reported_chunks
        if not fresh and now < beat_at:
            continue
        pause = reporter.last_sent + MIN_INTERVAL_S - now
        if fresh and reported_chunks and pause > 0:
            # rate limit: let chunks gather, but return at once if the stream ends meanwhile
            with anyio.move_on_after(min(pause, deadline - now)):
                await stream.wait()
            if stream.done:
                break
        reported_chunks = accumulator.chunks
        await reporter.send(describe(stream, reporter.elapsed))
    return True


def describe(stream: ChatStream, elapsed: float) -> str:
    """A one-line account of a running stream: its phase, what has arrived, and the latest text."""
    acc = stream.accumulator
    phase = stream.phase
    if phase == "waiting":
        return f"waiting for the first token from {stream.model} ({elapsed:.0f} s)"
    if phase == "reasoning":
        what = f"reasoning: {acc.reasoning_chars:,} chars"
    else:
        what = f"answering: {acc.content_chars:,} chars"
        if acc.tool_calls:
            what += f", {len(acc.tool_calls)} tool call(s)"
    tail = " ".join(acc.tail(TAIL_CHARS).split())
    return f"{what} ({elapsed:.0f} s) …{tail}" if tail else f"{what} ({elapsed:.0f} s)"
