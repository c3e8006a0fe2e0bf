"""Access to Slurm through its command-line tools.

Everything that talks to Slurm goes through :func:`call`, which runs one
program with an argument list and a timeout;
:mod:`datalad_slurm.slurm.parse` reads what sacct and squeue print.  The
rest of the package only sees :class:`JobStatus` objects and never parses
Slurm's output itself.
"""

from __future__ import annotations

import functools
import getpass
import logging
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import (
    datetime,
    timedelta,
)
from typing import (
    Iterable,
    Sequence,
)

from looseversion import LooseVersion

from ..slurm.jobspec import expand_task_ids
from ..slurm.parse import (
    SACCT_FIELDS,
    SQUEUE_FIELDS,
    parse_sacct,
    parse_squeue,
    value_of,
)
from ..slurm.site import (
    Site,
    parse_config,
)
from ..slurm.status import (
    CLOCK_SKEW,
    RESTARTING_STATES,
    SUBMISSION_WINDOW,
    AccountingUnavailable,
    Expected,
    JobStatus,
    NOTHING_EXPECTED,
    NoAccounting,
    SlurmError,
    SlurmTimeout,
    TaskStatus,
    add_task,
    pick_run,
    slurm_time,
)

lgr = logging.getLogger('datalad.slurm.cli')

# sacct takes job ids as one comma-separated argument; keep it far
# below the kernel's argument size limit.
MAX_IDS_PER_QUERY = 2000


def call(argv: Sequence[str], *, timeout: float, cwd: str | None = None,
         env: dict[str, str] | None = None) -> str:
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
            list(argv), cwd=cwd, env=env, timeout=timeout, text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        raise SlurmError(
            f'{argv[0]} not found: is this a Slurm cluster node, and is '
            f'Slurm on PATH?') from e
    except subprocess.TimeoutExpired as e:
        raise SlurmTimeout(
            f'{argv[0]} did not answer within {timeout:g} s; Slurm may be '
            f'overloaded or unreachable, try again later (timeout: '
            f'datalad.slurm.query-timeout)') from e
    if proc.returncode:
        raise failure(argv[0], proc.stderr, proc.returncode)
    return proc.stdout


def failure(program: str, stderr: str, code: int) -> SlurmError:
    """The error for a Slurm program that failed: for a daemon that cannot
    be reached, one that names it and what to do."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = lines[-1] if lines else f'{program} exited with code {code}'
    if 'authentication' in stderr.lower() or 'munge' in stderr.lower():
        # sacct too says "Problem talking to the database" then
        return SlurmError(
            f'Slurm refused to authenticate this request ({said}); munged, '
            f'which signs every request to Slurm, must be running on this '
            f'machine with the cluster\'s key: ask the cluster\'s admins, '
            f'or try again once it is back')
    if 'accounting storage is disabled' in stderr:
        return NoAccounting(
            'this cluster keeps no accounting database (its slurm.conf '
            'sets no AccountingStorageType=accounting_storage/slurmdbd)')
    if 'Problem talking to the database' in stderr:
        return AccountingUnavailable(
            f'Slurm\'s accounting database (slurmdbd) cannot be reached '
            f'({said})')
    if 'Socket timed out' in stderr:
        # slurmctld got the request and did not answer in time: what it
        # was asked to do may have been done
        return SlurmTimeout(
            f'the Slurm controller is too busy to answer ({said}); try '
            f'again later')
    limit = _SUBMIT_LIMIT.search(stderr)
    if limit:
        return SlurmError(
            f'Slurm refused the job: it would go beyond this cluster\'s '
            f'limit on the jobs (each array task counts) one may have queued '
            f'or running at once ({limit.group(0)}, sacctmgr\'s '
            f'MaxSubmitJobs); schedule it again once some of your jobs have '
            f'ended (squeue --me), or as several smaller arrays')
    if 'Unable to contact slurm controller' in stderr:
        return SlurmError(
            f'the Slurm controller (slurmctld) cannot be reached ({said}); '
            f'try again once it is back (scontrol ping tells)')
    return SlurmError('\n'.join(lines) or said)


# sbatch's reason for a submission beyond MaxSubmitJobs of an association
# or a QOS (AssocMaxSubmitJobLimit, QOSMaxSubmitJobPerUserLimit, ...)
_SUBMIT_LIMIT = re.compile(r'\b(?:Assoc|QOS)\w*Submit\w*Limit\b')


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


_site: Site | None = None


def site(timeout: float) -> Site:
    """The cluster's settings that datalad-slurm relies on, read once a
    process."""
    global _site
    if _site is None:
        _site = Site.of_config(parse_config(
            call(['scontrol', 'show', 'config'], timeout=timeout)))
    return _site


def submit(argv: Sequence[str], *, cwd: str, timeout: float,
           env: dict[str, str] | None = None) -> int:
    """Submit a batch job with ``sbatch --parsable`` (in `env`, None: this
    process's environment); return its job id."""
    out = call(_with_parsable(argv), cwd=cwd, timeout=timeout,
               env=env).strip()
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
    # when slurmctld accepted the job, in its local time
    submit_time: str | None


_SUBMITTED_FIELDS = ('ArrayTaskID', 'Cluster', 'Name', 'UserName',
                     'WorkDir', 'Command', 'SubmitTime')


def describe_submitted(job_id: int, *, timeout: float,
                       cluster: str | None = None) -> Submitted:
    """Ask squeue about a job just submitted (it lists ended jobs too, for
    Slurm's MinJobAge), on `cluster` (None: this machine's)."""
    out = call(['squeue', *on(cluster), '--noheader', '--states=all',
                f'--jobs={job_id}',
                '--Format=' + ','.join(f'{f}:0|' for f in _SUBMITTED_FIELDS)],
               timeout=timeout)
    rows = [dict(zip(_SUBMITTED_FIELDS, line.split('|')))
            for line in out.splitlines()
            if line.strip() and not line.startswith(CLUSTER_HEADER)]
    if not rows:
        raise SlurmError(f'squeue knows no job {job_id} just submitted')
    first = rows[0]
    tasks = sorted({t for row in rows if row['ArrayTaskID'] != 'N/A'
                    for t in expand_task_ids(row['ArrayTaskID'])})
    return Submitted(
        job_id=job_id,
        array_tasks=tasks or None,
        cluster=value_of(first['Cluster']),
        name=first['Name'],
        user=first['UserName'],
        workdir=first['WorkDir'],
        command=None if first['Command'] in ('', '(null)') else
        first['Command'],
        submit_time=value_of(first['SubmitTime']))


def on(cluster: str | None) -> list[str]:
    """The option that sends a Slurm tool's question to `cluster`; none
    for this machine's, which needs no slurmdbd to be found."""
    return [f'--clusters={cluster}'] if cluster else []


# the line squeue, sinfo and sacctmgr begin the answer of each cluster with
# where they are asked with --clusters
CLUSTER_HEADER = 'CLUSTER: '


def query(job_ids: Iterable[int], *, timeout: float,
          expected: dict[int, Expected] | None = None,
          ) -> dict[int, JobStatus]:
    """Ask Slurm about many jobs at once: those of each cluster they run
    on together (see :func:`query_cluster`)."""
    expected = expected or {}
    by_cluster: dict[str | None, list[int]] = {}
    for job_id in set(int(i) for i in job_ids):
        by_cluster.setdefault(
            expected.get(job_id, NOTHING_EXPECTED).cluster, []).append(job_id)
    statuses = {}
    for cluster, ids in sorted(by_cluster.items(),
                               key=lambda item: item[0] or ''):
        statuses.update(query_cluster(ids, timeout=timeout,
                                      expected=expected, cluster=cluster))
    return statuses


def query_cluster(job_ids: Iterable[int], *, timeout: float,
                  expected: dict[int, Expected] | None = None,
                  cluster: str | None = None) -> dict[int, JobStatus]:
    """Ask Slurm about many jobs at once.

    slurmctld first (``squeue``, see :func:`squeue_runs`): a job it
    reports queued or running on every task is answered by that alone.
    The others are asked of the database, one ``sacct`` call per
    :data:`MAX_IDS_PER_QUERY` jobs, and what sacct does not know (it lags
    behind just-submitted jobs and forgets old ones) or sees running is
    taken from slurmctld's answer.  Of the runs Slurm reports
    under a job's id, only the recorded job's count (see
    :class:`~datalad_slurm.slurm.status.Identity`); a job nobody reports
    under its identity is returned without tasks (phase 'lost').

    Parameters
    ----------
    expected
      What each job's schedule record says of it: array task ids (tasks
      Slurm did not report are listed in ``JobStatus.missing_tasks``) and
      its identity.
    cluster
      The cluster all of `job_ids` run on, None for this machine's.
    """
    ids = sorted(set(int(i) for i in job_ids))
    expected = expected or {}
    try:
        runs = squeue_runs(ids, timeout=timeout, cluster=cluster)
    except SlurmError as e:
        # jobs that ended long ago need only the database
        lgr.warning('%s; asking the accounting database first', e)
        runs = None
    live = _still_running(ids, runs or [], expected)
    ids = [i for i in ids if i not in live]
    statuses = {i: JobStatus(i) for i in ids}
    try:
        _ask_sacct(statuses, ids, expected, timeout, cluster)
    except NoAccounting as e:
        # slurmctld is all there is: a job it does not list has ended and
        # been forgotten, and it never knew the memory and CPU use
        lgr.debug('%s; asking slurmctld (squeue) only', e)
        for status in [*statuses.values(), *live.values()]:
            status.unknown_to = UNKNOWN_WITHOUT_ACCOUNTING
            status.not_known = NOT_KNOWN_WITHOUT_ACCOUNTING
        complete_with_squeue(statuses, expected, timeout=timeout, runs=runs,
                             cluster=cluster)
        return {**statuses, **live}
    except AccountingUnavailable as e:
        # slurmctld still holds the jobs that are queued, running, or ended
        # within MinJobAge; of the others nothing can be told now
        lgr.warning('%s; asking slurmctld (squeue) only', e)
        for status in statuses.values():
            status.tasks = []
            status.unanswered = (
                f'{e}, and slurmctld does not list it (any more); finish '
                f'it again once the database is back')
        complete_with_squeue(statuses, expected, timeout=timeout, runs=runs,
                             cluster=cluster)
        return {**statuses, **live}
    complete_with_squeue(statuses, expected, timeout=timeout, runs=runs,
                         cluster=cluster)
    # jobs that ended a moment ago: slurmctld knows, the database not yet;
    # its record (CPU time, memory) is worth one more second
    lagging = [i for i, s in statuses.items()
               if any(t.from_squeue and not t.running for t in s.tasks)]
    if lagging:
        time.sleep(SACCT_LAG)
        fresh = {i: JobStatus(i) for i in lagging}
        _ask_sacct(fresh, lagging, expected, timeout, cluster)
        _drop_untasked(fresh, expected)
        for job_id, status in fresh.items():
            known = {t.task_id: t for t in statuses[job_id].tasks}
            for task in status.tasks:
                if not task.running:
                    # the database may still lack the request
                    if task.req_mem is None and task.task_id in known:
                        task.req_mem = known[task.task_id].req_mem
                    add_task(statuses[job_id], task)
    return {**statuses, **live}


UNKNOWN_WITHOUT_ACCOUNTING = (
    'slurmctld (squeue), the only one to ask on this cluster, which keeps '
    'no accounting database and forgets a job MinJobAge after its end (run '
    'datalad finish as the job script\'s last line, or finish --wait, to '
    'finish jobs before that)')
NOT_KNOWN_WITHOUT_ACCOUNTING = (
    'memory and CPU use (max_rss, max_vmsize, total_cpu): this cluster '
    'keeps no accounting database')


def _still_running(ids: list[int], runs: list[tuple[int, TaskStatus]],
                   expected: dict[int, Expected]) -> dict[int, JobStatus]:
    """The jobs of which slurmctld reports every task queued or running
    (and none starting again): its word is the latest, and the database,
    which is slow to ask about thousands of jobs, would add nothing."""
    statuses = {i: JobStatus(i) for i in ids}
    merge_squeue(statuses, runs, expected)
    _drop_untasked(statuses, expected)
    return {i: s for i, s in statuses.items()
            if s.tasks and not _missing(s, expected.get(i)) and all(
                t.running and t.state not in RESTARTING_STATES
                for t in s.tasks)}


# seconds the accounting database may lag behind slurmctld
SACCT_LAG = 1.0


def _ask_sacct(statuses: dict[int, JobStatus], ids: list[int],
               expected: dict[int, Expected], timeout: float,
               cluster: str | None = None):
    for chunk in _chunks(ids, MAX_IDS_PER_QUERY):
        out = call(['sacct', *on(cluster), '--parsable2', '--noheader',
                    '--duplicates',
                    f'--starttime={_earliest(chunk, expected)}',
                    '--format=' + ','.join(SACCT_FIELDS),
                    '--jobs=' + ','.join(map(str, chunk))],
                   timeout=timeout)
        add_runs(statuses, parse_sacct(out), expected)


def _earliest(ids: list[int], expected: dict[int, Expected]) -> str:
    """sacct's --starttime for `ids`: before the first of them was
    submitted, as their records say, so that the database looks at the
    jobs since then only; the beginning of time where a record does not
    say (sacct's own default, midnight today, would miss older jobs)."""
    submits = [e.identity.submit if e.identity else None
               for e in (expected.get(i, NOTHING_EXPECTED) for i in ids)]
    if not submits or None in submits:
        return '1970-01-01'
    # sacct refuses a start after its end, now (clocks disagree)
    earliest = min(*submits, datetime.now()) - STARTTIME_MARGIN
    return f'{earliest:%Y-%m-%dT%H:%M:%S}'


# Slurm's times are local, without zone: beyond the clocks' skew, a switch
# to or from daylight saving time moves them by an hour
STARTTIME_MARGIN = timedelta(days=1)


def add_runs(statuses: dict[int, JobStatus],
             runs: dict[tuple[int, int | None], list[TaskStatus]],
             expected: dict[int, Expected]):
    """Add to each job the current run of each of its tasks, out of all
    runs reported under its id, oldest first."""
    for (job_id, _), task_runs in runs.items():
        status = statuses.get(job_id)
        if status is None:
            continue
        identity = expected.get(job_id, NOTHING_EXPECTED).identity
        run = pick_run(task_runs, identity)
        if run is not None:
            add_task(status, run)


def complete_with_squeue(statuses: dict[int, JobStatus],
                         expected: dict[int, Expected], *,
                         timeout: float,
                         runs: list[tuple[int, TaskStatus]] | None = None,
                         cluster: str | None = None,
                         ) -> dict[int, JobStatus]:
    """Ask squeue about whatever the accounting database does not know or
    still sees running: it lags behind slurmctld, by seconds for array
    tasks.  `runs`: what squeue said of the jobs already, if it was asked
    (:func:`squeue_runs`)."""
    _drop_untasked(statuses, expected)
    # and, right after the end, sacct may not have the memory request yet
    # ... and a run that ended preempted or on a failed node may be
    # followed by one the database does not list yet
    unknown = [i for i, s in statuses.items()
               if not s.known or _missing(s, expected.get(i))
               or any(t.running or t.req_mem is None or _just_ended(t) or
                      t.state in RESTARTING_STATES for t in s.tasks)]
    if runs is None and unknown:
        runs = squeue_runs(unknown, timeout=timeout, cluster=cluster)
    wanted = set(unknown)
    merge_squeue(statuses, [r for r in runs or [] if r[0] in wanted],
                 expected)
    _drop_untasked(statuses, expected)
    for job_id, status in statuses.items():
        status.missing_tasks = _missing(status, expected.get(job_id))
    return statuses


def _drop_untasked(statuses: dict[int, JobStatus],
                   expected: dict[int, Expected]):
    # Right after submission an array job can show up as one record without
    # task ids; its tasks count as not reported yet.
    for job_id, status in statuses.items():
        if job_id in expected and expected[job_id].tasks:
            status.tasks = [t for t in status.tasks if t.task_id is not None]


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _missing(status: JobStatus, expected: Expected | None) -> list[int]:
    if not expected or not expected.tasks or not status.tasks:
        return []
    seen = {t.task_id for t in status.tasks}
    return [t for t in expected.tasks if t not in seen]


def squeue_runs(job_ids: list[int], *, timeout: float,
                cluster: str | None = None,
                ) -> list[tuple[int, TaskStatus]]:
    """What slurmctld knows of `job_ids` (queued and running jobs, and
    those ended within MinJobAge), as :func:`parse_squeue` gives it: for
    more than :data:`SQUEUE_NAMES_AT_MOST` jobs, all of slurmctld's jobs,
    picked here."""
    fields = '--Format=' + ','.join(f'{f}:0|' for f in SQUEUE_FIELDS)
    if len(job_ids) > SQUEUE_NAMES_AT_MOST:
        out = call(['squeue', *on(cluster), '--noheader', '--states=all',
                    fields], timeout=timeout)
        return parse_squeue(out, wanted=set(job_ids))
    try:
        out = call(['squeue', *on(cluster), '--noheader', '--states=all',
                    '--jobs=' + ','.join(map(str, job_ids)), fields],
                   timeout=timeout)
    except SlurmError as e:
        # squeue refuses the whole call when it knows none of the jobs
        if 'Invalid job id' in str(e):
            return []
        raise
    return parse_squeue(out)


# squeue given several job ids gets all of slurmctld's jobs and compares
# each with every id it was given: with 20,000 jobs in slurmctld, 400 ids
# took 0.25 s and 1,000 ids 0.5 s, all jobs listed 0.1 s, and from about 50
# ids on a listing of all is as fast or faster, whatever the count of jobs
# (both grow with it)
SQUEUE_NAMES_AT_MOST = 50


def merge_squeue(statuses: dict[int, JobStatus],
                 runs: list[tuple[int, TaskStatus]],
                 expected: dict[int, Expected]):
    """Add what squeue said (:func:`parse_squeue`) to what sacct did."""
    for job_id, run in runs:
        status = statuses.get(job_id)
        if status is None:
            continue
        known = next((t for t in status.tasks if t.task_id == run.task_id),
                     None) if status.tasks else None
        if known is not None and not known.running and \
                known.state not in RESTARTING_STATES:
            if _same_run(known, run):
                # the database lags behind in these for a few seconds
                known.req_mem = known.req_mem or run.req_mem
                known.nodes = run.nodes or known.nodes
            continue
        identity = expected.get(job_id, NOTHING_EXPECTED).identity
        if identity is not None and not (
                identity.begins(run) or identity.restarted(run)):
            # slurmctld's job of that id is another one
            continue
        if known is not None:
            run.restarts = max(run.restarts, known.restarts)
        add_task(status, run)


def _just_ended(task: TaskStatus) -> bool:
    """Whether `task` ended so recently that the database may still lack
    some of its run (all of a job's nodes, for seconds), which slurmctld
    knows."""
    end = slurm_time(task.end)
    return end is not None and \
        datetime.now() - end < timedelta(seconds=DATABASE_LAG)


# seconds for which the database's account of a run just ended may be
# incomplete
DATABASE_LAG = 30


def _same_run(a: TaskStatus, b: TaskStatus) -> bool:
    return a.raw_job_id == b.raw_job_id and a.submit == b.submit


def find_marked(comment: str, *, since: float, workdir: str,
                timeout: float, cluster: str | None = None) -> list[int]:
    """The jobs that may be the one submitted with ``--comment=COMMENT``
    since `since` (epoch seconds) from `workdir`: the one slurmctld
    (squeue) or the accounting database (sacct) knows by that comment;
    where the database keeps no comments, every job it has of this user
    submitted from `workdir` within the time sbatch may have taken; none
    if nobody knows one; on `cluster` (None: this machine's)."""
    me = getpass.getuser()
    out = call(['squeue', *on(cluster), '--noheader', '--states=all',
                f'--user={me}',
                '--Format=ArrayJobID:0|,Comment:0|'], timeout=timeout)
    for line in out.splitlines():
        job_id, _, rest = line.partition('|')
        if rest.rstrip('|') == comment and job_id.isdigit():
            return [int(job_id)]
    start = datetime.fromtimestamp(since - CLOCK_SKEW)
    try:
        stores_comments = site(timeout).stores_comments
        out = call(['sacct', *on(cluster), '--parsable2', '--noheader',
                    '--allocations', f'--user={me}',
                    f'--starttime={start:%Y-%m-%dT%H:%M:%S}',
                    '--format=JobID,Comment,WorkDir,Submit'],
                   timeout=timeout)
    except NoAccounting:
        return []
    until = datetime.fromtimestamp(since + SUBMISSION_WINDOW + CLOCK_SKEW)
    found = []
    for line in out.splitlines():
        job_id, text, job_workdir, submitted = \
            (line.split('|') + ['', '', ''])[:4]
        job_id = job_id.partition('_')[0]
        if not job_id.isdigit():
            continue
        if text == comment:
            return [int(job_id)]
        submit = slurm_time(value_of(submitted))
        if not stores_comments and job_workdir == workdir and \
                submit is not None and start <= submit <= until:
            found.append(int(job_id))
    return sorted(set(found))
