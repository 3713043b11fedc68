"""Where running and handed-off jobs live while the server runs."""

from __future__ import annotations

from collections import OrderedDict

from anyio.abc import TaskGroup

from glm_mcp.glm import GLMClient
from glm_mcp.glm.types import ChatRequest
from glm_mcp.jobs.job import Job

MAX_KEPT_JOBS = 1000
"""Finished handed-off jobs kept for `get_result`; the oldest are forgotten first."""


class JobRegistry:
    """Starts jobs in the server's task group, so a job can outlive the call that started it."""

    def __init__(self, glm: GLMClient, task_group: TaskGroup) -> None:
        self._glm = glm
        self._task_group = task_group
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def start(self, kind: str, request: ChatRequest) -> Job:
        job = Job(kind=kind, request=request)
        self._jobs[job.id] = job
        self._task_group.start_soon(job.run, self._glm, name=f"glm-mcp {kind} {job.id}")
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def release(self, job: Job) -> None:
        """Forget a job nobody will ask about again (its call got the whole answer)."""
        self._jobs.pop(job.id, None)

    def hand_off(self, job: Job) -> None:
        """Keep a job for `get_result`: its call returned before the job finished."""
        job.handed_off = True
        while len(self._jobs) > MAX_KEPT_JOBS:
            oldest = next((j for j in self._jobs.values() if j.done), None)
            if oldest is None:
                break
            self._jobs.pop(oldest.id)

    def __len__(self) -> int:
        return len(self._jobs)
