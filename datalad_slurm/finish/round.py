"""Finishing jobs that have ended: the verdict on each, the order of their
FINISH commits (after those of the jobs they depend on), and the commits.
"""

from __future__ import annotations

import logging
from dataclasses import (
    dataclass,
    field,
)
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.log import log_progress
from datalad.support.exceptions import CapturedException

from .. import (
    backends,
    config,
)
from ..modes.select import of_record
from ..records.format import Record
from ..records.index import JobIndex
from ..records.split import (
    announced_as_recorded,
    job_ids,
)
from ..repo.commit import commit_plans
from ..repo.lock import repository_lock
from ..slurm.status import (
    JobStatus,
    SlurmError,
)
from .announcements import (
    announced_tasks,
    forget_jobs,
)
from .injob import own_task_finished
from .octopus import chunked
from .outputs import (
    Missing,
    awaited,
)
from .record import plan_finish

lgr = logging.getLogger('datalad.slurm.finish')

# Slurm's pending reason of a job whose dependency can never be satisfied
NEVER = 'DependencyNeverSatisfied'


def query(ds, records: list[Record]) -> dict[int, JobStatus]:
    """Slurm's word on the jobs of `records` (or local mode's, for local
    jobs), in one batched query, as the mode of each sees it: farm jobs as
    their tasks tell.

    Raises
    ------
    SlurmError
    """
    statuses = dict(backends.query(ds, records))
    for r in records:
        if r.job_id in statuses:
            statuses[r.job_id] = of_record(r.data).status(
                ds, r, statuses[r.job_id])
    return statuses


def ask_slurm(ds, records: list[Record], status: dict):
    """Slurm's word on the jobs (:func:`query`), or None after yielding
    why there is none."""
    try:
        return query(ds, records)
    except SlurmError as e:
        yield get_status_dict(
            status='error',
            message=('could not ask Slurm about the jobs: %s', str(e)),
            exception=CapturedException(e), **status)
        return None


@dataclass
class Round:
    """How :func:`finish_round` treats the jobs it is given."""
    # give failed jobs their FINISH commit too (--close-failed-jobs)
    close_failed: bool = False
    # the job this process runs in, (job id, task id), whose script got to
    # its finish with `exit_status` (see :mod:`.injob`)
    own: tuple[int, int | None] | None = None
    exit_status: int | None = None
    # a round of a wait: say nothing of jobs still running, or waiting for
    # running ones
    waiting: bool = False
    # the schedule commits of jobs seen to fail, by this round and by the
    # earlier rounds of a wait
    failed: set[str] = field(default_factory=set)
    # how many scratch jobs one FINISH commit merges at most (--octopus)
    octopus: int = 1

    def inside(self, announced: dict[int, list]) -> dict[int, list]:
        """Job id -> (task id, exit status) of every task known to have
        got to its finish inside the job: this process's own, and the
        `announced` ones, which silenced their output themselves."""
        inside = {job: list(tasks) for job, tasks in announced.items()}
        if self.own:
            inside.setdefault(self.own[0], []).append(
                (self.own[1], self.exit_status))
        return inside


def finish_round(ds, index: JobIndex, records: list[Record],
                 statuses: dict[int, JobStatus], status: dict,
                 how: Round) -> Iterator[dict]:
    """Finish what has ended of `records`, in the order of the history, a
    job's FINISH commit after those of the jobs it depends on, `how` says.

    Returns (as the generator's value) the records still running.
    """
    # whoever commits them: a job's announced exit status is all there is
    # of a failure where the job's finish ended it with status 0
    inside = how.inside(announced_as_recorded(
        announced_tasks(ds.repo.dot_git), records))
    for job_id, tasks in inside.items():
        for task_id, code in tasks:
            if job_id in statuses:
                own_task_finished(statuses[job_id], task_id, code)
    running, ready = yield from _triage(ds, index, records, statuses,
                                        status, how, set(inside))
    if ready:
        try:
            yield from _commit_finished(ds, index, ready, how)
        except Exception as e:
            ce = CapturedException(e)
            yield get_status_dict(
                status='error',
                message=('could not finish jobs %s: %s',
                         ', '.join(str(r.job_id) for r, _, _ in ready), ce),
                exception=ce, **status)
    return running


def _triage(ds, index: JobIndex, records: list[Record],
            statuses: dict[int, JobStatus], status: dict, how: Round,
            inside: set[int]):
    """Which of `records` are still running and which are ready for their
    FINISH commit, as (record, job, result fields) triples; the others get
    a result that says why not.  `inside`: jobs a task of which got to its
    finish inside the job."""
    order = {sha: i for i, sha in enumerate(index.open)}
    how.failed.update(r.commit for r in records
                      if statuses[r.job_id].phase in ('failed', 'lost'))
    running, ready, committing = [], [], set()
    grace = config.get(ds, config.OUTPUT_GRACE)
    for record in sorted(records, key=lambda r: order.get(r.commit, -1)):
        job = statuses[record.job_id]
        job_status = dict(status, slurm_job_id=record.job_id,
                          slurm_state=job.describe())
        in_job = record.job_id in inside
        if job.phase == 'running' and not in_job and _never_runs(job):
            yield get_status_dict(
                status='impossible',
                message=('job %s will never run: Slurm says a job it '
                         'depends on can never complete (%s); cancel it '
                         '(scancel %s), or close it with --close-failed-jobs '
                         'once it has ended', record.job_id, NEVER,
                         record.job_id),
                **job_status)
            continue
        missing = awaited(ds, record, job, grace)
        if missing:
            job_status['missing_outputs'] = missing.outputs
        if how.waiting and not in_job and (
                job.phase in ('running', 'unknown') or
                (missing and missing.left)):
            running.append(record)
            continue
        res = _verdict(ds, index, record, job, how.close_failed,
                       job_status, inside=in_job, failed=how.failed,
                       missing=missing)
        if res:
            yield res
            if job.phase in ('running', 'unknown'):
                running.append(record)
            continue
        blocking = [c for c in record.data.get('depends_on') or []
                    if c in index.open and c not in committing]
        if blocking and how.waiting and any(
                c in {r.commit for r in running} for c in blocking):
            running.append(record)
            continue
        if blocking:
            yield get_status_dict(
                status='impossible',
                message=('job %s has ended, but job %s it depends on is not '
                         'finished; its FINISH commit comes first (finish '
                         'it, or close it with --close-failed-jobs)',
                         record.job_id, _job_ids(index, blocking)),
                **job_status)
            continue
        committing.add(record.commit)
        ready.append((record, job, job_status))
    return running, ready


def _states(job: JobStatus) -> str:
    """Slurm's states, with its reasons where it gave any."""
    reasons = sorted({t.reason for t in job.tasks if t.reason})
    return job.describe() + (f', reason {", ".join(reasons)}'
                             if reasons else '')


def _never_runs(job: JobStatus) -> bool:
    return any(t.running and t.reason == NEVER for t in job.tasks)


def _job_ids(index: JobIndex, commits: list[str]) -> str:
    """The job ids of schedule commits, for messages."""
    def job_id(commit):
        if commit in index.open:
            return index.open[commit].job_id
        return index.finished.get(commit, {}).get('job') or commit[:8]
    return ', '.join(str(job_id(c)) for c in commits)


def _verdict(ds, index: JobIndex, record: Record, job: JobStatus,
             close_failed: bool, status: dict, inside: bool = False,
             failed: set[str] = frozenset(),
             missing: Missing | None = None) -> dict | None:
    """The result for a job that is not to be committed, or None.  `inside`:
    this process runs in the job (one of its array tasks); `failed`: the
    schedule commits of jobs known to have failed; `missing`: the outputs
    a complete job has not left."""
    phase = job.phase
    if phase == 'running' and inside:
        # not an error: that would fail the task finishing itself
        return get_status_dict(
            status='notneeded',
            message=('other tasks of array job %s are still running (%s); '
                     'the last task to end, or a later datalad finish, '
                     'records the job', record.job_id, job.describe()),
            **status)
    if phase == 'running':
        return get_status_dict(
            status='impossible',
            message=('job %s is still running (%s); finish it when it has '
                     'ended', record.job_id, job.describe()),
            **status)
    if phase == 'unknown':
        # neither lost nor failed: nothing about it may change
        return get_status_dict(
            status='impossible',
            message=('cannot tell now whether job %s has ended: %s',
                     record.job_id, job.unanswered),
            **status)
    if missing and missing.left:
        return get_status_dict(
            status='impossible',
            message=('job %s has completed, but its declared outputs %s '
                     'are not there yet (a shared file system can show a '
                     'node\'s files late); finish waits for them up to %.0f '
                     's more (datalad.slurm.output-grace)', record.job_id,
                     missing.describe(), missing.left),
            **status)
    if missing and not close_failed:
        return get_status_dict(
            status='error',
            message=('job %s has completed, but without its declared '
                     'outputs %s, which are not there (waited for '
                     'datalad.slurm.output-grace after its end); check '
                     'where the job writes, read its log files (%s), and '
                     'close it with --close-failed-jobs or submit it again',
                     record.job_id, missing.describe(),
                     ', '.join(record.data.get('slurm_outputs') or []) or
                     'none recorded'),
            **status)
    if phase == 'complete' or close_failed:
        return None
    # Slurm cancelled it for a failed dependency (--kill-on-invalid-dep);
    # its reason says so only if it was pending long enough to be looked at
    cancelled_for = [c for c in record.data.get('depends_on') or []
                     if c in failed] if any(
        t.state == 'CANCELLED' for t in job.tasks) else []
    if phase == 'lost' and job.tasks:
        why = ('job %s was lost (%s)', record.job_id, _states(job))
    elif phase == 'lost':
        why = ('%s knows no job %s any more', job.unknown_to, record.job_id)
    elif cancelled_for:
        why = ('job %s was not run: job %s it depends on failed, and Slurm '
               'cancelled it (%s)', record.job_id,
               _job_ids(index, cancelled_for), _states(job))
    else:
        why = ('job %s ended unsuccessfully (%s)', record.job_id,
               _states(job))
    notes = of_record(record.data).failure_notes(ds, record)
    if notes:
        why = (why[0] + ', in its scratch clone: %s', *why[1:],
               '; '.join(notes))
    return get_status_dict(
        status='error',
        message=(why[0] + '; read its log files (%s), and close it with '
                 '--close-failed-jobs or submit it again', *why[1:],
                 ', '.join((record.data.get('slurm_outputs') or []) + [
                     d for d in [record.data.get('farm_log_dir')] if d]) or
                 'none recorded'),
        **status)


def _commit_finished(ds, index: JobIndex, ready: list, how: Round):
    """Make the FINISH commits of the jobs in `ready`, (record, job,
    result fields) triples, under one hold of the repository lock, as
    `how` says."""
    with repository_lock(ds.repo, config.get(ds, config.LOCK_TIMEOUT)):
        # another process may have finished some of them meanwhile
        index.refresh()
        plans, not_planned = [], set()
        for record, job, job_status in ready:
            waited_for = [c for c in record.data.get('depends_on') or []
                          if c in not_planned]
            if waited_for:
                not_planned.add(record.commit)
                yield get_status_dict(
                    status='impossible',
                    message=('job %s must be finished after job %s, which '
                             'could not be', record.job_id,
                             _job_ids(index, waited_for)),
                    **job_status)
                continue
            if record.commit not in index.open:
                yield get_status_dict(
                    status='notneeded',
                    message=('job %s was finished meanwhile by another '
                             'process', record.job_id),
                    **job_status)
                continue
            try:
                plans.append(plan_finish(ds, record, job, how.own,
                                         job_status,
                                         close_failed=how.close_failed))
            except Exception as e:
                not_planned.add(record.commit)
                ce = CapturedException(e)
                yield get_status_dict(
                    status='error', exception=ce,
                    message=('could not finish job %s: %s', record.job_id,
                             ce),
                    **job_status)

        progress = f'datalad-slurm-finish-{id(plans)}'
        log_progress(lgr.info, progress, 'Committing finished jobs',
                     total=len(plans), label='Finishing', unit=' jobs')
        try:
            done = commit_plans(
                ds, chunked(ds, plans, how.octopus),
                progress=lambda plan: log_progress(
                    lgr.info, progress, 'Committed %s', plan.key[0],
                    update=1, increment=True))
        except Exception as e:
            # nothing is in the history: every job stays open
            ce = CapturedException(e)
            done = [(plan, None, [get_status_dict(
                status='error', exception=ce,
                message=('could not finish job %s: %s',
                         plan.key[1]['slurm_job_id'], ce),
                **plan.key[1])]) for plan in plans]
        finally:
            log_progress(lgr.info, progress, 'Committed finished jobs')
        # a split array's parts announced under their own ids
        ids = {r.job_id: job_ids(r.data) for r, _, _ in ready}
        forget_jobs(ds.repo.dot_git, {
            i for plan, sha, _ in done if sha
            for i in ids.get(plan.key[1]['slurm_job_id'],
                             [plan.key[1]['slurm_job_id']])})
        for plan, sha, _ in done:
            if sha:
                plan.succeeded(sha)
        # the branch has moved (or not) already: report what is true now
        for plan, sha, problems in done:
            if not sha:
                plan.failed()
            title, job_status = plan.key
            for problem in problems:
                # about the job, whatever step of saving it failed
                yield get_status_dict(**dict(
                    job_status, status=problem['status'],
                    path=problem.get('path') or ds.path,
                    message=problem.get('message') or
                    problem.get('error_message')))
            if sha:
                yield get_status_dict(
                    status='ok', commit=sha, **job_status,
                    message=('%s (not known: %s)', title,
                             job_status['not_known'])
                    if job_status.get('not_known') else title)
