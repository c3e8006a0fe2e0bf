"""The open-job index: which scheduled jobs have no FINISH commit yet.

The history is the only truth.  The index is a cache of what a scan of the
history found, kept under ``.git/`` together with the commit it describes, so
that the next command only scans the commits made since then.  A missing,
corrupt or stale (history rewritten, branch switched) index is rebuilt from
the history; losing it loses nothing.

It is kept in two files.  ``index.json`` holds all open jobs as of one
commit; writing it costs what the open jobs cost (10 ms for 1,000 of them).
``index-delta.json`` holds the few records taken in since that commit, up to
a later one, and is written after every change: each command leaves the
index current for the next, at the cost of its own records.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable

from ..repo import (
    plumbing,
    state,
)
from ..repo.paths import Outputs
from ..slurm.jobspec import pattern_regex
from ..util.bulk import builds_many
from . import split
from .format import Record
from .history import iter_records

lgr = logging.getLogger('datalad.slurm.index')

_FORMAT_VERSION = 1

# Records the delta holds at most before all open jobs are written again: a
# Python loop scheduling thousands of jobs would otherwise write all open
# jobs' records once per job.
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
        # schedule commit -> {'finish': finish commit, 'job': job id}, and
        # a split array job's later parts' ids ('parts')
        self.finished: dict[str, dict] = {}
        self._cache = state.index_cache(repo.dot_git)
        self._delta = state.index_delta(repo.dot_git)
        # the head `_cache` was last read or written at, and the records
        # taken in since: what the delta holds; None once index.json has
        # to be written again (or, for a partial view, never is)
        self._base: str | None = None
        self._since_base: list[Record] = []
        # built when first asked for, then kept in step with `open`, which
        # only this class changes
        self._paths: OpenPaths | None = None
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
            self._paths = None
            self._base, self._since_base = None, []
            self._scan(f'{self.since}..{current}' if self.since else current)
        self.head = current
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
        self._save()

    def open_jobs(self) -> list[Record]:
        """Records of the open jobs, in history order."""
        return list(self.open.values())

    @property
    def paths(self) -> 'OpenPaths':
        """What the open jobs write, by path."""
        if self._paths is None:
            self._paths = OpenPaths(self.open.values())
        return self._paths

    def find_job(self, job_id: int) -> tuple[Record | None, str | None]:
        """Find a job by its Slurm id: (open record, None) if it is open,
        (None, schedule commit) if it was finished, (None, None) if unknown.
        """
        for record in self.open.values():
            # any part of a split array job finds its record
            if record.job_id == job_id or \
                    job_id in split.job_ids(record.data):
                return record, None
        for schedule_commit, entry in self.finished.items():
            if entry['job'] == job_id or job_id in entry.get('parts', ()):
                return None, schedule_commit
        return None, None

    @builds_many
    def _scan(self, revision_range: str):
        for record in iter_records(self.repo, revision_range):
            self._scanned(record)

    def _scanned(self, record: Record):
        if self._base is not None:
            self._since_base.append(record)
            if len(self._since_base) >= SAVE_EVERY:
                self._base, self._since_base = None, []
        if record.is_schedule:
            self.open[record.commit] = record
            if self._paths is not None:
                self._paths.add(record)
        else:
            schedule_commit = record.data.get('schedule_commit')
            if self.open.pop(schedule_commit, None) is not None \
                    and self._paths is not None:
                self._paths.discard(schedule_commit)
            self.finished[schedule_commit] = {
                'finish': record.commit, 'job': record.job_id}
            if split.later_parts(record.data):
                self.finished[schedule_commit]['parts'] = \
                    split.later_parts(record.data)

    @builds_many
    def _load(self):
        self._paths = None
        try:
            cached = json.loads(self._cache.read_text())
            if cached.get('version') != _FORMAT_VERSION:
                return
            self.open = {
                sha: Record(kind=entry['kind'], data=entry['data'],
                            commit=sha)
                for sha, entry in cached['open'].items()}
            self.finished = cached['finished']
            self.head = self._base = cached['head']
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            lgr.debug('Rebuilding the job index, the cache is unusable: %s',
                      e)
            self.open, self.finished, self.head = {}, {}, None
            return
        try:
            delta = json.loads(self._delta.read_text())
            # a delta written on an older or newer index.json is no
            # delta of this one
            if delta.get('version') != _FORMAT_VERSION or \
                    delta.get('base') != self._base:
                return
            records = [Record(kind=entry['kind'], data=entry['data'],
                              commit=entry['commit'])
                       for entry in delta['records']]
            head = delta['head']
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            lgr.debug('Ignoring the job index delta, it is unusable: %s', e)
            return
        for record in records:
            self._scanned(record)
        self.head = head

    def _save(self):
        """Write the delta, or all of the index once the delta has grown
        (or has no index.json to follow)."""
        if self.since is not None:
            return
        try:
            self._cache.parent.mkdir(exist_ok=True)
            # the open jobs in history order: the order of the dicts
            if self._base is None:
                state.write_json(self._cache, {
                    'version': _FORMAT_VERSION,
                    'head': self.head,
                    'open': {sha: {'kind': r.kind, 'data': r.data}
                             for sha, r in self.open.items()},
                    'finished': self.finished,
                }, sort_keys=False)
                self._base, self._since_base = self.head, []
            else:
                state.write_json(self._delta, {
                    'version': _FORMAT_VERSION,
                    'base': self._base,
                    'head': self.head,
                    'records': [{'kind': r.kind, 'data': r.data,
                                 'commit': r.commit}
                                for r in self._since_base],
                }, sort_keys=False)
        except OSError as e:
            lgr.debug('Could not write the job index: %s', e)


class OpenPaths:
    """The open jobs' outputs, farm log directories and log file patterns,
    kept for the questions each submission asks of all of them: asked of
    each open job in turn, a Python loop scheduling thousands of jobs grew
    slower with every job."""

    def __init__(self, records: Iterable[Record]):
        # sha -> (place in history order, record): the place sorts answers
        # without a walk through `open`; later jobs are taken in later
        self._order: dict[str, tuple[int, Record]] = {}
        self._next = itertools.count()
        self._outputs = Outputs()
        # a farm job's task logs are written as its outputs are
        self._farm_logs = Outputs()
        self._log_patterns: Counter[str] = Counter()
        self._is_log: re.Pattern | None = None
        for record in records:
            self.add(record)

    def add(self, record: Record):
        sha = record.commit
        if sha in self._order:
            # a record taken in again keeps its place, as in `open`
            place, _ = self._order[sha]
            self.discard(sha)
        else:
            place = next(self._next)
        self._order[sha] = place, record
        self._outputs.add(sha, record.data.get('outputs') or [])
        farm_log_dir = record.data.get('farm_log_dir')
        if farm_log_dir:
            self._farm_logs.add(sha, [farm_log_dir])
        for pattern in set(_log_patterns(record)):
            if not self._log_patterns[pattern]:
                self._is_log = None
            self._log_patterns[pattern] += 1

    def discard(self, sha: str):
        _, record = self._order.pop(sha)
        self._outputs.discard(sha)
        self._farm_logs.discard(sha)
        for pattern in set(_log_patterns(record)):
            self._log_patterns[pattern] -= 1
            if not self._log_patterns[pattern]:
                del self._log_patterns[pattern]
                self._is_log = None

    def writing(self, specs: Iterable[str]) -> list[tuple[Record, list[str]]]:
        """The open jobs with outputs that may overlap `specs` (paths or
        globs), in history order, each with those outputs, in its order.
        """
        found: dict[str, set[int]] = {}
        for spec in specs:
            for sha, position in self._outputs.overlapping(spec):
                found.setdefault(sha, set()).add(position)
        records = self.in_history_order(self._order[sha][1] for sha in found)
        return [(r, [r.data['outputs'][p] for p in sorted(found[r.commit])])
                for r in records]

    def in_history_order(self, records: Iterable[Record]) -> list[Record]:
        """Open jobs' `records`, earliest first."""
        return sorted(records, key=lambda r: self._order[r.commit][0])

    def written(self, spec: str) -> bool:
        """Whether all that `spec` (a path or glob) may name lies within an
        open job's output."""
        return self._outputs.hold(spec)

    def claimed(self, path: str) -> bool:
        """Whether an open job may be writing `path` (a path of the work
        tree): its outputs, its task logs, its Slurm logs."""
        if path in self._outputs or path in self._farm_logs:
            return True
        if self._is_log is None and self._log_patterns:
            self._is_log = re.compile('|'.join(
                pattern_regex(p).pattern for p in self._log_patterns))
        return bool(self._is_log and self._is_log.match(path))


def _log_patterns(record: Record) -> list[str]:
    return record.data.get('slurm_output_patterns') or []
