"""The task farmer: a pool of workers that run the queued tasks of a
:class:`~.tasks.TaskFiles` directory, each in a worker slot.

What a task runs is up to the caller (:class:`Launch`): the job script of
an array task in local mode; one line of a task list in a farm job
(:mod:`datalad_slurm.modes.farm.job`).  Each task's state file records
its exit code, start, end, host, pid and log files.

A farm job's farmer runs each task in a process group of its own, so that
a task that runs too long (`task_timeout`), or every running task when the
farmer is told to stop, ends with all the processes it started.  Local
mode's runner keeps its tasks in its own group instead: ending that group
is how a local job is cancelled.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

from .slots import Slots
from .tasks import (
    DONE,
    FAILED,
    TaskFiles,
)

lgr = logging.getLogger('datalad.slurm.local.farmer')

# seconds a task told to end (SIGTERM) has before it is killed
GRACE = 5

# how often the thread that started the workers looks up, so that it runs
# a signal handler soon
JOIN_POLL = 0.2

# Seconds a task killed by a signal waits for the farmer's own stop before
# it is recorded: scancel and a time limit without --signal=B: send SIGTERM
# to every process of the job at once, and the task may see it first.
STOP_SETTLE = 1.0


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
    """`slots`: a bound shared with other farmers (local mode's), or None.
    `task_timeout`: seconds after which a task is ended and FAILED with
    reason timeout.  `own_groups`: each task in a process group of its own
    (needed for timeouts and for :meth:`stop` to reach a task's children).
    """

    def __init__(self, tasks: TaskFiles, *, workers: int,
                 slots: Slots | None, launch: Callable[[str], Launch],
                 task_timeout: float | None = None, own_groups: bool = False):
        assert task_timeout is None or own_groups
        self.tasks = tasks
        self.workers = workers
        self.slots = slots
        self.launch = launch
        self.task_timeout = task_timeout
        self.own_groups = own_groups
        self.stopping = False
        self._stop = threading.Event()
        # key -> pid of the tasks running, and the keys ended by a timeout
        # or by stop()
        self._running: dict[str, int] = {}
        self._timed_out: set[str] = set()
        self._stopped: set[str] = set()
        self._lock = threading.Lock()

    def run(self):
        """Run every queued task; return when none is left, or after
        :meth:`stop` once the tasks running have been put back."""
        threads = [threading.Thread(target=self._work, daemon=True,
                                    name=f'datalad-slurm-worker-{i}')
                   for i in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_POLL)

    def stop(self):
        """Take no more tasks, end those running and put them back to
        QUEUED; safe to call from a signal handler."""
        self.stopping = True
        self._stop.set()
        for key, pid in list(self._running.items()):
            self._stopped.add(key)
            _end_group(pid)

    def _work(self):
        while not self.stopping:
            # the slot first: a task is RUNNING only once it can run
            with self._slot():
                key = self.tasks.claim()
                if key is None:
                    return
                if self.stopping:
                    self.tasks.put_back(key)
                    return
                self._run(key)

    def _slot(self):
        return self.slots.held() if self.slots else nullcontext()

    def _run(self, key: str):
        host = socket.gethostname()
        start = time.time()
        try:
            launch = self.launch(key)
            proc, logs = _start(launch, self.own_groups)
        except (LaunchError, OSError) as e:
            self.tasks.end(key, FAILED, start=start, end=time.time(),
                           host=host, exit_code=None, reason=str(e))
            return
        self.tasks.running(key, start=start, host=host, pid=proc.pid,
                           logs=logs)
        timer = self._watch(key, proc.pid)
        # wait4, not Popen.wait: it also tells the CPU time.  (Not its
        # memory: a child's peak RSS counts the copy of this process it was
        # before it ran the task.)
        _, status, usage = os.wait4(proc.pid, 0)
        if timer is not None:
            timer.cancel()
        # a shell reports a signal that ended it as an exit status above 128
        if self.own_groups and key not in self._timed_out and (
                os.WIFSIGNALED(status) or os.waitstatus_to_exitcode(status)
                > 128):
            self._stop.wait(STOP_SETTLE)
        with self._lock:
            del self._running[key]
            if self.stopping:
                self._stopped.add(key)
        if key in self._stopped:
            self.tasks.put_back(key)
            return
        proc.returncode = os.waitstatus_to_exitcode(status)
        end = time.time()
        code = proc.returncode
        fields = dict(end=end, exit_code=code if code >= 0 else None,
                      signal=-code if code < 0 else None,
                      cpu_seconds=usage.ru_utime + usage.ru_stime)
        if key in self._timed_out:
            self.tasks.end(key, FAILED, timeout=self.task_timeout,
                           reason=f'timeout: it ran longer than '
                           f'{self.task_timeout:g} s', **fields)
            return
        self.tasks.end(
            key, DONE if code == 0 else FAILED,
            reason=None if code == 0 else
            f'exit code {code}' if code > 0 else f'killed by signal {-code}',
            **fields)

    def _watch(self, key: str, pid: int) -> threading.Timer | None:
        """Note a task as running; end it at once if the farmer stops
        meanwhile, and when its time is up."""
        with self._lock:
            self._running[key] = pid
            if self.stopping:
                self._stopped.add(key)
                _end_group(pid)
                return None
        if self.task_timeout is None:
            return None
        timer = threading.Timer(self.task_timeout, self._expire, (key, pid))
        timer.daemon = True
        timer.start()
        return timer

    def _expire(self, key: str, pid: int):
        with self._lock:
            if self._running.get(key) != pid or key in self._stopped:
                return
            self._timed_out.add(key)
        _end_group(pid)


def _end_group(pid: int):
    """SIGTERM to a task's process group, SIGKILL after :data:`GRACE`."""
    _signal_group(pid, signal.SIGTERM)
    timer = threading.Timer(GRACE, _signal_group, (pid, signal.SIGKILL))
    timer.daemon = True
    timer.start()


def _signal_group(pid: int, number: int):
    try:
        os.killpg(pid, number)
    except ProcessLookupError:
        pass  # every process of it has ended


def _start(launch: Launch, own_group: bool,
           ) -> tuple[subprocess.Popen, list[str]]:
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
            stderr=files[launch.stderr],
            process_group=0 if own_group else None)
    finally:
        for f in files.values():
            f.close()
    return proc, list(files)
