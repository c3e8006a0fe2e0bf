"""Processes that outlive the datalad command that started them, and how
to tell later whether one still runs.

A pid alone does not tell: pids are reused, and a reboot starts them over.
A process is named by its pid, the kernel's boot id and its start time
(both from ``/proc``, so local mode needs Linux), and the host it runs on.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import (
    asdict,
    dataclass,
)
from pathlib import Path

PROC = Path('/proc')


class NoProcfs(RuntimeError):
    """This system has no /proc to tell processes apart by."""


@dataclass(frozen=True)
class ProcessId:
    pid: int
    host: str
    boot: str
    start: int

    @classmethod
    def of(cls, pid: int) -> 'ProcessId':
        """Process `pid` of this machine; one that has ended already is
        named as one that is gone."""
        start = _start_ticks(pid)
        return cls(pid=pid, host=socket.gethostname(), boot=boot_id(),
                   start=-1 if start is None else start)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def here(self) -> bool:
        """Whether it runs (or ran) on this machine."""
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """Whether the process still runs; only to be asked `here`."""
        return self.boot == boot_id() and _start_ticks(self.pid) == self.start


def boot_id() -> str:
    """Raises NoProcfs."""
    try:
        return (PROC / 'sys' / 'kernel' / 'random' / 'boot_id').read_text() \
            .strip()
    except FileNotFoundError as e:
        raise NoProcfs(
            'local mode tells its jobs\' processes apart by /proc, which '
            'this system lacks (local mode needs Linux)') from e


def _start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot), None if there
    is none; a zombie has ended."""
    try:
        stat = (PROC / str(pid) / 'stat').read_text()
    except OSError:
        return None
    # the command name, in parentheses, may hold spaces and parentheses
    fields = stat[stat.rindex(')') + 2:].split()
    if fields[0] in ('Z', 'X'):
        return None
    return int(fields[19])


def spawn_detached(argv: list[str], *, log: Path, cwd: Path) -> int:
    """Start `argv` so that it outlives this process and its session (a
    terminal closing, a job of the datalad command ending); return its pid.

    sh starts it in the background and ends: the process is then nobody's
    child here (no zombie of it stays in this process, which may be a
    long-running Python program), and its output goes to `log`.
    """
    out = subprocess.run(
        ['/bin/sh', '-c', 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & '
         'echo $!', 'sh', str(log), *argv],
        cwd=cwd, start_new_session=True, check=True, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    return int(out.stdout.strip())


def python_argv(module: str, *args: str) -> list[str]:
    """A command running `module` of this package with this interpreter,
    importing this very copy of the package whatever sys.path would find.
    """
    root = str(Path(__file__).resolve().parents[2])
    return [sys.executable, '-c',
            f'import sys; sys.path.insert(0, {root!r}); '
            f'import runpy; runpy.run_module({module!r}, run_name="__main__")',
            *args]
