"""Jobs that finish themselves hand their FINISH commit to whoever holds
the repository lock.

When many jobs end within the same second, each with ``datalad-slurm-done
$?`` (:mod:`.done`) as its last line, queueing for the lock one by one
would keep the last of them waiting for all the others' commits, and ask
Slurm once per job.  Instead each job announces that its work has ended
(:mod:`.announcements`) and tries the lock once: the one that gets it asks
Slurm once about all announced jobs and commits every one that is ready;
the others end at once.  Whoever lets go of the lock looks for
announcements that came meanwhile and takes the lock again for them, or
leaves them to the process that has taken it, which does the same: no
announcement waits for a later command.
"""

from __future__ import annotations

import logging
import os
import os.path as op
import sys
import time
from typing import Iterator

from datalad.distribution.dataset import Dataset
from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException

from .. import config
from ..records import logfiles
from ..records.format import Record
from ..records.index import JobIndex
from ..records.split import by_job_id
from ..repo import state
from ..repo.lock import (
    LockHeld,
    LockTimeout,
    commits_announcements,
    git_dir_lock,
)
from ..repo.lockfile import TriedLock
from ..slurm.status import (
    JobStatus,
    SlurmError,
    TaskStatus,
)
from .announcements import (
    claim,
    settle,
)
from .done import hand_in
from .injob import stop_writing_to
from .round import (
    Round,
    finish_round,
    query,
)

lgr = logging.getLogger('datalad.slurm.handover')

# how long a job that holds the lock, having committed, waits for more jobs
# to announce themselves before it lets go: jobs that end a little apart
# (Slurm starting them a few at a time) are then committed by the one
# process that has started DataLad already, not each by a new one
LINGER = 1.0
# and how often it looks meanwhile
LINGER_POLL = 0.05

# A holder's round costs a Slurm query and a git-annex run however many
# jobs it commits, and while jobs keep ending, the machine's CPUs are busy
# with their ends (slurmstepd, each job's own finish), which slows every
# process of a round: a holder therefore gathers the announcements while
# they keep coming and commits them in one round once they stop, for no
# longer than GATHER_QUIET without a new one, and no longer than
# GATHER_LONGEST in all, so that a steady trickle of jobs is committed too
GATHER_QUIET = 0.5
GATHER_LONGEST = 3.0
GATHER_POLL = 0.1


def finish_inside(ds, record: Record, own: tuple[int, int | None],
                  exit_status: int | None, status: dict) -> Iterator[dict]:
    """``datalad finish $SLURM_JOB_ID`` in the job of `record`: what
    ``datalad-slurm-done`` does, with the results of this process's own
    job where it commits."""
    restore = []
    with commits_announcements():
        held = hand_in(
            ds.repo.dot_git, own, exit_status,
            say=lambda line: print(line, file=sys.stderr, flush=True),
            silence=lambda: restore.append(
                stop_writing_to(_own_logs(ds, record, own))))
        try:
            results = None if held is None else \
                _as_holder(ds, held, status)
        except Exception as e:
            # the job is judged by what Slurm sees of it, once its log
            # has the error; its announcement stands for the next holder
            restore[0]()
            ce = CapturedException(e)
            yield get_status_dict(
                status='error', exception=ce,
                message=('could not finish job %s: %s', record.job_id, ce),
                **status)
            return
    if held is None:
        yield get_status_dict(
            status='notneeded', slurm_job_id=record.job_id,
            message=('job %s is announced for its FINISH commit by the '
                     'process that holds the repository lock', record.job_id),
            **status)
        return
    own_results = [r for r in results
                   if r.get('slurm_job_id') in (None, record.job_id)]
    if not any(r['status'] in ('ok', 'notneeded') for r in own_results):
        restore[0]()
    yield from own_results


def commit_as_holder(path: str, held: TriedLock, job_id: int
                     ) -> list[str]:
    """For ``datalad-slurm-done`` that got the lock (`held`): commit every
    announced job.  Returns what went wrong for job `job_id`, or for all
    jobs."""
    ds = Dataset(path)
    status = dict(action='finish', ds=ds, logger=lgr)
    try:
        with commits_announcements():
            results = _as_holder(ds, held, status)
    except Exception as e:
        return [f'could not finish the announced jobs: {CapturedException(e)}']
    return [_text(r) for r in results
            if r['status'] in ('error', 'impossible') and
            r.get('slurm_job_id') in (None, job_id)]


def commit_left(path: str) -> bool:
    """The committer a process that does not commit announcements starts
    on letting go of the lock: waits for it, and commits.  Whether
    something went wrong (written to the log)."""
    ds = Dataset(path)
    status = dict(action='finish', ds=ds, logger=lgr)
    failed = False
    if not state.announced(ds.repo.dot_git):
        return False
    for res in commit_announced(ds, status, once=False, gather=True):
        if res['status'] == 'error':
            failed = True
            lgr.error('%s', _text(res))
    return failed


def _as_holder(ds, held: TriedLock, status: dict) -> list[dict]:
    with git_dir_lock(ds.repo.dot_git, config.get(ds, config.LOCK_TIMEOUT),
                      taken=held):
        results = list(commit_announced(ds, status, once=True,
                                        linger=LINGER, gather=True))
    if state.announced(ds.repo.dot_git):
        # announced after the last round, before this process let go
        results += commit_announced(ds, status, once=True, linger=LINGER,
                                    gather=True)
    return results


def commit_announced(ds, status: dict, *, once: bool,
                     linger: float = 0.0, gather: bool = False
                     ) -> Iterator[dict]:
    """Commit the announced jobs, in rounds that each take the lock (tried
    once with `once`, else waited for), until none is left that no round
    has seen after letting go of it.  A lock that another process holds
    ends the rounds: that process does the same after letting go.
    `linger`: seconds to wait, the lock held, for more announcements after
    a round; `gather`: wait before each round while they keep coming (see
    GATHER_QUIET), for a holder no user waits for."""
    git_dir = ds.repo.dot_git
    timeout = config.get(ds, config.LOCK_TIMEOUT)
    with commits_announcements():
        yield from _rounds(ds, git_dir, timeout, status, once, linger,
                           gather)


def _rounds(ds, git_dir, timeout: float, status: dict, once: bool,
            linger: float, gather: bool):
    while True:
        try:
            with git_dir_lock(git_dir, timeout, once=once):
                if gather:
                    _gather(git_dir)
                yield from _round(ds, status)
                _await_announcement(git_dir, linger)
        except LockHeld:
            return
        except LockTimeout as e:
            yield get_status_dict(
                status='error', exception=CapturedException(e),
                message=('could not commit the announced jobs: %s; the '
                         'next datalad finish commits them', e),
                **status)
            return
        if not state.announced(git_dir):
            return
        once = True


def _await_announcement(git_dir, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not state.announced(git_dir):
        time.sleep(LINGER_POLL)


def _gather(git_dir):
    """Wait while jobs keep announcing themselves (see GATHER_QUIET)."""
    start = last = time.monotonic()
    seen = state.announcements(git_dir)
    while time.monotonic() - start < GATHER_LONGEST:
        time.sleep(GATHER_POLL)
        now, count = time.monotonic(), state.announcements(git_dir)
        if count != seen:
            seen, last = count, now
        elif now - last >= GATHER_QUIET:
            return


def _round(ds, status: dict) -> Iterator[dict]:
    """One holder's round, with the lock held: every announced job that
    is open, committed where it is ready."""
    index = JobIndex(ds.repo).refresh()
    # a split array's parts announce under their own job ids
    open_jobs = by_job_id(index.open_jobs())
    claims = claim(ds.repo.dot_git, set(open_jobs))
    if not claims:
        return
    records = list({open_jobs[a.job_id].job_id: open_jobs[a.job_id]
                    for a in claims}.values())
    committed = set()
    try:
        statuses = query(ds, records)
        for res in finish_round(ds, index, records, statuses, status,
                                Round(octopus=config.get(ds,
                                                         config.OCTOPUS))):
            if res['status'] == 'ok' and res.get('commit'):
                committed.add(res['slurm_job_id'])
            yield res
    except SlurmError as e:
        yield get_status_dict(
            status='error',
            message=('could not ask Slurm about the announced jobs: %s; '
                     'the next datalad finish commits them', str(e)),
            exception=CapturedException(e), **status)
    finally:
        settle(claims, {a.job_id for a in claims
                        if open_jobs[a.job_id].job_id in committed})
    lgr.debug('Committed %d announced jobs', len(committed))


def _text(res: dict) -> str:
    message = res.get('message')
    if isinstance(message, tuple):
        message = message[0] % message[1:]
    return f'{res["status"]}: {message}'


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
