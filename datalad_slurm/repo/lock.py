"""The repository lock that serialises datalad-slurm's git writes.

An OS file lock (``fcntl`` via fasteners) on a file under ``.git/``: the
kernel releases it when its holder dies, so a crashed process never leaves
a stale lock behind.  The holder's pid is written next to it so that a
timeout can say who holds it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import fasteners

from . import state
from .fslocks import repository_lock_problem

lgr = logging.getLogger('datalad.slurm.lock')


class LockTimeout(RuntimeError):
    """The repository lock could not be acquired in time."""


# POSIX record locks belong to a process, and closing any descriptor of the
# lock file drops them.  Within one process, a reentrant thread lock per
# file therefore guards a single file lock, taken by the outermost holder.
_thread_locks: dict[str, threading.RLock] = {}
_file_locks: dict[str, list] = {}
_registry_guard = threading.Lock()


@contextmanager
def repository_lock(repo, timeout: float):
    """Hold the repository lock for the duration of the ``with`` block.

    Reentrant: a nested ``with`` in the same thread passes straight through.

    Raises
    ------
    LockTimeout
      If another process holds the lock for longer than `timeout` seconds.
    """
    path = state.lock(repo.dot_git)
    key = str(path)
    # one deadline for the thread lock, the file lock and git's index lock
    deadline = time.monotonic() + timeout
    with _registry_guard:
        thread_lock = _thread_locks.setdefault(key, threading.RLock())
    if not thread_lock.acquire(timeout=timeout):
        raise LockTimeout(
            f'the dataset is locked by another thread of this process for '
            f'more than {timeout:g} s')
    try:
        held = _file_locks.get(key)
        if held is None:
            _warn_if_not_shared(repo, key)
            lock = _acquire_file_lock(path, timeout, deadline)
            try:
                _wait_for_git(repo, timeout, deadline)
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
    finally:
        thread_lock.release()


# the lock files whose file system was looked at, by this process
_looked_at: set[str] = set()


def _warn_if_not_shared(repo, key: str):
    if key in _looked_at:
        return
    _looked_at.add(key)
    problem = repository_lock_problem(str(repo.dot_git))
    if problem:
        lgr.warning('%s', problem)


def _acquire_file_lock(path: Path, timeout: float, deadline: float):
    path.parent.mkdir(exist_ok=True)
    lock = fasteners.InterProcessLock(path)
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic()),
                        max_delay=0.05):
        raise LockTimeout(
            f'the dataset is locked by another datalad-slurm process '
            f'({_holder(path)}) for more than {timeout:g} s; wait for it to '
            f'finish, or raise datalad.slurm.lock-timeout')
    _pid_file(path).write_text(str(os.getpid()))
    return lock


def _wait_for_git(repo, timeout: float, deadline: float):
    """Wait while a git process outside datalad-slurm (a user's commit in
    another shell) holds git's own index lock."""
    index_lock = Path(repo.dot_git) / 'index.lock'
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


def _pid_file(path: Path) -> Path:
    return path.with_name(path.name + '.pid')


def _holder(path: Path) -> str:
    try:
        return f'pid {int(_pid_file(path).read_text())}'
    except (OSError, ValueError):
        return 'pid unknown'
