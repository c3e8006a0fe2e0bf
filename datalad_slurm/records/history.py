"""Reading datalad-slurm records from the git history."""

from __future__ import annotations

import logging
from typing import Iterator

from datalad.support.exceptions import CommandError

from .format import (
    GREP_PATTERN,
    Record,
    RecordError,
    parse_message,
)

lgr = logging.getLogger('datalad.slurm.history')

_COMMIT_SEP = '\x1e'
_FIELD_SEP = '\x1f'


def iter_records(repo, revision_range: str = 'HEAD') -> Iterator[Record]:
    """Yield the records of all datalad-slurm commits in `revision_range`,
    oldest first.  Commits with broken records are skipped with a warning.
    """
    out = repo.call_git([
        'log', '--no-color', '--extended-regexp',
        f'--grep={GREP_PATTERN}',
        f'--format=%H{_FIELD_SEP}%B{_COMMIT_SEP}',
        revision_range, '--'], read_only=True)
    entries = [e.strip('\n') for e in out.split(_COMMIT_SEP)]
    for entry in reversed(entries):
        if not entry:
            continue
        sha, _, message = entry.partition(_FIELD_SEP)
        try:
            record = parse_message(message, commit=sha)
        except RecordError as e:
            lgr.warning('Ignoring %s', e)
            continue
        if record is not None:
            yield record


def read_record(repo, revision: str) -> Record | None:
    """The record of one commit, or None if it has none (or if `revision`
    names no commit)."""
    commit = _commit(repo, revision)
    if commit is None:
        return None
    return parse_message(commit.message, commit=commit.hexsha)


def resolve_commit(repo, revision: str) -> str | None:
    """Full sha of `revision`, or None if it names no commit."""
    commit = _commit(repo, revision)
    return commit.hexsha if commit is not None else None


def _commit(repo, revision: str):
    # GitPython reads single objects through one long-lived cat-file process
    # instead of a git call per question; imported here, since importing it
    # costs more than a schedule's whole use of git
    import git
    with git.Repo(repo.path) as gitpython:
        try:
            return gitpython.commit(revision)
        except (ValueError, git.BadName, git.BadObject):
            return None


class UnknownRevision(ValueError):
    """A revision names no commit of the dataset."""


def resolve_since(repo, since: str) -> str | None:
    """The commit a ``--since`` value names; None for '' (the whole
    history).

    Raises
    ------
    UnknownRevision
    """
    if not since:
        return None
    sha = resolve_commit(repo, since)
    if sha is None:
        raise UnknownRevision(f'--since {since!r} names no commit of this '
                              f'dataset')
    return sha


def head(repo) -> str | None:
    """The sha of HEAD, or None on an unborn branch."""
    try:
        return repo.call_git_oneline(['rev-parse', '--verify', '--quiet',
                                      'HEAD'], read_only=True)
    except CommandError:
        return None


def is_ancestor(repo, ancestor: str, descendant: str) -> bool:
    return repo.call_git_success(
        ['merge-base', '--is-ancestor', ancestor, descendant],
        read_only=True)
