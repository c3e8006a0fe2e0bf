"""Jobs that finish themselves hand their FINISH commit to whoever holds
the repository lock.

When many jobs end within the same second, each with ``datalad finish
$SLURM_JOB_ID`` as its last line, queueing for the lock one by one would
keep the last of them waiting for all the others' commits, and ask Slurm
once per job.  Instead each job announces that its work has ended (with
its exit status, and its own output to its log silenced, so that its log
is final), and the process that holds the lock asks Slurm once about all
announced jobs and commits every one that is ready; the others find their
job committed and return.

The announcements themselves are :mod:`.announcements`.
"""

from __future__ import annotations

import logging
import os
import os.path as op
import time
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException

from .. import config
from ..records import logfiles
from ..records.format import Record
from ..records.index import JobIndex
from ..repo.lock import (
    LockTimeout,
    repository_lock,
)
from ..slurm.status import (
    JobStatus,
    SlurmError,
    TaskStatus,
)
from .announcements import (
    Announcement,
    announce,
    claim,
    settle,
)
from .injob import stop_writing_to
from .round import (
    Round,
    finish_round,
    query,
)

lgr = logging.getLogger('datalad.slurm.handover')

# how long one try for the lock lasts before the announcer looks whether
# its job was committed meanwhile
POLL = 0.1


def finish_inside(ds, record: Record, own: tuple[int, int | None],
                  exit_status: int | None, status: dict) -> Iterator[dict]:
    """``datalad finish $SLURM_JOB_ID`` in the job of `record`: announce
    that its work has ended, then commit it together with every other
    announced job, or find it committed by the process that did."""
    repo = ds.repo
    timeout = config.get(ds, config.LOCK_TIMEOUT)
    restore = stop_writing_to(_own_logs(ds, record, own))
    mine = announce(repo, own[0], own[1], exit_status)
    deadline = time.monotonic() + timeout
    while True:
        done = mine.done()
        if done:
            mine.forget()
            yield _committed_by_other(record.job_id, done, status)
            return
        try:
            with repository_lock(repo, POLL):
                results = list(_round(ds, mine, status))
        except LockTimeout:
            if time.monotonic() < deadline or not mine.withdraw():
                # a holder that claimed the job commits it, or gives it
                # back, before it lets go of the lock
                continue
            restore()
            yield get_status_dict(
                status='error',
                message=('the dataset was locked by other processes for more '
                         'than %s s; job %s is still open: finish it later '
                         '(datalad finish %s), or raise '
                         'datalad.slurm.lock-timeout', timeout, record.job_id,
                         record.job_id),
                **status)
            return
        except Exception as e:
            # judged by what Slurm sees of it, once its log has the error
            _forget_locked(ds, mine, timeout)
            restore()
            ce = CapturedException(e)
            yield get_status_dict(
                status='error', exception=ce,
                message=('could not finish job %s: %s', record.job_id, ce),
                **status)
            return
        if not any(r['status'] in ('ok', 'notneeded') for r in results):
            restore()
        yield from results
        return


def _round(ds, mine: Announcement, status: dict) -> Iterator[dict]:
    """One holder's round, with the lock held: the results for this
    process's own job (and for all jobs, where the whole round failed)."""
    repo = ds.repo
    done = mine.done()
    if done:
        mine.forget()
        yield _committed_by_other(mine.job_id, done, status)
        return
    index = JobIndex(repo).refresh()
    open_jobs = {r.job_id: r for r in index.open_jobs()}
    if mine.job_id not in open_jobs:
        mine.forget()
        yield get_status_dict(
            status='notneeded', slurm_job_id=mine.job_id,
            message=('job %s was finished meanwhile by another process',
                     mine.job_id),
            **status)
        return
    claims = claim(repo, set(open_jobs))
    records = list({a.job_id: open_jobs[a.job_id] for a in claims}.values())
    try:
        statuses = query(ds, records)
    except SlurmError as e:
        settle(claims, {}, mine)
        mine.withdraw()
        yield get_status_dict(
            status='error',
            message=('could not ask Slurm about the jobs: %s', str(e)),
            exception=CapturedException(e), **status)
        return
    inside: dict[int, list] = {}
    for ann in claims:
        inside.setdefault(ann.job_id, []).append(
            (ann.task_id, ann.exit_status))
    results = []
    try:
        for res in finish_round(ds, index, records, statuses, status,
                                Round(finished_inside=inside,
                                      octopus=config.get(ds,
                                                         config.OCTOPUS))):
            results.append(res)
    finally:
        committed = {r['slurm_job_id']: r['commit'] for r in results
                     if r['status'] == 'ok' and r.get('commit')}
        settle(claims, committed, mine)
    for res in results:
        if res.get('slurm_job_id') in (None, mine.job_id):
            yield res
        else:
            lgr.debug('For job %s: %s', res['slurm_job_id'], res)
    if mine.job_id not in committed and not any(
            r.get('slurm_job_id') == mine.job_id and
            r['status'] == 'notneeded' for r in results):
        # it failed: judged by what Slurm sees of it from now on
        mine.withdraw()
    lgr.debug('Committed %d announced jobs', len(committed))


def _forget_locked(ds, mine: Announcement, timeout: float):
    """Take back an announcement in whatever state, with the lock held, so
    that no holder is in the middle of settling it."""
    try:
        with repository_lock(ds.repo, timeout):
            mine.forget()
    except LockTimeout as e:
        lgr.warning('Could not take back the announcement %s: %s',
                    mine.base, e)


def _committed_by_other(job_id: int, done: dict, status: dict) -> dict:
    return get_status_dict(
        status='notneeded', slurm_job_id=job_id, commit=done.get('commit'),
        message=('job %s was finished by process %s, with %s jobs at once',
                 job_id, done.get('by'), done.get('jobs')),
        **status)


def _own_logs(ds, record: Record, own: tuple[int, int | None]) -> list[str]:
    """This task's Slurm log files, from what the job's environment
    tells: announcing must not wait for an answer from Slurm."""
    env = os.environ
    raw = env.get('SLURM_JOB_ID', '')
    task = TaskStatus(task_id=own[1], state='RUNNING',
                      raw_job_id=int(raw) if raw.isdigit() else None,
                      nodes=env.get('SLURMD_NODENAME'))
    return [op.join(ds.path, p)
            for p in logfiles.resolved(record,
                                       JobStatus(record.job_id, [task]))]
