"""The submission journal: no job is orphaned by a crash.

Before sbatch is called, the schedule record is written to a file under
``.git/datalad-slurm/journal/``; the job id is added the moment sbatch
returns, and the file is removed once the schedule commit exists.  Entries
are only written and removed under the repository lock, so an entry seen by
a holder of the lock belongs to a process that died in between, and the
next datalad-slurm command completes its record.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


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

    @property
    def job_id(self) -> int | None:
        return self.data.get('slurm_job_id')

    def submitted(self, job_id: int):
        """Note the job id sbatch returned."""
        self.data['slurm_job_id'] = job_id
        _write(self.path, self._content())

    def done(self):
        """The schedule commit exists: forget the entry."""
        self.path.unlink(missing_ok=True)

    def set_aside(self) -> Path:
        """Move an entry that cannot be completed out of the way, keeping it
        for the user to inspect."""
        target = self.path.parent / 'unresolved' / self.path.name
        target.parent.mkdir(exist_ok=True)
        os.replace(self.path, target)
        return target

    def _content(self) -> dict:
        return dict(kind=self.kind, data=self.data, message=self.message,
                    argv=self.argv, pid=self.pid, started=self.started)


def journal_dir(repo) -> Path:
    return Path(repo.dot_git) / 'datalad-slurm' / 'journal'


def begin(repo, kind: str, data: dict, message: str | None,
          argv: list[str]) -> Entry:
    """Write down a submission about to be made."""
    directory = journal_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix='submission-',
                                suffix='.json')
    os.close(fd)
    entry = Entry(path=Path(name), kind=kind, data=dict(data),
                  message=message, argv=list(argv), pid=os.getpid(),
                  started=time.time())
    _write(entry.path, entry._content())
    return entry


def has_entries(repo) -> bool:
    """Whether any submission is journaled; safe without the lock."""
    directory = journal_dir(repo)
    return directory.is_dir() and any(directory.glob('submission-*.json'))


def orphans(repo) -> list[Entry]:
    """Entries left behind; call with the repository lock held."""
    directory = journal_dir(repo)
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(directory.glob('submission-*.json')):
        try:
            content = json.loads(path.read_text())
            entries.append(Entry(path=path, **content))
        except (ValueError, TypeError, OSError):
            # a crash while the entry was first written: nothing was
            # submitted yet (sbatch comes after a complete entry)
            path.unlink(missing_ok=True)
    return entries


def _write(path: Path, content: dict):
    # write-then-rename, so that a crash never leaves half an entry
    tmp = path.with_suffix('.tmp')
    with open(tmp, 'w') as f:
        json.dump(content, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
