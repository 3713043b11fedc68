"""What the emulator remembers: answered requests, streams, async tasks and the prompt cache.

The server mutates it on its event loop thread while tests read it from theirs, so every change
happens under one lock and readers see whole records.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Exchange:
    """One answered request, as the client sent it and as the emulator answered it."""

    method: str
    path: str
    """The path as requested, e.g. ``/api/paas/v4/chat/completions``."""
    headers: dict[str, str]
    """Request headers, lower-case names."""
    body: dict[str, Any] | None
    """The parsed JSON request body; None when absent or not a JSON object."""
    status: int
    response: dict[str, Any] | None
    """The JSON answered; for a stream, the completion its chunks assemble into."""
    stream: bool = False


@dataclass(frozen=True)
class AsyncTask:
    """A submitted async chat: its answer is computed at once and revealed at ``ready_at``."""

    id: str
    ready_at: float
    """``time.monotonic()`` from which polls get ``result``."""
    pending: dict[str, Any]
    result: dict[str, Any]


class PromptCache:
    """Remembers the message prefixes seen, to report ``cached_tokens`` like a provider cache.

    Bounded (least recently used prefixes go first) so a long-running emulator stays small.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, prefixes: Sequence[tuple[str, int]]) -> int:
        """Tokens of the longest prefix seen before (0 if none), then remember all of them."""
        with self._lock:
            cached = max((tokens for key, tokens in prefixes if key in self._seen), default=0)
            for key, _ in prefixes:
                self._seen[key] = None
                self._seen.move_to_end(key)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        return cached

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


class EmulatorState:
    """Observable state of one emulator instance.

    ``max_exchanges`` keeps only the latest exchanges (None: keep all, the right thing in tests).
    """

    def __init__(self, max_exchanges: int | None = None) -> None:
        self.exchanges: list[Exchange] = []
        self.prompt_cache = PromptCache()
        self._max_exchanges = max_exchanges
        self._disconnects = 0
        self._open_streams = 0
        self._tasks: dict[str, AsyncTask] = {}
        self._lock = threading.Lock()

    @property
    def disconnects(self) -> int:
        """Streams whose client went away before the stream finished."""
        return self._disconnects

    @property
    def open_streams(self) -> int:
        """Streams being sent right now."""
        return self._open_streams

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            if self._max_exchanges is not None and len(self.exchanges) > self._max_exchanges:
                del self.exchanges[: len(self.exchanges) - self._max_exchanges]

    def stream_opened(self) -> None:
        with self._lock:
            self._open_streams += 1

    def stream_closed(self, *, client_gone: bool) -> None:
        with self._lock:
            self._open_streams -= 1
            self._disconnects += client_gone

    def add_task(self, task: AsyncTask) -> None:
        with self._lock:
            self._tasks[task.id] = task

    def task(self, task_id: str) -> AsyncTask | None:
        with self._lock:
            return self._tasks.get(task_id)

    def clear(self) -> None:
        """Forget exchanges, the disconnect count and the prompt cache.

        Open streams and async tasks are live and are kept, so in-flight work still completes.
        """
        with self._lock:
            self.exchanges.clear()
            self._disconnects = 0
        self.prompt_cache.clear()
