"""datalad reschedule: submit recorded jobs again, as new pairs of commits."""

from __future__ import annotations

import logging

from datalad.distribution.dataset import (
    EnsureDataset,
    datasetmethod,
    require_dataset,
)
from datalad.interface.base import (
    Interface,
    build_doc,
    eval_results,
)
from datalad.interface.common_opts import save_message_opt
from datalad.interface.results import get_status_dict
from datalad.support.constraints import (
    EnsureNone,
    EnsureStr,
)
from datalad.support.exceptions import CapturedException
from datalad.support.param import Parameter

from .. import config
from ..finish.record import record_succeeded
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
from ..submit.request import from_record
from ..submit.submission import submit_job
from .helpdoc import indented_doc
from .render import (
    REPORT_ACTION,
    render_result,
    render_tables,
)

lgr = logging.getLogger('datalad.slurm.reschedule')


@build_doc
@indented_doc
class Reschedule(Interface):
    """Submit a recorded Slurm job again, as a new pair of commits.

    What :command:`datalad rerun` is to :command:`datalad run`: the job's
    recorded sbatch command is submitted again from the directory it was
    first submitted from, with its recorded inputs retrieved and its
    outputs (and Slurm log files) unlocked, and a commit titled
    ``[DATALAD RESCHEDULE] Submitted batch job N: Pending`` records it,
    naming the earlier schedule commits in its ``chain``.  The new job is
    an open job like any other: :command:`datalad finish` completes it.

    A job can be named by its schedule, reschedule or finish commit.  It
    must have been finished, and have completed, unless
    [CMD: --with-failed-jobs CMD][PY: `with_failed_jobs=True` PY].

    A farm job (scheduled with a task list) is submitted again with only
    its tasks that did not complete, which is what a partly failed one
    needs, so it is not refused for them; where every task completed, with
    the tasks it ran.  [CMD: --all-tasks CMD][PY: `all_tasks=True` PY] runs
    the whole list, as it is now.  Tasks are named by their line numbers:
    running only some of them needs the list unchanged since the job ran.
    """
    _examples_ = [
        dict(text="Submit the job finished in the last commit again",
             code_cmd="datalad reschedule",
             code_py="reschedule()"),
        dict(text="Submit a job again, named by any commit of its pair",
             code_cmd="datalad reschedule 1a2b3c4",
             code_py="reschedule('1a2b3c4')"),
        dict(text="Show which jobs since a commit would be submitted again",
             code_cmd="datalad reschedule --since v1.0 --report",
             code_py="reschedule(since='v1.0', report=True)"),
    ]

    result_renderer = 'tailored'

    _params_ = dict(
        revision=Parameter(
            args=("revision",),
            metavar="REVISION",
            nargs="?",
            doc="""a schedule, reschedule or finish commit of the job to
            submit again. [CMD: Default: HEAD CMD]""",
            constraints=EnsureStr() | EnsureNone()),
        dataset=Parameter(
            args=("-d", "--dataset"),
            doc="""the dataset of the job. If not given, the dataset is
            found from the current directory.""",
            constraints=EnsureDataset() | EnsureNone()),
        since=Parameter(
            args=("--since",),
            metavar="COMMIT",
            doc="""submit again every finished job after this commit, in
            history order. An empty value means the whole history.""",
            constraints=EnsureStr() | EnsureNone()),
        report=Parameter(
            args=("--report",),
            action="store_true",
            doc="""report what would be submitted, and submit nothing."""),
        message=save_message_opt,
        with_failed_jobs=Parameter(
            args=("--with-failed-jobs",),
            action="store_true",
            doc="""also submit again jobs that did not complete."""),
        all_tasks=Parameter(
            args=("--all-tasks",),
            action="store_true",
            doc="""for a farm job, run every task of its task list (as it
            is now), not only those that did not complete."""),
    )

    @staticmethod
    @datasetmethod(name='reschedule')
    @eval_results
    def __call__(
            revision=None,
            *,
            dataset=None,
            since=None,
            report=False,
            message=None,
            with_failed_jobs=False,
            all_tasks=False):
        yield from reschedule(
            revision, dataset=dataset, since=since, report=report,
            message=message, with_failed_jobs=with_failed_jobs,
            all_tasks=all_tasks)

    custom_result_renderer = staticmethod(render_result)
    custom_result_summary_renderer = staticmethod(render_tables)


def reschedule(revision=None, *, dataset=None, since=None, report=False,
               message=None, with_failed_jobs=False, all_tasks=False):
    """Generator behind :class:`Reschedule`; see there."""
    ds = require_dataset(dataset, check_installed=True,
                         purpose='reschedule Slurm jobs')
    status = dict(action=REPORT_ACTION if report else 'reschedule', ds=ds,
                  logger=lgr)
    problem = ('give a revision (%s) or --since (%r), not both: --since '
               'already names the jobs to submit again', revision, since) \
        if revision is not None and since is not None else config.problem(ds)
    if problem:
        yield get_status_dict(status='impossible', message=problem, **status)
        return
    jobs = []
    for finished, res in _finished_jobs(ds, revision, since):
        if res is None:
            res = _refusal(ds, finished, with_failed_jobs,
                           in_range=since is not None, all_tasks=all_tasks)
        if res is not None:
            yield get_status_dict(**status, **res)
        else:
            jobs.append(finished)
    if since is not None and not jobs:
        yield get_status_dict(status='notneeded',
                              message='no finished jobs to reschedule',
                              **status)
    job_ids = {f.data['schedule_commit']: f.job_id for f in jobs}
    # the new schedule commit of each job submitted again, by its old one:
    # a pipeline's new steps wait for each other, not for the old ones
    renewed: dict[str, str] = {}
    for finished in jobs:
        if report:
            yield _would_submit(finished.data, job_ids, status)
        else:
            yield from _submit_again(ds, finished, renewed, message=message,
                                     all_tasks=all_tasks, status=status)


def _would_submit(data: dict, job_ids: dict, status: dict) -> dict:
    return get_status_dict(
        status='ok', commit=data['schedule_commit'],
        slurm_job_id=data['slurm_job_id'], cmd=data['cmd'],
        pwd=data['pwd'], outputs=data['outputs'],
        depends_on=[job_ids.get(c, c[:8])
                    for c in data.get('depends_on') or []],
        message=('would submit job %s again', data['slurm_job_id']),
        **status)


def _submit_again(ds, finished: Record, renewed: dict[str, str], *,
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


def _finished_jobs(ds, revision, since):
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
    """The FINISH record of the job `revision` names, or a refusal."""
    sha = commits.sha(revision)
    if sha is None:
        yield None, dict(status='impossible',
                         message=('%r names no commit of this dataset',
                                  revision))
        return
    record = commits.record(sha)
    if record is None:
        yield None, dict(
            status='impossible',
            message=('commit %s carries no datalad-slurm record; '
                     'reschedule repeats jobs recorded by datalad schedule',
                     sha[:8]))
        return
    if record.kind != FINISH:
        finished = JobIndex(ds.repo).refresh().finished.get(sha)
        if finished is None:
            yield None, dict(
                status='impossible', slurm_job_id=record.job_id,
                message=('job %s (commit %s) is still open; finish it '
                         '(datalad finish) before scheduling it again',
                         record.job_id, sha[:8]))
            return
        record = commits.record(finished['finish'])
    yield record, None


def _refusal(ds, finished: Record, with_failed_jobs: bool,
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
