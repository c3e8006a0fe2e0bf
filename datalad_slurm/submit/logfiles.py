"""The Slurm log files of a submitted job, as Slurm will name them."""

from __future__ import annotations

import os.path as op

from ..repo.paths import is_outside
from ..slurm.jobspec import (
    log_patterns,
    placeholder_values,
    resolve_pattern,
    script_head,
)


def log_files(ds, backend, argv: list[str], job_id: int, *,
              timeout: float) -> dict:
    """Slurm facts for the schedule record: the job's array task ids, what
    tells it from other jobs of the same id (cluster, submit time, work
    directory), and its stdout/stderr files relative to the dataset root.

    Placeholders that only a running task can fill in (``%j`` of an array
    task, ``%N``) stay in ``slurm_output_patterns``, which ``finish``
    resolves with what sacct reports.  `backend`: the submitter that
    submitted the job (see :func:`.slurm.backends.submitter`).
    """
    job = backend.describe_submitted(job_id, timeout=timeout)
    options, script_lines = argv, None
    script_index = _script_index(argv, job.workdir, job.command)
    if script_index is not None:
        options = argv[:script_index]
        script_lines = script_head(op.join(job.workdir, argv[script_index]))
    patterns = []
    for pattern in log_patterns(options, script_lines,
                                is_array=job.array_tasks is not None):
        rel = op.relpath(op.normpath(op.join(job.workdir, pattern)), ds.path)
        # logs outside the dataset are not ours to save
        if not is_outside(rel) and rel not in patterns:
            patterns.append(rel)
    resolved = []
    for task in job.array_tasks or [None]:
        # an array task's own job id is known only once it runs
        values = placeholder_values(
            job_id, task, job_id if task is None else None,
            name=job.name, user=job.user)
        for pattern in patterns:
            path = resolve_pattern(pattern, values)
            if path is not None and path not in resolved:
                resolved.append(path)
    return {
        'slurm_array': job.array_tasks,
        'slurm_cluster': job.cluster,
        'slurm_submit_time': job.submit_time,
        'slurm_workdir': job.workdir,
        'slurm_outputs': resolved,
        'slurm_output_patterns': patterns,
    }


def _script_index(argv: list[str], workdir: str, command: str | None,
                  ) -> int | None:
    """Where the job script is in `argv`, by Slurm's word: its command is
    the script's path followed by the script's arguments."""
    if not command:
        return None
    for i, arg in enumerate(argv[1:], start=1):
        path = op.normpath(op.join(workdir, arg))
        if command == path or command.startswith(path + ' '):
            return i
    return None
