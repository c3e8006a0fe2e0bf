"""Which open jobs a ``datalad finish`` is about: the index of the open
jobs (since a commit), submissions a crash left completed first, and the
jobs the user names, each name that finds no open job answered."""

from __future__ import annotations

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException
from datalad.utils import ensure_list

from .. import config
from ..records import journal
from ..records.format import FINISH
from ..records.history import (
    Commits,
    UnknownRevision,
    resolve_since,
)
from ..records.index import JobIndex
from ..repo.commit import identity_problem
from ..repo.lock import (
    LockTimeout,
    repository_lock,
)
from ..slurm.env import array_job_of
from ..submit.complete import recover_orphans


def open_jobs(ds, since, status, *, changes: bool):
    """The index of open jobs (since `since`), or None after yielding why
    there is none.  `changes`: the command is to change the dataset, which
    must then allow commits, and submissions a crash left are completed
    first."""
    problem = config.problem(ds)
    if not problem and changes:
        problem = identity_problem(ds.repo)
    if problem:
        yield get_status_dict(status='impossible', message=problem, **status)
        return None
    try:
        since = resolve_since(ds.repo, since) if since is not None else None
    except UnknownRevision as e:
        yield get_status_dict(status='impossible', message=str(e), **status)
        return None
    if changes:
        yield from _recover(ds)
    return JobIndex(ds.repo, since=since).refresh()


def selected_jobs(ds, index: JobIndex, jobs, status) -> list:
    """The open jobs `jobs` names (all, where it names none), after
    yielding a result for each it names that cannot be finished."""
    selected = []
    with Commits(ds.repo) as commits:
        for target in ensure_list(jobs):
            record, res = _select(commits, index, str(target))
            if res:
                yield get_status_dict(**status, **res)
            elif record not in selected:
                selected.append(record)
    if not jobs:
        selected = index.open_jobs()
        if not selected:
            yield get_status_dict(status='notneeded', message='no open jobs',
                                  **status)
    return selected


def _recover(ds):
    """Complete the schedule commits of submissions a crash orphaned."""
    if not journal.has_entries(ds.repo):
        return
    try:
        with repository_lock(ds.repo, config.get(ds, config.LOCK_TIMEOUT)):
            yield from recover_orphans(ds, 'finish')
    except LockTimeout as e:
        yield get_status_dict(action='finish', ds=ds, status='error',
                              message=str(e), exception=CapturedException(e))


def _select(commits: Commits, index: JobIndex, target: str):
    """Resolve a job id or commit named by the user.

    Returns (record, None) for an open job, or (None, result-kwargs) for
    anything else.
    """
    target = array_job_of(target)
    if target.isdigit():
        record, finished = index.find_job(int(target))
        if record:
            return record, None
        if finished:
            return None, dict(
                status='notneeded', slurm_job_id=int(target),
                message=('job %s was finished already', target))
    sha = commits.sha(target)
    if sha is None:
        return None, dict(
            status='impossible',
            message=('%s is no scheduled job of this dataset, nor a commit; '
                     'see datalad finish --list-open-jobs', target))
    if sha in index.open:
        return index.open[sha], None
    records = commits.records(sha)
    if not records:
        return None, dict(
            status='impossible',
            message=('commit %s is no datalad-slurm schedule commit',
                     sha[:8]))
    # a FINISH commit may record several jobs
    record = records[0]
    if record.kind == FINISH or sha in index.finished:
        job_ids = ', '.join(str(r.job_id) for r in records)
        return None, dict(
            status='notneeded', slurm_job_id=record.job_id,
            message=('job %s was finished already', job_ids)
            if len(records) == 1 else
            ('jobs %s were finished already, in one commit', job_ids))
    return None, dict(
        status='impossible', slurm_job_id=record.job_id,
        message=('job %s (commit %s) is not open on this branch, or was '
                 'scheduled before --since', record.job_id, sha[:8]))
