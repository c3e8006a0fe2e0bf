"""A farm job's verdict and what its FINISH record adds: the tasks of its
list, read from their state files (:mod:`.layout`) as the tasks of an
array job are read from Slurm.

A farm job is complete when the job itself has ended, whatever Slurm (or
local mode) says of how, and every task of its list is DONE with exit code
0.  A task the job did not get to, or that was still running when the job
ended without putting it back (killed outright), did not complete: it is
CANCELLED, with a reason that says which.
"""

from __future__ import annotations

import os
from dataclasses import (
    dataclass,
    field,
)

from ...backends.local.backend import (
    epoch_as_slurm_time,
    sacct_duration,
)
from ...pool.tasks import (
    DONE,
    QUEUED,
    RUNNING,
)
from ...records.format import Record
from ...slurm.status import (
    JobStatus,
    TaskStatus,
)
from ..base import Refused
from .submit import (
    FarmRequest,
    farm_dir_of,
    read_task_list,
)


@dataclass
class FarmStatus(JobStatus):
    """A farm job as its tasks tell; `allocation` is what Slurm says of the
    job itself, `task_logs` its tasks' log files (relative to the root)."""
    allocation: JobStatus | None = None
    task_logs: list[str] = field(default_factory=list)

    @property
    def phase(self) -> str:
        if self.allocation.phase in ('running', 'unknown'):
            return self.allocation.phase
        return super().phase

    @property
    def failed_tasks(self) -> list[int]:
        return [t.task_id for t in self.tasks if not t.succeeded]


def farm_status(ds, record: Record, allocation: JobStatus) -> FarmStatus:
    farm = farm_dir_of(ds, record.data)
    status = FarmStatus(
        record.job_id, allocation=allocation,
        unanswered=allocation.unanswered,
        unknown_to=f'the state files of its tasks ({farm.path}), which are '
                   f'not here')
    if not farm.exists:
        return status
    ended = allocation.phase not in ('running', 'unknown')
    for key, task in farm.tasks.read().items():
        status.tasks.append(task_status(int(key), task, ended, allocation))
    log_dir = os.path.join(ds.path, record.data['farm_log_dir'])
    if os.path.isdir(log_dir):
        status.task_logs = sorted(
            os.path.join(record.data['farm_log_dir'], name)
            for name in os.listdir(log_dir))
    return status


def task_status(task_id: int, task: dict, ended: bool,
                allocation: JobStatus) -> TaskStatus:
    """A task's state file as Slurm's account of an array task."""
    state, reason = task['state'], task.get('reason')
    exit_code = task.get('exit_code')
    if state == DONE:
        slurm_state = 'COMPLETED'
    elif state in (QUEUED, RUNNING) and not ended:
        slurm_state = {QUEUED: 'PENDING', RUNNING: 'RUNNING'}[state]
    elif state in (QUEUED, RUNNING):
        slurm_state, exit_code = 'CANCELLED', None
        reason = (f'{"never ran" if state == QUEUED else "cut off"}: the '
                  f'farm job ended ({allocation.describe()}) '
                  f'{"before it" if state == QUEUED else "while it ran"}')
    elif task.get('timeout'):
        slurm_state = 'TIMEOUT'
    else:
        slurm_state = 'FAILED'
        # a task killed by a signal has no exit code (sacct: -1)
        exit_code = -1 if task.get('signal') else exit_code
    start, end = task.get('start'), task.get('end')
    return TaskStatus(
        task_id=task_id, state=slurm_state,
        exit_code=0 if exit_code is None and slurm_state in (
            'PENDING', 'RUNNING') else exit_code,
        start=epoch_as_slurm_time(start), end=epoch_as_slurm_time(end),
        elapsed=sacct_duration(end - start) if start and end else None,
        nodes=task.get('host') if start else None, alloc_cpus=1,
        total_cpu=sacct_duration(task['cpu_seconds'], fraction=True)
        if task.get('cpu_seconds') is not None else None,
        reason=reason)


def finish_keys(job: FarmStatus) -> dict:
    """What a farm job's FINISH record adds to an array's: Slurm's word on
    the job itself, and the tasks that did not complete."""
    return {'farm_job_state': job.allocation.describe(),
            'farm_failed': job.failed_tasks}


def rerun_request(ds, data: dict, all_tasks: bool) -> FarmRequest:
    """The tasks a reschedule of the farm job of FINISH record `data` runs:
    those that did not complete, or, where all did, those the job ran (a
    repeat, as of any completed job); with `all_tasks`, the whole list as
    it is now.

    Raises
    ------
    Refused
    """
    path = data['farm_tasks']
    blob, commands = read_task_list(ds, path)
    task_ids = None if all_tasks else \
        data.get('farm_failed') or data.get('farm_task_ids')
    if task_ids is not None and blob != data['farm_task_blob']:
        # tasks are named by their line numbers
        raise Refused(
            f'the task list {path} has changed since job '
            f'{data["slurm_job_id"]} ran it, so which of its lines are the '
            f'tasks to run again is not known; give --all-tasks to run the '
            f'list as it is now')
    if task_ids is not None:
        commands = {i: commands[i] for i in task_ids}
    return FarmRequest(path=path, blob=blob, commands=commands,
                       task_ids=task_ids, workers=data.get('farm_workers'),
                       task_timeout=data.get('farm_task_timeout'))
