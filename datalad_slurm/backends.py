"""Which way to ask Slurm about jobs: its command-line tools, or pyslurm.

Both backends answer :func:`query` with the same :class:`~.slurm.JobStatus`
objects, so that a job's phase (running, complete, failed, lost) does not
depend on the backend.  Submission always uses ``sbatch``.

pyslurm links against one release of libslurm and talks Slurm's wire
protocol, so it is only used when its version matches the cluster's Slurm
(major.minor).  ``datalad.slurm.backend``: ``cli`` (the default),
``pyslurm``, or ``auto`` (pyslurm where it matches, the CLI otherwise).
"""

from __future__ import annotations

import importlib
import logging
from datetime import (
    datetime,
    timezone,
)
from typing import Iterable

from looseversion import LooseVersion

from . import (
    config,
    slurm,
)

lgr = logging.getLogger('datalad.slurm.backends')


class CliBackend:
    """sacct for everything, squeue for what sacct does not know yet."""
    name = 'cli'

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected_tasks: dict | None = None,
              ) -> dict[int, slurm.JobStatus]:
        return slurm.query(job_ids, timeout=timeout,
                           expected_tasks=expected_tasks)


class PyslurmBackend:
    """The Slurm database through pyslurm (``pyslurm.db.Jobs``), with
    squeue for what the database does not know yet."""
    name = 'pyslurm'

    def __init__(self, pyslurm):
        self.pyslurm = pyslurm

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected_tasks: dict | None = None,
              ) -> dict[int, slurm.JobStatus]:
        ids = sorted(set(int(i) for i in job_ids))
        db = self.pyslurm.db
        jobs = db.Jobs.load(db.JobFilter(ids=ids))
        statuses = {i: slurm.JobStatus(i) for i in ids}
        for job in (jobs.values() if hasattr(jobs, 'values') else jobs):
            status = statuses.get(job.array_id or job.id)
            if status is not None:
                slurm.add_task(status, task_from_pyslurm(job))
        return slurm.complete_with_squeue(statuses, expected_tasks or {},
                                          timeout=timeout)


def task_from_pyslurm(job) -> slurm.TaskStatus:
    """A ``pyslurm.db.Job`` as the task status the CLI backend gives."""
    return slurm.TaskStatus(
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


def select(ds) -> CliBackend | PyslurmBackend:
    """The backend configured for `ds` (``datalad.slurm.backend``).

    Raises
    ------
    SlurmError
      If pyslurm was asked for explicitly and cannot be used.
    """
    choice = config.get(ds, config.BACKEND)
    if choice == 'cli':
        return CliBackend()
    try:
        pyslurm = importlib.import_module('pyslurm')
        usable, why = _matches(pyslurm, config.get(ds, config.QUERY_TIMEOUT))
    except ImportError as e:
        usable, why = False, f'pyslurm cannot be imported ({e})'
    if usable:
        return PyslurmBackend(pyslurm)
    if choice == 'pyslurm':
        raise slurm.SlurmError(
            f'datalad.slurm.backend is pyslurm, but {why}; install the '
            f'pyslurm release matching the cluster, or set the backend to '
            f'auto or cli')
    lgr.debug('Using the Slurm command-line tools: %s', why)
    return CliBackend()


def _matches(pyslurm, timeout: float) -> tuple[bool, str]:
    """Whether pyslurm was built for the cluster's Slurm release."""
    theirs = LooseVersion(str(getattr(pyslurm, '__version__', '0')))
    ours = slurm.version(timeout)
    if theirs.version[:2] != ours.version[:2]:
        return False, (f'pyslurm {theirs} is built for another Slurm than '
                       f'this cluster\'s {ours}')
    return True, ''
