"""The environment Slurm gives a job's processes: which job and array task
a process runs in."""

from __future__ import annotations

import os


def own_job() -> tuple[int, int | None] | None:
    """(job id, array task id) of the Slurm job this process runs in."""
    env = os.environ
    if env.get('SLURM_ARRAY_JOB_ID') and env.get('SLURM_ARRAY_TASK_ID'):
        return int(env['SLURM_ARRAY_JOB_ID']), int(env['SLURM_ARRAY_TASK_ID'])
    if env.get('SLURM_JOB_ID'):
        return int(env['SLURM_JOB_ID']), None
    return None


def array_job_of(target: str) -> str:
    """The array job id for `target` if it is this array task's own job id
    ($SLURM_JOB_ID inside an array task), else `target` unchanged."""
    own = own_job()
    if own and own[1] is not None and target == os.environ.get('SLURM_JOB_ID'):
        return str(own[0])
    return target
