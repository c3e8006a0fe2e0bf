"""Making the commits of job pairs.

Callers hold the repository lock (:mod:`datalad_slurm.repo.lock`).
"""

from __future__ import annotations

import os
import os.path as op
from dataclasses import (
    dataclass,
    field,
)
from typing import (
    Callable,
    Iterator,
)

from datalad.support.exceptions import CommandError
from datalad.utils import chpwd

from . import plumbing
from .paths import (
    Within,
    is_within,
)
from .paths import existing_or_tracked as paths_existing_or_tracked
from .worktree import (
    changed_paths,
    shorten,
)


@dataclass
class CommitPlan:
    """One commit to make: exactly `paths` (relative to the dataset root),
    with `message`.  `key` lets the caller tell the outcomes apart."""
    key: object
    paths: list[str]
    message: str
    # called when the commit is not made
    on_failure: Callable[[], None] | None = None
    # what names this plan, and the plans it must not be committed without
    name: str | None = None
    requires: tuple[str, ...] = ()
    # commits this one merges, and what it takes from them besides `paths`:
    # a fast-import file command by path (see plumbing.change_file)
    merges: tuple[str, ...] = ()
    merged: dict[str, str] = field(default_factory=dict)
    # called once the commit is in the history
    on_success: Callable[[str], None] | None = None
    # the plans this one makes in one commit, whose outcomes are its own
    # (one FINISH commit of several jobs); their callbacks stay theirs
    members: tuple['CommitPlan', ...] = ()

    @property
    def names(self) -> tuple[str | None, ...]:
        """The names of what this plan commits."""
        return tuple(m.name for m in self.members) if self.members \
            else (self.name,)

    def failed(self):
        if self.on_failure:
            self.on_failure()

    def succeeded(self, sha: str):
        if self.on_success:
            self.on_success(sha)


# (repository, identity environment) where git had an identity: asked
# before every submission, which a pipeline's loop makes thousands of
_IDENTIFIED: set[tuple] = set()


def identity_problem(repo) -> str | None:
    """Why git could not make a commit here for want of a user identity,
    or None; asked before a job is submitted, not after."""
    # what git reads an identity from, besides the config files
    key = (repo.path, os.environ.get('HOME'),
           *sorted(item for item in os.environ.items()
                   if item[0].startswith('GIT_')))
    if key in _IDENTIFIED:
        return None
    try:
        for var in ('GIT_AUTHOR_IDENT', 'GIT_COMMITTER_IDENT'):
            plumbing.git(repo, ['var', var])
        _IDENTIFIED.add(key)
    except CommandError as e:
        said = (e.stderr or '').strip().splitlines()
        return (f'git has no identity to make commits with '
                f'({said[-1] if said else e}); set it with git config '
                f'--global user.name "Your Name" and git config --global '
                f'user.email you@example.com')
    return None


def commit_empty(repo, message: str, parent: str | None = None) -> str:
    """Commit the tree of `parent` (default: HEAD), which HEAD must point
    at, again with `message`; return the new sha.

    Built with plumbing rather than ``git commit --allow-empty`` so that
    whatever else is staged in the index stays out of the commit.
    """
    parent = parent or plumbing.head(repo)
    sha = plumbing.commit_tree(repo, f'{parent}^{{tree}}', parent, message)
    plumbing.move_head(repo, sha, parent, message.splitlines()[0])
    return sha


class CommitFailed(RuntimeError):
    """The commits were built, but the branch could not be moved to them:
    none of them is in the history."""


def commit_plans(ds, plans: list[CommitPlan],
                 progress: Callable[[CommitPlan], None] = lambda plan: None,
                 ) -> list[tuple[CommitPlan, str | None, list[dict]]]:
    """Make one commit per plan, in order; return (plan, sha, problems) for
    each, once the branch points at the last commit: for each of its
    `members`, for a plan of several.

    Without subdatasets involved, all files are added to git or git-annex
    (as the dataset's configuration says) in one go, and each commit is
    then built from the index with plumbing: a few milliseconds a commit,
    where a full ``datalad save`` costs most of a second.  With outputs
    inside subdatasets, each plan is saved by ``datalad save``, recursively.
    `progress` is called as each commit is made.

    Raises
    ------
    CommitFailed
      If the branch could not be moved; no plan was committed then.
    """
    if not plans:
        return []

    def progressed(plan: CommitPlan):
        for member in plan.members or (plan,):
            progress(member)

    return [(member, sha, problems)
            for plan, sha, problems in _commit_plans(ds, plans, progressed)
            for member in plan.members or (plan,)]


def _commit_plans(ds, plans: list[CommitPlan], progress):
    if _touches_subdatasets(ds, plans):
        done, failed = [], set()
        for plan in plans:
            problems = _missing_requirements(plan, failed)
            if plan.merges and not problems:
                # a merge brings its paths from its branches, not the work
                # tree: made on its own, with plumbing
                (_, sha, problems), = _commit_from_index(ds, [plan],
                                                         progress)
            elif not problems:
                problems = list(save_paths(
                    ds, existing_or_tracked(ds.repo, plan.paths),
                    plan.message))
                sha = None if problems else ds.repo.get_hexsha()
                progress(plan)
            if problems:
                failed.update(plan.names)
            done.append((plan, None if problems else sha, problems))
        return done
    return _commit_from_index(ds, plans, progress)


def _commit_from_index(ds, plans: list[CommitPlan], progress):
    repo = ds.repo
    root = ds.path
    paths = list(dict.fromkeys(p for plan in plans for p in plan.paths))
    present = [p for p in paths if op.lexists(op.join(root, p))]
    failed = _stage(ds, present)
    within = Within((n, plan.paths) for n, plan in enumerate(plans))
    pathspecs = _pathspecs(paths)
    deleted = [p for p in _deleted_files(repo, pathspecs)
               if within.owners(p)]
    if deleted:
        repo.call_git(['rm', '-r', '--cached', '--quiet', '--ignore-unmatch'],
                      files=deleted)
    staged = _staged_entries(repo, pathspecs)

    changes: list[list[str]] = [[] for _ in plans]
    for path, entry in staged.items():
        mode, sha, _ = entry.split()
        for n in within.owners(path):
            changes[n].append(plumbing.change_file(mode, sha, path))
    for path in deleted:
        for n in within.owners(path):
            changes[n].append(plumbing.delete_path(path))

    in_the_way = changed_in_work_tree(repo, [p for plan in plans
                                             for p in plan.merged])
    done, to_make, not_made = [], [], set()
    for n, plan in enumerate(plans):
        changes[n].extend(plan.merged.values())
        problems = _missing_requirements(plan, not_made) or \
            [failed[p] for p in plan.paths if p in failed] or \
            _merge_blocked(ds, plan, in_the_way)
        if problems:
            not_made.update(plan.names)
            done.append((plan, None, problems))
        else:
            done.append((plan, n, []))
            to_make.append(n)
    original = plumbing.head(repo)
    shas = dict(zip(to_make, plumbing.import_commits(
        repo, original, [(changes[n], plans[n].message, plans[n].merges)
                         for n in to_make])))
    if shas:
        tip = shas[to_make[-1]]
        merging = any(plans[n].merged for n in to_make)
        if merging:
            # what the merges bring exists in no work tree yet
            try:
                plumbing.update_work_tree(repo, original, tip)
            except CommandError as e:
                raise CommitFailed(
                    f'could not bring the merged outputs into the work '
                    f'tree: {(e.stderr or str(e)).strip()}') from e
        try:
            plumbing.move_head(repo, tip, original, 'finish')
        except CommandError as e:
            if merging:
                plumbing.update_work_tree(repo, tip, original)
            raise CommitFailed(
                f'could not move the branch to the new commits: '
                f'{(e.stderr or str(e)).strip()}') from e
    done = [(plan, None if problems else shas[n], problems)
            for plan, n, problems in done]
    for plan, sha, _ in done:
        if sha:
            progress(plan)
    return done


def changed_in_work_tree(repo, paths: list[str]) -> set[str]:
    """The `paths` that differ from HEAD in the index or the work tree, or
    are untracked there: a merge must not overwrite them."""
    if not paths:
        return set()
    return set(changed_paths(repo, _pathspecs(paths), both_ends=True)) & \
        set(paths)


def _merge_blocked(ds, plan: CommitPlan, in_the_way: set[str]) -> list[dict]:
    blocking = sorted(p for p in plan.merged if p in in_the_way)
    if not blocking:
        return []
    return [dict(status='impossible', path=op.join(ds.path, blocking[0]),
                 message=(f'the work tree has changes (or untracked files) '
                          f'where the job\'s outputs come in: '
                          f'{shorten(blocking)}; save, move or remove them, '
                          f'then finish the job again'))]


def _missing_requirements(plan: CommitPlan, not_made: set) -> list[dict]:
    """A problem if a plan this one requires was not committed."""
    missing = [r for r in plan.requires if r in not_made]
    if not missing:
        return []
    return [dict(status='impossible', message=(
        f'not committed: it must come after {", ".join(m[:8] for m in missing)}'
        f', which could not be committed'))]


def _stage(ds, paths: list[str]) -> dict[str, dict]:
    """Add `paths` to the index: through git-annex, which follows the
    dataset's annex.largefiles rules, or through git in a dataset without
    an annex.  Returns the problems, by path."""
    if not paths:
        return {}
    repo = ds.repo
    if not hasattr(repo, 'call_annex_records'):
        repo.call_git(['add'], files=paths)
        return {}
    failed = {}
    try:
        records = repo.call_annex_records(['add'], files=paths)
    except CommandError as e:
        records = e.kwargs.get('stdout_json', [])
        # git-annex failed as a whole (not file by file): whatever it did
        # not report as added may be missing from the index
        added = {r.get('file') for r in records if r.get('success', True)}
        said = (e.stderr or str(e)).strip()
        for path in paths:
            if path not in added:
                failed[path] = dict(
                    path=op.join(ds.path, path), status='error',
                    message=f'git annex add failed: {said}')
    for record in records:
        if not record.get('success', True):
            file = record.get('file', '')
            owner = next((p for p in paths if is_within(file, [p])), file)
            failed[owner] = dict(
                path=op.join(ds.path, file), status='error',
                message=' '.join(record.get('error-messages', []))
                or f'git annex add failed on {file}')
    return failed


# git matches every index entry against every pathspec: beyond this many
# paths, their top-level directories are asked for, and what git lists is
# sorted out by the caller
PATHSPECS = 500


def _pathspecs(paths: list[str]) -> list[str]:
    if len(paths) <= PATHSPECS:
        return paths
    return sorted({p.split('/', 1)[0] for p in paths})


def _deleted_files(repo, paths: list[str]) -> list[str]:
    """Tracked files under `paths` that are gone from the work tree."""
    out = repo.call_git(['ls-files', '-z', '--deleted'], files=paths,
                        read_only=True)
    return [f for f in out.split('\0') if f]


def _staged_entries(repo, paths: list[str]) -> dict[str, str]:
    """'mode sha stage' of every index entry under `paths`, by path."""
    out = repo.call_git(['ls-files', '-z', '--stage'], files=paths,
                        read_only=True)
    entries = {}
    for line in out.split('\0'):
        if line:
            entry, _, path = line.partition('\t')
            entries[path] = entry
    return entries


def _touches_subdatasets(ds, plans: list[CommitPlan]) -> bool:
    if not op.exists(op.join(ds.path, '.gitmodules')):
        return False
    subdatasets = [sub['path'] for sub in ds.subdatasets(
        result_renderer='disabled', return_type='generator')]
    subdatasets = [op.relpath(s, ds.path) for s in subdatasets]
    return any(is_within(p, subdatasets) or is_within(s, [p])
               for plan in plans for p in plan.paths for s in subdatasets)


def save_paths(ds, paths: list[str], message: str) -> Iterator[dict]:
    """Save exactly `paths` (relative to the dataset root) in one commit
    with `message`, recursing into subdatasets as ``datalad run`` does.

    When there is nothing to save (someone committed the outputs already),
    an empty commit is made instead, so that a job's record is never lost.
    Yields the results of ``save`` that are not 'ok' or 'notneeded'.
    """
    before = ds.repo.get_hexsha()
    failed = False
    if paths:
        with chpwd(ds.path):
            for res in ds.save(path=paths, message=message, recursive=True,
                               result_renderer='disabled',
                               return_type='generator',
                               on_failure='ignore'):
                if res['status'] not in ('ok', 'notneeded'):
                    failed = True
                    yield res
    if not failed and ds.repo.get_hexsha() == before:
        commit_empty(ds.repo, message)


def existing_or_tracked(repo, paths: list[str]) -> list[str]:
    """The `paths` that exist in the work tree or are tracked by git, so
    that a job's deleting a declared output is recorded too."""
    return paths_existing_or_tracked(
        repo.path, paths, lambda args: repo.call_git(args, read_only=True))
