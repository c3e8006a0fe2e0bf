"""The environment Slurm gives a job's processes: which job and array task
a process runs in, and what of it a job submitted from inside a job must
not inherit."""

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


# sbatch reads SBATCH_* as options, and the job it submits inherits every
# SLURM_* of the allocation it is submitted from (--export=ALL): stale
# CPU, memory and task counts of another job, which srun in the new job
# would obey
_OWN_PREFIXES = ('SLURM_', 'SBATCH_')


def submission_environment(environ: dict[str, str], keep: list[str],
                           ) -> dict[str, str] | None:
    """The environment to run sbatch in from a process with `environ`: in a
    Slurm job, without the job's own SLURM_* and SBATCH_* variables except
    those named in `keep` (such as SLURM_CONF, which a site may need);
    None (the environment as it is) outside a job."""
    if 'SLURM_JOB_ID' not in environ:
        return None
    return {name: value for name, value in environ.items()
            if not name.startswith(_OWN_PREFIXES) or name in keep}
