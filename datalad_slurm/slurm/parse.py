"""Slurm's parsable output read into :class:`TaskStatus` runs: sacct's
``--parsable2`` lines and squeue's ``--Format`` lines, each field asked by
name (:data:`SACCT_FIELDS`, :data:`SQUEUE_FIELDS`) so that a release adding
columns changes nothing here."""

from __future__ import annotations

import functools
import re

from .jobspec import (
    SIZE,
    expand_task_ids,
)
from .status import TaskStatus


SACCT_FIELDS = ('JobID', 'JobIDRaw', 'State', 'ExitCode', 'Submit', 'Start',
                'End', 'Elapsed', 'NodeList', 'MaxRSS', 'MaxVMSize',
                'AllocCPUS', 'TotalCPU', 'ReqMem', 'Reason', 'WorkDir',
                'Cluster')


_JOBID = re.compile(r'^(\d+)(?:_(\d+|\[[^\]]*\]))?(?:\.(.+))?$')


def parse_sacct(out: str) -> dict[tuple[int, int | None], list[TaskStatus]]:
    """sacct's ``--parsable2 --duplicates`` lines (of :data:`SACCT_FIELDS`)
    as runs by (job id, task id), oldest first; a run's batch step gives
    its memory use."""
    runs: dict[tuple[int, int | None], list[TaskStatus]] = {}
    # the allocation lines a step line belongs to, by raw job id
    latest: dict[str, list[TaskStatus]] = {}
    for line in out.splitlines():
        values = line.split('|')
        if len(values) != len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, values))
        match = _JOBID.match(row['JobID'])
        if not match:
            continue
        job_id, task, step = match.groups()
        raw = row['JobIDRaw'].split('.')[0]
        if step:
            # the batch step is where the job script's memory use shows
            if step == 'batch':
                for run in latest.get(raw, []):
                    run.max_rss = value_of(row['MaxRSS']) or run.max_rss
                    run.max_vmsize = value_of(row['MaxVMSize']) or \
                        run.max_vmsize
            continue
        task_ids, pending_range = _task_ids(task)
        latest[raw] = []
        for task_id in task_ids:
            run = TaskStatus(
                task_id=task_id,
                state=row['State'].split()[0] if row['State'] else 'UNKNOWN',
                exit_code=_exit_code(row['ExitCode']),
                raw_job_id=None if pending_range else int(raw),
                submit=value_of(row['Submit']),
                start=value_of(row['Start']), end=value_of(row['End']),
                elapsed=value_of(row['Elapsed']),
                nodes=value_of(row['NodeList']),
                alloc_cpus=int(row['AllocCPUS'])
                if row['AllocCPUS'].isdigit() else None,
                total_cpu=value_of(row['TotalCPU']),
                # right after a job ends sacct can print junk ('16?') here
                req_mem=row['ReqMem'] if SIZE.fullmatch(row['ReqMem'])
                else None,
                reason=value_of(row['Reason']),
                workdir=value_of(row['WorkDir']),
                cluster=value_of(row['Cluster']))
            runs.setdefault((int(job_id), task_id), []).append(run)
            latest[raw].append(run)
    return runs


def _task_ids(task: str | None) -> tuple[list[int | None], bool]:
    """Task ids named by the part after '_' in a job id, and whether they
    are a range of tasks Slurm reports together because none has started."""
    if task is None:
        return [None], False
    if task.startswith('['):
        return expand_task_ids(task.strip('[]')), True
    return [int(task)], False


def value_of(text: str) -> str | None:
    """A field of Slurm's output, None where it says there is no value."""
    return None if text in _NO_VALUE else text


_NO_VALUE = frozenset(('', 'Unknown', 'None', 'None assigned', 'N/A',
                       '(null)'))


def _exit_code(text: str) -> int | None:
    """sacct's "code:signal"; a job killed by a signal counts as failed
    (-1) whatever its code."""
    code, _, signal = text.partition(':')
    if not code.isdigit():
        return None
    return -1 if signal not in ('', '0') else int(code)


SQUEUE_FIELDS = ('JobID', 'ArrayJobID', 'ArrayTaskID', 'State', 'exit_code',
                 'SubmitTime', 'StartTime', 'EndTime', 'TimeUsed',
                 'NodeList', 'Reason', 'WorkDir', 'Cluster', 'RestartCnt',
                 'MinMemory')


def parse_squeue(out: str, wanted: set[int] | None = None,
                 ) -> list[tuple[int, TaskStatus]]:
    """squeue's ``--Format`` lines (of :data:`SQUEUE_FIELDS`, each
    ending in '|') as (array job id, run) pairs; only those of the `wanted`
    job ids, if given (a cluster's other jobs are most of its lines).

    Unpacked by position, and a line of another job dropped at its second
    field: a listing of 10,000 jobs reads each field of each line."""
    runs = []
    width = len(SQUEUE_FIELDS)
    # most of a listing's jobs share their used time and memory request
    # ('0:00', '0'): each is converted once
    elapsed = functools.cache(_elapsed)
    memory_of = functools.cache(
        lambda text: text if SIZE.fullmatch(text) else None)
    for line in out.splitlines():
        values = line.split('|', width)
        if len(values) < width:
            continue
        array_job = values[1]
        if not array_job.isdigit():
            continue
        array_job_id = int(array_job)
        if wanted is not None and array_job_id not in wanted:
            continue
        (job, _, array_task, state, exit_code, submit, start, end, used,
         nodes, reason, workdir, cluster, restarts, memory) = values[:width]
        pending_range = not array_task.isdigit() and array_task != 'N/A'
        task_ids = expand_task_ids(array_task) if pending_range else \
            [None if array_task == 'N/A' else int(array_task)]
        for task_id in task_ids:
            runs.append((array_job_id, TaskStatus(
                task_id=task_id, state=state,
                exit_code=_wait_status_exit_code(exit_code),
                raw_job_id=None if pending_range else int(job),
                submit=None if submit in _NO_VALUE else submit,
                start=None if start in _NO_VALUE else start,
                end=None if end in _NO_VALUE else end,
                elapsed=elapsed(used),
                nodes=None if nodes in _NO_VALUE else nodes,
                reason=None if reason in _NO_VALUE else reason,
                workdir=None if workdir in _NO_VALUE else workdir,
                cluster=None if cluster in _NO_VALUE else cluster,
                restarts=int(restarts) if restarts.isdigit() else 0,
                req_mem=memory_of(memory), from_squeue=True)))
    return runs


def _elapsed(text: str) -> str | None:
    """squeue's "M:SS" or "[D-]H:MM:SS" in sacct's "[D-]HH:MM:SS"."""
    if not value_of(text):
        return None
    days, _, clock = text.rpartition('-')
    parts = clock.split(':')
    parts = ['0'] * (3 - len(parts)) + parts
    clock = ':'.join(p.zfill(2) for p in parts)
    return f'{days}-{clock}' if days else clock


def _wait_status_exit_code(text: str) -> int | None:
    """squeue reports a job's raw wait status (before Slurm 24.11) or, as
    sacct does, "code:signal"; a job killed by a signal has no exit code of
    its own and counts as failed (-1)."""
    if ':' in text:
        return _exit_code(text)
    if not text.isdigit():
        return None
    status = int(text)
    return -1 if status & 0x7f else status >> 8
