"""The state directory, ``.git/datalad-slurm/``: the name of every file
and directory in it, and the durable write of the files other processes
read while they are written.

Each function takes the repository's git directory (``repo.dot_git``):
a job in a scratch clone, or a farm job, knows only that.  The map::

    .git/datalad-slurm/
      lock               the repository lock (repo/lock.py)
      index.json         the open jobs at a commit (records/index.py)
      index-delta.json   what was scheduled since
      summaries.json     every job's summary at a commit (report/cache.py)
      journal/           submissions in flight (records/journal.py)
      ready/             announcements of jobs that ended (finish/)
      farm/MARK/         a farm job's tasks (modes/farm/layout.py)
      scratch/MARK/      a scratch job's spec and status
      split/MARK/        the batch scripts of a split array's parts, until
                         its schedule commit (submit/split.py)
      local/             local mode's jobs, ids and CPUs (backends/local/)
      marks.PID          git fast-import's marks, while it runs
"""

from __future__ import annotations

import itertools
import os

# what only annotations name: imported by type checkers alone
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

NAME = 'datalad-slurm'


def _path(path: str) -> Path:
    # pathlib, imported where a path is asked for: its import would cost a
    # job's own finish, which names its files with lock_file and
    # ready_dir, a fifth of its time
    from pathlib import Path
    return Path(path)


def root(git_dir) -> Path:
    return _path(os.path.join(git_dir, NAME))


def lock(git_dir) -> Path:
    return _path(lock_file(git_dir))


def lock_file(git_dir) -> str:
    """One dataset, one lock: symlinks resolved, so that every way of
    reaching the repository names the same file."""
    return os.path.join(os.path.realpath(git_dir), NAME, 'lock')


def index_cache(git_dir) -> Path:
    return root(git_dir) / 'index.json'


def index_delta(git_dir) -> Path:
    return root(git_dir) / 'index-delta.json'


def summaries(git_dir) -> Path:
    return root(git_dir) / 'summaries.json'


def journal(git_dir) -> Path:
    return root(git_dir) / 'journal'


def ready(git_dir) -> Path:
    return _path(ready_dir(git_dir))


def ready_dir(git_dir) -> str:
    return os.path.join(git_dir, NAME, 'ready')


def announced(git_dir) -> bool:
    """Whether a job's end is announced that no holder of the lock has
    taken up yet (finish/announcements.py names the states)."""
    try:
        return any(entry.name.endswith('.json')
                   for entry in os.scandir(ready_dir(git_dir)))
    except OSError:
        return False


def announcements(git_dir) -> int:
    """How many announcements no holder of the lock has taken up yet."""
    try:
        return sum(entry.name.endswith('.json')
                   for entry in os.scandir(ready_dir(git_dir)))
    except OSError:
        return 0


def doctor(git_dir) -> Path:
    """The test jobs of ``datalad slurm-doctor``: scripts and logs."""
    return root(git_dir) / 'doctor'


def farm(git_dir) -> Path:
    return root(git_dir) / 'farm'


def scratch(git_dir) -> Path:
    return root(git_dir) / 'scratch'


def split(git_dir) -> Path:
    return root(git_dir) / 'split'


def local(git_dir) -> Path:
    return root(git_dir) / 'local'


def pace(git_dir) -> Path:
    """When the dataset's next Slurm query may be made (see
    :mod:`datalad_slurm.backends.pacing`)."""
    return root(git_dir) / 'pace.json'


def marks(git_dir) -> Path:
    """This process's file of fast-import marks."""
    return root(git_dir) / f'marks.{os.getpid()}'


_writes = itertools.count()


def write_json(path: Path, content, *, durable: bool = False,
               sort_keys: bool = True):
    """Write `content` as JSON to `path` by write-then-rename, so that a
    reader sees the old file or the new one, never half of one.  `durable`:
    on disk before the rename, for what must outlive a crash of the
    machine.  `sort_keys` False keeps the dicts' order, where it means
    something."""
    import json
    # dumps, not dump: dump encodes in Python, chunk by chunk; bytes, as a
    # text file would import locale
    write_parts(path, [json.dumps(content, sort_keys=sort_keys).encode()],
                durable=durable)


def write_parts(path: Path, parts: Iterable[bytes], *,
                durable: bool = False):
    """Write the `parts` one after the other to `path`, as
    :func:`write_json` writes: each part made as the one before is
    written, so that a large file is never held whole."""
    directory, name = os.path.split(path)
    # named by process and call, not by tempfile, whose import would cost
    # a job's own finish more than the rest of its writing
    tmp = os.path.join(directory,
                       f'.{name}.{os.getpid()}-{next(_writes)}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, 'wb') as f:
            for part in parts:
                f.write(part)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
