"""The git plumbing every commit of the package is made with.

Commits are built from trees with ``commit-tree`` (from a temporary index
where files change) and the branch is moved once, with ``update-ref``
given the expected old value: should anything else move HEAD meanwhile,
the update fails instead of dropping a commit, and the user's own index
is never touched.  Callers hold the repository lock.
"""

from __future__ import annotations

import os
import os.path as op
import re
import subprocess
from contextlib import contextmanager

from datalad.support.exceptions import CommandError


def git(repo, args: list[str], stdin: str | None = None,
        index_file: str | None = None) -> str:
    """Run git in `repo` and return its output; with `index_file`, against
    that index instead of the repository's.

    Raises
    ------
    CommandError
    """
    env = dict(os.environ, GIT_INDEX_FILE=index_file) if index_file else None
    # read in one go: DataLad's runner passes large outputs (a history's
    # records) through a thread and a queue, chunk by chunk
    argv = ['git', *args]
    proc = subprocess.run(argv, cwd=repo.path, env=env, input=stdin,
                          capture_output=True, encoding='utf-8',
                          errors='surrogateescape')
    if proc.returncode:
        raise CommandError(cmd=argv, code=proc.returncode, stdout=proc.stdout,
                           stderr=proc.stderr, cwd=repo.path)
    return proc.stdout


_SHA = re.compile(r'[0-9a-f]{40}([0-9a-f]{24})?')


def head(repo) -> str | None:
    """The commit HEAD points at, or None on an unborn branch.

    Read from the loose ref file where there is one, as git itself does:
    a few microseconds, where asking git costs a process per call, and
    a command asks several times.  git writes ref files by renaming a
    complete lock file over them, so a read sees the old or the new sha.
    Anything else (packed or reftable refs, a worktree's branch) is left
    to ``git rev-parse``.
    """
    dot_git = repo.dot_git
    try:
        with open(op.join(dot_git, 'HEAD')) as f:
            target = f.read().strip()
        if _SHA.fullmatch(target):
            return target
        if target.startswith('ref: refs/heads/'):
            with open(op.join(dot_git, target[5:])) as f:
                sha = f.read().strip()
            if _SHA.fullmatch(sha):
                return sha
    except OSError:
        pass
    try:
        return git(repo, ['rev-parse', '--verify', '--quiet',
                          'HEAD^{commit}']).strip()
    except CommandError as e:
        if e.code == 1 and not e.stdout:
            return None
        raise


def commit_tree(repo, tree: str, parent: str, message: str) -> str:
    """A new commit object of `tree` on `parent`; no ref moves."""
    return git(repo, ['commit-tree', tree, '-p', parent, '-F', '-'],
               stdin=message).strip()


def move_head(repo, new: str, expected: str, reason: str):
    """Point HEAD's branch at `new`, if it still points at `expected`."""
    git(repo, ['update-ref', '-m', f'datalad-slurm: {reason}', 'HEAD', new,
               expected])


class TemporaryIndex:
    """An index of its own, started from a commit's tree, to build the
    trees of new commits without touching the repository's index."""

    def __init__(self, repo, path: str):
        self.repo = repo
        self.path = path

    def update(self, entries: list[str]):
        """Apply ``update-index --index-info`` lines ('mode sha stage\\tpath';
        mode 0 removes the path)."""
        if entries:
            git(self.repo, ['update-index', '-z', '--index-info'],
                stdin='\0'.join(entries) + '\0', index_file=self.path)

    def write_tree(self) -> str:
        return git(self.repo, ['write-tree'], index_file=self.path).strip()


@contextmanager
def temporary_index(repo, base: str):
    """A :class:`TemporaryIndex` holding the tree of commit `base`, removed
    afterwards."""
    path = op.join(repo.dot_git, 'datalad-slurm', f'index.{os.getpid()}')
    os.makedirs(op.dirname(path), exist_ok=True)
    try:
        git(repo, ['read-tree', base], index_file=path)
        yield TemporaryIndex(repo, path)
    finally:
        if op.exists(path):
            os.unlink(path)
