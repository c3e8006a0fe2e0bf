"""Whether the repository lock holds across nodes: it is a POSIX record
lock (``fcntl``), which a network file system shares between its clients
only where it is mounted to.  NFS mounted ``nolock`` (or with
``local_lock=posix``/``all``) and Lustre mounted ``localflock`` lock on
one node only, silently; Lustre without ``flock`` refuses locks outright.
Read from the mount table (``/proc/self/mountinfo``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    options: frozenset[str]


def _unescaped(field: str) -> str:
    # the mount table writes space, tab, newline and backslash as \ooo,
    # and every other character as it is
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)),
                  field)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if '-' not in fields:
            continue
        sep = fields.index('-')
        if len(fields) < sep + 3 or sep < 6:
            continue
        options = set(fields[5].split(','))
        options.update(fields[sep + 3].split(',') if len(fields) > sep + 3
                       else [])
        mounts.append(Mount(_unescaped(fields[4]), fields[sep + 1],
                            frozenset(options)))
    return mounts


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount `path` (absolute, resolved) lies on: the longest mount
    point above it, the last mounted where several are the same."""
    best = None
    for mount in mounts:
        point = mount.point
        inside = point == '/' or path == point or \
            path.startswith(point + '/')
        if inside and (best is None or len(point) >= len(best.point)):
            best = mount
    return best


def lock_problem(mount: Mount) -> str | None:
    """Why the repository lock on `mount` would not be shared by the
    nodes, or None."""
    options, fstype = mount.options, mount.fstype
    where = f'{mount.point} ({fstype})'
    if fstype.startswith('nfs') and (
            'nolock' in options or 'local_lock=posix' in options
            or 'local_lock=all' in options):
        return (f'{where} is mounted without shared locks (nolock or '
                f'local_lock): the repository lock holds on this node only, '
                f'and jobs on other nodes could write the repository at the '
                f'same time; ask the admins to mount it with locking, or '
                f'finish jobs from one node only')
    if fstype == 'lustre' and 'flock' not in options:
        said = 'localflock, which locks on one node only' \
            if 'localflock' in options else 'without flock, which refuses ' \
            'locks'
        return (f'{where} is mounted {said}; the repository lock needs '
                f'Lustre mounted with -o flock on every node')
    return None


def repository_lock_problem(git_dir: str) -> str | None:
    """:func:`lock_problem` of the file system of `git_dir`; None where
    there is no mount table to read (not Linux)."""
    try:
        with open('/proc/self/mountinfo') as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return None
    mount = mount_of(os.path.realpath(git_dir), mounts)
    return lock_problem(mount) if mount else None
