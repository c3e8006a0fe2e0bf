"""The pyslurm backend: what the Slurm database tells through pyslurm,
mapped to the job states the command-line backend gives."""

from __future__ import annotations

from datetime import (
    datetime,
    timezone,
)
from typing import Iterable

from . import cli
from .status import (
    JobStatus,
    TaskStatus,
    add_task,
)


class PyslurmBackend:
    """The Slurm database through pyslurm (``pyslurm.db.Jobs``), with
    squeue for what the database does not know yet."""
    name = 'pyslurm'

    def __init__(self, pyslurm):
        self.pyslurm = pyslurm

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected_tasks: dict | None = None,
              ) -> dict[int, JobStatus]:
        ids = sorted(set(int(i) for i in job_ids))
        db = self.pyslurm.db
        jobs = db.Jobs.load(db.JobFilter(ids=ids))
        statuses = {i: JobStatus(i) for i in ids}
        for job in (jobs.values() if hasattr(jobs, 'values') else jobs):
            status = statuses.get(job.array_id or job.id)
            if status is not None:
                add_task(status, task_from_pyslurm(job))
        return cli.complete_with_squeue(statuses, expected_tasks or {},
                                          timeout=timeout)


def task_from_pyslurm(job) -> TaskStatus:
    """A ``pyslurm.db.Job`` as the task status the CLI backend gives."""
    return TaskStatus(
        task_id=job.array_task_id if job.array_id else None,
        state=(job.state or 'UNKNOWN').split()[0],
        exit_code=-1 if job.exit_code_signal else job.exit_code,
        raw_job_id=job.id,
        start=_iso(job.start_time),
        end=_iso(job.end_time),
        elapsed=_duration(job.elapsed_time),
        nodes=job.nodelist or None,
        max_rss=_max_rss(job))


def _iso(timestamp) -> str | None:
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S')


def _duration(seconds) -> str | None:
    if seconds is None:
        return None
    hours, rest = divmod(int(seconds), 3600)
    return f'{hours:02d}:{rest // 60:02d}:{rest % 60:02d}'


def _max_rss(job) -> str | None:
    value = getattr(getattr(job, 'stats', None), 'max_resident_memory', None)
    return f'{value}K' if value else None
