"""Announcements of jobs whose work has ended, for the lock holder to
commit (see :mod:`datalad_slurm.finish.handover`).

An announcement is a file under ``.git/datalad-slurm/ready/``, named after
the job and task, in one of three states:

``NAME.json``
  announced;
``NAME.claimed``
  taken up by the lock holder for its round (one that died leaves it, and
  the next holder takes it up again);
``NAME.done``
  committed: which commit, by which process, for the announcer to read.

An announcer that gives up waiting withdraws by removing ``NAME.json``,
which fails once a holder has claimed it.  An announcement outlives its
process: that the job's work ended is a fact, which the last task of an
array to end needs to know of its siblings.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..repo import state

lgr = logging.getLogger('datalad.slurm.announcements')

# done markers nobody read (their announcer died) are removed after this
DONE_KEPT = 3600


@dataclass
class Announcement:
    job_id: int
    task_id: int | None
    exit_status: int | None
    pid: int
    # the file's path without its state suffix
    base: Path
    # whether the announcing process waits for a done marker, or has gone
    # (a task that left its array's commit to the last task to end)
    waiting: bool = True
    host: str | None = None

    def gone(self) -> bool:
        """Whether the announcing process is known to have died (known
        only on its own host)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    @property
    def name(self) -> str:
        return self.base.name

    def state_path(self, suffix: str) -> Path:
        return self.base.with_name(f'{self.name}.{suffix}')

    def done(self) -> dict | None:
        """What the holder that committed the job tells, or None."""
        try:
            return json.loads(self.state_path('done').read_text())
        except (OSError, ValueError):
            return None

    def withdraw(self) -> bool:
        """Take the announcement back; False once a holder claimed it."""
        try:
            self.state_path('json').unlink()
            return True
        except FileNotFoundError:
            return False

    def content(self) -> dict:
        return dict(job_id=self.job_id, task_id=self.task_id,
                    exit_status=self.exit_status, pid=self.pid,
                    waiting=self.waiting, host=self.host)

    def forget(self):
        for suffix in ('json', 'claimed', 'done'):
            self.state_path(suffix).unlink(missing_ok=True)


def announce(repo, job_id: int, task_id: int | None,
             exit_status: int | None) -> Announcement:
    directory = state.ready(repo.dot_git)
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f'{job_id}-{"x" if task_id is None else task_id}'
    ann = Announcement(job_id, task_id, exit_status, os.getpid(), base,
                       host=socket.gethostname())
    ann.state_path('done').unlink(missing_ok=True)
    _write(ann, 'json', ann.content())
    return ann


def claim(repo, open_jobs: set[int]) -> list[Announcement]:
    """Take up every announcement of an open job; forget those of jobs
    that are closed.  Call with the repository lock held."""
    directory = state.ready(repo.dot_git)
    if not directory.is_dir():
        return []
    claimed = []
    for path in sorted(directory.iterdir()):
        base, _, suffix = path.name.rpartition('.')
        if suffix in ('done', 'tmp'):
            # markers of announcers that died, writes a crash cut short
            _drop_if_stale(path)
            continue
        if suffix not in ('json', 'claimed'):
            continue
        try:
            content = json.loads(path.read_text())
            ann = Announcement(base=directory / base, **content)
        except (OSError, ValueError, TypeError) as e:
            lgr.warning('Ignoring the unreadable announcement %s: %s', path,
                        e)
            continue
        if ann.job_id not in open_jobs:
            ann.forget()
            continue
        if suffix == 'json':
            try:
                os.replace(path, ann.state_path('claimed'))
            except FileNotFoundError:
                # withdrawn just now
                continue
        claimed.append(ann)
    return claimed


def forget_jobs(repo, job_ids: set[int]):
    """Remove the announcements of jobs that were committed otherwise (by
    a finish outside them).  Call with the repository lock held."""
    directory = state.ready(repo.dot_git)
    if not job_ids or not directory.is_dir():
        return
    for path in directory.iterdir():
        job = path.name.split('-', 1)[0]
        if job.isdigit() and int(job) in job_ids and \
                not path.name.endswith('.done'):
            path.unlink(missing_ok=True)


def _drop_if_stale(path: Path):
    try:
        if time.time() - path.stat().st_mtime > DONE_KEPT:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def settle(claims: list[Announcement], committed: dict[int, str],
           mine: Announcement):
    """After the round of this process (which announced `mine`):
    announcers still waiting for a job that was committed get a done
    marker, the others' announcements stand again, and `mine`, if its job
    was not committed, stands for a process that is gone."""
    for ann in claims:
        sha = committed.get(ann.job_id)
        if ann.base == mine.base and sha is None:
            ann.waiting = False
            _write(ann, 'json', ann.content())
        elif sha is None:
            os.replace(ann.state_path('claimed'), ann.state_path('json'))
            continue
        elif ann.waiting and ann.base != mine.base and not ann.gone():
            _write(ann, 'done', dict(commit=sha, by=os.getpid(),
                                     jobs=len(committed)))
        ann.state_path('claimed').unlink(missing_ok=True)


def _write(ann: Announcement, suffix: str, content: dict):
    state.write_json(ann.state_path(suffix), content)
