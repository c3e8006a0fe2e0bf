"""A job's Slurm log files (stdout and stderr), which its FINISH commit
saves: named as far as the submission tells (:func:`at_submission`, kept
in the SCHEDULE record), the rest once Slurm has said where and as what
each task ran (:func:`resolved`); and those a job submitted again writes
anew (:func:`fixed`).
"""

from __future__ import annotations

import os.path as op
import re

from ..repo.paths import is_outside
from ..slurm.jobspec import (
    expand_hostlist,
    log_patterns,
    pattern_regex,
    placeholder_values,
    resolve_pattern,
    script_head,
)
from ..slurm.status import JobStatus
from .format import Record


def at_submission(ds, backend, argv: list[str], job_id: int, *,
                  timeout: float, cluster: str | None = None) -> dict:
    """Slurm facts for the schedule record: the job's array task ids, what
    tells it from other jobs of the same id (cluster, submit time, work
    directory), and its stdout/stderr files relative to the dataset root.

    Placeholders that only a running task can fill in (``%j`` of an array
    task, ``%N``) stay in ``slurm_output_patterns``, which ``finish``
    resolves with what sacct reports.  `backend`: the submitter that
    submitted the job (see :func:`datalad_slurm.backends.submitter`);
    `cluster`: the one it was sent to with -M.
    """
    job = backend.describe_submitted(job_id, timeout=timeout,
                                     cluster=cluster)
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


def resolved(record: Record, job: JobStatus) -> list[str]:
    """The job's Slurm log files: those resolved at submission, and the
    patterns only sacct's answer (a task's own job id, its node) resolves.
    """
    files = list(record.data.get('slurm_outputs') or [])
    for task in job.tasks:
        # %N: the node the batch script ran on, the first of the job's
        values = placeholder_values(
            record.job_id, task.task_id, task.raw_job_id,
            node=next(iter(expand_hostlist(task.nodes or '')), None))
        for pattern in record.data.get('slurm_output_patterns') or []:
            path = resolve_pattern(pattern, values)
            if path is not None and path not in files:
                files.append(path)
    return files


def fixed(data: dict) -> list[str]:
    """Old log files the new job will write again: those whose names do
    not depend on the job id."""
    fixed = [p for p in data.get('slurm_output_patterns') or []
             if not any(f'%{c}' in p for c in 'jAJ')]
    return [f for f in data.get('slurm_outputs') or []
            if any(pattern_regex(p).match(f) for p in fixed)]


def task_logs(data: dict, task: str) -> list[str]:
    """The log files a record names of one task (by its key in the record's
    ``state``: '' for a job that is no array, which has them all; a farm
    job's task has a log of its own)."""
    files = data.get('slurm_outputs') or []
    if task and data.get('farm_log_dir'):
        return [f"{data['farm_log_dir']}/{task}.log"]
    if not task or not data.get('slurm_array'):
        return list(files)
    patterns = [re.sub(r'%(\d*)a',
                       lambda m: task.zfill(int(m.group(1) or 0)), p)
                for p in data.get('slurm_output_patterns') or []]
    return [f for f in files
            if any(pattern_regex(p).match(f) for p in patterns)]
