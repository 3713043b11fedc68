"""What the emulator remembers: answered requests, streams, requests in flight, queued faults,
async tasks, uploaded files and batches, and the prompt cache.

The server mutates it on its event loop thread while tests read it from theirs, so every change
happens under one lock and readers see whole records.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .batches import Batch, Upload
from .faults import Fault, check_route, parse_fault, route_matches


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
    """The HTTP status sent; 0 when the connection was closed (or left) before any answer."""
    response: dict[str, Any] | None
    """The JSON answered; for a stream, the completion its chunks assemble into; None when the
    answer was not JSON or nothing was sent."""
    stream: bool = False


@dataclass(frozen=True)
class PendingFault:
    """A queued fault and the route it waits for (None: any API request)."""

    fault: str
    path: str | None = None


@dataclass(frozen=True)
class AsyncTask:
    """A submitted async chat: its answer is computed at once and revealed at ``ready_at``."""

    id: str
    ready_at: float
    """``time.monotonic()`` from which polls get ``result``."""
    pending: dict[str, Any]
    result: dict[str, Any]


@dataclass(frozen=True)
class StoredFile:
    """A generated image or video, downloadable under ``/files/<name>`` until ``expires_at`` (Unix seconds)."""

    data: bytes
    media_type: str
    expires_at: float


@dataclass(frozen=True)
class Use:
    """One billable use by a coding-plan key, for the quota endpoint: tokens of a chat, or a tool call."""

    at: float
    """Unix seconds."""
    model: str
    tokens: int = 0
    tool: str | None = None
    """``search-prime`` (web search) or ``web-reader`` for tool calls; None for model calls."""


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
        self._in_flight = 0
        self._peak_in_flight = 0
        self._faults: deque[tuple[PendingFault, Fault]] = deque()
        self._tasks: dict[str, AsyncTask] = {}
        self._files: dict[str, StoredFile] = {}
        self._uploads: dict[str, Upload] = {}
        self._batches: dict[str, Batch] = {}
        self._uses: list[Use] = []
        self.started = time.time()
        """When the quota windows started counting (Unix seconds)."""
        self._lock = threading.Lock()

    @property
    def disconnects(self) -> int:
        """Streams and stalled requests whose client went away before the end."""
        return self._disconnects

    @property
    def open_streams(self) -> int:
        """Streams being sent right now."""
        return self._open_streams

    @property
    def in_flight(self) -> int:
        """API requests admitted and not yet fully answered (a stream until its end)."""
        return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most requests in flight at once since the last ``clear()``: a client's real concurrency.

        Requests refused by ``max_in_flight`` are not counted, so it never exceeds that limit.
        """
        return self._peak_in_flight

    def admit(self, limit: int | None) -> bool:
        """Count a request in flight, unless ``limit`` requests already are (then False)."""
        with self._lock:
            if limit is not None and self._in_flight >= limit:
                return False
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            return True

    def done(self) -> None:
        """An admitted request has been answered, or abandoned."""
        with self._lock:
            self._in_flight -= 1

    def inject(self, faults: Iterable[str], path: str | None = None) -> None:
        """Queue faults for the next API requests whose path ``path`` names, in order.

        ``path`` is a route as seen from the base URL (``/chat/completions``) or a full path; None
        means any API request. Raises FaultError (a ValueError) and queues nothing when a fault
        string is malformed.
        """
        route = check_route(path)
        parsed = [(PendingFault(text, route), parse_fault(text)) for text in faults]
        with self._lock:
            self._faults.extend(parsed)

    def pending_faults(self) -> list[PendingFault]:
        """The queued faults not yet consumed, next first."""
        with self._lock:
            return [pending for pending, _ in self._faults]

    def take_fault(self, path: str) -> Fault | None:
        """Remove and return the first queued fault meant for a request to ``path``."""
        with self._lock:
            for i, (pending, fault) in enumerate(self._faults):
                if route_matches(pending.path, path):
                    del self._faults[i]
                    return fault
        return None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

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

    def client_left(self) -> None:
        """A client went away while its request was stalled."""
        with self._lock:
            self._disconnects += 1

    def add_task(self, task: AsyncTask) -> None:
        with self._lock:
            self._tasks[task.id] = task

    def task(self, task_id: str) -> AsyncTask | None:
        with self._lock:
            return self._tasks.get(task_id)

    def add_file(self, name: str, file: StoredFile) -> None:
        with self._lock:
            now = time.time()
            for old in [n for n, f in self._files.items() if f.expires_at <= now]:
                del self._files[old]
            self._files[name] = file

    def file(self, name: str) -> StoredFile | None:
        """A stored file, or None when unknown or expired."""
        with self._lock:
            found = self._files.get(name)
        return found if found and found.expires_at > time.time() else None

    def add_upload(self, upload: Upload) -> None:
        """Keep a file of the Files API (uploaded, or a batch's output) until it expires or is deleted."""
        with self._lock:
            now = time.time()
            for old in [i for i, u in self._uploads.items() if u.expires_at <= now]:
                del self._uploads[old]
            self._uploads[upload.id] = upload

    def upload(self, file_id: str, account: str | None = None) -> Upload | None:
        """A file of the Files API, or None when unknown, expired, or (given `account`) another account's."""
        with self._lock:
            found = self._uploads.get(file_id)
        if found is None or found.expires_at <= time.time() or account not in (None, found.account):
            return None
        return found

    def uploads(self, account: str) -> list[Upload]:
        """`account`'s files, newest first."""
        now = time.time()
        with self._lock:
            found = [u for u in self._uploads.values() if u.account == account and u.expires_at > now]
        return sorted(found, key=lambda u: u.created_at, reverse=True)

    def remove_upload(self, file_id: str) -> bool:
        with self._lock:
            return self._uploads.pop(file_id, None) is not None

    def add_batch(self, batch: Batch) -> None:
        with self._lock:
            self._batches[batch.id] = batch

    def batch(self, batch_id: str, account: str | None = None) -> Batch | None:
        """A batch, or None when unknown or (given `account`) another account's."""
        with self._lock:
            found = self._batches.get(batch_id)
        return found if found is not None and account in (None, found.account) else None

    def batches(self, account: str) -> list[Batch]:
        """`account`'s batches, newest first."""
        with self._lock:
            found = [b for b in self._batches.values() if b.account == account]
        return sorted(found, key=lambda b: b.created_wall, reverse=True)

    def add_use(self, use: Use) -> None:
        with self._lock:
            self._uses.append(use)

    def uses(self, since: float = 0.0) -> list[Use]:
        """The coding-plan uses recorded since ``since`` (Unix seconds), oldest first."""
        with self._lock:
            return [u for u in self._uses if u.at >= since]

    def clear(self) -> None:
        """Forget exchanges, the disconnect count, queued faults, the peak of requests in flight
        (it restarts from those in flight now), the coding-plan usage and the prompt cache.

        Open streams, async tasks, generated and uploaded files and batches are live and are kept, so in-flight
        work still completes.
        """
        with self._lock:
            self.exchanges.clear()
            self._disconnects = 0
            self._faults.clear()
            self._peak_in_flight = self._in_flight
            self._uses.clear()
        self.prompt_cache.clear()
