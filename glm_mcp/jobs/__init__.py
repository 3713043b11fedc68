"""Job bookkeeping: chat answers streamed in the background (`ChatStream`), those handed off kept as jobs
that can be waited on again (`JobRunner`),
and the job registry (`JobStore`) that records them so they outlive the process.

One vocabulary for a job's state everywhere (`JobState`): running, completed, failed, cancelled,
interrupted; the platform's task status is mapped to it once, in `glm.types`."""

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.job import JOB_ID_PREFIX, ChatStream, Job, Phase
from glm_mcp.jobs.polling import poll_task
from glm_mcp.jobs.principal import SERVER, Principal, key_principal
from glm_mcp.jobs.runner import JobRunner, Outcome, UnrecordedTask
from glm_mcp.jobs.sqlite import SQLiteJobStore
from glm_mcp.jobs.store import (
    ChatKind,
    JobKind,
    JobRecord,
    JobState,
    JobStore,
    Position,
    RegistryProblem,
    RegistryReplaced,
)

__all__ = [
    "JOB_ID_PREFIX",
    "SERVER",
    "ChatKind",
    "ChatStream",
    "Job",
    "JobKind",
    "JobRecord",
    "JobRunner",
    "JobState",
    "JobStore",
    "Outcome",
    "Phase",
    "Position",
    "Principal",
    "RegistryProblem",
    "RegistryReplaced",
    "RegistryUnavailable",
    "SQLiteJobStore",
    "UnrecordedTask",
    "key_principal",
    "poll_task",
]
