"""Submitting a scratch job: the checks only scratch mode needs, and the
batch script that makes the clone and runs the user's job script in it.

The batch script carries the ``#SBATCH`` lines of the user's script,
verbatim, so that sbatch reads them as it would from the script itself,
and then ``exec``s :mod:`.job`.  The job name stays Slurm's default for
the user's script (its file name, or ``wrap``) unless the user names the
job, so that ``%x`` in log names means what it did.
"""

from __future__ import annotations

import os.path as op
import shlex

from ...repo import plumbing
from ...repo.paths import (
    is_outside,
    is_within,
)
from ...repo.worktree import (
    changed_paths,
    shorten,
)
from ...slurm.jobspec import (
    script_index,
    sets_option,
    take_option,
)
from ...util.process import python_argv
from ..base import (
    Plan,
    Refused,
)
from .layout import ScratchDir
from .upstream import upstream_spec


def check(ds, argv: list[str], pwd_abs: str, inputs: list[str],
          outputs: list[str]):
    """Refuse what scratch mode cannot run.  The work tree may have
    unsaved changes, which the job never sees, but not where the job reads
    or writes: it would not see edits of its inputs or job script, and its
    outputs come back into the work tree.

    Raises
    ------
    Refused
    """
    subdatasets = _subdatasets(ds)
    touched = [p for p in inputs + outputs
               if any(is_within(p, [s]) or is_within(s, [p])
                      for s in subdatasets)]
    if touched:
        raise Refused(f'--scratch does not reach into subdatasets yet, and '
                      f'{", ".join(touched)} lies in or holds one; schedule '
                      f'the job without --scratch')
    script = _script_in_dataset(ds, argv, pwd_abs)
    if script and not plumbing.git(ds.repo, ['ls-files', '--', script]):
        raise Refused(f'the job script {script} is not committed, and the job '
                      f'runs the committed one in its clone; save it first '
                      f'(datalad save {script})')
    watched = inputs + outputs + ([script] if script else [])
    dirty = changed_paths(ds.repo, watched) if watched else []
    if script and script in dirty:
        raise Refused(f'the job script {script} has changes that are not '
                      f'saved, and the job runs the committed one in its '
                      f'clone; save it first (datalad save {script})')
    if dirty:
        raise Refused(f'{shorten(dirty)} (inputs or outputs of the job) have '
                      f'changes that are not saved; the job runs on the '
                      f'schedule commit in its clone, and its outputs '
                      f'replace what is there: save them (datalad save), or '
                      f'discard them')


def plan(ds, argv: list[str], pwd_abs: str, record: dict, *,
         scratch: str, keep: bool, script_lines: list[str] | None,
         depends_on: list = ()) -> Plan:
    """Add the scratch keys to the schedule `record` (its ``submission``
    mark names the job's directory), and return the sbatch command that
    runs the batch script instead of the user's, and what writes the
    directory.
    `depends_on`: the records of the open jobs it waits for, whose outputs
    the job takes into its clone when it starts (:mod:`.upstream`)."""
    base = plumbing.head(ds.repo)
    record.update(scratch=scratch, scratch_base=base)
    wraps, argv = take_option(argv, '--wrap')
    end = script_index(argv)
    options, script, args = argv[:end], None, []
    if end < len(argv):
        script, args = argv[end], argv[end + 1:]
    if (script is None) == (not wraps):
        raise Refused('sbatch needs a job script or a --wrap command, one '
                      'of them; give one')
    # sbatch would ask this of the script, but it is given the batch script
    if script_lines and not script_lines[0].startswith('#!'):
        raise Refused(f'sbatch: error: {script} does not look like a batch '
                      f'script: the first line must start with #! followed '
                      f'by the path to an interpreter')
    directory = ScratchDir.of(ds.repo, record['submission'])
    spec = dict(
        dataset=ds.path, base=base, pwd=record['pwd'],
        inputs=record['inputs'] + record['extra_inputs'],
        outputs=record['outputs'], scratch=scratch, keep=keep,
        script=_clone_relative(ds, pwd_abs, script) if script else None,
        wrap=wraps[-1] if wraps else None,
        upstream=upstream_spec(depends_on))
    batch = batch_script(directory, script_lines if script else None, wraps)
    if not sets_option(options, [script_lines], '--job-name'):
        options = [*options, f'--job-name='
                   f'{op.basename(script) if script else "wrap"}']
    return Plan([*options, str(directory.batch_script), *args],
                write=lambda: directory.create(spec, batch),
                files={str(directory.batch_script): batch})


def batch_script(directory: ScratchDir, script_lines: list[str] | None,
                 wraps: list[str]) -> str:
    """The batch script: the user's ``#SBATCH`` lines, then the job."""
    directives = []
    for line in (script_lines or [])[1:]:
        stripped = line.strip()
        if stripped.startswith('#SBATCH'):
            directives.append(line.rstrip('\n'))
        elif stripped and not stripped.startswith('#'):
            break
    run = shlex.join(python_argv('datalad_slurm.modes.scratch.job',
                                 str(directory.path)))
    what = 'the --wrap command' if wraps else 'the job script'
    return '\n'.join([
        '#!/bin/sh',
        f'# datalad-slurm: runs {what} in a clone of its own '
        f'(datalad schedule --scratch)',
        *directives,
        # a --wrap command takes no arguments
        f'exec {run}' + ('' if wraps else ' "$@"'),
        ''])


def _clone_relative(ds, pwd_abs: str, script: str) -> str:
    """The job script as the job finds it: relative to the dataset root
    where it lies in the dataset (the clone has it), else absolute."""
    full = op.normpath(op.join(pwd_abs, script))
    rel = op.relpath(full, ds.path)
    return full if is_outside(rel) else rel


def _script_in_dataset(ds, argv: list[str], pwd_abs: str) -> str | None:
    end = script_index(argv)
    if end >= len(argv):
        return None
    script = _clone_relative(ds, pwd_abs, argv[end])
    return None if op.isabs(script) else script


def _subdatasets(ds) -> list[str]:
    if not op.exists(op.join(ds.path, '.gitmodules')):
        return []
    return [op.relpath(s['path'], ds.path) for s in ds.subdatasets(
        result_renderer='disabled', return_type='generator')]
