"""Task state files: one small file per task, named ``<key>.<STATE>``.

A task moves QUEUED -> RUNNING -> DONE or FAILED, each step an atomic
rename, so that a reader never sees half a state; a farmer told to stop
puts its running tasks back to QUEUED, as they were before it took them.
Taking a task is the rename of its QUEUED file to RUNNING: of several
workers (or farmers sharing one list) trying at once exactly one
succeeds, without a lock.
An ending writes the final file before it removes the RUNNING one; a
reader that sees both takes the final one.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..repo.state import write_json

QUEUED, RUNNING, DONE, FAILED = 'QUEUED', 'RUNNING', 'DONE', 'FAILED'
STATES = (QUEUED, RUNNING, DONE, FAILED)
FINAL = frozenset({DONE, FAILED})

# what :meth:`TaskFiles.running` adds to a task taken
RUN_FIELDS = ('start', 'host', 'pid', 'logs')

# reads that race with renames are tried again this often
_READ_TRIES = 20


def task_order(key: str):
    """Array task ids in numeric order, other keys after them."""
    return (0, int(key), '') if key.isdigit() else (1, 0, key)


class TaskFiles:
    """The state files of one job's tasks, in one directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        # queued keys not tried yet, so that taking each of N tasks does not
        # list all N files again; tasks leave the queue, and come back only
        # from a farmer that stops, which claims none after
        self._candidates: list[str] = []
        self._lock = threading.Lock()

    def queue(self, key: str, content: dict):
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write(key, QUEUED, dict(content, key=key, state=QUEUED))

    def claim(self) -> str | None:
        """Take the next queued task; None when none is left.  Safe for
        the threads of one farmer, and for farmers sharing the directory.
        """
        with self._lock:
            key = self._take()
            if key is None:
                self._candidates = sorted(
                    (p.name[:-len(QUEUED) - 1]
                     for p in self.directory.glob(f'*.{QUEUED}')),
                    key=task_order, reverse=True)
                key = self._take()
            return key

    def _take(self) -> str | None:
        while self._candidates:
            key = self._candidates.pop()
            try:
                os.rename(self._path(key, QUEUED), self._path(key, RUNNING))
            except FileNotFoundError:
                continue  # another farmer took it
            return key
        return None

    def taken(self, key: str) -> dict:
        """The state file of a task this process has taken."""
        return self._read(self._path(key, RUNNING))

    def running(self, key: str, **fields):
        """Add what is known once a taken task has started."""
        content = self._read(self._path(key, RUNNING))
        content.update(fields, state=RUNNING)
        self._write(key, RUNNING, content)

    def end(self, key: str, state: str, **fields):
        """Move a taken task to its final `state`."""
        assert state in FINAL
        running = self._path(key, RUNNING)
        content = self._read(running)
        content.update(fields, state=state)
        self._write(key, state, content)
        running.unlink()

    def put_back(self, key: str):
        """Queue a taken task again, what its run added forgotten: a run
        cut short is not recorded half.  The content is replaced while the
        task is still taken, so that no other farmer takes it before it is
        whole."""
        content = self._read(self._path(key, RUNNING))
        for name in RUN_FIELDS:
            content.pop(name, None)
        content.update(state=QUEUED, put_back=content.get('put_back', 0) + 1)
        self._write(key, RUNNING, content)
        os.rename(self._path(key, RUNNING), self._path(key, QUEUED))

    def read(self) -> dict[str, dict]:
        """Every task's current state file, by key."""
        for _ in range(_READ_TRIES):
            try:
                return self._read_all()
            except FileNotFoundError:
                continue  # a task moved on while it was read
        return self._read_all()

    def _read_all(self) -> dict[str, dict]:
        latest: dict[str, Path] = {}
        for path in self.directory.iterdir():
            key, _, state = path.name.rpartition('.')
            if state not in STATES:
                continue
            if key not in latest or STATES.index(state) > STATES.index(
                    latest[key].name.rpartition('.')[2]):
                latest[key] = path
        return {key: self._read_current(key, latest[key])
                for key in sorted(latest, key=task_order)}

    def _read_current(self, key: str, path: Path) -> dict:
        """The state file of `key` listed as `path`, or the one it became
        since: with many workers, a task moves on while a reader of all
        tasks gets to it."""
        for _ in range(_READ_TRIES):
            try:
                return self._read(path)
            except FileNotFoundError:
                now = [p for p in (self._path(key, state)
                                   for state in reversed(STATES))
                       if p.exists()]
                if now:
                    path = now[0]
        return self._read(path)

    def _path(self, key: str, state: str) -> Path:
        return self.directory / f'{key}.{state}'

    @staticmethod
    def _read(path: Path) -> dict:
        return json.loads(path.read_text())

    def _write(self, key: str, state: str, content: dict):
        write_json(self._path(key, state), content)
