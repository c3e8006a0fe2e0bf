"""Reading datalad-slurm records from the git history."""

from __future__ import annotations

import logging
from typing import (
    Iterable,
    Iterator,
)

from ..repo import plumbing
from .format import (
    GREP_PATTERN,
    Record,
    RecordError,
    parse_message,
    parse_records,
)

lgr = logging.getLogger('datalad.slurm.history')

_COMMIT_SEP = '\x1e'
_FIELD_SEP = '\x1f'


def iter_messages(repo, revision_range: str = 'HEAD',
                  ) -> Iterator[tuple[str, str]]:
    """Yield (sha, message) of all datalad-slurm commits in
    `revision_range`, oldest first; nothing parsed yet."""
    yield from reversed(list(newest_messages(repo, revision_range)))


def newest_messages(repo, revision_range: str = 'HEAD',
                    ) -> Iterator[tuple[str, str]]:
    """Yield (sha, message) of all datalad-slurm commits in
    `revision_range`, newest first, as git reads them: one ``git log``,
    streamed, whose messages are only held until used."""
    yield from _log(repo, ['--extended-regexp', f'--grep={GREP_PATTERN}',
                           revision_range, '--'])


def messages_of(repo, commits: Iterable[str],
                ) -> Iterator[tuple[str, str]]:
    """Yield (sha, message) of each of `commits`, in one ``git log``
    instead of a question per commit."""
    commits = '\n'.join(commits)
    if commits:
        yield from _log(repo, ['--no-walk=unsorted', '--stdin'],
                        stdin=commits + '\n')


def _log(repo, args: list[str], stdin: str | None = None,
         ) -> Iterator[tuple[str, str]]:
    for entry in plumbing.git_entries(repo, [
            'log', '--no-color', f'--format=%H{_FIELD_SEP}%B{_COMMIT_SEP}',
            *args], _COMMIT_SEP, stdin=stdin):
        entry = entry.strip('\n')
        if entry:
            sha, _, message = entry.partition(_FIELD_SEP)
            yield sha, message


def parse_or_warn(message: str, sha: str) -> list[Record]:
    """The records of a message (one, or one per job of a FINISH commit
    of several); none, with a warning, for a broken one."""
    try:
        return parse_records(message, commit=sha)
    except RecordError as e:
        lgr.warning('Ignoring %s', e)
        return []


def iter_records(repo, revision_range: str = 'HEAD') -> Iterator[Record]:
    """Yield the records of all datalad-slurm commits in `revision_range`,
    oldest first, those of a commit in their order there.  Commits with
    broken records are skipped with a warning.
    """
    for sha, message in iter_messages(repo, revision_range):
        yield from parse_or_warn(message, sha)


class Commits:
    """The single-commit questions of one command, answered through one
    GitPython repository: one long-lived ``git cat-file`` process instead
    of a git call per question.  GitPython is imported only when a
    question comes, since importing it costs more than a schedule's whole
    use of git."""

    def __init__(self, repo):
        self.repo = repo
        self._gitpython = None

    def __enter__(self) -> 'Commits':
        return self

    def __exit__(self, *exc):
        if self._gitpython is not None:
            self._gitpython.close()
            self._gitpython = None

    def _commit(self, revision: str):
        import git
        if self._gitpython is None:
            self._gitpython = git.Repo(self.repo.path)
        try:
            return self._gitpython.commit(revision)
        except (ValueError, git.BadName, git.BadObject):
            return None

    def sha(self, revision: str) -> str | None:
        """Full sha of `revision`, or None if it names no commit."""
        commit = self._commit(revision)
        return commit.hexsha if commit is not None else None

    def record(self, revision: str) -> Record | None:
        """The record of one commit of one job, or None if it has none (or
        if `revision` names no commit).

        Raises
        ------
        RecordError
          For a commit of several jobs (ask :meth:`records`).
        """
        commit = self._commit(revision)
        if commit is None:
            return None
        return parse_message(commit.message, commit=commit.hexsha)

    def records(self, revision: str) -> list[Record]:
        """The records of one commit: one, or one per job of a FINISH
        commit of several; none if it has none."""
        commit = self._commit(revision)
        if commit is None:
            return []
        return parse_records(commit.message, commit=commit.hexsha)

    def finish_of(self, finish_commit: str,
                  schedule_commit: str) -> Record | None:
        """The FINISH record, in `finish_commit`, of the job scheduled in
        `schedule_commit`."""
        return next((r for r in self.records(finish_commit)
                     if r.data.get('schedule_commit') == schedule_commit),
                    None)


def read_record(repo, revision: str) -> Record | None:
    """The record of one commit (see :meth:`Commits.record`)."""
    with Commits(repo) as commits:
        return commits.record(revision)


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
    try:
        return repo.get_hexsha(since)
    except ValueError as e:
        raise UnknownRevision(f'--since {since!r} names no commit of this '
                              f'dataset') from e
