"""The repository lock's file, tried once: all a job's own finish needs of
the lock (:mod:`datalad_slurm.finish.done`).

Apart from :mod:`.lock`, which serialises a process's threads and waits
for the lock, because Python's start and the imports of a job's own
finish are its whole cost: this module imports nothing beyond what the
interpreter has loaded before its first line (os) and two built-in
modules.
"""

from __future__ import annotations

import errno
import fcntl
import os

from . import state


class LockTimeout(RuntimeError):
    """The repository lock could not be acquired in time."""


class LockHeld(LockTimeout):
    """The repository lock, tried once, is held by another process."""

    def __init__(self, holder: str):
        super().__init__(f'the dataset is locked by another datalad-slurm '
                         f'process ({holder})')
        self.holder = holder


class TriedLock:
    """The file lock, taken without waiting: fcntl's lockf, as fasteners
    takes it, so that both kinds of holder exclude each other."""

    def __init__(self, path: str):
        # binary: a text file would import locale
        self.file = open(path, 'ab')
        try:
            fcntl.lockf(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self.file.close()
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise LockHeld(holder_of(path)) from None

    def release(self):
        fcntl.lockf(self.file, fcntl.LOCK_UN)
        self.file.close()


def try_lock(git_dir) -> TriedLock:
    """The repository lock of `git_dir`, held, with this process named as
    its holder.  Hold it for longer than a moment only through
    :func:`.lock.git_dir_lock` (``taken=``), which knows that this process
    holds it.

    Raises
    ------
    LockHeld
      If another process holds it.
    """
    path = state.lock_file(git_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock = TriedLock(path)
    write_holder(path)
    return lock


def write_holder(path: str):
    """Name this process as the holder of the lock file `path`."""
    with open(_pid_file(path), 'wb') as f:
        f.write(str(os.getpid()).encode())


def holder_of(path) -> str:
    """Who holds (or last held) the lock file `path`, for messages."""
    try:
        with open(_pid_file(path), 'rb') as f:
            return f'pid {int(f.read())}'
    except (OSError, ValueError):
        return 'pid unknown'


def _pid_file(path) -> str:
    return f'{path}.pid'
