"""Submitting recorded jobs again (``datalad reschedule``): the FINISH
records a revision or a range names, why one is not to be submitted
again, and its submission as a new pair of commits (with what
:mod:`.retry` plans for a failed job)."""

from __future__ import annotations

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException

from ..modes.base import Refused
from ..modes.farm.submit import is_farm
from ..records.format import (
    FINISH,
    Record,
)
from ..records.history import (
    Commits,
    UnknownRevision,
    iter_records,
    resolve_since,
)
from ..records.index import JobIndex
from ..records.outcome import (
    record_succeeded,
    slurm_causes,
)
from .dryrun import dry_run
from .request import from_record
from .retry import (
    Retried,
    Retry,
    plan,
)
from .submission import submit_job


def finished_jobs(ds, revision, since, failed_only: bool = False):
    """The FINISH records of the jobs to submit again, oldest first, each
    with None, or with the kwargs of a refusal instead.  With
    `failed_only`, and neither `revision` nor `since`, those of the whole
    history; in a range, only the failed jobs no later submission repeats
    already."""
    if since is not None or (failed_only and revision is None):
        try:
            since_sha = resolve_since(ds.repo, since or '')
        except UnknownRevision as e:
            yield None, dict(status='impossible', message=str(e))
            return
        revision_range = f'{since_sha}..HEAD' if since_sha else 'HEAD'
        records = list(iter_records(ds.repo, revision_range))
        repeated = {c for r in records if r.is_schedule
                    for c in r.data.get('chain') or []}
        for record in records:
            if record.kind == FINISH and not (failed_only and (
                    record_succeeded(record.data)
                    or record.data.get('schedule_commit') in repeated)):
                yield record, None
        return

    with Commits(ds.repo) as commits:
        yield from _named_job(ds, commits, revision or 'HEAD')


def _named_job(ds, commits: Commits, revision: str):
    """The FINISH record of the job `revision` names (of every job, for a
    FINISH commit of several), or a refusal."""
    sha = commits.sha(revision)
    if sha is None:
        yield None, dict(status='impossible',
                         message=('%r names no commit of this dataset',
                                  revision))
        return
    records = commits.records(sha)
    if not records:
        yield None, dict(
            status='impossible',
            message=('commit %s carries no datalad-slurm record; '
                     'reschedule repeats jobs recorded by datalad schedule',
                     sha[:8]))
        return
    if records[0].kind == FINISH:
        for record in records:
            yield record, None
        return
    record, = records
    finished = JobIndex(ds.repo).refresh().finished.get(sha)
    if finished is None:
        yield None, dict(
            status='impossible', slurm_job_id=record.job_id,
            message=('job %s (commit %s) is still open; finish it '
                     '(datalad finish) before scheduling it again',
                     record.job_id, sha[:8]))
        return
    # its FINISH commit may record other jobs besides
    yield commits.finish_of(finished['finish'], sha), None


def refusal(ds, finished: Record, with_failed_jobs: bool,
            in_range: bool, all_tasks: bool,
            retry: Retry | None = None) -> dict | None:
    """Why a finished job is not to be submitted again, or None.  Failed
    jobs in a --since range are skipped rather than refused; a job `retry`
    is about is submitted again whether it failed or not."""
    data = finished.data
    retry = retry or Retry()
    if data.get('dsid') != ds.id:
        return dict(
            status='impossible', slurm_job_id=finished.job_id,
            message=('job %s was recorded in another dataset (%s); '
                     'reschedule it there', finished.job_id,
                     data.get('dsid')))
    if all_tasks and not in_range and not is_farm(data):
        return dict(
            status='impossible', slurm_job_id=finished.job_id,
            message=('job %s ran no task list, so --all-tasks has nothing to '
                     'choose from; leave it out', finished.job_id))
    succeeded = record_succeeded(data)
    raising = retry.more_memory is not None or retry.more_time is not None
    if succeeded and not in_range and (retry.failed_only or raising):
        return dict(
            status='impossible', slurm_job_id=finished.job_id,
            message=('job %s completed: --failed, --more-memory and '
                     '--more-time submit again only what failed; leave '
                     'them out to repeat it as it was', finished.job_id))
    # a job named with a factor is refused by its plan if it did not run
    # out of what the factor raises; in a range, such jobs are skipped
    retried = retry.failed_only or (raising and not in_range) or \
        bool(retry.raises(slurm_causes(data)))
    # a farm job runs again only what did not complete: no failure to repeat
    if not (with_failed_jobs or retried) and not succeeded and \
            not is_farm(data):
        return dict(
            status='notneeded' if in_range else 'impossible',
            slurm_job_id=finished.job_id,
            message=('job %s did not complete (%s); give --with-failed-jobs '
                     'to submit it again anyway', finished.job_id,
                     data.get('state')))
    return None


def planned(ds, finished: Record, retry: Retry, *, named: bool,
            ) -> tuple[Retried | None, dict | None]:
    """The plan of submitting a finished job again, or the kwargs of a
    refusal instead."""
    try:
        return plan(ds, finished.data, retry, named=named), None
    except Refused as e:
        return None, dict(status='impossible', message=str(e),
                          slurm_job_id=finished.job_id)


def would_submit(data: dict, job_ids: dict, status: dict,
                 retried: Retried | None = None) -> dict:
    retried = retried or Retried(cmd=data['cmd'])
    return get_status_dict(
        status='ok', commit=data['schedule_commit'],
        slurm_job_id=data['slurm_job_id'], cmd=retried.cmd,
        raised=retried.raised,
        pwd=data['pwd'], outputs=data['outputs'],
        depends_on=[job_ids.get(c, c[:8])
                    for c in data.get('depends_on') or []],
        message=('would submit job %s again', data['slurm_job_id']),
        **status)


def dry_run_again(ds, finished: Record, job_ids: dict[str, int], *,
                  message: str | None, all_tasks: bool, status: dict,
                  retried: Retried | None = None):
    """The dry run of submitting the job of `finished` again (as `retried`
    plans).  The new submissions of the jobs it depended on that are
    submitted again before it do not exist yet: it names them by their old
    job ids (`job_ids`, by schedule commit) as ``waits_for_rescheduled``."""
    data = finished.data
    again = dict(rescheduled_job_id=finished.job_id,
                 rescheduled_commit=data['schedule_commit'],
                 waits_for_rescheduled=[
                     job_ids[c] for c in data.get('depends_on') or []
                     if c in job_ids])
    yield from _again(ds, finished, [], lambda r: dry_run(ds, r, **again),
                      message=message, all_tasks=all_tasks, status=status,
                      retried=retried)


def submit_again(ds, finished: Record, renewed: dict[str, str], *,
                 message: str | None, all_tasks: bool, status: dict,
                 retried: Retried | None = None):
    """Submit the job of `finished` again (as `retried` plans), after the
    new submissions of the jobs it depended on (`renewed`), to which its
    own is added."""
    data = finished.data

    def submitted(request):
        for res in submit_job(ds, request):
            if res['status'] == 'ok' and res.get('commit') and \
                    not res.get('recovered'):
                renewed[data['schedule_commit']] = res['commit']
            yield res

    yield from _again(
        ds, finished, [renewed[c] for c in data.get('depends_on') or []
                       if c in renewed], submitted,
        message=message, all_tasks=all_tasks, status=status, retried=retried)


def _again(ds, finished: Record, after: list[str], submit, *,
           message: str | None, all_tasks: bool, status: dict,
           retried: Retried | None = None):
    """The results of `submit` given the request that repeats the job of
    `finished` (as `retried` plans); its refusal, or its failure, as a
    result."""
    data = finished.data
    retried = retried or Retried(cmd=data['cmd'])
    try:
        request = from_record(ds, data, message=message, all_tasks=all_tasks,
                              after=after, cmd=retried.cmd,
                              raised=retried.raised)
    except Refused as e:
        yield get_status_dict(status='impossible', message=str(e),
                              slurm_job_id=finished.job_id, **status)
        return
    try:
        yield from submit(request)
    except Exception as e:
        ce = CapturedException(e)
        yield get_status_dict(
            status='error',
            message=('could not reschedule job %s: %s',
                     data['slurm_job_id'], ce),
            exception=ce, **status)
