"""What Slurm says of jobs, whichever backend asked: job and task states,
and the error raised when Slurm gives no answer."""

from __future__ import annotations

from dataclasses import (
    dataclass,
    field,
)
from typing import Iterable

# Slurm states in which a job has not ended yet; a job in any of them is
# still running as far as datalad-slurm is concerned.
TRANSITIONAL_STATES = frozenset({
    'PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING', 'SUSPENDED',
    'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING',
    'STAGE_OUT', 'STOPPED', 'RESV_DEL_HOLD', 'SPECIAL_EXIT',
})

# The words a FINISH commit title uses for a job's outcome.
OUTCOME_TITLES = {
    'COMPLETED': 'Complete',
    'FAILED': 'Failed',
    'CANCELLED': 'Cancelled',
    'TIMEOUT': 'Timeout',
    'OUT_OF_MEMORY': 'Out of memory',
    'NODE_FAIL': 'Node failure',
    'BOOT_FAIL': 'Boot failure',
    'DEADLINE': 'Deadline',
    'PREEMPTED': 'Preempted',
    'REVOKED': 'Revoked',
    'LOST': 'Lost',
}


class SlurmError(RuntimeError):
    """A Slurm program failed, could not be found, or did not answer."""


@dataclass
class TaskStatus:
    """What Slurm knows of one job, or of one task of an array job."""
    task_id: int | None
    state: str
    exit_code: int | None = None
    raw_job_id: int | None = None
    start: str | None = None
    end: str | None = None
    elapsed: str | None = None
    nodes: str | None = None
    max_rss: str | None = None

    @property
    def running(self) -> bool:
        return self.state in TRANSITIONAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == 'COMPLETED' and self.exit_code == 0


@dataclass
class JobStatus:
    """Slurm's account of a job and all its array tasks."""
    job_id: int
    tasks: list[TaskStatus] = field(default_factory=list)
    # array task ids Slurm has not reported on (yet)
    missing_tasks: list[int] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return bool(self.tasks)

    @property
    def phase(self) -> str:
        """One of 'running', 'complete', 'failed' or 'lost'."""
        if not self.tasks:
            return 'lost'
        if self.missing_tasks or any(t.running for t in self.tasks):
            return 'running'
        if all(t.succeeded for t in self.tasks):
            return 'complete'
        return 'failed'

    @property
    def outcome(self) -> str:
        """Title word for a FINISH commit ('Complete', 'Failed', ...)."""
        if self.phase == 'lost':
            return OUTCOME_TITLES['LOST']
        if self.phase == 'complete':
            return OUTCOME_TITLES['COMPLETED']
        for task in self.tasks:
            if not task.succeeded and not task.running:
                # COMPLETED with a non-zero exit code is a failure too
                state = 'FAILED' if task.state == 'COMPLETED' else task.state
                return OUTCOME_TITLES.get(state, state.capitalize())
        return 'Running'

    def describe(self) -> str:
        """Compact per-task state summary, e.g. '0-2:COMPLETED 3:FAILED'."""
        if not self.tasks:
            return 'UNKNOWN'
        if len(self.tasks) == 1 and self.tasks[0].task_id is None:
            return self.tasks[0].state
        groups: dict[str, list[int]] = {}
        for task in self.tasks:
            groups.setdefault(task.state, []).append(task.task_id)
        if self.missing_tasks:
            groups.setdefault('UNKNOWN', []).extend(self.missing_tasks)
        return ' '.join(
            f'{_compress_ids(ids)}:{state}'
            for state, ids in sorted(groups.items(),
                                     key=lambda i: min(x or 0 for x in i[1])))


def _compress_ids(ids: Iterable[int | None]) -> str:
    ids = sorted(set(i for i in ids if i is not None))
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ','.join(str(a) if a == b else f'{a}-{b}' for a, b in runs)

def add_task(status: JobStatus, new: TaskStatus):
    # with --duplicates a requeued job appears several times; the last
    # record is the current one
    for i, task in enumerate(status.tasks):
        if task.task_id == new.task_id:
            status.tasks[i] = new
            return
    status.tasks.append(new)
    status.tasks.sort(key=lambda t: -1 if t.task_id is None else t.task_id)


