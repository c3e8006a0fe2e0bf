"""datalad jobs: what ran, read from the records of the history."""

from __future__ import annotations

import logging
import os.path as op

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
    EnsureChoice,
    EnsureNone,
    EnsureStr,
)
from datalad.support.exceptions import CapturedException
from datalad.support.param import Parameter
from datalad.utils import ensure_list

from .. import config
from ..finish.round import query
from ..records.history import (
    Commits,
    UnknownRevision,
    resolve_since,
)
from ..records.index import JobIndex
from ..report.cache import cached_summaries
from ..report.summary import (
    COLUMNS,
    OPEN,
    STATES,
    job_summaries,
    overview,
)
from ..report.timeline import write_timeline
from ..slurm.status import SlurmError
from ..util.bulk import paused_gc
from ..util.results import shared_fields
from .helpdoc import indented_doc
from .render import (
    JOBS_ACTION,
    render_result,
    render_tables,
)

lgr = logging.getLogger('datalad.slurm.jobs')


@build_doc
@indented_doc
class Jobs(Interface):
    """Report the jobs of the dataset: what ran, how long it waited, where,
    and how well it used what it asked for.

    One result per job, open or finished, read from the schedule and
    FINISH records of the history (Slurm is asked only with
    [CMD: --refresh CMD][PY: `refresh=True` PY], for the open jobs): job
    id, kind, state per task, submit, start and end time, queue wait,
    elapsed time, nodes, max RSS, CPU efficiency (CPU time used over
    elapsed time times the CPUs allocated) and memory efficiency (max RSS
    over the memory requested), outputs and commits.  On a terminal an
    aligned table and a summary line; with ``-f json`` the full records,
    with each task's figures.  The jobs' summaries are kept in
    ``.git/datalad-slurm/summaries.json``, so that a call reads only the
    commits made since the last; the history is their truth, and the cache
    is rebuilt from it whenever it does not fit.

    The summary line counts the failed jobs and array tasks by cause: out
    of memory, timeout, node failure, exit code, or what the
    ``datalad.slurm.failure-pattern`` configuration item (a regular
    expression) finds in their logs; each job's ``failure_causes`` has
    its own counts.

    [CMD: --timeline FILE CMD][PY: `timeline=FILE` PY] also writes the
    finished jobs as a trace file that ui.perfetto.dev and chrome://tracing
    open: a bar per job or array task, on a row per node and slot, and the
    queue wait of each as a bar of its own.
    """
    _examples_ = [
        dict(text="Report every job of the dataset",
             code_cmd="datalad jobs",
             code_py="jobs()"),
        dict(text="Report the failed jobs since a commit",
             code_cmd="datalad jobs --since v1.0 --state failed",
             code_py="jobs(since='v1.0', state='failed')"),
        dict(text="Write a timeline to open in ui.perfetto.dev",
             code_cmd="datalad jobs --timeline timeline.json",
             code_py="jobs(timeline='timeline.json')"),
    ]

    result_renderer = 'tailored'

    _params_ = dict(
        jobs=Parameter(
            args=("jobs",),
            nargs="*",
            metavar="JOB_ID_OR_COMMIT",
            doc="""Slurm job ids, or schedule or finish commits, of the jobs
            to report. All jobs if none are given."""),
        dataset=Parameter(
            args=("-d", "--dataset"),
            doc="""the dataset of the jobs. If not given, the dataset is
            found from the current directory.""",
            constraints=EnsureDataset() | EnsureNone()),
        since=Parameter(
            args=("--since",),
            metavar="COMMIT",
            doc="""only jobs scheduled after this commit.""",
            constraints=EnsureStr() | EnsureNone()),
        state=Parameter(
            args=("--state",),
            doc="""only jobs that are open (not finished), complete, or
            failed (closed with their failure); all by default.""",
            constraints=EnsureChoice('all', *STATES)),
        refresh=Parameter(
            args=("--refresh",),
            action="store_true",
            doc="""ask Slurm for the state of the open jobs."""),
        timeline=Parameter(
            args=("--timeline",),
            metavar="FILE",
            doc="""write the finished jobs to FILE in the Chrome Trace
            Event Format (JSON).""",
            constraints=EnsureStr() | EnsureNone()),
    )

    @staticmethod
    @datasetmethod(name='jobs')
    @eval_results
    def __call__(
            jobs=None,
            *,
            dataset=None,
            since=None,
            state='all',
            refresh=False,
            timeline=None):
        # DataLad keeps every result: the collector's passes, each walking
        # all that is alive, took a quarter of a listing of 100,000 jobs
        with paused_gc():
            yield from report_jobs(jobs, dataset=dataset, since=since,
                                   state=state, refresh=refresh,
                                   timeline=timeline)

    custom_result_renderer = staticmethod(render_result)
    custom_result_summary_renderer = staticmethod(
        lambda results: render_tables(
            results, [(JOBS_ACTION, COLUMNS, overview)]))


def report_jobs(jobs=None, *, dataset=None, since=None, state='all',
                refresh=False, timeline=None):
    """Generator behind :class:`Jobs`; see there."""
    ds = require_dataset(dataset, check_installed=True,
                         purpose='report Slurm jobs')
    status = dict(action=JOBS_ACTION, ds=ds, logger=lgr)
    problem = config.problem(ds)
    if problem:
        yield get_status_dict(status='impossible', message=problem, **status)
        return
    try:
        since = resolve_since(ds.repo, since) if since is not None else None
    except UnknownRevision as e:
        yield get_status_dict(status='impossible', message=str(e), **status)
        return
    pattern = config.get(ds, config.FAILURE_PATTERN)
    # a range reads only its own commits, which --since keeps few: the
    # cache serves the whole history
    summaries = job_summaries(ds.repo, f'{since}..HEAD', pattern) if since \
        else cached_summaries(ds.repo, pattern)
    if jobs:
        summaries, unknown = _named(ds, summaries, ensure_list(jobs))
        for target in unknown:
            yield get_status_dict(
                status='impossible',
                message=('%s names no job of this dataset (a job id, or a '
                         'schedule or finish commit)', target),
                **status)
    if state != 'all':
        summaries = [s for s in summaries if s['job_state'] == state]
    if refresh:
        yield from _refresh(ds, summaries, status)

    shared = shared_fields(status, status='ok')
    for i, summary in enumerate(summaries):
        # the result takes the summary's place: of 100,000 jobs, either is
        # a few hundred MB
        summaries[i] = result = dict(
            shared, **summary,
            message=('job %s: %s', summary['slurm_job_id'],
                     summary['slurm_state'] or summary['job_state']))
        yield result
    if timeline:
        yield from _timeline(op.abspath(timeline), summaries, status)


def _timeline(path: str, summaries: list[dict], status: dict):
    try:
        count = write_timeline(path, summaries)
    except OSError as e:
        yield get_status_dict(
            status='error', path=path, exception=CapturedException(e),
            message=('cannot write the timeline to %s: %s', path, e),
            **status)
        return
    yield get_status_dict(
        status='ok', path=path, type='file', timeline=path,
        message=('wrote %d events to %s; open it in ui.perfetto.dev',
                 count, path),
        **status)


def _named(ds, summaries: list[dict], targets: list) -> tuple[list, list]:
    """The summaries of the jobs `targets` name, and the targets naming
    none."""
    picked, unknown = [], []
    with Commits(ds.repo) as commits:
        for target in map(str, targets):
            sha = None if target.isdigit() else commits.sha(target)
            found = [s for s in summaries
                     if (target.isdigit() and s['slurm_job_id'] == int(target))
                     or (sha and sha in (s['commit'], s['finish_commit']))]
            if not found:
                unknown.append(target)
            picked.extend(s for s in found if s not in picked)
    return picked, unknown


def _refresh(ds, summaries: list[dict], status: dict):
    """Slurm's state of the open jobs, into their summaries."""
    index = JobIndex(ds.repo).refresh()
    records = [index.open[s['commit']] for s in summaries
               if s['job_state'] == OPEN and s['commit'] in index.open]
    if not records:
        return
    try:
        statuses = query(ds, records)
    except SlurmError as e:
        yield get_status_dict(
            status='error', exception=CapturedException(e),
            message=('could not ask Slurm about the open jobs: %s', str(e)),
            **status)
        return
    for summary in summaries:
        job = statuses.get(summary['slurm_job_id'])
        if summary['job_state'] == OPEN and job is not None:
            summary['slurm_state'] = job.describe()
