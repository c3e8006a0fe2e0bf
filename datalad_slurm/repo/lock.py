"""The repository lock that serialises datalad-slurm's git writes.

An OS file lock (``fcntl`` via fasteners) on a file under ``.git/``: the
kernel releases it when its holder dies, so a crashed process never leaves
a stale lock behind.  The holder's pid is written next to it so that a
timeout can say who holds it.

A job's own finish tries the lock once (:mod:`.lockfile`), from a process
that has imported nothing of DataLad, and holds it on here, where it
commits (:func:`git_dir_lock` with ``taken``): this module imports
fasteners only for a lock it waits for.  Announcements of
jobs that ended (``.git/datalad-slurm/ready/``) which a process finds on
releasing the lock are committed by it where it commits announcements
(:func:`commits_announcements`), or else by a committer it starts, so that
none waits for a later command.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import state
from .lockfile import (
    LockHeld,
    LockTimeout,
    TriedLock,
    holder_of,
    try_lock,
    write_holder,
)

__all__ = ['LockHeld', 'LockTimeout', 'commits_announcements',
           'git_dir_lock', 'holder', 'repository_lock']


# how many blocks of this process that commit the announcements they find
# on releasing the lock themselves run (see :func:`commits_announcements`)
_committing = 0

# the module a committer of announcements runs as (finish/done.py), named
# here, not imported: it belongs to a higher layer
COMMITTER = 'datalad_slurm.finish.done'


# POSIX record locks belong to a process, and closing any descriptor of the
# lock file drops them.  Within one process, a reentrant thread lock per
# file therefore guards a single file lock, taken by the outermost holder.
_thread_locks: dict[str, threading.RLock] = {}
_file_locks: dict[str, list] = {}
_registry_guard = threading.Lock()


def repository_lock(repo, timeout: float):
    """Hold the repository lock for the duration of the ``with`` block.

    Reentrant: a nested ``with`` in the same thread passes straight through.

    Raises
    ------
    LockTimeout
      If another process holds the lock for longer than `timeout` seconds.
    """
    return git_dir_lock(repo.dot_git, timeout, dataset=repo.path)


@contextmanager
def commits_announcements():
    """While the block runs, this process commits the announcements it
    finds after releasing the lock itself (a finish), so that releasing
    the lock starts no committer."""
    global _committing
    _committing += 1
    try:
        yield
    finally:
        _committing -= 1


@contextmanager
def git_dir_lock(git_dir, timeout: float, *, once: bool = False,
                 dataset: str | None = None,
                 taken: TriedLock | None = None):
    """:func:`repository_lock` for a process that knows only the git
    directory.  `once`: try the lock once, and raise :class:`LockHeld`
    naming the holder if another process holds it (git's own index lock is
    still waited for, up to `timeout`).  `dataset`: the work tree, where a
    committer of the announcements found on release is to be started.
    `taken`: the lock, which this process took with
    :func:`.lockfile.try_lock`, to hold for the block and let go of then."""
    path = state.lock(git_dir)
    key = str(path)
    # one deadline for the thread lock, the file lock and git's index lock
    deadline = time.monotonic() + timeout
    with _registry_guard:
        thread_lock = _thread_locks.setdefault(key, threading.RLock())
    if not thread_lock.acquire(timeout=timeout):
        if taken is not None:
            taken.release()
        raise LockTimeout(
            f'the dataset is locked by another thread of this process for '
            f'more than {timeout:g} s')
    try:
        held = _file_locks.get(key)
        if taken is not None and held is not None:
            # two descriptors of one lock file: closing either drops both
            taken.release()
            raise RuntimeError(f'{path} is held by this process already')
        if held is None:
            if taken is not None:
                lock = taken
            elif once:
                # a job's own finish: the commit, where it gets to it,
                # looks at the file system
                lock = try_lock(git_dir)
            else:
                _warn_if_not_shared(git_dir, key)
                lock = _acquire_file_lock(path, timeout, deadline)
            try:
                _wait_for_git(git_dir, timeout, deadline)
            except LockTimeout:
                lock.release()
                raise
            held = _file_locks[key] = [lock, 0]
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
            if not held[1]:
                del _file_locks[key]
                held[0].release()
                _hand_over(git_dir, dataset)
    finally:
        thread_lock.release()


def _hand_over(git_dir, dataset: str | None):
    """Announcements that came while this process held the lock: their
    jobs ended without waiting for it, counting on the holder; one that
    does not commit them starts a committer."""
    if _committing or dataset is None or not state.announced(git_dir):
        return
    import subprocess
    try:
        subprocess.Popen(
            [sys.executable, '-m', COMMITTER, '--commit', '-d', dataset],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        _lgr().warning('Could not start the commit of the announced jobs (the '
                    'next datalad finish commits them): %s', e)


# the lock files whose file system was looked at, by this process
_looked_at: set[str] = set()


def _warn_if_not_shared(git_dir, key: str):
    if key in _looked_at:
        return
    _looked_at.add(key)
    from .fslocks import repository_lock_problem
    problem = repository_lock_problem(str(git_dir))
    if problem:
        _lgr().warning('%s', problem)


def _lgr():
    # imported where there is something to say: a job's own finish that
    # tries the lock once imports no more than it needs
    import logging
    return logging.getLogger('datalad.slurm.lock')


def _acquire_file_lock(path: Path, timeout: float, deadline: float):
    # a process that waits for the lock can afford what fasteners imports
    import fasteners
    path.parent.mkdir(exist_ok=True)
    lock = fasteners.InterProcessLock(path)
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic()),
                        max_delay=0.05):
        raise LockTimeout(
            f'the dataset is locked by another datalad-slurm process '
            f'({holder_of(path)}) for more than {timeout:g} s; wait for it to '
            f'finish, or raise datalad.slurm.lock-timeout')
    write_holder(path)
    return lock


def _wait_for_git(git_dir, timeout: float, deadline: float):
    """Wait while a git process outside datalad-slurm (a user's commit in
    another shell) holds git's own index lock."""
    index_lock = Path(git_dir) / 'index.lock'
    delay = 0.01
    while index_lock.exists():
        if time.monotonic() > deadline:
            raise LockTimeout(
                f'{index_lock} has existed for more than {timeout:g} s: '
                f'another git process is using the repository, or one '
                f'crashed and left the file behind; if no git process runs '
                f'any more, remove it')
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def holder(git_dir) -> str:
    """Who holds (or last held) the lock of `git_dir`, for messages."""
    return holder_of(state.lock_file(git_dir))
