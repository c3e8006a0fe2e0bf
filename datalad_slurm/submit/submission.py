"""Submitting a job and recording it, whatever its mode: what schedule and
reschedule share.

A submission goes through three steps.  :func:`check` refuses, before
anything changes, what cannot be submitted; the inputs are got; then
:func:`submit`, with the repository lock held, plans the job
(:func:`plan_submission`: its record, and its mode's sbatch command and
files), writes the mode's files and the journal entry, makes the outputs
writable, runs sbatch and hands the entry to :func:`.complete.complete`,
which commits the SCHEDULE record (and completes entries a crash left,
the same way).  A dry run (:mod:`.dryrun`) checks and plans, and stops.
"""

from __future__ import annotations

import logging
import os
import os.path as op
import uuid
from dataclasses import dataclass
from datetime import (
    datetime,
    timezone,
)
from typing import (
    Generator,
    Iterator,
)

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException
from datalad.support.globbedpaths import GlobbedPaths
from datalad.utils import chpwd

from .. import (
    backends,
    config,
)
from ..modes.base import (
    Plan,
    Refused,
    Submission,
)
from ..records import journal
from ..records.index import JobIndex
from ..repo.commit import identity_problem
from ..repo.lock import (
    LockTimeout,
    repository_lock,
)
from ..repo.paths import pwd_relative
from ..repo.worktree import (
    changed_under,
    restore,
    shorten,
    unlock_or_remove,
)
from ..slurm.jobspec import (
    job_script_head,
    sets_option,
)
from ..slurm.status import (
    SlurmError,
    SlurmTimeout,
)
from .checks import (
    find_conflicts,
    unsaved_changes,
)
from .clusters import (
    cluster_option,
    cluster_problem,
    dependency_problem,
)
from .cmdline import (
    plug_in,
    prepare_inputs,
)
from .complete import (
    complete,
    mark_comment,
    recover_orphans,
)
from .dependencies import (
    Dependencies,
    DependencyError,
    find_dependencies,
    with_dependencies,
)
from .limits import limits_problem
from .request import (
    Request,
    sbatch_argv,
)

lgr = logging.getLogger('datalad.slurm.submission')


@dataclass
class Checked:
    """A request that passed :func:`check`."""
    argv: list[str]
    pwd_abs: str
    # the job script's first lines (None for --wrap)
    script_lines: list[str] | None
    depends: Dependencies
    index: JobIndex
    backend: backends.Submitter
    # the cluster the job is sent to with -M (None: this machine's)
    cluster: str | None = None


def submit_job(ds, request: Request) -> Iterator[dict]:
    """Check `request`, get its inputs, submit it and commit its SCHEDULE
    record."""
    status = dict(action=request.action, ds=ds, logger=lgr)
    try:
        checked = check(ds, request)
    except (Refused, SlurmError) as e:
        yield refused_result(e, status)
        return
    if (yield from _get_inputs(ds, request, checked, status)):
        yield from submit(ds, request, checked, status)


def refused_result(e: Refused | SlurmError, status: dict) -> dict:
    """The result of a submission :func:`check` refused, or could not ask
    Slurm for."""
    if isinstance(e, Refused):
        return get_status_dict(status='impossible', message=str(e), **status)
    return get_status_dict(status='error', message=str(e),
                           exception=CapturedException(e), **status)


def check(ds, request: Request) -> Checked:
    """Everything that refuses `request` before anything changes.

    Raises
    ------
    Refused
    SlurmError
      Where Slurm cannot be asked what the site allows.
    """
    repo = ds.repo
    problem = config.problem(ds) or identity_problem(repo)
    if problem:
        raise Refused(problem)
    index = JobIndex.current(repo)
    # a job outside the work tree never sees it: its mode checks where it
    # reads and writes
    if not request.explicit and request.mode.in_work_tree:
        changes = unsaved_changes(ds, index)
        if changes:
            raise Refused(
                f'the dataset has unsaved changes ({shorten(changes)}), and '
                f'the job would run on a state no commit records; save them '
                f'first (datalad save), or give --explicit to schedule '
                f'anyway')
    pwd_abs = op.normpath(op.join(ds.path, request.pwd))
    argv = sbatch_argv(_plugged_in(ds, request, pwd_abs))
    request.mode.check(ds, argv, pwd_abs,
                       request.inputs + request.extra_inputs, request.outputs)
    try:
        depends = find_dependencies(repo, index, request.inputs,
                                    list(request.after))
    except DependencyError as e:
        raise Refused(str(e)) from e
    script_lines = job_script_head(argv, pwd_abs)
    cluster = cluster_option(argv, script_lines, os.environ)
    problem = cluster_problem(cluster)
    if problem:
        raise Refused(problem)
    backend = backends.submitter(ds)
    timeout = config.get(ds, config.QUERY_TIMEOUT)
    backend.check(timeout)
    site = backend.site(timeout)
    problem = limits_problem(site, argv, script_lines) or \
        dependency_problem(cluster, depends.jobs, site.cluster)
    if problem:
        raise Refused(problem)
    return Checked(argv, pwd_abs, script_lines, depends, index, backend,
                   cluster)


def _plugged_in(ds, request: Request, pwd_abs: str) -> str:
    """The command with its placeholders filled in; the job's view of
    inputs and outputs is relative to where it runs."""
    def globbed(paths):
        return GlobbedPaths(pwd_relative(ds.path, pwd_abs, paths),
                            pwd=pwd_abs)
    try:
        return plug_in(ds, request.cmd, pwd=pwd_abs, dspath=ds.path,
                       inputs=globbed(request.inputs),
                       outputs=globbed(request.outputs))
    except KeyError as e:
        raise Refused(f'the command has an unknown placeholder {e}; write a '
                      f'literal brace as {{{{ or }}}}') from e


def _get_inputs(ds, request: Request, checked: Checked, status: dict,
                ) -> Generator[dict, None, bool]:
    """Get the inputs no open job writes (the others do not exist yet);
    whether all could be got."""
    to_get = checked.depends.to_get
    failed = False
    # DataLad's commands take relative paths relative to the working dir
    with chpwd(ds.path):
        for res in prepare_inputs(
                ds.path, GlobbedPaths(to_get, pwd=ds.path)
                if to_get else None,
                extra_inputs=GlobbedPaths(request.extra_inputs, pwd=ds.path)
                if request.extra_inputs else None):
            if res['status'] in ('impossible', 'error'):
                failed = True
                # prepare_inputs reports under datalad run's action
                yield dict(res, action=request.action)
    return not failed


def submit(ds, request: Request, checked: Checked, status: dict,
           ) -> Iterator[dict]:
    """Submit a checked request and commit its record, with the repository
    lock held."""
    timeout = config.get(ds, config.QUERY_TIMEOUT)
    backend = checked.backend
    try:
        with repository_lock(ds.repo, config.get(ds, config.LOCK_TIMEOUT)):
            yield from recover_orphans(ds, request.action)
            try:
                submission = _prepare(ds, request, checked,
                                      local=backend.name == config.LOCAL)
            except Refused as e:
                yield get_status_dict(status='impossible', message=str(e),
                                      **status)
                return
            yield from _run_sbatch(ds, backend, request, submission, status,
                                   checked.index, timeout)
    except (LockTimeout, SlurmError) as e:
        yield get_status_dict(status='error', message=str(e),
                              exception=CapturedException(e), **status)


def _prepare(ds, request: Request, checked: Checked, *,
             local: bool) -> Submission:
    """The record and sbatch command of the job, its mode's files written.

    Raises
    ------
    Refused
    """
    submission, plan = plan_submission(ds, request, checked, local=local)
    plan.write()
    return submission


def plan_submission(ds, request: Request, checked: Checked, *,
                    local: bool) -> tuple[Submission, Plan]:
    """The record and sbatch command of the job, and its mode's plan,
    nothing written: what other processes may have changed since
    :func:`check` is asked again.

    Raises
    ------
    Refused
    """
    conflicts = find_conflicts(checked.index.refresh(), request.outputs)
    if conflicts:
        raise Refused(f'outputs overlap those of open jobs '
                      f'({"; ".join(conflicts)}); finish those jobs first '
                      f'(datalad finish), or choose other outputs')
    script_lines = checked.script_lines
    depends = checked.depends.still_open(checked.index)
    argv = with_dependencies(checked.argv, script_lines,
                             [r.job_id for r in depends.jobs]) \
        if depends.jobs else checked.argv
    inputs = GlobbedPaths(request.inputs, pwd=ds.path).expand() \
        if request.expand in ('inputs', 'both') else request.inputs
    record = {
        'cmd': request.cmd, 'dsid': ds.id, 'pwd': request.pwd,
        'inputs': inputs, 'extra_inputs': request.extra_inputs,
        'outputs': request.outputs, 'expand': request.expand,
        'chain': request.chain, 'message': request.message,
        'submitted': datetime.now(timezone.utc).isoformat(
            timespec='seconds'),
        'submission': uuid.uuid4().hex,
        'depends_on': depends.commits,
    }
    if checked.cluster:
        record['slurm_cluster_option'] = checked.cluster
    if request.raised:
        record['raised'] = request.raised
    submission = Submission(argv, checked.pwd_abs, record, script_lines,
                            depends.jobs, local)
    plan = request.mode.plan(ds, submission)
    submission.argv = plan.argv
    return submission, plan


def writable_paths(request: Request) -> list[str]:
    """What a submission makes writable: the outputs, where the job writes
    them into the work tree, and the files recorded with them."""
    return (request.outputs if request.mode.in_work_tree else []) + \
        list(request.extra_outputs)


def _run_sbatch(ds, backend, request: Request, submission: Submission,
                status: dict, index: JobIndex, timeout: float,
                ) -> Iterator[dict]:
    """Journal, make outputs writable, submit, commit: the critical
    section.  What the mode prepared is undone where nothing was
    submitted."""
    record, mode = submission.record, request.mode
    writable = writable_paths(request)
    marked = with_mark(submission.argv, submission.script_lines,
                        record['submission'])
    # without --explicit, nothing under the outputs differs from HEAD
    entry = journal.begin(
        ds.repo, request.kind, record, request.message,
        marked or submission.argv, marked=marked is not None,
        writable=writable,
        changed_before=changed_under(ds, writable) if request.explicit
        else [],
        submitter=backend.name)
    prepared = []
    for res in unlock_or_remove(ds, writable):
        if res['status'] in ('impossible', 'error'):
            yield res
            restore(ds, prepared)
            entry.done()
            mode.undo(ds, record)
            return
        if res['status'] == 'ok':
            prepared.append(res['path'])

    entry.submitting()
    try:
        job_id = backend.submit(entry.argv, cwd=submission.pwd_abs,
                                timeout=timeout)
    except SlurmTimeout:
        # Slurm may have accepted the job: the outputs stay writable, and
        # the entry is looked up by its mark, now or by a later command
        entry.unknown()
    except SlurmError as e:
        entry.done()
        restore(ds, prepared)
        mode.undo(ds, record)
        yield get_status_dict(
            status='error',
            message=('sbatch did not submit the job: %s', str(e)),
            exception=CapturedException(e), **status)
        return
    else:
        entry.submitted(job_id)
    yield from complete(ds, entry, status, index=index)


def with_mark(argv: list[str], script_lines: list[str] | None,
               mark: str) -> list[str] | None:
    """`argv` with the submission's mark as the job's ``--comment``, by
    which Slurm can be asked whether it accepted a submission sbatch gave
    no answer for; None where the user sets a comment of their own (on the
    command line or in the job script's `script_lines`)."""
    if sets_option(argv, [script_lines], '--comment'):
        return None
    return [argv[0], f'--comment={mark_comment(mark)}', *argv[1:]]
