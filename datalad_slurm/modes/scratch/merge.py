"""What the FINISH commit of a scratch job takes from the branches its
tasks delivered: the changes of its declared outputs, nothing else.

The FINISH commit is a merge: its first parent the branch the job was
scheduled on, the others the delivered commits (one per task of an array),
so that whatever the job committed stays in the history.  Its tree is the
branch's, with each declared output as the job left it; anything else the
job changed is named, and merged only as far as a user closing the job
asks for (its declared outputs, then).
"""

from __future__ import annotations

import logging
from dataclasses import (
    dataclass,
    field,
)

from datalad.support.exceptions import CommandError

from ...records.format import Record
from ...repo import plumbing
from ...repo.paths import Claimed
from ...repo.worktree import shorten
from .layout import (
    ScratchDir,
    task_key,
)

lgr = logging.getLogger('datalad.slurm.scratch')


class NotMergeable(RuntimeError):
    """What the job delivered cannot be merged as it is; the message says
    why and what to do."""


@dataclass
class ScratchMerge:
    # the delivered commits to merge
    parents: list[str] = field(default_factory=list)
    # a fast-import file command by path
    changes: dict[str, str] = field(default_factory=dict)
    # branch by task key, as delivered
    branches: dict[str, str | None] = field(default_factory=dict)
    # committed by the job outside its declared outputs: not merged
    undeclared: list[str] = field(default_factory=list)
    # written by the job outside its declared outputs: gone with the clone
    left_out: list[str] = field(default_factory=list)
    # task keys that delivered nothing
    missing: list[str] = field(default_factory=list)

    def record_keys(self) -> dict:
        keys = {'scratch_branches': self.branches,
                'scratch_merged': self.parents}
        for key, value in (('scratch_undeclared', self.undeclared),
                           ('scratch_left_out', self.left_out),
                           ('scratch_not_delivered', self.missing)):
            if value:
                keys[key] = value
        return keys

    def summary(self) -> str:
        """What the result of the job's finish adds to its title."""
        if not self.left_out:
            return ''
        return (f' (left out with its clone, outside the declared outputs: '
                f'{shorten(self.left_out)})')


def scratch_dir(ds, record: Record) -> ScratchDir:
    return ScratchDir.of(ds.repo, record.data['submission'])


def plan_merge(ds, record: Record, *, strict: bool) -> ScratchMerge:
    """What the job's FINISH merges.  `strict`: the job is finished as
    complete, so every task must have delivered, and nothing but declared
    outputs; else (a job closed as failed) what there is is merged, and
    the rest recorded.

    Raises
    ------
    NotMergeable
    """
    data = record.data
    tasks = data.get('slurm_array') or [None]
    deliveries = scratch_dir(ds, record).deliveries()
    merge = ScratchMerge()
    merge.missing = [task_key(t) for t in tasks
                     if task_key(t) not in deliveries]
    if merge.missing and strict:
        raise NotMergeable(
            f'job {record.job_id} ended, but task(s) '
            f'{", ".join(merge.missing)} delivered no work from their '
            f'scratch clone (read the job\'s log files); close it with '
            f'--close-failed-jobs, or submit it again')
    declared = Claimed(data.get('outputs') or [])
    by_path: dict[str, tuple[str, str]] = {}
    for key, note in sorted(deliveries.items()):
        merge.branches[key] = note.get('branch')
        merge.left_out.extend(note.get('left_out') or [])
        if note['commit'] == note['base']:
            continue
        merge.parents.append(note['commit'])
        for path, change in _changes(ds.repo, note['base'], note['commit']):
            if path not in declared:
                merge.undeclared.append(path)
                continue
            earlier = by_path.get(path)
            if earlier and earlier[1] != change:
                raise NotMergeable(
                    f'tasks {earlier[0]} and {key} of job {record.job_id} '
                    f'both changed {path}, differently; merge their branches '
                    f'by hand')
            by_path[path] = (key, change)
    merge.changes = {path: change for path, (_, change) in by_path.items()}
    merge.undeclared = sorted(set(merge.undeclared))
    merge.left_out = sorted(set(merge.left_out))
    if merge.undeclared and strict:
        raise NotMergeable(
            f'job {record.job_id} committed files outside its declared '
            f'outputs in its clone: {shorten(merge.undeclared)}; they are on '
            f'branch {", ".join(b for b in merge.branches.values() if b)}. '
            f'Close the job with --close-failed-jobs to merge only its '
            f'declared outputs, or submit it again with those files among '
            f'its outputs')
    return merge


def _changes(repo, base: str, commit: str):
    """(path, fast-import file command) of every file `commit` changed."""
    out = plumbing.git(repo, ['diff-tree', '-r', '-z', '--no-renames',
                              base, commit])
    fields = iter(out.split('\0'))
    for meta in fields:
        if not meta:
            continue
        path = next(fields)
        _, mode, _, sha, status = meta[1:].split(' ')
        if status == 'D':
            yield path, plumbing.delete_path(path)
        else:
            yield path, plumbing.change_file(mode, sha, path)


def forget(ds, records: list[Record]):
    """Once the FINISH commit of the jobs of `records` is in the history:
    their delivered branches go (their commits are the merge's parents),
    in one transaction where nobody moved one, and so do the jobs'
    directories."""
    directories = [scratch_dir(ds, record) for record in records]
    branches = [(f'refs/heads/{note["branch"]}', note['commit'])
                for directory in directories
                for note in directory.deliveries().values()
                if note.get('branch')]
    try:
        plumbing.delete_refs(ds.repo, branches)
    except CommandError:
        for ref, commit in branches:
            try:
                plumbing.delete_ref(ds.repo, ref, commit)
            except CommandError as e:
                # moved by someone since: theirs now, not ours to remove
                lgr.debug('Not removing branch %s: %s', ref, e)
    for directory in directories:
        directory.remove()


def failure_notes(ds, record: Record) -> list[str]:
    """Why tasks of a scratch job could not run their script, as the job
    noted it."""
    if not record.data.get('scratch'):
        return []
    return [f'{"" if key == task_key(None) else f"task {key}: "}{why}'
            for key, why in scratch_dir(ds, record).failures().items()]
