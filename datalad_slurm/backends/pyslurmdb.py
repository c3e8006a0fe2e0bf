"""The pyslurm backend: what the Slurm database tells through pyslurm,
mapped to the runs the command-line backend reads from sacct.

The mapping follows what pyslurm 22.5.3 (the release for Slurm 22.05)
returns for real jobs: times as epoch seconds (sacct prints local time),
memory in bytes (sacct: KiB), 0 read as "no value" (so array task 0 has no
task id, and a 0 s job no elapsed time), a pending array range as a hex
bitmask of task ids, and only the latest run of a requeued job.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Iterable

from ..slurm import parse
from ..slurm.status import (
    Expected,
    JobStatus,
    NOTHING_EXPECTED,
    SlurmError,
    SlurmTimeout,
    TaskStatus,
    add_task,
)
from . import cli

lgr = logging.getLogger('datalad.slurm.pyslurm')


class PyslurmBackend:
    """The Slurm database through pyslurm (``pyslurm.db.Jobs``), with
    squeue for what the database does not know yet, and sacct for jobs
    whose latest run does not show who they are."""
    name = 'pyslurm'

    def __init__(self, pyslurm):
        self.pyslurm = pyslurm

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected: dict[int, Expected] | None = None,
              ) -> dict[int, JobStatus]:
        ids = sorted(set(int(i) for i in job_ids))
        expected = expected or {}
        statuses = {i: JobStatus(i) for i in ids}
        unclear = set()
        for job in self._load(ids, timeout):
            job_id = job.array_id or job.id
            if job_id not in statuses:
                continue
            identity = expected.get(job_id, NOTHING_EXPECTED).identity
            for run in runs_of(job):
                if identity is None or identity.begins(run):
                    add_task(statuses[job_id], run)
                else:
                    # requeued (pyslurm shows no earlier runs, nor a
                    # restart count) or another job of the same id
                    unclear.add(job_id)
        if unclear:
            lgr.debug('Asking sacct about jobs whose runs pyslurm cannot '
                      'tell apart: %s', sorted(unclear))
            answered = cli.query(sorted(unclear), timeout=timeout,
                                 expected=expected)
            statuses.update(answered)
        lgr.debug('pyslurm answered for %d jobs', len(ids))
        return cli.complete_with_squeue(statuses, expected, timeout=timeout)

    def _load(self, ids: list[int], timeout: float) -> list:
        """pyslurm's records of the jobs, with the query timeout applied
        (pyslurm's own calls block without one)."""
        db = self.pyslurm.db
        answer: dict = {}

        def load():
            try:
                answer['jobs'] = db.Jobs.load(db.JobFilter(ids=ids))
            except Exception as e:  # pyslurm.RPCError and the like
                answer['error'] = e

        worker = threading.Thread(target=load, daemon=True,
                                  name='datalad-slurm-pyslurm')
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise SlurmTimeout(
                f'the Slurm database did not answer pyslurm within '
                f'{timeout:g} s; try again later (timeout: '
                f'datalad.slurm.query-timeout)')
        if 'error' in answer:
            raise SlurmError(f'pyslurm could not ask the Slurm database: '
                             f'{answer["error"]}') from answer['error']
        jobs = answer['jobs']
        return list(jobs.values() if hasattr(jobs, 'values') else jobs)


def runs_of(job) -> list[TaskStatus]:
    """A ``pyslurm.db.Job`` as the runs the CLI backend reads from sacct:
    one, or one per task of a pending array range."""
    waiting = getattr(job, 'array_tasks_waiting', None)
    if job.array_id and waiting:
        task_ids, raw = _bitmask_ids(waiting), None
    elif job.array_id:
        # pyslurm reads 0 as "no value": the task without an id is task 0
        task_ids, raw = [job.array_task_id or 0], job.id
    else:
        task_ids, raw = [None], job.id
    batch = (getattr(job, 'steps', None) or {}).get('batch')
    batch_stats = getattr(batch, 'stats', None)
    return [TaskStatus(
        task_id=task_id,
        state=(job.state or 'UNKNOWN').split()[0],
        exit_code=-1 if job.exit_code_signal else job.exit_code,
        raw_job_id=raw,
        submit=_local_time(getattr(job, 'submit_time', None)),
        start=_local_time(job.start_time),
        end=_local_time(job.end_time),
        elapsed=_duration(job.elapsed_time),
        nodes=parse.value_of(job.nodelist or ''),
        max_rss=_kib(getattr(batch_stats, 'max_resident_memory', None)),
        max_vmsize=_kib(getattr(batch_stats, 'max_virtual_memory', None)),
        alloc_cpus=getattr(job, 'cpus', None) or None,
        # pyslurm 22.5 gives whole seconds per job, milliseconds of some
        # steps: nothing that matches sacct's TotalCPU
        total_cpu=None,
        req_mem=f'{job.memory}M' if getattr(job, 'memory', None) else None,
        reason=parse.value_of(getattr(job, 'state_reason', None) or ''),
        workdir=getattr(job, 'working_directory', None),
        cluster=getattr(job, 'cluster', None),
    ) for task_id in task_ids]


def _bitmask_ids(mask: str) -> list[int]:
    """Task ids of a hex bitmask such as '0xE' (tasks 1-3)."""
    bits = int(mask.split('%')[0], 16)
    return [i for i in range(bits.bit_length()) if bits >> i & 1]


def _local_time(timestamp) -> str | None:
    """Epoch seconds as sacct prints them: local time, no zone."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp).strftime('%Y-%m-%dT%H:%M:%S')


def _duration(seconds) -> str:
    """Seconds as sacct's Elapsed: [D-]HH:MM:SS (pyslurm gives None for 0).
    """
    days, rest = divmod(int(seconds or 0), 86400)
    clock = f'{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}'
    return f'{days}-{clock}' if days else clock


def _kib(value) -> str | None:
    """Bytes in sacct's notation (KiB, 'K'); None for 0, not sampled."""
    return f'{int(value) // 1024}K' if value else None
