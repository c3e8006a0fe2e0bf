"""The work tree around a submission: what changed, and making outputs
writable for a job (and putting them back)."""

from __future__ import annotations

import os
import os.path as op
from typing import Iterator

from datalad.support.globbedpaths import GlobbedPaths
from datalad.utils import chpwd

from . import plumbing
from .paths import (
    status_argv,
    status_paths,
)


def changed_paths(repo, paths: list[str] = (), *,
                  both_ends: bool = False) -> list[str]:
    """Modified and untracked paths (under `paths`, if given).
    `both_ends`: of a renamed file, its old path too, not just the new."""
    return status_paths(plumbing.git(
        repo, status_argv(paths, both_ends=both_ends)))


def shorten(paths: list[str], most: int = 3) -> str:
    more = f' and {len(paths) - most} more' if len(paths) > most else ''
    return ', '.join(paths[:most]) + more


def unlock_or_remove(ds, outputs: list[str]) -> Iterator[dict]:
    """Make declared outputs writable, as ``datalad run`` does: unlock
    annexed files whose content is here, remove those whose content is not.
    """
    existing = GlobbedPaths(outputs, pwd=ds.path).expand_strict() \
        if outputs else []
    if not existing:
        return
    with chpwd(ds.path):
        for res in ds.unlock(path=existing, on_failure='ignore',
                             result_renderer='disabled',
                             return_type='generator'):
            if res['status'] == 'impossible' and res.get('type') == 'file' \
                    and 'cannot unlock' in str(res.get('message')):
                os.unlink(res['path'])
                yield dict(res, action='remove', status='ok',
                           message='removed output without content')
            elif res['status'] == 'error' and \
                    res.get('error_message') == 'File unknown to git':
                # untracked outputs are the job's to overwrite
                continue
            else:
                yield res


def restore(ds, paths: list[str]):
    """Undo the unlocking and removing of outputs for a job never submitted.
    """
    if paths:
        ds.repo.call_git(['checkout', 'HEAD', '--'] +
                         [op.relpath(p, ds.path) for p in paths])


def changed_under(ds, outputs: list[str]) -> list[str]:
    """The tracked paths within `outputs` (relative to the dataset, globs
    allowed) that differ from HEAD."""
    if not outputs:
        return []
    out = ds.repo.call_git(['diff', '--name-only', '-z', 'HEAD', '--',
                            *outputs], read_only=True)
    return [p for p in out.split('\0') if p]


def put_back(ds, outputs: list[str], keep: list[str]) -> list[str]:
    """Undo making `outputs` writable for a job never submitted, by a
    process that died: every change under them but those in `keep`, made
    before; returns the paths restored."""
    keep = set(keep)
    changed = [p for p in changed_under(ds, outputs) if p not in keep]
    restore(ds, [op.join(ds.path, p) for p in changed])
    return changed
