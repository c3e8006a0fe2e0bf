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
    EnsureFloat,
    EnsureNone,
    EnsureStr,
)
from datalad.support.param import Parameter

from .. import config
from ..records.index import JobIndex
from ..submit.again import (
    dry_run_again,
    finished_jobs,
    planned,
    refusal,
    submit_again,
    would_submit,
)
from ..submit.retry import Retry
from ..submit.script import write_script
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

    [CMD: --failed CMD][PY: `failed=True` PY] submits again only what
    failed, as its FINISH record (``datalad finish --close-failed-jobs``)
    says: of an array job, only its failed tasks, as a new array of those
    task ids; with [CMD: --since CMD][PY: `since` PY], or without a
    revision (the whole history), only the failed jobs of the range that
    no later submission repeats already.

    [CMD: --more-memory FACTOR CMD][PY: `more_memory=FACTOR` PY] and
    [CMD: --more-time FACTOR CMD][PY: `more_time=FACTOR` PY] multiply the
    memory or the time limit of a job that Slurm ended OUT_OF_MEMORY or
    TIMEOUT: its ``--mem`` (``--mem-per-cpu``, ``--mem-per-gpu``) or
    ``--time``, from the command line or the job script's ``#SBATCH``
    lines, or, where it asked for no memory, what Slurm gave it (sacct's
    ReqMem); one that asked for no time limit is refused.  The new value
    goes on the new sbatch command line, and the record's ``raised`` says
    what it was
    raised from.  A job named that did not run out of it is refused; in a
    range, the factor applies to those that did.
    """
    _examples_ = [
        dict(text="Submit the job finished in the last commit again",
             code_cmd="datalad reschedule",
             code_py="reschedule()"),
        dict(text="Submit a job again, named by any commit of its pair",
             code_cmd="datalad reschedule 1a2b3c4",
             code_py="reschedule('1a2b3c4')"),
        dict(text="Submit again the failed tasks of every failed job, with "
                  "twice the memory for those that ran out of it",
             code_cmd="datalad reschedule --failed --more-memory 2",
             code_py="reschedule(failed=True, more_memory=2)"),
        dict(text="Show which jobs since a commit would be submitted again",
             code_cmd="datalad reschedule --since v1.0 --report",
             code_py="reschedule(since='v1.0', report=True)"),
        dict(text="Show the sbatch command a job would be submitted again "
                  "with, submitting nothing",
             code_cmd="datalad reschedule --dry-run 1a2b3c4",
             code_py="reschedule('1a2b3c4', dry_run=True)"),
        dict(text="Write a script that schedules the jobs since a commit "
                  "again",
             code_cmd="datalad reschedule --since v1.0 --script redo.sh",
             code_py="reschedule(since='v1.0', script='redo.sh')"),
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
        dry_run=Parameter(
            args=("--dry-run",),
            action="store_true",
            doc="""check and plan each submission as datalad schedule
            --dry-run does, and stop before sbatch: report the sbatch
            command, the inputs it would get, the outputs it would make
            writable and the jobs it would wait for. Nothing changes."""),
        script=Parameter(
            args=("--script",),
            metavar="FILE",
            doc="""write a shell script that schedules the jobs again
            (each as its datalad schedule command, from the directory it
            was submitted from, waiting for the jobs before it that it
            waited for) to [CMD: FILE CMD][PY: this file PY], and submit
            nothing, as datalad rerun --script does. Use - to write to
            stdout instead. Run the script from the dataset's root.""",
            constraints=EnsureStr() | EnsureNone()),
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
        failed=Parameter(
            args=("--failed",),
            action="store_true",
            doc="""submit again only what failed: the failed jobs (of
            --since's range, or of the whole history without a revision)
            and of an array job only its failed tasks."""),
        more_memory=Parameter(
            args=("--more-memory",),
            metavar="FACTOR",
            doc="""multiply the memory request of a job that ran out of
            memory (OUT_OF_MEMORY) by FACTOR (above 1).""",
            constraints=EnsureFloat() | EnsureNone()),
        more_time=Parameter(
            args=("--more-time",),
            metavar="FACTOR",
            doc="""multiply the time limit of a job that timed out
            (TIMEOUT) by FACTOR (above 1).""",
            constraints=EnsureFloat() | EnsureNone()),
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
            all_tasks=False,
            failed=False,
            more_memory=None,
            more_time=None,
            dry_run=False,
            script=None):
        yield from reschedule(
            revision, dataset=dataset, since=since, report=report,
            message=message, with_failed_jobs=with_failed_jobs,
            all_tasks=all_tasks,
            retry=Retry(failed_only=failed, more_memory=more_memory,
                        more_time=more_time),
            dry_run=dry_run, script=script)

    custom_result_renderer = staticmethod(render_result)
    custom_result_summary_renderer = staticmethod(render_tables)


def reschedule(revision=None, *, dataset=None, since=None, report=False,
               message=None, with_failed_jobs=False, all_tasks=False,
               retry: Retry | None = None, dry_run=False, script=None):
    """Generator behind :class:`Reschedule`; see there."""
    ds = require_dataset(dataset, check_installed=True,
                         purpose='reschedule Slurm jobs')
    retry = retry or Retry()
    status = dict(action=REPORT_ACTION if report else 'reschedule', ds=ds,
                  logger=lgr)
    problem = _option_problem(revision, since, report, dry_run, script) or \
        _retry_problem(retry, all_tasks, script) or config.problem(ds)
    if problem:
        yield get_status_dict(status='impossible', message=problem, **status)
        return
    in_range = since is not None or (retry.failed_only and revision is None)
    retrying = retry.failed_only or retry.more_memory is not None or \
        retry.more_time is not None
    jobs = []
    for finished, res in finished_jobs(ds, revision, since,
                                       retry.failed_only):
        plan = None
        if res is None:
            res = refusal(ds, finished, with_failed_jobs, in_range=in_range,
                          all_tasks=all_tasks, retry=retry)
        if res is None and retrying:
            plan, res = planned(ds, finished, retry, named=not in_range)
        if res is not None:
            yield from _shown(get_status_dict(**status, **res), script)
        else:
            jobs.append((finished, plan))
    if in_range and not jobs:
        yield from _shown(get_status_dict(
            status='notneeded', message=_nothing(ds, retry), **status),
            script)
    job_ids = {f.data['schedule_commit']: f.job_id for f, _ in jobs}
    if script is not None:
        if jobs:
            yield from write_script(ds, [f for f, _ in jobs], script, status,
                                    message=message, revision=revision,
                                    since=since)
        return
    # the new schedule commit of each job submitted again, by its old one:
    # a pipeline's new steps wait for each other, not for the old ones
    renewed: dict[str, str] = {}
    for finished, plan in jobs:
        if report:
            yield would_submit(finished.data, job_ids, status, plan)
        elif dry_run:
            yield from dry_run_again(ds, finished, job_ids, message=message,
                                     all_tasks=all_tasks, status=status,
                                     retried=plan)
        else:
            yield from submit_again(ds, finished, renewed, message=message,
                                    all_tasks=all_tasks, status=status,
                                    retried=plan)


def _retry_problem(retry: Retry, all_tasks: bool, script: str | None):
    """What is wrong with the options of a retry, or None."""
    for option, factor in (('--more-memory', retry.more_memory),
                           ('--more-time', retry.more_time)):
        if factor is not None and not factor > 1:
            return ('%s %s would not raise anything: give a factor above 1, '
                    'such as 2 for twice as much', option, factor)
    if script is not None and (retry.failed_only or
                               retry.more_memory is not None or
                               retry.more_time is not None):
        return ('--script writes the commands of the jobs as they were '
                'recorded; for --failed, --more-memory or --more-time use '
                '--dry-run to see what would be submitted, or reschedule '
                'them')
    if retry.failed_only and all_tasks:
        return ('give --failed or --all-tasks, not both: one runs only the '
                'failed tasks, the other all')
    return None


def _nothing(ds, retry: Retry) -> str:
    """Why a range has no job to submit again."""
    if not retry.failed_only:
        return 'no finished jobs to reschedule'
    still_open = len(JobIndex(ds.repo).refresh().open)
    return 'no failed jobs to reschedule' + (
        f' ({still_open} jobs are still open: datalad finish '
        f'--close-failed-jobs records those that failed)'
        if still_open else '')


def _shown(res: dict, script: str | None):
    """`res`, unless it is a job skipped while the script goes to stdout,
    where its rendering would become part of the script: then logged."""
    if script is not None and script.strip() == '-' and \
            res['status'] == 'notneeded':
        message = res['message']
        if isinstance(message, tuple):
            lgr.info(*message)
        else:
            lgr.info('%s', message)
        return
    yield res


def _option_problem(revision, since, report, dry_run, script):
    if revision is not None and since is not None:
        return ('give a revision (%s) or --since (%r), not both: --since '
                'already names the jobs to submit again', revision, since)
    given = [name for name, value in (('--report', report),
                                      ('--dry-run', dry_run),
                                      ('--script', script is not None))
             if value]
    if len(given) > 1:
        return ('give one of %s: each reports instead of submitting, in '
                'its own way', ' and '.join(given))
    if script is not None and not script.strip():
        return '--script names no file; give one, or - for stdout'
    return None
