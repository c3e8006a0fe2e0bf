"""The submission journal: no job is orphaned by a crash or a timeout.

Each submission is a small state machine kept in a file under
``.git/datalad-slurm/journal/``:

``prepared``
  written before anything changes, with the schedule record, the unique
  mark the submission carries into Slurm, and the outputs about to be made
  writable: a process that dies now has submitted nothing, and its outputs
  are put back;
``submitting``
  sbatch is about to run: from here on, Slurm may have the job (a process
  that dies now leaves sbatch running, and the mark tells later);
``submitted``
  sbatch returned a job id;
``unknown``
  sbatch did not answer in time: Slurm may have accepted the job, or may
  still, and the mark tells later;
and *committed*: the schedule commit exists and the file is removed.
An array split into several jobs (``schedule --array-split``) is one entry
whose parts each go through these states in turn, each carrying a mark of
its own (the submission's plus ``/K``).

Entries are written and removed under the repository lock, so an entry a
holder of the lock sees belongs to a process that has ended or given up,
and :func:`datalad_slurm.submit.submission.complete` finishes it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from dataclasses import (
    dataclass,
    field,
)
from pathlib import Path

from ..repo import state

lgr = logging.getLogger('datalad.slurm.journal')

PREPARED = 'prepared'
SUBMITTING = 'submitting'
SUBMITTED = 'submitted'
UNKNOWN = 'unknown'


@dataclass
class Entry:
    """One submission in flight (or orphaned)."""
    path: Path
    kind: str
    data: dict
    message: str | None
    argv: list[str]
    pid: int
    started: float
    state: str = PREPARED
    # whether the mark (data['submission']) went to Slurm with the job
    marked: bool = False
    # outputs (paths or globs, relative to the dataset) made writable for
    # the job, and those of them that differed from HEAD before; None in
    # entries of releases that wrote the entry only right before sbatch
    writable: list[str] | None = None
    changed_before: list[str] = field(default_factory=list)
    # the machine the submitting process ran on
    host: str | None = None
    # what submitted it (a submitter's name, see backends.submitter): sbatch,
    # or local mode
    submitter: str = 'slurm'
    # the jobs of an array split into several (schedule --array-split),
    # each submitted in turn: its sbatch command ('argv', marked with the
    # submission's mark plus '/K'), 'state' and 'job_id'; None for one job
    parts: list[dict] | None = None
    _fields = ('kind', 'data', 'message', 'argv', 'pid', 'started', 'state',
               'marked', 'writable', 'changed_before', 'host', 'submitter',
               'parts')

    @property
    def job_id(self) -> int | None:
        return self.data.get('slurm_job_id')

    @property
    def mark(self) -> str | None:
        return self.data.get('submission')

    @property
    def sbatch_may_have_run(self) -> bool:
        return self.state != PREPARED or self.writable is None

    def submitting(self):
        """sbatch is about to run."""
        self.state = SUBMITTING
        _write(self.path, self._content())

    def submitted(self, job_id: int):
        """Note the job id sbatch returned (or that Slurm told for the
        mark)."""
        self.data['slurm_job_id'] = job_id
        self.state = SUBMITTED
        _write(self.path, self._content())

    def unknown(self):
        """sbatch gave no answer: whether Slurm has the job is unknown."""
        self.state = UNKNOWN
        _write(self.path, self._content())

    def part_is(self, k: int, state: str, job_id: int | None = None):
        """Part `k` of a split array is about to be submitted (SUBMITTING),
        was (SUBMITTED, with its `job_id`), or may have been (UNKNOWN)."""
        self.parts[k].update(state=state, job_id=job_id)
        if state in (SUBMITTING, UNKNOWN):
            self.state = state
        _write(self.path, self._content())

    def done(self):
        """The schedule commit exists, or nothing was submitted: forget
        the entry."""
        self.path.unlink(missing_ok=True)

    def set_aside(self) -> Path:
        """Move an entry that cannot be completed out of the way, keeping it
        for the user to inspect."""
        target = self.path.parent / 'unresolved' / self.path.name
        target.parent.mkdir(exist_ok=True)
        os.replace(self.path, target)
        return target

    def _content(self) -> dict:
        return {name: getattr(self, name) for name in self._fields}


@dataclass
class Unreadable:
    """A journal entry that could not be read; it is left in place."""
    path: Path
    error: Exception = field(repr=False)


def begin(repo, kind: str, data: dict, message: str | None,
          argv: list[str], marked: bool, writable: list[str],
          changed_before: list[str] = (), submitter: str = 'slurm',
          parts: list[list[str]] | None = None) -> Entry:
    """Write down a submission about to be made, before its `writable`
    outputs are."""
    directory = state.journal(repo.dot_git)
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix='submission-',
                                suffix='.json')
    os.close(fd)
    entry = Entry(path=Path(name), kind=kind, data=dict(data),
                  message=message, argv=list(argv), pid=os.getpid(),
                  started=time.time(), marked=marked,
                  writable=list(writable),
                  changed_before=list(changed_before),
                  host=socket.gethostname(), submitter=submitter,
                  parts=[{'argv': list(p), 'state': PREPARED, 'job_id': None}
                         for p in parts] if parts else None)
    _write(entry.path, entry._content())
    return entry


def has_entries(repo) -> bool:
    """Whether any submission is journaled; safe without the lock."""
    directory = state.journal(repo.dot_git)
    return directory.is_dir() and any(directory.glob('submission-*'))


def orphans(repo) -> list[Entry | Unreadable]:
    """Entries left behind; call with the repository lock held."""
    directory = state.journal(repo.dot_git)
    if not directory.is_dir():
        return []
    _settle_writes(directory)
    entries: list[Entry | Unreadable] = []
    for path in sorted(directory.glob('submission-*.json')):
        try:
            text = path.read_text()
        except OSError as e:
            entries.append(Unreadable(path, e))
            continue
        if not text:
            # mkstemp made the file, the process died before the first
            # write: nothing changed before a complete entry
            path.unlink(missing_ok=True)
            continue
        try:
            content = json.loads(text)
            entries.append(Entry(path=path, **content))
        except (ValueError, TypeError) as e:
            entries.append(Unreadable(path, e))
    return entries


def _settle_writes(directory: Path):
    """Finish the writes a crash interrupted: a complete temporary file is
    newer than its entry (it may hold the job id sbatch returned), a
    partial one is dropped."""
    for tmp in directory.glob('submission-*.tmp'):
        try:
            json.loads(tmp.read_text())
        except ValueError:
            tmp.unlink(missing_ok=True)
        except OSError as e:
            lgr.warning('Cannot read %s: %s', tmp, e)
        else:
            os.replace(tmp, tmp.with_suffix('.json'))


def _write(path: Path, content: dict):
    # write-then-rename, so that a crash never leaves half an entry
    tmp = path.with_suffix('.tmp')
    with open(tmp, 'w') as f:
        # dumps, not dump: dump encodes in Python, chunk by chunk
        f.write(json.dumps(content))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
