"""One thread that runs a store's blocking work in batches, waking the event loop once per batch.

`anyio.to_thread.run_sync` costs a thread hand-off and an event-loop wake-up for every statement,
and with one connection behind a lock, calls arriving together queue on the lock in as many
threads. Under load that was most of the server's own CPU per call (issue 18: ~1.8 ms per chat of
its ~3 ms over a bare SDK server). Here everything is queued to one thread, which takes all that
was queued since it last looked and hands it, as one batch, to the store's `run_batch` (which
decides what a batch means: one transaction for the SQLite registry). Each batch then costs one
wake-up of each event loop waiting on it, however many calls it held.

Works queued together are not ordered against each other: a caller awaits its work before it
queues the next, so only works of different callers ever share a batch. Callers wait on asyncio
futures, woken with `call_soon_threadsafe`: the server runs on asyncio (uvicorn, and anyio's
default backend over stdio).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

MAX_BATCH = 256
"""Works in one batch at most: a transaction stays short however many calls arrive at once."""


@dataclass(eq=False, slots=True)
class Work(Generic[_T]):
    """One operation queued to the thread, and what became of it."""

    operation: Callable[[Any], _T]
    """Called by `run_batch` with what the store works on (the SQLite connection)."""
    write: bool
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[_T] | None
    result: Any = None
    error: BaseException | None = None
    done: bool = field(default=False)

    def succeed(self, result: _T) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def again(self) -> None:
        """Forget its outcome, to run it once more (the SQLite store, on a fresh file after a corrupt one)."""
        self.result, self.error, self.done = None, None, False


class BatchThread:
    """Runs `run_batch(works)` in a thread of its own for what callers `submit`; started at the first work."""

    def __init__(
        self, run_batch: Callable[[list[Work[Any]]], None], *, closed: Callable[[], BaseException], name: str
    ) -> None:
        self._run_batch = run_batch
        self._closed = closed
        self._name = name
        self._queue: queue.SimpleQueue[Work[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._last: Callable[[], None] = lambda: None

    async def submit(self, operation: Callable[[Any], _T], *, write: bool) -> _T:
        """`operation()`'s result once its batch has run; a cancelled caller stops waiting, the work still runs."""
        loop = asyncio.get_running_loop()
        work: Work[_T] = Work(operation, write, loop, loop.create_future())
        self._put(work)
        assert work.future is not None
        return await work.future

    def stop(self, last: Callable[[], None]) -> threading.Thread | None:
        """Queue `last` after everything queued so far, then end the thread; what is submitted later raises
        `closed()`. Returns the thread to join, if it ever started."""
        with self._lock:
            if self._stopping:
                return None
            self._stopping = True
            if self._thread is None:
                last()
                return None
            self._last = last
            self._queue.put(None)
            return self._thread

    def _put(self, work: Work[Any]) -> None:
        with self._lock:
            if self._stopping:
                raise self._closed()
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(work)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[Work[Any]] = []
            ending = first is None
            if first is not None:
                batch.append(first)
            while not ending and len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ending = True
                else:
                    batch.append(more)
            if batch:
                self._run(batch)
            if ending:
                self._last()
                return

    def _run(self, batch: list[Work[Any]]) -> None:
        try:
            self._run_batch(batch)
        except BaseException as exc:  # a bug in run_batch: every caller hears of it instead of waiting forever
            for work in batch:
                if not work.done:
                    work.fail(exc)
        by_loop: dict[asyncio.AbstractEventLoop, list[Work[Any]]] = {}
        for work in batch:
            if work.loop is not None:
                by_loop.setdefault(work.loop, []).append(work)
        for loop, works in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_deliver, works)


def _deliver(works: list[Work[Any]]) -> None:
    for work in works:
        future = work.future
        if future is None or future.done():  # its caller was cancelled
            continue
        if work.error is not None:
            future.set_exception(work.error)
        else:
            future.set_result(work.result)
