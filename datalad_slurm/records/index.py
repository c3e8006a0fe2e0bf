"""The open-job index: which scheduled jobs have no FINISH commit yet.

The history is the only truth.  The index is a cache of what a scan of the
history found, kept under ``.git/`` together with the commit it describes, so
that the next command only scans the commits made since then.  A missing,
corrupt or stale (history rewritten, branch switched) index is rebuilt from
the history; losing it loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

from ..repo import plumbing
from .history import iter_records
from .format import Record

lgr = logging.getLogger('datalad.slurm.index')

_FORMAT_VERSION = 1

# Commits taken in by :meth:`JobIndex.recorded` before the cache is written
# again: a Python loop scheduling thousands of jobs would otherwise write
# all open jobs' records once per job, and a later command scans this many
# commits at most.
SAVE_EVERY = 50

_per_thread = threading.local()


class JobIndex:
    """Open and finished jobs of the history up to a commit.

    Parameters
    ----------
    repo : GitRepo
    since : str, optional
      Only consider commits after this one.  Such a partial view is never
      written to the cache.
    """

    def __init__(self, repo, since: str | None = None):
        self.repo = repo
        self.since = since
        self.head: str | None = None
        self.open: dict[str, Record] = {}
        # schedule commit -> {'finish': finish commit, 'job': job id}
        self.finished: dict[str, dict] = {}
        self._cache = Path(repo.dot_git) / 'datalad-slurm' / 'index.json'
        self._unsaved = 0
        if since is None:
            self._load()

    @classmethod
    def current(cls, repo) -> 'JobIndex':
        """The index of `repo`, up to date with HEAD, kept in memory for
        this thread: the next command of a Python pipeline neither reads it
        again nor scans for the commits this thread made."""
        indexes = getattr(_per_thread, 'indexes', None)
        if indexes is None:
            indexes = _per_thread.indexes = {}
        key = str(Path(repo.dot_git).resolve())
        if key not in indexes:
            indexes[key] = cls(repo)
        return indexes[key].refresh()

    def refresh(self) -> 'JobIndex':
        """Bring the index up to date with the current HEAD."""
        current = plumbing.head(self.repo)
        if current is None or current == self.head:
            return self
        if self.head and self.repo.is_ancestor(self.head, current):
            self._scan(f'{self.head}..{current}')
        else:
            self.open.clear()
            self.finished.clear()
            self._scan(f'{self.since}..{current}' if self.since else current)
        self.head = current
        if self.since is None:
            self._save()
        return self

    def recorded(self, record: Record, parent: str):
        """Take in `record`, just committed on `parent`, without a scan of
        the history: when the index is up to date with `parent`, the next
        refresh then finds nothing to do."""
        if self.head != parent:
            return
        self._scanned(record)
        self.head = record.commit
        self._unsaved += 1
        if self.since is None and self._unsaved >= SAVE_EVERY:
            self._save()

    def open_jobs(self) -> list[Record]:
        """Records of the open jobs, in history order."""
        return list(self.open.values())

    def find_job(self, job_id: int) -> tuple[Record | None, str | None]:
        """Find a job by its Slurm id: (open record, None) if it is open,
        (None, schedule commit) if it was finished, (None, None) if unknown.
        """
        for record in self.open.values():
            if record.job_id == job_id:
                return record, None
        for schedule_commit, entry in self.finished.items():
            if entry['job'] == job_id:
                return None, schedule_commit
        return None, None

    def _scan(self, revision_range: str):
        for record in iter_records(self.repo, revision_range):
            self._scanned(record)

    def _scanned(self, record: Record):
        if record.is_schedule:
            self.open[record.commit] = record
        else:
            schedule_commit = record.data.get('schedule_commit')
            self.open.pop(schedule_commit, None)
            self.finished[schedule_commit] = {
                'finish': record.commit, 'job': record.job_id}

    def _load(self):
        try:
            cached = json.loads(self._cache.read_text())
            if cached.get('version') != _FORMAT_VERSION:
                return
            self.open = {
                sha: Record(kind=entry['kind'], data=entry['data'],
                            commit=sha)
                for sha, entry in cached['open'].items()}
            self.finished = cached['finished']
            self.head = cached['head']
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            lgr.debug('Rebuilding the job index, the cache is unusable: %s',
                      e)
            self.open, self.finished, self.head = {}, {}, None

    def _save(self):
        self._unsaved = 0
        cache = {
            'version': _FORMAT_VERSION,
            'head': self.head,
            'open': {sha: {'kind': r.kind, 'data': r.data}
                     for sha, r in self.open.items()},
            'finished': self.finished,
        }
        self._cache.parent.mkdir(exist_ok=True)
        # write-then-rename: a concurrent reader sees the old or the new
        # index, never half of one; either is valid for the head it names
        fd, tmp = tempfile.mkstemp(dir=self._cache.parent, suffix='.tmp')
        try:
            with os.fdopen(fd, 'w') as f:
                # dumps, not dump: dump encodes in Python, chunk by chunk
                f.write(json.dumps(cache))
            os.replace(tmp, self._cache)
        except OSError as e:
            lgr.debug('Could not write the job index: %s', e)
            Path(tmp).unlink(missing_ok=True)
