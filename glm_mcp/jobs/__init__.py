"""Job bookkeeping: generations that run in the background and can be waited on again, and the
registry that records them so they outlive the process."""

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.jobs.job import JOB_ID_PREFIX, Job, JobStatus, Phase
from glm_mcp.jobs.polling import poll_task
from glm_mcp.jobs.principal import SERVER, Principal, key_principal
from glm_mcp.jobs.registry import JobRegistry
from glm_mcp.jobs.sqlite import SQLiteJobStore
from glm_mcp.jobs.store import ChatKind, JobKind, JobRecord, JobState, JobStore, Position

__all__ = [
    "JOB_ID_PREFIX",
    "SERVER",
    "ChatKind",
    "Job",
    "JobKind",
    "JobRecord",
    "JobRegistry",
    "JobState",
    "JobStatus",
    "JobStore",
    "Phase",
    "Position",
    "Principal",
    "RegistryUnavailable",
    "SQLiteJobStore",
    "key_principal",
    "poll_task",
]
