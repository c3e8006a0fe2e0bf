"""datalad finish: record the outcome of scheduled jobs that have ended."""

from __future__ import annotations

import logging
from contextlib import nullcontext

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
from datalad.interface.results import get_status_dict
from datalad.support.constraints import (
    EnsureFloat,
    EnsureInt,
    EnsureNone,
    EnsureStr,
)
from datalad.support.param import Parameter

from .. import config
from ..finish.handover import (
    commit_announced,
    finish_inside,
)
from ..finish.listing import list_open
from ..finish.round import (
    Round,
    ask_slurm,
    finish_round,
)
from ..finish.selection import (
    open_jobs,
    selected_jobs,
)
from ..finish.waiting import finish_as_they_end
from ..modes.scratch.injob import dataset_to_finish
from ..records.split import as_recorded
from ..repo import state
from ..repo.lock import commits_announcements
from ..slurm.env import own_job
from ..util.bulk import paused_gc
from .helpdoc import indented_doc
from .render import (
    LIST_ACTION,
    render_result,
    render_tables,
)

lgr = logging.getLogger('datalad.slurm.finish')


@build_doc
@indented_doc
class Finish(Interface):
    """Record the outcome of scheduled Slurm jobs that have ended.

    Finds the open jobs of the dataset (schedule commits without a finish
    commit), asks Slurm about all of them at once, and for each job whose
    every task completed with exit code 0 saves exactly its declared
    outputs and its Slurm log files in a commit titled
    ``[DATALAD FINISH] Processed batch job N: Complete``, whose record
    points back to the schedule commit.

    Jobs still pending or running are reported as 'impossible' with their
    state, and stay open.  Failed, cancelled or timed-out jobs are reported
    as 'error'; [CMD: --close-failed-jobs CMD][PY: `close_failed_jobs=True`
    PY] closes them with a FINISH commit titled with the failure, which
    saves their log files, so that the reason can be read, and whatever
    they left of their outputs, so that nothing is lost and the dataset is
    clean for the next job.

    A scratch job's FINISH commit merges the branch it delivered.  With
    [CMD: --octopus N CMD][PY: `octopus=N` PY] the branches of up to N
    scratch jobs are merged by one commit (an octopus merge), titled
    ``[DATALAD FINISH] Processed N batch jobs: Complete``, which carries
    the FINISH record of each job; their branches are deleted.  A job that
    depends on one of them comes in a later commit, and a job that changes
    a file one of them changes differently is merged alone, right after
    them, which its result says.

    Inside a job script, ``datalad finish $SLURM_JOB_ID`` as the last line
    lets a job record itself: it announces that the job's work ended and
    tries the repository lock once; the job that holds the lock commits
    every announced job, the others end at once.  ``datalad-slurm-done $?``
    does the same without starting DataLad, at a fraction of the cost.
    """
    _examples_ = [
        dict(text="Finish every job that has ended",
             code_cmd="datalad finish",
             code_py="finish()"),
        dict(text="Finish one job, by its Slurm job id",
             code_cmd="datalad finish 4711",
             code_py="finish('4711')"),
        dict(text="Show the open jobs and Slurm's word on each",
             code_cmd="datalad finish --list-open-jobs",
             code_py="finish(list_open_jobs=True)"),
        dict(text="As the last line of a job script: record the job, with "
                  "the exit status of its work",
             code_cmd="datalad finish --exit-status $? $SLURM_JOB_ID"),
        dict(text="Wait for a pipeline's jobs, finishing each as it ends",
             code_cmd="datalad finish --wait",
             code_py="finish(wait=True)"),
        dict(text="Close failed jobs too, recording their failure",
             code_cmd="datalad finish --close-failed-jobs",
             code_py="finish(close_failed_jobs=True)"),
        dict(text="Merge the branches of many scratch jobs, 500 by commit",
             code_cmd="datalad finish --octopus 500",
             code_py="finish(octopus=500)"),
    ]

    result_renderer = 'tailored'

    _params_ = dict(
        jobs=Parameter(
            args=("jobs",),
            nargs="*",
            metavar="JOB_ID_OR_COMMIT",
            doc="""Slurm job ids or schedule commits of the jobs to finish.
            All open jobs if none are given."""),
        dataset=Parameter(
            args=("-d", "--dataset"),
            doc="""the dataset the jobs were scheduled in. If not given,
            the dataset is found from the current directory.""",
            constraints=EnsureDataset() | EnsureNone()),
        since=Parameter(
            args=("--since",),
            metavar="COMMIT",
            doc="""only consider jobs scheduled after this commit.""",
            constraints=EnsureStr() | EnsureNone()),
        list_open_jobs=Parameter(
            args=("--list-open-jobs",),
            action="store_true",
            doc="""list the open jobs with Slurm's state of each (per array
            task) and change nothing."""),
        close_failed_jobs=Parameter(
            args=("--close-failed-jobs",),
            action="store_true",
            doc="""also close jobs that failed, were cancelled, timed out or
            are unknown to Slurm, with a FINISH commit that records the
            failure and saves the Slurm log files and what the job left of
            its outputs."""),
        wait=Parameter(
            args=("--wait",),
            action="store_true",
            doc="""wait for the jobs (all open ones if none are given) to
            end, finishing each as it ends (after the jobs it depends
            on), with one Slurm query per round; jobs that can never run
            are reported, not waited for."""),
        wait_timeout=Parameter(
            args=("--wait-timeout",),
            metavar="SECONDS",
            doc="""with [CMD: --wait CMD][PY: `wait=True` PY], stop
            waiting after this many seconds and report the jobs still
            running.""",
            constraints=EnsureFloat() | EnsureNone()),
        exit_status=Parameter(
            args=("--exit-status",),
            metavar="CODE",
            doc="""inside a job script, the exit status of the job's work
            (e.g. [CMD: $? CMD][PY: the status of the last step PY]), for a
            job that finishes itself before Slurm has seen it end: recorded
            in the FINISH record, and a non-zero status makes the job count
            as failed. Without it, a job script that gets to its
            finish counts as having done its work.""",
            constraints=EnsureInt() | EnsureNone()),
        octopus=Parameter(
            args=("--octopus",),
            metavar="N",
            doc="""merge the branches of up to N scratch jobs in one FINISH
            commit, which records each of them. [CMD: Default: the
            configuration item datalad.slurm.octopus, 1 unless set CMD]""",
            constraints=EnsureInt() | EnsureNone()),
    )

    @staticmethod
    @datasetmethod(name='finish')
    @eval_results
    def __call__(
            jobs=None,
            *,
            dataset=None,
            since=None,
            list_open_jobs=False,
            close_failed_jobs=False,
            wait=False,
            wait_timeout=None,
            exit_status=None,
            octopus=None):
        yield from finish(
            jobs, dataset=dataset, since=since,
            list_open_jobs=list_open_jobs,
            close_failed_jobs=close_failed_jobs, wait=wait,
            wait_timeout=wait_timeout, exit_status=exit_status,
            octopus=octopus)

    custom_result_renderer = staticmethod(render_result)
    custom_result_summary_renderer = staticmethod(render_tables)


def finish(jobs=None, *, dataset=None, since=None, list_open_jobs=False,
           close_failed_jobs=False, wait=False, wait_timeout=None,
           exit_status=None, octopus=None):
    """Generator behind :class:`Finish`; see there."""
    ds = require_dataset(dataset, check_installed=True,
                         purpose='finish Slurm jobs')
    status = dict(action=LIST_ACTION if list_open_jobs else 'finish', ds=ds,
                  logger=lgr)
    problem = _option_problem(list_open_jobs, close_failed_jobs, wait,
                              exit_status) or _octopus_problem(
                                  octopus, list_open_jobs)
    if problem:
        yield get_status_dict(status='impossible', message=problem, **status)
        return
    if not list_open_jobs:
        ds = yield from dataset_to_finish(ds, exit_status, status)
        if ds is None:
            return
        status['ds'] = ds
    # a listing commits nothing, and a wait lets go of the lock again and
    # again, for hours: announcements they find on letting go get the
    # committer any process starts
    with nullcontext() if wait or list_open_jobs else \
            commits_announcements():
        inside = yield from _finish(ds, jobs, since, list_open_jobs,
                                    close_failed_jobs, wait, wait_timeout,
                                    exit_status, octopus, status)
        if not (list_open_jobs or inside) and \
                state.announced(ds.repo.dot_git):
            # jobs that finished themselves while this process held the
            # lock (or beyond the jobs it was given): they count on it
            yield from commit_announced(ds, status, once=True)


def _finish(ds, jobs, since, list_open_jobs, close_failed_jobs, wait,
            wait_timeout, exit_status, octopus, status):
    """The finish of `jobs`; returns whether it was a job's own finish
    (which commits what others announced itself, if it does)."""
    index = yield from open_jobs(ds, since, status,
                                 changes=not list_open_jobs)
    selected = [] if index is None else \
        (yield from selected_jobs(ds, index, jobs, status))
    if not selected:
        return False
    own = as_recorded(selected, own_job())
    if own and jobs and [r.job_id for r in selected] == [own[0]] and \
            not (wait or list_open_jobs or close_failed_jobs):
        yield from finish_inside(ds, selected[0], own, exit_status, status)
        return True
    how = Round(close_failed=close_failed_jobs, own=own,
                exit_status=exit_status,
                octopus=octopus or config.get(ds, config.OCTOPUS))
    if wait and not list_open_jobs:
        yield from finish_as_they_end(ds, index, selected, how, status,
                                      wait_timeout)
        return False
    statuses = yield from ask_slurm(ds, selected, status)
    if statuses is None:
        return False
    if list_open_jobs:
        # DataLad keeps every result: the collector's passes over all that
        # is alive took a tenth of a listing of 10,000 jobs
        with paused_gc():
            yield from list_open(index, selected, statuses, status)
    else:
        yield from finish_round(ds, index, selected, statuses, status, how)
    return False


def _option_problem(list_open_jobs, close_failed_jobs, wait,
                    exit_status) -> str | tuple | None:
    if list_open_jobs and (close_failed_jobs or wait):
        return ('--list-open-jobs changes nothing, so it cannot close '
                'failed jobs or wait to finish them; give one of them')
    if exit_status is not None and own_job() is None:
        return ('--exit-status %s tells how a job\'s own work ended, but '
                'this process runs in no Slurm job; leave it out',
                exit_status)
    return None


def _octopus_problem(octopus, list_open_jobs) -> str | tuple | None:
    if octopus is None:
        return None
    if list_open_jobs:
        return ('--list-open-jobs changes nothing, so it merges no jobs '
                'with --octopus; give one of them')
    # bool is an int to Python, and no count of jobs
    if isinstance(octopus, bool) or not isinstance(octopus, int) or \
            octopus < 1:
        return ('--octopus %r: give how many jobs one FINISH commit may '
                'merge, 1 or more (1: a commit per job)', octopus)
    return None
