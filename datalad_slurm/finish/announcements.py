"""Announcements of jobs whose work has ended, for the lock holder to
commit (see :mod:`datalad_slurm.finish.handover`).

An announcement is a file under ``.git/datalad-slurm/ready/``, named after
the job and task, in one of three states:

``NAME.json``
  announced: no holder of the lock has seen it yet, and whoever releases
  the lock next commits it (:func:`datalad_slurm.repo.state.announced`);
``NAME.claimed``
  taken up by the lock holder for its round (one that died leaves it, and
  the next holder takes it up again);
``NAME.standing``
  seen by a holder whose round could not commit the job (other tasks of
  its array still running, Slurm not answering): every later holder takes
  it up again, but it makes none go on.

An announcement outlives its process, which does not wait for the commit:
that the job's work ended, with its exit status, is a fact, which the last
task of an array to end needs to know of its siblings, and a holder that
was killed leaves to the next.  Everything here imports nothing of
DataLad: a job's own finish announces without it.
"""

from __future__ import annotations

import os
import time

from ..repo import state

# files an older version left (done markers), or a crash cut short, are
# removed after this
STALE = 3600


class Announcement:
    """One announcement; a plain class, and its paths strings, as the
    imports of dataclasses and pathlib would cost a job's own finish more
    than its writing."""

    def __init__(self, job_id: int, task_id: int | None,
                 exit_status: int | None, pid: int, base: str,
                 host: str | None = None):
        self.job_id, self.task_id, self.exit_status = \
            job_id, task_id, exit_status
        # the announcing process, for messages
        self.pid, self.host = pid, host
        # the file's path without its state suffix
        self.base = base

    @property
    def name(self) -> str:
        return os.path.basename(self.base)

    def state_path(self, suffix: str) -> str:
        return f'{self.base}.{suffix}'

    def text(self) -> bytes:
        """The announcement as JSON, without importing json (and with it
        re) where its one string, the host name, needs no escaping."""
        host = self.host
        if host is not None and not (host.isascii() and host.isprintable()
                                     and '"' not in host and '\\' not in host):
            import json
            return json.dumps(self.content(), sort_keys=True).encode()
        fields = ', '.join(
            f'"{k}": {"null" if v is None else v}' for k, v in (
                ('exit_status', self.exit_status),
                ('host', None if host is None else f'"{host}"'),
                ('job_id', self.job_id), ('pid', self.pid),
                ('task_id', self.task_id)))
        return ('{' + fields + '}').encode()

    def content(self) -> dict:
        return dict(job_id=self.job_id, task_id=self.task_id,
                    exit_status=self.exit_status, pid=self.pid,
                    host=self.host)


_FIELDS = ('job_id', 'task_id', 'exit_status', 'pid', 'host')


def announce(git_dir, job_id: int, task_id: int | None,
             exit_status: int | None) -> Announcement:
    """Announce that the work of the task ended with `exit_status`, on
    disk before this returns: the process may end right after."""
    directory = state.ready_dir(git_dir)
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory,
                        f'{job_id}-{"x" if task_id is None else task_id}')
    ann = Announcement(job_id, task_id, exit_status, os.getpid(), base,
                       host=os.uname().nodename)
    state.write_parts(ann.state_path('json'), [ann.text()], durable=True)
    _unlink(ann.state_path('standing'))
    return ann


def claim(git_dir, open_jobs: set[int]) -> list[Announcement]:
    """Take up every announcement of an open job; forget those of jobs
    that are closed.  Call with the repository lock held."""
    import json
    directory = state.ready(git_dir)
    if not directory.is_dir():
        return []
    claimed = {}
    for path in sorted(directory.iterdir()):
        base, _, suffix = path.name.rpartition('.')
        if suffix == 'unreadable':
            continue
        if suffix not in ('json', 'claimed', 'standing'):
            _drop_if_stale(path)
            continue
        try:
            content = json.loads(path.read_text())
            ann = Announcement(base=str(directory / base), **{
                k: v for k, v in content.items() if k in _FIELDS})
        except (OSError, ValueError, TypeError) as e:
            lgr().warning('Setting aside the unreadable announcement %s '
                          '(as .unreadable): %s', path, e)
            # kept for a human to read, and out of every holder's way
            path.replace(path.with_name(f'{base}.unreadable'))
            continue
        if ann.job_id not in open_jobs:
            path.unlink(missing_ok=True)
            continue
        if suffix != 'claimed':
            os.replace(path, ann.state_path('claimed'))
        # a task announced again, after a holder gave its first back
        claimed[ann.name] = ann
    return list(claimed.values())


def announced_tasks(git_dir) -> dict[int, list]:
    """Job id -> (task id, exit status) of every announcement, in whatever
    state: what a round that commits the jobs must know of them."""
    import json
    tasks: dict[int, list] = {}
    try:
        paths = sorted(state.ready(git_dir).iterdir())
    except OSError:
        return tasks
    for path in paths:
        if path.suffix not in ('.json', '.claimed', '.standing'):
            continue
        try:
            content = json.loads(path.read_text())
            tasks.setdefault(int(content['job_id']), []).append(
                (content['task_id'], content['exit_status']))
        except (OSError, ValueError, TypeError, KeyError):
            # gone meanwhile, or claim() says what is wrong with it
            continue
    return tasks


def forget_jobs(git_dir, job_ids: set[int]):
    """Remove the announcements of jobs that were committed otherwise (by
    a finish that did not claim them).  Call with the repository lock
    held."""
    directory = state.ready(git_dir)
    if not job_ids or not directory.is_dir():
        return
    for path in directory.iterdir():
        job = path.name.split('-', 1)[0]
        if job.isdigit() and int(job) in job_ids:
            path.unlink(missing_ok=True)


def settle(claims: list[Announcement], committed: set[int]):
    """After a holder's round: the announcements of jobs it committed are
    done with, the others stand for later holders."""
    for ann in claims:
        if ann.job_id in committed:
            _unlink(ann.state_path('claimed'))
        else:
            try:
                os.replace(ann.state_path('claimed'),
                           ann.state_path('standing'))
            except FileNotFoundError:
                # forgotten meanwhile (forget_jobs)
                pass


def _unlink(path: str):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _drop_if_stale(path):
    try:
        if time.time() - path.stat().st_mtime > STALE:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def lgr():
    # logging is imported only where there is something to say
    import logging
    return logging.getLogger('datalad.slurm.announcements')
