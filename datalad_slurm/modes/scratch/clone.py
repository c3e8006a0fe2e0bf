"""A scratch job's clone, inside the job: made, prepared, delivered back to
the dataset, removed.

The clone shares the dataset's git objects (``git clone --shared``, no
copy of the history) and its annex object store: ``.git/annex/objects``
is a symlink to the dataset's, so inputs the schedule got are present at
once, and content the job annexes lands in the dataset's store, written
once.  The rest of ``.git/annex`` is the clone's own, unlike DataLad's
``--reckless ephemeral``, which links all of it: dozens of jobs would then
share one git-annex journal and index with the dataset.  The clone is
private (``annex.private``), so the dataset's git-annex branch never
learns of it.

Delivery commits the job's declared outputs (``datalad save``; what the
job wrote besides goes with the clone, named in the log and the FINISH
record), tells the dataset's git-annex that it has the new content
(``setpresentkey``), and pushes the branch: a ref update in the dataset,
whose work tree the job never touches.  What the job script committed
itself in the clone (a ``datalad run`` inside the job) is pushed too.
"""

from __future__ import annotations

import os
import os.path as op
import socket
import subprocess
import time
from pathlib import Path

from ...repo.paths import (
    declared_paths,
    existing_or_tracked,
    is_outside,
    status_argv,
    status_paths,
)
from .layout import (
    ScratchDir,
    branch_name,
    task_key,
)

# where a clone notes the commit it delivered, so that a second delivery
# (the batch script's, after the job script's own finish) is skipped
DELIVERED = 'datalad-slurm-delivered'


# where a clone notes the commit its job starts from (after the outputs of
# the jobs it depends on were brought in, see :mod:`.upstream`)
START = 'datalad-slurm-start'


class ScratchError(RuntimeError):
    """A step of the job's own work in its clone failed; the message says
    which, for the job's log and for finish."""


def run_git(cwd: str, args: list[str], what: str, stdin: str | None = None,
            ) -> str:
    proc = subprocess.run(['git', *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True)
    if proc.returncode:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        raise ScratchError(f'{what} failed: git {args[0]}: '
                           f'{said[-1] if said else f"exit {proc.returncode}"}')
    return proc.stdout


def scratch_parent(spec_dir: str) -> str:
    """The scratch directory as the node knows it: environment variables
    (``$TMPDIR``) and ``~`` expanded here, inside the job."""
    expanded = op.expanduser(op.expandvars(spec_dir))
    if '$' in expanded:
        unset = expanded.split('$')[1].strip('{}').split('/')[0]
        raise ScratchError(
            f'the scratch directory {spec_dir!r} names ${unset}, which is '
            f'not set on {socket.gethostname()}; give a directory the '
            f'node has (datalad schedule --scratch)')
    if not op.isabs(expanded):
        raise ScratchError(f'the scratch directory {spec_dir!r} is '
                           f'{expanded!r} on {socket.gethostname()}, not an '
                           f'absolute path; give an absolute one')
    return expanded


def make(spec: dict, job_id: int, task_id: int | None) -> str:
    """Clone the dataset at the job's commit under the scratch directory;
    return the clone's path."""
    parent = scratch_parent(spec['scratch'])
    try:
        os.makedirs(parent, exist_ok=True)
        name = branch_name(job_id, task_id).replace('/', '-')
        clone = Path(parent) / f'{name}-{os.getpid()}'
        clone.mkdir()
    except OSError as e:
        raise ScratchError(
            f'cannot create the clone in the scratch directory {parent} on '
            f'{socket.gethostname()}: {e.strerror}; give a directory the '
            f'node can write (datalad schedule --scratch)') from e
    origin = spec['dataset']
    run_git(parent, ['clone', '--quiet', '--shared', '--no-checkout',
                     origin, str(clone)], 'cloning the dataset')
    run_git(str(clone), ['checkout', '--quiet', '-b',
                         branch_name(job_id, task_id), spec['base']],
            'checking out the commit the job runs on')
    origin_annex = Path(origin) / '.git' / 'annex'
    if origin_annex.is_dir():
        objects = origin_annex / 'objects'
        objects.mkdir(exist_ok=True)
        annex = clone / '.git' / 'annex'
        annex.mkdir()
        (annex / 'objects').symlink_to(objects, target_is_directory=True)
        run_git(str(clone), ['config', 'annex.private', 'true'],
                'configuring the clone')
        run_git(str(clone), ['annex', 'init', '--quiet',
                             f'scratch clone of job {job_id}'],
                'git annex init in the clone')
    return str(clone)


def prepare(clone: str, spec: dict):
    """Get the inputs in the clone (present already where the dataset has
    them, through the shared store) and make the outputs writable."""
    from datalad.api import Dataset

    from ...repo.worktree import unlock_or_remove
    ds = Dataset(clone)
    inputs = [i for i in declared_paths(clone, spec['inputs'])
              if op.lexists(op.join(clone, i))]
    if inputs and op.isdir(op.join(clone, '.git', 'annex')):
        for res in ds.get(inputs, result_renderer='disabled',
                          return_type='generator', on_failure='ignore'):
            if res['status'] in ('impossible', 'error'):
                raise ScratchError(
                    f'cannot get the input {res.get("path")} in the clone: '
                    f'{res.get("message")}; get it in the dataset first '
                    f'(datalad get)')
    for res in unlock_or_remove(ds, spec['outputs']):
        if res['status'] in ('impossible', 'error'):
            raise ScratchError(f'cannot make the output {res.get("path")} '
                               f'writable in the clone: {res.get("message")}')


def workdir(clone: str, spec: dict, cwd: str) -> str:
    """Where the job script runs: the directory Slurm started the job in,
    mapped into the clone where it lies in the dataset."""
    rel = op.relpath(cwd, spec['dataset'])
    if is_outside(rel):
        return cwd
    mapped = op.normpath(op.join(clone, rel))
    os.makedirs(mapped, exist_ok=True)
    return mapped


def start_of(clone: str, spec: dict) -> str:
    """The commit the job in `clone` started from."""
    try:
        return (Path(clone) / '.git' / START).read_text().strip()
    except FileNotFoundError:
        return spec['base']


def deliver(clone: str, spec: dict, directory: ScratchDir, job_id: int,
            task_id: int | None, exit_status: int | None) -> dict:
    """Commit the job's declared outputs, make their annexed content known
    to the dataset, push the branch, and note the delivery, with what the
    job wrote besides, which goes with the clone; return the note.
    Delivering again with nothing new changed is a no-op."""
    mark = op.basename(directory.path)
    outputs = existing_or_tracked(
        clone, declared_paths(clone, spec['outputs']),
        lambda args: run_git(clone, args, 'listing the tracked outputs'))
    if outputs:
        _commit_outputs(clone, outputs,
                        f'[DATALAD SLURM] outputs of job {job_id}'
                        f'{"" if task_id is None else f"_{task_id}"} from '
                        f'its scratch clone\n\nsubmission: {mark}')
    commit = run_git(clone, ['rev-parse', 'HEAD'], 'reading HEAD').strip()
    noted = Path(clone) / '.git' / DELIVERED
    if noted.exists() and noted.read_text().strip() == commit:
        return directory.deliveries().get(task_key(task_id), {})
    start = start_of(clone, spec)
    branch = None
    if commit != start:
        _register_content(clone, spec['dataset'], start)
        branch = _push(clone, spec['dataset'], job_id, task_id, mark)
    note = dict(branch=branch, commit=commit, base=start,
                exit=exit_status, host=socket.gethostname(),
                time=time.time(), left_out=left_out(clone))
    directory.delivered(task_id, note)
    noted.write_text(commit)
    return note


# how many of the files a job left out a delivery names
LEFT_OUT_NAMED = 100


def _commit_outputs(clone: str, outputs: list[str], message: str):
    """Commit the `outputs` in the clone as ``datalad save`` would (scratch
    jobs have no outputs in subdatasets): through git-annex, which follows
    the dataset's annex.largefiles, deletions through git.  With git
    alone: DataLad's import would cost a job that delivers its own work
    (``datalad-slurm-done``) half a CPU second more than the rest."""
    present = [p for p in outputs if op.lexists(op.join(clone, p))]
    annexed = op.isdir(op.join(clone, '.git', 'annex'))
    if present and annexed:
        # dotfiles too, as DataLad asks git-annex
        run_git(clone, ['annex', 'add', '-c', 'annex.dotfiles=true',
                        '--quiet', '--', *present],
                'adding the outputs to git-annex')
    # what git-annex does not add: deletions (and, without an annex, all)
    run_git(clone, ['add', '--update' if annexed else '--all', '--',
                    *outputs], 'staging the outputs\' changes')
    if run_git(clone, ['diff', '--cached', '--name-only', '-z', '--',
                       *outputs], 'listing the outputs\' changes'):
        run_git(clone, ['commit', '--quiet', '-m', message,
                        '--', *outputs], 'committing the outputs')


def left_out(clone: str) -> list[str]:
    """What the job changed in its clone besides its declared outputs:
    it goes with the clone."""
    changed = sorted(status_paths(run_git(
        clone, status_argv(both_ends=True), 'listing what the job changed')))
    if len(changed) > LEFT_OUT_NAMED:
        changed = changed[:LEFT_OUT_NAMED] + [
            f'... {len(changed) - LEFT_OUT_NAMED} more']
    return changed


def delivered(clone: str) -> bool:
    """Whether the job's work was delivered from `clone` already."""
    return (Path(clone) / '.git' / DELIVERED).exists()


# how many annexed files make a job commit their git-annex records itself
COMMIT_RECORDS_FROM = 100


def _register_content(clone: str, origin: str, start: str):
    """Record in the dataset's git-annex that it has the content the job
    annexed: the content is in its store already, through the link."""
    if not op.isdir(op.join(clone, '.git', 'annex')):
        return
    changed = run_git(clone, ['diff', '--name-only', '-z', '--no-renames',
                              '--diff-filter=AM', start, 'HEAD'],
                      'listing the changed files').split('\0')
    changed = [p for p in changed if p]
    if not changed:
        return
    keys = run_git(clone, ['annex', 'find', '--format=${key}\\n', '--batch'],
                   'finding the annexed files', stdin='\n'.join(changed) +
                   '\n')
    keys = [k for k in keys.split('\n') if k.strip()]
    if not keys:
        return
    uuid = run_git(origin, ['config', 'annex.uuid'],
                   'reading the dataset\'s annex uuid').strip()
    run_git(origin, ['annex', 'setpresentkey', '--batch'],
            'recording the content in the dataset\'s git-annex',
            stdin=''.join(f'{k} {uuid} 1\n' for k in keys))
    # setpresentkey leaves its records in git-annex's journal, and the next
    # git-annex command in the dataset commits them: a finish, under the
    # repository lock, at over a millisecond a file.  For many files, a
    # check of one of the keys commits them here, in the job; for a few,
    # that git-annex process (its start, its locks in the dataset, which
    # dozens of jobs ending together contend for) costs more than it saves
    if len(keys) >= COMMIT_RECORDS_FROM:
        run_git(origin, ['annex', 'fsck', '--fast', '--quiet', '--key',
                         keys[0]],
                'committing the dataset\'s git-annex records')


def _push(clone: str, origin: str, job_id: int, task_id: int | None,
          mark: str) -> str:
    """Push the clone's branch into the dataset as a new branch; return its
    name.  An older branch of the same name (a reused job id) is left
    alone: the branch then carries the submission's mark too."""
    name = branch_name(job_id, task_id)
    for candidate in (name, f'{name}-{mark[:8]}'):
        ref = f'refs/heads/{candidate}'
        proc = subprocess.run(
            ['git', 'push', '--quiet', '--no-verify',
             f'--force-with-lease={ref}:', origin, f'HEAD:{ref}'],
            cwd=clone, capture_output=True, text=True)
        if not proc.returncode:
            return candidate
        said = proc.stderr.strip()
        if 'stale info' not in said and 'already exists' not in said:
            raise ScratchError(f'pushing the branch {candidate} into the '
                               f'dataset failed: {said}')
    raise ScratchError(f'pushing the branch into the dataset failed: both '
                       f'{name} and {name}-{mark[:8]} exist there already')


def remove(clone: str):
    """Remove the clone; its link to the dataset's store first, so that
    nothing of the store is touched."""
    from datalad.utils import rmtree
    link = Path(clone) / '.git' / 'annex' / 'objects'
    if link.is_symlink():
        link.unlink()
    rmtree(clone)
