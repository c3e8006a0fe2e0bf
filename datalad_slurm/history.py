"""Reading datalad-slurm records from the git history."""

from __future__ import annotations

import logging
from typing import Iterator

from .record import (
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


def read_record(repo, commit: str) -> Record | None:
    """The record of one commit, or None if it has none."""
    message = repo.call_git(['log', '-1', '--format=%B', commit, '--'],
                            read_only=True)
    return parse_message(message, commit=resolve_commit(repo, commit))


def resolve_commit(repo, revision: str) -> str | None:
    """Full sha of `revision`, or None if it names no commit."""
    try:
        return repo.call_git_oneline(
            ['rev-parse', '--verify', '--quiet', f'{revision}^{{commit}}'],
            read_only=True)
    except Exception:
        return None


def head(repo) -> str | None:
    return resolve_commit(repo, 'HEAD')


def is_ancestor(repo, ancestor: str, descendant: str) -> bool:
    try:
        repo.call_git(['merge-base', '--is-ancestor', ancestor, descendant],
                      read_only=True)
        return True
    except Exception:
        return False
