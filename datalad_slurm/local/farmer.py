"""The task farmer: a pool of workers that run the queued tasks of a
:class:`~.taskfiles.TaskFiles` directory, each in a worker slot.

What a task runs is up to the caller (:class:`Launch`): the job script of
an array task in local mode; one line of a task list, later.  Each task's
state file records its exit code, start, end, host, pid and log files.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .slots import Slots
from .taskfiles import (
    DONE,
    FAILED,
    TaskFiles,
)

lgr = logging.getLogger('datalad.slurm.local.farmer')


@dataclass
class Launch:
    """How to run one task."""
    argv: list[str]
    cwd: str
    env: dict[str, str]
    # absolute paths; the same path twice for one file of both
    stdout: str
    stderr: str
    append: bool = False


class LaunchError(Exception):
    """A task cannot be started; its message is the task's reason."""


class Farmer:
    def __init__(self, tasks: TaskFiles, *, workers: int, slots: Slots,
                 launch: Callable[[str], Launch]):
        self.tasks = tasks
        self.workers = workers
        self.slots = slots
        self.launch = launch

    def run(self):
        """Run every queued task; return when none is left."""
        threads = [threading.Thread(target=self._work, daemon=True,
                                    name=f'datalad-slurm-worker-{i}')
                   for i in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _work(self):
        while True:
            # the slot first: a task is RUNNING only once it can run
            with self.slots.held():
                key = self.tasks.claim()
                if key is None:
                    return
                self._run(key)

    def _run(self, key: str):
        host = socket.gethostname()
        start = time.time()
        try:
            launch = self.launch(key)
            proc, logs = _start(launch)
        except (LaunchError, OSError) as e:
            self.tasks.end(key, FAILED, start=start, end=time.time(),
                           host=host, exit_code=None, reason=str(e))
            return
        self.tasks.running(key, start=start, host=host, pid=proc.pid,
                           logs=logs)
        # wait4, not Popen.wait: it also tells the CPU time.  (Not its
        # memory: a child's peak RSS counts the copy of this process it was
        # before it ran the task.)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        end = time.time()
        code = proc.returncode
        self.tasks.end(
            key, DONE if code == 0 else FAILED, end=end,
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            reason=None if code == 0 else
            f'exit code {code}' if code > 0 else f'killed by signal {-code}',
            cpu_seconds=usage.ru_utime + usage.ru_stime)


def _start(launch: Launch) -> tuple[subprocess.Popen, list[str]]:
    """Start a task with its output in its log files (which, as with
    Slurm, must be in directories that exist)."""
    mode = 'ab' if launch.append else 'wb'
    files = {}
    try:
        for path in dict.fromkeys((launch.stdout, launch.stderr)):
            try:
                files[path] = open(path, mode)
            except OSError as e:
                raise LaunchError(
                    f'cannot open the log file {path}: {e.strerror}') from e
        if not os.path.isdir(launch.cwd):
            raise LaunchError(f'cannot change to the working directory '
                              f'{launch.cwd}: it does not exist')
        proc = subprocess.Popen(
            launch.argv, cwd=launch.cwd, env=launch.env,
            stdin=subprocess.DEVNULL, stdout=files[launch.stdout],
            stderr=files[launch.stderr])
    finally:
        for f in files.values():
            f.close()
    return proc, list(files)
