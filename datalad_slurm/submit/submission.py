"""Submitting a job and recording it: what schedule and reschedule share.
"""

from __future__ import annotations

import logging
import os.path as op
import shlex
import uuid
from datetime import (
    datetime,
    timezone,
)
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException
from datalad.support.globbedpaths import GlobbedPaths
from datalad.utils import chpwd

from .. import (
    backends,
    config,
)
from ..modes.farm import submit as farming
from ..modes.scratch import submit as scratch_submit
from ..records import journal
from ..records.format import SCHEDULE
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
from .cmdline import (
    normalize,
    plug_in,
    prepare_inputs,
)
from .complete import (
    complete,
    mark_comment,
    recover_orphans,
)
from .dependencies import (
    DependencyError,
    find_dependencies,
    with_dependencies,
)

lgr = logging.getLogger('datalad.slurm.submission')


class NotSbatch(ValueError):
    """A command that is no sbatch invocation, or cannot be split into one.
    """


def sbatch_argv(cmd) -> list[str]:
    """The argument list of an sbatch command given as a list or a string.

    Raises
    ------
    NotSbatch
    """
    command = normalize(cmd) if cmd else ''
    try:
        argv = shlex.split(command)
    except ValueError as e:
        # an unbalanced quote, given as a string from Python
        raise NotSbatch(f'cannot split the command {command!r} into '
                        f'arguments ({e}); check its quotes') from e
    if not argv or op.basename(argv[0]) != 'sbatch':
        raise NotSbatch(
            f'not an sbatch command: {command!r}; schedule submits batch '
            f'jobs, as in: datalad schedule -o OUTPUT sbatch job.sh')
    return argv


def submit_job(ds, cmd: str, *, pwd: str, inputs: list[str],
               extra_inputs: list[str], outputs: list[str],
               message: str | None, chain: list[str], kind: str = SCHEDULE,
               expand: str | None = None, explicit: bool = False,
               extra_outputs: list[str] = (), action: str = 'schedule',
               after: list[str] = (),
               farm: farming.FarmRequest | None = None,
               scratch: str | None = None,
               ) -> Iterator[dict]:
    """Prepare the work tree, submit `cmd` and commit its schedule record.

    Parameters
    ----------
    cmd
      The sbatch command as recorded (placeholders not yet filled in).
    pwd
      Submission directory, relative to the dataset root.
    inputs, extra_inputs, outputs
      Paths or globs relative to the dataset root.
    extra_outputs
      Files to make writable like outputs, without recording them.
    chain
      Schedule commits this submission repeats.
    kind
      SCHEDULE or RESCHEDULE.
    explicit
      Accept a dataset with unsaved changes.
    after
      Open jobs (ids or schedule commits) to start after, besides those
      whose outputs are among the inputs.
    farm
      A task list to run as the job, with the farmer as its batch script
      (:mod:`.farming`); `cmd` then gives sbatch options only.
    scratch
      The directory (as the compute node spells it) to run the job in a
      clone of its own under (:mod:`.scratch`).
    """
    root = ds.path
    pwd_abs = op.normpath(op.join(root, pwd))
    status = dict(action=action, ds=ds, logger=lgr)
    # ds.repo checks the repository each time it is asked for
    repo = ds.repo

    problem = config.problem(ds) or identity_problem(repo)
    if problem:
        yield get_status_dict(status='impossible', message=problem, **status)
        return

    index = JobIndex.current(repo)
    # a scratch job never sees the work tree: only where it reads and
    # writes may nothing be unsaved (scratch_submit.check)
    if not explicit and scratch is None:
        changes = unsaved_changes(ds, index)
        if changes:
            yield get_status_dict(
                status='impossible',
                message=('the dataset has unsaved changes (%s), and the job '
                         'would run on a state no commit records; save them '
                         'first (datalad save), or give --explicit to '
                         'schedule anyway', shorten(changes)),
                **status)
            return

    # The job's view of inputs and outputs is relative to where it runs.
    globbed_inputs = GlobbedPaths(pwd_relative(root, pwd_abs, inputs),
                                  pwd=pwd_abs)
    globbed_outputs = GlobbedPaths(pwd_relative(root, pwd_abs, outputs),
                                   pwd=pwd_abs)
    try:
        argv = sbatch_argv(plug_in(
            ds, cmd, pwd=pwd_abs, dspath=root,
            inputs=globbed_inputs, outputs=globbed_outputs))
    except KeyError as e:
        yield get_status_dict(
            status='impossible',
            message=('the command has an unknown placeholder %s; write a '
                     'literal brace as {{ or }}', e),
            **status)
        return
    except NotSbatch as e:
        yield get_status_dict(status='impossible', message=str(e), **status)
        return

    if scratch is not None:
        try:
            scratch_submit.check(ds, argv, pwd_abs, inputs + extra_inputs,
                                 outputs, farm=farm is not None)
        except scratch_submit.Refused as e:
            yield get_status_dict(status='impossible', message=str(e),
                                  **status)
            return
        # the job's outputs come back by its branch, not the work tree;
        # its Slurm logs (extra_outputs) are written in the dataset
        writable_outputs = []
    else:
        writable_outputs = outputs

    try:
        depends = find_dependencies(repo, index, inputs, list(after))
    except DependencyError as e:
        yield get_status_dict(status='impossible', message=str(e), **status)
        return

    failed = False
    # DataLad's commands take relative paths relative to the working dir;
    # inputs open jobs write do not exist yet
    with chpwd(root):
        for res in prepare_inputs(
                root, GlobbedPaths(depends.to_get, pwd=root)
                if depends.to_get else None,
                extra_inputs=GlobbedPaths(extra_inputs, pwd=root)
                if extra_inputs else None):
            if res['status'] in ('impossible', 'error'):
                failed = True
                # prepare_inputs reports under datalad run's action
                yield dict(res, action=action)
    if failed:
        return

    if expand in ('inputs', 'both'):
        inputs = GlobbedPaths(inputs, pwd=root).expand()

    timeout = config.get(ds, config.QUERY_TIMEOUT)
    backend = backends.submitter(ds)
    try:
        backend.check(timeout)
        with repository_lock(repo, config.get(ds, config.LOCK_TIMEOUT)):
            yield from recover_orphans(ds, action)
            # other processes may have scheduled meanwhile
            conflicts = find_conflicts(index.refresh(), outputs)
            if conflicts:
                yield get_status_dict(
                    status='impossible',
                    message=('outputs overlap those of open jobs (%s); '
                             'finish those jobs first (datalad finish), or '
                             'choose other outputs', '; '.join(conflicts)),
                    **status)
                return
            script_lines = job_script_head(argv, pwd_abs)
            depends = depends.still_open(index)
            if depends.jobs:
                argv = with_dependencies(argv, script_lines,
                                         [r.job_id for r in depends.jobs])
            record = {
                'cmd': cmd, 'dsid': ds.id, 'pwd': pwd, 'inputs': inputs,
                'extra_inputs': extra_inputs, 'outputs': outputs,
                'expand': expand, 'chain': chain, 'message': message,
                'submitted': datetime.now(timezone.utc).isoformat(
                    timespec='seconds'),
                'submission': uuid.uuid4().hex,
                'depends_on': depends.commits,
            }
            job_dir = None
            try:
                if farm is not None:
                    argv, job_dir = farming.prepare(
                        ds, farm, argv, pwd_abs, record,
                        local=backend.name == config.LOCAL)
                elif scratch is not None:
                    argv, job_dir = scratch_submit.prepare(
                        ds, argv, pwd_abs, record, scratch=scratch,
                        keep=config.get(ds, config.KEEP_SCRATCH),
                        script_lines=script_lines, depends_on=depends.jobs)
            except (farming.Refused, scratch_submit.Refused) as e:
                yield get_status_dict(status='impossible',
                                      message=str(e), **status)
                return
            yield from _submit(ds, backend, index, record, kind, argv,
                               script_lines,
                               writable_outputs + list(extra_outputs),
                               status, explicit=explicit, timeout=timeout,
                               undo=job_dir.remove if job_dir else None)
    except (LockTimeout, SlurmError) as e:
        yield get_status_dict(status='error', message=str(e),
                              exception=CapturedException(e), **status)


def _submit(ds, backend, index: JobIndex, record: dict, kind: str,
            argv: list[str], script_lines: list[str] | None,
            writable: list[str], status: dict, explicit: bool,
            timeout: float, undo=None) -> Iterator[dict]:
    """Journal, make outputs writable, submit, commit: the critical
    section, run with the repository lock held.  `undo`: what to undo of
    the preparations when nothing was submitted."""
    marked = _with_mark(argv, script_lines, record['submission'])
    # without --explicit, nothing under the outputs differs from HEAD
    entry = journal.begin(
        ds.repo, kind, record, record['message'], marked or argv,
        marked=marked is not None, writable=writable,
        changed_before=changed_under(ds, writable) if explicit else [],
        submitter=backend.name)
    prepared = []
    for res in unlock_or_remove(ds, writable):
        if res['status'] in ('impossible', 'error'):
            yield res
            restore(ds, prepared)
            entry.done()
            if undo:
                undo()
            return
        if res['status'] == 'ok':
            prepared.append(res['path'])

    cwd = op.join(ds.path, record['pwd'])
    entry.submitting()
    try:
        job_id = backend.submit(entry.argv, cwd=cwd, timeout=timeout)
    except SlurmTimeout:
        # Slurm may have accepted the job: the outputs stay writable, and
        # the entry is looked up by its mark, now or by a later command
        entry.unknown()
    except SlurmError as e:
        entry.done()
        restore(ds, prepared)
        if undo:
            undo()
        yield get_status_dict(
            status='error', message=('sbatch did not submit the job: %s', str(e)),
            exception=CapturedException(e), **status)
        return
    else:
        entry.submitted(job_id)
    yield from complete(ds, entry, status, index=index)


def _with_mark(argv: list[str], script_lines: list[str] | None,
               mark: str) -> list[str] | None:
    """`argv` with the submission's mark as the job's ``--comment``, by
    which Slurm can be asked whether it accepted a submission sbatch gave
    no answer for; None where the user sets a comment of their own (on the
    command line or in the job script's `script_lines`)."""
    if sets_option(argv, [script_lines], '--comment'):
        return None
    return [argv[0], f'--comment={mark_comment(mark)}', *argv[1:]]
