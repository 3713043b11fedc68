"""Job bookkeeping: generations that run in the background and can be waited on again."""

from glm_mcp.jobs.job import JOB_ID_PREFIX, Job, JobStatus, Phase
from glm_mcp.jobs.polling import poll_task
from glm_mcp.jobs.registry import JobRegistry

__all__ = ["JOB_ID_PREFIX", "Job", "JobRegistry", "JobStatus", "Phase", "poll_task"]
