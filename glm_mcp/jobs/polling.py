"""Waiting on an upstream async task: polls at a growing interval, never in a tight loop."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from glm_mcp.glm import GLMClient

if TYPE_CHECKING:
    from glm_mcp.glm.types import AsyncTaskResult

FIRST_INTERVAL_S = 0.5
GROWTH = 1.6
MAX_INTERVAL_S = 5.0

OnPoll = Callable[[int, "AsyncTaskResult"], Awaitable[None]]


async def poll_task(glm: GLMClient, task_id: str, wait_seconds: float, on_poll: OnPoll) -> AsyncTaskResult:
    """The task's state once it has ended, or its latest state when `wait_seconds` run out.

    Polls at once, then after 0.5 s, 0.8 s, 1.3 s, … up to 5 s apart; `on_poll(polls, state)` is
    called after each poll that finds it still running.
    """
    deadline = time.monotonic() + wait_seconds
    interval = FIRST_INTERVAL_S
    polls = 0
    while True:
        state = await glm.async_result(task_id)
        polls += 1
        remaining = deadline - time.monotonic()
        if state.state != "running" or remaining <= 0:
            return state
        await on_poll(polls, state)
        await anyio.sleep(min(interval, remaining))
        interval = min(interval * GROWTH, MAX_INTERVAL_S)
