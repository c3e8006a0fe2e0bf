"""Access to Slurm through its command-line tools.

Everything that talks to Slurm goes through :func:`call`, which runs one
program with an argument list and a timeout.  The rest of the package only
sees :class:`JobStatus` objects and never parses Slurm's output itself.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess
from dataclasses import dataclass
from typing import (
    Iterable,
    Sequence,
)

from looseversion import LooseVersion

from .jobspec import expand_task_ids
from .status import (
    JobStatus,
    SlurmError,
    TaskStatus,
    add_task,
)

lgr = logging.getLogger('datalad.slurm.cli')

SACCT_FIELDS = ('JobID', 'JobIDRaw', 'State', 'ExitCode', 'Start', 'End',
                'Elapsed', 'NodeList', 'MaxRSS')

# sacct and squeue take job ids as one comma-separated argument; keep it far
# below the kernel's argument size limit.
MAX_IDS_PER_QUERY = 2000


def call(argv: Sequence[str], *, timeout: float, cwd: str | None = None,
         ) -> str:
    """Run a Slurm program and return its standard output.

    Raises
    ------
    SlurmError
      With the program's own error message when it fails, is missing, or
      does not end within `timeout` seconds.
    """
    lgr.debug('Calling %s (cwd=%s)', argv, cwd)
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, timeout=timeout, text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        raise SlurmError(
            f'{argv[0]} not found: is this a Slurm cluster node, and is '
            f'Slurm on PATH?') from e
    except subprocess.TimeoutExpired as e:
        raise SlurmError(
            f'{argv[0]} did not answer within {timeout:g} s; Slurm may be '
            f'overloaded or unreachable, try again later (timeout: '
            f'datalad.slurm.query-timeout)') from e
    if proc.returncode:
        raise SlurmError(
            proc.stderr.strip() or
            f'{argv[0]} exited with code {proc.returncode}')
    return proc.stdout


# squeue --Format with per-field suffixes ("Name:0|") needs this release
MINIMUM_VERSION = '20.02'


@functools.lru_cache(maxsize=None)
def version(timeout: float) -> LooseVersion:
    """Slurm's version, as ``sbatch --version`` reports it, read once."""
    out = call(['sbatch', '--version'], timeout=timeout)
    match = re.search(r'(\d+(?:\.\d+)+)', out)
    if not match:
        raise SlurmError(f'cannot tell the Slurm version from {out!r}')
    return LooseVersion(match.group(1))


def require_version(timeout: float, needed: str = MINIMUM_VERSION):
    """Raise SlurmError unless Slurm is at least version `needed`."""
    found = version(timeout)
    if found < LooseVersion(needed):
        raise SlurmError(
            f'Slurm {found} is too old for datalad-slurm, which needs '
            f'Slurm {needed} or newer')



def submit(argv: Sequence[str], *, cwd: str, timeout: float) -> int:
    """Submit a batch job with ``sbatch --parsable``; return its job id."""
    out = call(_with_parsable(argv), cwd=cwd, timeout=timeout).strip()
    # --parsable prints "jobid" or "jobid;cluster"
    line = out.splitlines()[-1] if out else ''
    job_id = line.partition(';')[0]
    if not job_id.isdigit():
        raise SlurmError(f'sbatch gave no job id, it printed: {out!r}')
    return int(job_id)


def _with_parsable(argv: Sequence[str]) -> list[str]:
    argv = list(argv)
    if '--parsable' not in argv:
        argv.insert(1, '--parsable')
    return argv


@dataclass
class Submitted:
    """What Slurm tells of a job just submitted."""
    job_id: int
    array_tasks: list[int] | None
    cluster: str | None
    name: str
    user: str
    workdir: str
    # the job script's path and arguments, joined by spaces
    command: str | None


_SUBMITTED_FIELDS = ('ArrayTaskID', 'Cluster', 'Name', 'UserName',
                     'WorkDir', 'Command')


def describe_submitted(job_id: int, *, timeout: float) -> Submitted:
    """Ask squeue about a job just submitted (it lists ended jobs too, for
    Slurm's MinJobAge)."""
    out = call(['squeue', '--noheader', '--states=all', f'--jobs={job_id}',
                '--Format=' + ','.join(f'{f}:0|' for f in _SUBMITTED_FIELDS)],
               timeout=timeout)
    rows = [dict(zip(_SUBMITTED_FIELDS, line.split('|')))
            for line in out.splitlines() if line.strip()]
    if not rows:
        raise SlurmError(f'squeue knows no job {job_id} just submitted')
    first = rows[0]
    tasks = sorted({t for row in rows if row['ArrayTaskID'] != 'N/A'
                    for t in expand_task_ids(row['ArrayTaskID'])})
    return Submitted(
        job_id=job_id,
        array_tasks=tasks or None,
        cluster=_value(first['Cluster']),
        name=first['Name'],
        user=first['UserName'],
        workdir=first['WorkDir'],
        command=None if first['Command'] in ('', '(null)') else
        first['Command'])


def query(job_ids: Iterable[int], *, timeout: float,
          expected_tasks: dict[int, list[int] | None] | None = None,
          ) -> dict[int, JobStatus]:
    """Ask Slurm about many jobs at once.

    One ``sacct`` call per :data:`MAX_IDS_PER_QUERY` jobs; jobs that sacct
    does not know (it lags behind just-submitted jobs and forgets old ones)
    or sees running are asked of ``squeue``.  A job neither knows is
    returned without tasks (phase 'lost').

    Parameters
    ----------
    expected_tasks
      Array task ids per job as recorded at submission; tasks sacct did not
      report are listed in ``JobStatus.missing_tasks``.
    """
    ids = sorted(set(int(i) for i in job_ids))
    expected_tasks = expected_tasks or {}
    statuses = {i: JobStatus(i) for i in ids}
    for chunk in _chunks(ids, MAX_IDS_PER_QUERY):
        out = call(['sacct', '--parsable2', '--noheader', '--duplicates',
                    '--starttime=1970-01-01',
                    '--format=' + ','.join(SACCT_FIELDS),
                    '--jobs=' + ','.join(map(str, chunk))],
                   timeout=timeout)
        _merge_sacct(out, statuses)
    return complete_with_squeue(statuses, expected_tasks, timeout=timeout)


def complete_with_squeue(statuses: dict[int, JobStatus],
                         expected_tasks: dict[int, list[int] | None], *,
                         timeout: float) -> dict[int, JobStatus]:
    """Ask squeue about whatever the accounting database does not know or
    still sees running: it lags behind slurmctld, by seconds for array
    tasks."""
    _drop_untasked(statuses, expected_tasks)
    unknown = [i for i, s in statuses.items()
               if not s.known or _missing(s, expected_tasks.get(i))
               or any(t.running for t in s.tasks)]
    for chunk in _chunks(unknown, MAX_IDS_PER_QUERY):
        _merge_squeue(chunk, statuses, timeout=timeout)
    _drop_untasked(statuses, expected_tasks)
    for job_id, status in statuses.items():
        status.missing_tasks = _missing(status, expected_tasks.get(job_id))
    return statuses


def _drop_untasked(statuses: dict[int, JobStatus],
                   expected_tasks: dict[int, list[int] | None]):
    # Right after submission an array job can show up as one record without
    # task ids; its tasks count as not reported yet.
    for job_id, status in statuses.items():
        if expected_tasks.get(job_id):
            status.tasks = [t for t in status.tasks if t.task_id is not None]


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _missing(status: JobStatus, expected: list[int] | None) -> list[int]:
    if not expected or not status.tasks:
        return []
    seen = {t.task_id for t in status.tasks}
    return [t for t in expected if t not in seen]


_JOBID = re.compile(r'^(\d+)(?:_(\d+|\[[^\]]*\]))?(?:\.(.+))?$')


def _merge_sacct(out: str, statuses: dict[int, JobStatus]):
    for line in out.splitlines():
        values = line.split('|')
        if len(values) != len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, values))
        match = _JOBID.match(row['JobID'])
        if not match:
            continue
        job_id, task, step = match.groups()
        status = statuses.get(int(job_id))
        if status is None:
            continue
        if step:
            # the batch step is where the job script's memory use shows
            if step == 'batch' and row['MaxRSS']:
                for t in status.tasks:
                    if str(t.raw_job_id) == row['JobIDRaw'].split('.')[0]:
                        t.max_rss = row['MaxRSS']
            continue
        state = row['State'].split()[0] if row['State'] else 'UNKNOWN'
        exit_code = _exit_code(row['ExitCode'])
        task_ids, pending_range = _task_ids(task)
        for task_id in task_ids:
            add_task(status, TaskStatus(
                task_id=task_id, state=state, exit_code=exit_code,
                raw_job_id=None if pending_range else int(row['JobIDRaw']),
                start=_value(row['Start']), end=_value(row['End']),
                elapsed=_value(row['Elapsed']),
                nodes=_value(row['NodeList'])))


def _task_ids(task: str | None) -> tuple[list[int | None], bool]:
    """Task ids named by the part after '_' in a job id, and whether they
    are a range of tasks Slurm reports together because none has started."""
    if task is None:
        return [None], False
    if task.startswith('['):
        return expand_task_ids(task.strip('[]')), True
    return [int(task)], False


def _value(text: str) -> str | None:
    return None if text in ('', 'Unknown', 'None', 'None assigned', 'N/A') \
        else text


def _exit_code(text: str) -> int | None:
    """sacct's "code:signal"; a job killed by a signal counts as failed
    (-1) whatever its code."""
    code, _, signal = text.partition(':')
    if not code.isdigit():
        return None
    return -1 if signal not in ('', '0') else int(code)


_SQUEUE_FIELDS = ('JobID', 'ArrayJobID', 'ArrayTaskID', 'State', 'exit_code',
                  'StartTime', 'EndTime', 'TimeUsed', 'NodeList')


def _merge_squeue(job_ids: list[int], statuses: dict[int, JobStatus], *,
                  timeout: float):
    """Fill in what slurmctld knows (for MinJobAge after a job ended) where
    sacct knows nothing or only an older, still running state."""
    try:
        out = call(['squeue', '--noheader', '--states=all',
                    '--jobs=' + ','.join(map(str, job_ids)),
                    '--Format=' + ','.join(f'{f}:0|' for f in _SQUEUE_FIELDS)],
                   timeout=timeout)
    except SlurmError as e:
        # squeue refuses the whole call when it knows none of the jobs
        if 'Invalid job id' in str(e):
            return
        raise
    for line in out.splitlines():
        row = dict(zip(_SQUEUE_FIELDS, line.split('|')))
        if not row.get('ArrayJobID', '').isdigit():
            continue
        status = statuses.get(int(row['ArrayJobID']))
        if status is None:
            continue
        array_task = row['ArrayTaskID']
        pending_range = not array_task.isdigit() and array_task != 'N/A'
        task_ids = expand_task_ids(array_task) if pending_range else \
            [None if array_task == 'N/A' else int(array_task)]
        exit_code = _wait_status_exit_code(row['exit_code'])
        for task_id in task_ids:
            known = next((t for t in status.tasks if t.task_id == task_id),
                         None)
            if known is not None and not known.running:
                continue
            add_task(status, TaskStatus(
                task_id=task_id, state=row['State'], exit_code=exit_code,
                raw_job_id=None if pending_range else int(row['JobID']),
                start=_value(row['StartTime']), end=_value(row['EndTime']),
                elapsed=_elapsed(row['TimeUsed']),
                nodes=_value(row['NodeList'])))


def _elapsed(text: str) -> str | None:
    """squeue's "M:SS" or "[D-]H:MM:SS" in sacct's "[D-]HH:MM:SS"."""
    if not _value(text):
        return None
    days, _, clock = text.rpartition('-')
    parts = clock.split(':')
    parts = ['0'] * (3 - len(parts)) + parts
    clock = ':'.join(p.zfill(2) for p in parts)
    return f'{days}-{clock}' if days else clock


def _wait_status_exit_code(text: str) -> int | None:
    """squeue reports a job's raw wait status; a job killed by a signal has
    no exit code of its own and counts as failed (-1)."""
    if not text.isdigit():
        return None
    status = int(text)
    return -1 if status & 0x7f else status >> 8
