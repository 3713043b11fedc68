"""One chat answer streamed in a task of its own (`ChatStream`), and the job it becomes when its call hands it
off (`Job`).

A call to `chat` starts a `ChatStream` in the server's task group and waits for it. Most end within
the call's wait and are never anything more: no id, nothing kept, nothing written. One still running
when the wait runs out becomes a `Job` (`JobRunner.hand_off`): the same stream, never stopped or
restarted (what arrives after the hand-off lands in the same accumulator), given an id, a record in
the registry and a place in the runner, where `get_result` can find and wait on it again. Nothing of
MCP here: a stream knows the GLM client and its types.
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
from glm_mcp.jobs.store import ChatKind, JobState, RegistryProblem

if TYPE_CHECKING:
    from glm_mcp.glm.types import ChatCompletion, ChatRequest

logger = logging.getLogger(__name__)

Phase = Literal["waiting", "reasoning", "answering", "done"]
JOB_ID_PREFIX = "job_"


def new_job_id() -> str:
    return f"{JOB_ID_PREFIX}{uuid.uuid4().hex}"


@dataclass(eq=False)
class ChatStream:
    """A chat answer generated in a task of its own, with what has arrived so far."""

    kind: ChatKind
    request: ChatRequest
    accumulator: StreamAccumulator
    """What has arrived so far: made by the client that streams it (`GLMClient.accumulator`), which knows the key."""
    principal: Principal = SERVER
    """Who started it (`principal.py`): nobody else can get its result. Not its *owner*, the process."""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    """Unix time of its last change (a chunk arrived, or it ended)."""
    status: JobState = "running"
    attempts: Attempts = field(default_factory=Attempts)
    completion: ChatCompletion | None = None
    error: Exception | None = None
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
        """What it is doing, for progress: waiting for a first token, reasoning, answering, or done."""
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
        """An event set at the next change (a chunk arrived, or the stream ended)."""
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
        except Exception as exc:  # a bug of ours must end this stream, not the server's task group
            logger.exception("a %s stream failed unexpectedly", self.kind)
            self.error, self.status = exc, "failed"
        finally:
            if self.status == "running":
                self.status = "cancelled"
            self.updated_at = time.time()
            self._done.set()
            self._changed.set()


@dataclass(eq=False)
class Job:
    """A stream someone may come back for: its call returned this job's id before the stream ended."""

    stream: ChatStream
    id: str = field(default_factory=new_job_id)
    not_recorded: RegistryProblem | None = None
    """Why the job registry has no record of it (`not_recorded`), or not of its end (`end_not_recorded`)."""
    registry_problem: RegistryProblem | None = None
    """Why a save of its answer so far failed (`progress_not_saved`), when one did: logged once, said in its result."""

    @property
    def kind(self) -> ChatKind:
        return self.stream.kind

    @property
    def principal(self) -> Principal:
        return self.stream.principal

    @property
    def done(self) -> bool:
        return self.stream.done

    async def wait(self) -> None:
        await self.stream.wait()

    def cancel(self) -> None:
        """Stop generating: the upstream connection is closed at once."""
        self.stream.cancel()
