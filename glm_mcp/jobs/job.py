"""One streamed generation, followed by whoever is waiting for it.

A call to `chat` starts a `Job` and waits for it; if the deadline passes first, the call returns
the job's id and the job carries on in the server's task group, where `get_result` can find and
wait on it again. The job knows the GLM client and its types, nothing of MCP.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import anyio

from glm_mcp.glm import Attempts, GLMClient, GLMError, StreamAccumulator
from glm_mcp.glm.errors import GLMAnswerCutError
from glm_mcp.jobs.principal import SERVER, Principal
from glm_mcp.jobs.store import ChatKind, JobState

if TYPE_CHECKING:
    from glm_mcp.glm.types import ChatCompletion, ChatRequest

logger = logging.getLogger(__name__)

Phase = Literal["waiting", "reasoning", "answering", "done"]
JOB_ID_PREFIX = "job_"


def new_job_id() -> str:
    return f"{JOB_ID_PREFIX}{uuid.uuid4().hex}"


@dataclass(eq=False)
class Job:
    """A chat generation in progress or finished, with what has arrived so far."""

    kind: ChatKind
    request: ChatRequest
    accumulator: StreamAccumulator
    """What has arrived so far: made by the client that streams it (`GLMClient.accumulator`), which knows the key."""
    id: str = field(default_factory=new_job_id)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    """Unix time of its last change (a chunk arrived, or it ended)."""
    started: float = field(default_factory=time.monotonic)
    status: JobState = "running"
    attempts: Attempts = field(default_factory=Attempts)
    completion: ChatCompletion | None = None
    error: Exception | None = None
    principal: Principal = SERVER
    """Who started it (`principal.py`): nobody else can get its result. Not its *owner*, the process."""
    handed_off: bool = False
    """Set when the call that started the job returned before it finished: someone may come back for it."""
    not_recorded: str | None = None
    """Why the job registry has no record of it (or not of its end), when it has none."""
    registry_problem: str | None = None
    """Why saving its progress failed, when it did: said in its result (and logged once)."""
    _done: anyio.Event = field(default_factory=anyio.Event)
    _changed: anyio.Event = field(default_factory=anyio.Event)
    _scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def __post_init__(self) -> None:
        self.accumulator.request_id = self.request.request_id

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def phase(self) -> Phase:
        """What the job is doing, for progress: waiting for a first token, reasoning, answering, or done."""
        if self.done:
            return "done"
        if self.accumulator.content_chars or self.accumulator.tool_calls:
            return "answering"
        return "reasoning" if self.accumulator.reasoning_chars else "waiting"

    @property
    def model(self) -> str:
        return self.accumulator.model or self.request.model

    @property
    def answer_so_far(self) -> str:
        from glm_mcp.glm.types import split_answer

        return split_answer(self.accumulator.text, None)[0]

    def changed(self) -> anyio.Event:
        """An event set at the next change (a chunk arrived, or the job ended)."""
        if self._changed.is_set():
            self._changed = anyio.Event()
        return self._changed

    async def wait(self) -> None:
        await self._done.wait()

    def cancel(self) -> None:
        """Stop generating: the upstream connection is closed at once."""
        self._scope.cancel()

    async def run(self, glm: GLMClient) -> None:
        """Stream the answer into `accumulator`; ends as completed, failed or cancelled."""
        try:
            with self._scope:
                async with glm.stream_chat(self.request, attempts=self.attempts) as chunks:
                    async for chunk in chunks:
                        self.accumulator.add(chunk)
                        self.updated_at = time.time()
                        self._changed.set()
                completion = self.accumulator.completion()
                cut = GLMAnswerCutError.of(completion.finish_reason)
                if cut is not None:
                    raise cut
                self.completion, self.status = completion, "completed"
        except GLMError as exc:
            self.error, self.status = exc, "failed"
        except Exception as exc:  # a bug of ours must end this job, not the server's task group
            logger.exception("job %s failed unexpectedly", self.id)
            self.error, self.status = exc, "failed"
        finally:
            if self.status == "running":
                self.status = "cancelled"
            self.updated_at = time.time()
            self._done.set()
            self._changed.set()
