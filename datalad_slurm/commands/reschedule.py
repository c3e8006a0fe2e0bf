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
from datalad.support.param import Parameter

from .. import config
from ..submit.again import (
    finished_jobs,
    refusal,
    submit_again,
    would_submit,
)
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

    A job can be named by its schedule, reschedule or finish commit; a
    finish commit of several jobs (``finish --octopus``) names each of
    them.  It must have been finished, and have completed, unless
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
    for finished, res in finished_jobs(ds, revision, since):
        if res is None:
            res = refusal(ds, finished, with_failed_jobs,
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
            yield would_submit(finished.data, job_ids, status)
        else:
            yield from submit_again(ds, finished, renewed, message=message,
                                    all_tasks=all_tasks, status=status)
