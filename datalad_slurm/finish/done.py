"""The last line of a job script: ``datalad-slurm-done $?``.

It says that the job's work ended, with this exit status, and nothing
more: it writes the announcement (:mod:`.announcements`) and tries the
repository lock once.  A job that gets the lock commits every announced
job (:func:`.handover.commit_announced`, with all of DataLad); one that
does not leaves its job to the holder, which takes up what was announced
while it held the lock after letting go of it, and exits at once, having
imported nothing of DataLad.

``datalad finish --exit-status $? $SLURM_JOB_ID`` comes here too, from
:func:`.handover.finish_inside`.  In a scratch job's clone the work is
delivered first (:mod:`datalad_slurm.modes.scratch.delivery`, with git
alone), and the job announced in the dataset the clone came from.

``python -m datalad_slurm.finish.done --commit -d DATASET`` is the
committer a process that does not commit announcements itself starts on
releasing the lock (:mod:`datalad_slurm.repo.lock`).
"""

from __future__ import annotations

import os
import sys

from ..repo.lockfile import (
    LockHeld,
    TriedLock,
    try_lock,
)
from ..slurm.env import own_job
from .announcements import announce

# what only annotations name: imported by type checkers alone (a job's own
# finish imports nothing it does not run, see test_done_imports_little)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# what the job's log gets, before the job's output is silenced
PREFIX = 'datalad-slurm-done:'


def hand_in(git_dir, own: tuple[int, int | None], exit_status: int | None,
            say: Callable[[str], None], silence: Callable[[], None],
            ) -> TriedLock | None:
    """Announce that the work of `own` (job id, task id) ended with
    `exit_status`.  Returns the repository lock, held, if this process got
    it (it is then to commit every announced job, holding the lock with
    :func:`..repo.lock.git_dir_lock` ``taken=``), else None.

    `say` gets the one line for the job's log, before `silence` stops the
    job's output, so that the log the FINISH commit saves is final."""
    job = own[0] if own[1] is None else f'{own[0]}_{own[1]}'
    ended = 'its work ended' + (
        '' if exit_status is None else f' with exit status {exit_status}')
    held = _try_lock(git_dir)
    if isinstance(held, TriedLock):
        say(f'{PREFIX} job {job}: {ended}; this job holds the repository '
            f'lock and commits it, with every job announced meanwhile')
    else:
        say(f'{PREFIX} job {job}: {ended}; announced for its FINISH commit '
            f'by the process holding the repository lock ({held}), or the '
            f'next to hold it')
    silence()
    announce(git_dir, own[0], own[1], exit_status)
    if not isinstance(held, TriedLock):
        # the holder may have let go of the lock before the announcement
        # was there: then it is this process's to commit
        held = _try_lock(git_dir)
    return held if isinstance(held, TriedLock) else None


def _try_lock(git_dir) -> TriedLock | str:
    """The lock, held, or who holds it."""
    try:
        return try_lock(git_dir)
    except LockHeld as e:
        return e.holder


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args is None:
        print(USAGE, file=sys.stderr)
        return 2
    return _main(args)


def _main(args: dict) -> int:
    if args['commit']:
        return _commit(args['dataset'] or os.getcwd())
    own = own_job()
    if own is None:
        print(f'{PREFIX} this process runs in no Slurm job; use it as the '
              f'last line of a job script', file=sys.stderr)
        return 2
    path = args['dataset'] or os.getcwd()
    if os.environ.get('DATALAD_SLURM_SCRATCH_CLONE'):
        found = _repository(path)
        path = _delivered(found[0] if found else path, args['exit_status'])
        if path is None:
            return 1
    found = _repository(path)
    if found is None:
        print(f'{PREFIX} {path} is in no git repository; run it where the '
              f'job was scheduled, or give the dataset with -d',
              file=sys.stderr)
        return 2
    path, git_dir = found
    restore = []
    held = hand_in(git_dir, own, args['exit_status'],
                   say=lambda line: print(line, file=sys.stderr, flush=True),
                   silence=lambda: restore.append(_silence()))
    if held is None:
        return 0
    from .handover import commit_as_holder
    failures = commit_as_holder(path, held, own[0])
    if failures:
        restore[0]()
        for line in failures:
            print(f'{PREFIX} {line}', file=sys.stderr)
        return 1
    return 0


USAGE = """usage: datalad-slurm-done [EXIT_STATUS] [-d DATASET]

As the last line of a job script scheduled with datalad schedule: record
that the job's work ended, with EXIT_STATUS ($?), for its FINISH commit in
DATASET (else the dataset of the current directory)."""


def _parse(argv: list[str]) -> dict | None:
    """The arguments, or None where they are not understood.  By hand:
    argparse would cost a job's own finish as much as all the rest."""
    args = dict(exit_status=None, dataset=None, commit=False)
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == '--commit':
            args['commit'] = True
        elif arg in ('-d', '--dataset') and rest:
            args['dataset'] = rest.pop(0)
        elif arg.lstrip('-').isdigit() and args['exit_status'] is None:
            args['exit_status'] = int(arg)
        else:
            return None
    return args


def _repository(path: str) -> tuple[str, str] | None:
    """The work tree and git directory of the repository `path` lies in,
    as DataLad finds the dataset of the current directory."""
    directory = os.path.abspath(path)
    while True:
        dot_git = os.path.join(directory, '.git')
        if os.path.isdir(dot_git):
            return directory, dot_git
        if os.path.isfile(dot_git):
            # a submodule's or a worktree's: "gitdir: PATH"
            with open(dot_git, 'rb') as f:
                text = f.read().decode().strip()
            if text.startswith('gitdir:'):
                return directory, os.path.realpath(os.path.join(
                    directory, text[len('gitdir:'):].strip()))
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _silence() -> Callable[[], None]:
    """Stop this process's output, which goes to the job's log: the log is
    saved with the job.  Returns what undoes it, for a failure."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    for fd in saved:
        os.dup2(devnull, fd)
    os.close(devnull)

    def restore():
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)
    return restore


def _delivered(path: str, exit_status: int | None) -> str | None:
    """In a scratch job's clone: its work delivered, the dataset it came
    from (`path` where it is no scratch job's); None after saying why it
    could not be."""
    from ..modes.scratch.delivery import deliver_own_work
    try:
        return deliver_own_work(path, exit_status) or path
    except Exception as e:
        print(f'{PREFIX} could not deliver the work of job '
              f'{os.environ.get("SLURM_JOB_ID")} from its scratch clone: '
              f'{e!r}; the job\'s batch script tries again when the job '
              f'script ends', file=sys.stderr)
        return None


def _commit(path: str) -> int:
    """The committer started by a process that let go of the lock while
    jobs were announced: it waits for the lock, as a finish would."""
    from .handover import commit_left
    return 1 if commit_left(path) else 0


if __name__ == '__main__':
    sys.exit(main())
