"""Making the commits of a job pair.

Callers hold the repository lock (:mod:`datalad_slurm.lock`).
"""

from __future__ import annotations

import os.path as op
from typing import Iterator

from datalad.runner import (
    GitRunner,
    StdOutErrCapture,
)
from datalad.utils import chpwd


def commit_empty(repo, message: str) -> str:
    """Commit the tree of HEAD again with `message`; return the new sha.

    Built with plumbing rather than ``git commit --allow-empty`` so that
    whatever else is staged in the index stays out of the commit, and the
    update of HEAD fails rather than dropping a commit should HEAD move
    underneath (``update-ref`` with the expected old value).
    """
    parent = repo.call_git_oneline(['rev-parse', '--verify', 'HEAD'])
    sha = _commit_tree(repo, parent, message)
    repo.call_git(['update-ref', '-m', 'datalad-slurm: ' +
                   message.splitlines()[0], 'HEAD', sha, parent])
    return sha


def _commit_tree(repo, parent: str, message: str) -> str:
    out = GitRunner(cwd=repo.path).run(
        ['git', 'commit-tree', f'{parent}^{{tree}}', '-p', parent, '-F', '-'],
        stdin=message.encode('utf-8'),
        protocol=StdOutErrCapture)
    return out['stdout'].strip()


def save_paths(ds, paths: list[str], message: str) -> Iterator[dict]:
    """Save exactly `paths` (relative to the dataset root) in one commit
    with `message`, recursing into subdatasets as ``datalad run`` does.

    When there is nothing to save (someone committed the outputs already),
    an empty commit is made instead, so that a job's record is never lost.
    Yields the results of ``save`` that are not 'ok' or 'notneeded'.
    """
    before = ds.repo.get_hexsha()
    if paths:
        with chpwd(ds.path):
            for res in ds.save(path=paths, message=message, recursive=True,
                               result_renderer='disabled',
                               return_type='generator',
                               on_failure='ignore'):
                if res['status'] not in ('ok', 'notneeded'):
                    yield res
    if ds.repo.get_hexsha() == before:
        commit_empty(ds.repo, message)


def existing_or_tracked(repo, paths: list[str]) -> list[str]:
    """The `paths` that exist in the work tree or are tracked by git, so
    that a job's deleting a declared output is recorded too."""
    root = repo.path
    present = [p for p in paths if op.lexists(op.join(root, p))]
    missing = [p for p in paths if p not in present]
    if missing:
        tracked = [t for t in repo.call_git(
            ['ls-files', '-z', '--'] + missing, read_only=True).split('\0')
            if t]
        present.extend(
            p for p in missing
            if any(t == p or t.startswith(p + '/') for t in tracked))
    return present
