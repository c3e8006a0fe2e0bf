"""The git plumbing every commit of the package is made with.

Commits are made as objects first, with ``commit-tree`` where the tree
stays the same and with ``fast-import`` where files change, and the branch
is moved once, with ``update-ref`` given the expected old value: should
anything else move HEAD meanwhile, the update fails instead of dropping a
commit, and the user's own index is never touched.  Callers hold the
repository lock.
"""

from __future__ import annotations

import fcntl
import os
import os.path as op
import re
import subprocess
import tempfile
from typing import Iterator

from datalad.support.exceptions import CommandError

from . import state


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


def git_entries(repo, args: list[str], separator: str,
                chunk: int = 1 << 20,
                stdin: str | None = None) -> Iterator[str]:
    """Run git in `repo` and yield its output entry by entry, the entries
    ending in `separator`, as git writes them: a history of 100,000
    records is 180 MB of output, which is then never held at once.
    `stdin` is written to git first, whole: for commands that read all of
    their input before they write (``git log --stdin``).

    Raises
    ------
    CommandError
      Once the output ended, if git failed.
    """
    argv = ['git', *args]
    end = separator.encode()
    with tempfile.TemporaryFile() as err, subprocess.Popen(
            argv, cwd=repo.path, stdout=subprocess.PIPE, stderr=err,
            stdin=subprocess.PIPE if stdin is not None else None) as proc:
        try:
            _widen(proc.stdout, chunk)
            if stdin is not None:
                proc.stdin.write(stdin.encode())
                proc.stdin.close()
            rest = b''
            # what git has written so far, not `chunk` bytes: read() would
            # wait for a full chunk while git, its pipe full, waits for us,
            # and git and the caller's parsing would take turns
            while block := proc.stdout.read1(chunk):
                entries = (rest + block).split(end)
                rest = entries.pop()
                for entry in entries:
                    yield entry.decode('utf-8', 'surrogateescape')
        finally:
            # a reader that stopped early leaves nothing running
            if proc.poll() is None:
                proc.kill()
        if proc.wait():
            err.seek(0)
            raise CommandError(
                cmd=argv, code=proc.returncode, cwd=repo.path,
                stderr=err.read().decode('utf-8', 'replace'))
    if rest.strip():
        yield rest.decode('utf-8', 'surrogateescape')


def _widen(pipe, size: int):
    """Let the writer of `pipe` run `size` bytes ahead of its reader,
    where the system allows: git then writes on while the caller parses.
    Refused (over the user's share of pipe memory, or the system's most),
    the pipe stays as it is, a little slower."""
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, size)
    except (OSError, AttributeError):
        pass


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


def import_commits(repo, parent: str, commits: list[tuple]) -> list[str]:
    """New commit objects, one on top of the other from `parent`, each
    given as (changes, message) or (changes, message, merged): the changes
    are fast-import file commands (see :func:`change_file`,
    :func:`delete_path`) on the tree of the commit before, `merged` the
    commits it merges, its further parents.  No branch moves.  Returns the
    commits' shas.

    One ``git fast-import`` process makes them all, where commit-tree
    takes three processes a commit (update-index, write-tree,
    commit-tree).
    """
    if not commits:
        return []
    author, committer = (git(repo, ['var', var]).strip() for var in (
        'GIT_AUTHOR_IDENT', 'GIT_COMMITTER_IDENT'))
    # fast-import must name a ref; this one is removed again at once
    ref = f'refs/datalad-slurm/import-{os.getpid()}'
    stream = []
    for n, (changes, message, *merged) in enumerate(commits, start=1):
        data = message.encode('utf-8')
        stream.append(
            b'commit %s\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n%s\n'
            % (ref.encode(), n, author.encode('utf-8'),
               committer.encode('utf-8'), len(data), data))
        if n == 1:
            stream.append(b'from %s\n' % parent.encode())
        stream.extend(b'merge %s\n' % sha.encode()
                      for sha in (merged[0] if merged else ()))
        stream.extend(c.encode('utf-8', 'surrogateescape') + b'\n'
                      for c in changes)
        stream.append(b'\n')
    stream.append(b'done\n')
    marks = state.marks(repo.dot_git)
    marks.parent.mkdir(parents=True, exist_ok=True)
    argv = ['git', 'fast-import', '--quiet', '--done', '--force',
            f'--export-marks={marks}']
    try:
        proc = subprocess.run(argv, cwd=repo.path, input=b''.join(stream),
                              capture_output=True)
        if proc.returncode:
            raise CommandError(cmd=argv, code=proc.returncode,
                               stderr=proc.stderr.decode(errors='replace'),
                               cwd=repo.path)
        with open(marks) as f:
            by_mark = dict(line.split() for line in f if line.strip())
    finally:
        if op.exists(marks):
            os.unlink(marks)
        subprocess.run(['git', 'update-ref', '-d', ref], cwd=repo.path,
                       capture_output=True)
    return [by_mark[f':{n}'] for n in range(1, len(commits) + 1)]


def change_file(mode: str, sha: str, path: str) -> str:
    return f'M {mode} {sha} {_quoted(path)}'


def delete_path(path: str) -> str:
    return f'D {_quoted(path)}'


def _quoted(path: str) -> str:
    # fast-import takes C-style quoted paths; quoting all of them spares
    # telling which need it (a leading quote, a newline)
    escaped = path.replace('\\', '\\\\').replace('"', '\\"') \
        .replace('\n', '\\n')
    return f'"{escaped}"'


def update_work_tree(repo, old: str, new: str):
    """Bring the index and the work tree from commit `old` to `new`, as a
    checkout does: only the paths that differ between the two change, and
    git refuses, changing nothing, where a file there has changes of its
    own or is untracked."""
    git(repo, ['read-tree', '-m', '-u', old, new])


def delete_ref(repo, ref: str, expected: str):
    """Remove `ref`, if it still points at `expected`."""
    git(repo, ['update-ref', '-d', ref, expected])


def delete_refs(repo, refs: list[tuple[str, str]]):
    """Remove each (ref, expected) ref, in one git process and one
    transaction: all of them, if each still points at its expected commit,
    or else none."""
    if refs:
        git(repo, ['update-ref', '--stdin', '-z'], stdin=''.join(
            f'delete {ref}\0{expected}\0' for ref, expected in refs))


def move_head(repo, new: str, expected: str, reason: str):
    """Point HEAD's branch at `new`, if it still points at `expected`."""
    git(repo, ['update-ref', '-m', f'datalad-slurm: {reason}', 'HEAD', new,
               expected])
