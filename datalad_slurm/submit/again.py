"""Submitting recorded jobs again (``datalad reschedule``): the FINISH
records a revision or a range names, why one is not to be submitted
again, and its submission as a new pair of commits."""

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
from ..records.outcome import record_succeeded
from .request import from_record
from .submission import submit_job


def finished_jobs(ds, revision, since):
    """The FINISH records of the jobs to submit again, oldest first, each
    with None, or with the kwargs of a refusal instead."""
    if since is not None:
        try:
            since_sha = resolve_since(ds.repo, since)
        except UnknownRevision as e:
            yield None, dict(status='impossible', message=str(e))
            return
        revision_range = f'{since_sha}..HEAD' if since_sha else 'HEAD'
        for record in iter_records(ds.repo, revision_range):
            if record.kind == FINISH:
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
            in_range: bool, all_tasks: bool) -> dict | None:
    """Why a finished job is not to be submitted again, or None.  Failed
    jobs in a --since range are skipped rather than refused."""
    data = finished.data
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
    # a farm job runs again only what did not complete: no failure to repeat
    if not with_failed_jobs and not record_succeeded(data) and \
            not is_farm(data):
        return dict(
            status='notneeded' if in_range else 'impossible',
            slurm_job_id=finished.job_id,
            message=('job %s did not complete (%s); give --with-failed-jobs '
                     'to submit it again anyway', finished.job_id,
                     data.get('state')))
    return None


def would_submit(data: dict, job_ids: dict, status: dict) -> dict:
    return get_status_dict(
        status='ok', commit=data['schedule_commit'],
        slurm_job_id=data['slurm_job_id'], cmd=data['cmd'],
        pwd=data['pwd'], outputs=data['outputs'],
        depends_on=[job_ids.get(c, c[:8])
                    for c in data.get('depends_on') or []],
        message=('would submit job %s again', data['slurm_job_id']),
        **status)


def submit_again(ds, finished: Record, renewed: dict[str, str], *,
                 message: str | None, all_tasks: bool, status: dict):
    """Submit the job of `finished` again, after the new submissions of
    the jobs it depended on (`renewed`), to which its own is added."""
    data = finished.data
    try:
        request = from_record(
            ds, data, message=message, all_tasks=all_tasks,
            after=[renewed[c] for c in data.get('depends_on') or []
                   if c in renewed])
    except Refused as e:
        yield get_status_dict(status='impossible', message=str(e),
                              slurm_job_id=finished.job_id, **status)
        return
    try:
        for res in submit_job(ds, request):
            if res['status'] == 'ok' and res.get('commit') and \
                    not res.get('recovered'):
                renewed[data['schedule_commit']] = res['commit']
            yield res
    except Exception as e:
        ce = CapturedException(e)
        yield get_status_dict(
            status='error',
            message=('could not reschedule job %s: %s',
                     data['slurm_job_id'], ce),
            exception=ce, **status)
