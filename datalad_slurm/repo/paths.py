"""Paths and globs relative to the dataset root: normalising them, telling
whether one lies within another, and whether two outputs may overlap.

Every path-prefix and glob question of the package is answered here.
Paths are '/'-separated and relative to the dataset root, as the records
hold them; '.' is the whole dataset.  Globs follow :mod:`glob`: a wildcard
never matches '/'.
"""

from __future__ import annotations

import fnmatch
import os.path as op
import posixpath
import re
from typing import Iterable

_GLOB_CHARS = frozenset('*?[')


class OutsideDataset(ValueError):
    """A path does not lie within the dataset."""


def is_glob(spec: str) -> bool:
    return bool(_GLOB_CHARS & set(spec))


def is_outside(rel: str) -> bool:
    """Whether a normalised relative path leads out of its root (a name
    that merely starts with two dots, like '..logs', does not)."""
    return rel == op.pardir or rel.startswith(op.pardir + op.sep) \
        or op.isabs(rel)


def root_relative(ds_path: str, pwd: str, specs: Iterable[str]) -> list[str]:
    """Express paths (or globs) given relative to `pwd` relative to the
    dataset root: normalised, never absolute, never './'-prefixed.

    Raises
    ------
    OutsideDataset
      Naming the first path that is not within the dataset.
    """
    normalised = []
    for spec in specs:
        rel = op.relpath(op.normpath(op.join(pwd, spec)), ds_path)
        if is_outside(rel):
            raise OutsideDataset(spec)
        if rel not in normalised:
            normalised.append(rel)
    return normalised


def pwd_relative(ds_path: str, pwd: str, specs: Iterable[str]) -> list[str]:
    """The inverse of :func:`root_relative`."""
    return [op.relpath(op.join(ds_path, spec), pwd) for spec in specs]


def spelled_within(root: str, path: str) -> str | None:
    """`path` spelled under `root`, even when one of them is reached
    through a symlink, or None if `path` is not within `root`."""
    rel = op.relpath(op.realpath(path), op.realpath(root))
    if is_outside(rel):
        return None
    return op.normpath(op.join(root, rel))


def is_within(path: str, parents: Iterable[str]) -> bool:
    """Whether `path` is one of `parents` or lies within one of them (all
    literal, root-relative)."""
    return any(parent == '.' or path == parent or
               path.startswith(parent.rstrip('/') + '/')
               for parent in parents)


class Within:
    """Which owners' literal, root-relative paths a path is one of or lies
    within, looked up along the path's parents: asking :func:`is_within`
    of every owner would make a finish of N jobs' N files quadratic."""

    def __init__(self, owned: Iterable[tuple[object, Iterable[str]]]):
        self._owners: dict[str, list] = {}
        for owner, paths in owned:
            for path in paths:
                key = path.rstrip('/') or '.'
                if owner not in self._owners.setdefault(key, []):
                    self._owners[key].append(owner)

    def owners(self, path: str) -> list:
        found = list(self._owners.get('.', ()))
        while path and path != '.':
            for owner in self._owners.get(path, ()):
                if owner not in found:
                    found.append(owner)
            path = posixpath.dirname(path)
        return found


def _parts(spec: str) -> list[str]:
    return [p for p in spec.split('/') if p not in ('', '.')]


def _segment_regex(segment: str) -> str:
    """A regular expression for one glob component, as :mod:`glob` matches
    it (a wildcard never matches '/')."""
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        i += 1
        if c == '*':
            out.append('[^/]*')
        elif c == '?':
            out.append('[^/]')
        elif c == '[':
            # a character class, as fnmatch reads one: '!' negates, and a
            # ']' right after the opening bracket is a member
            j = i + (segment[i:i + 1] == '!')
            j += segment[j:j + 1] == ']'
            end = segment.find(']', j)
            if end < 0:
                out.append(re.escape(c))
                continue
            body = segment[i:end].replace('\\', '\\\\')
            i = end + 1
            if body.startswith('!'):
                body = '^' + body[1:]
            elif body.startswith('^'):
                body = '\\' + body
            out.append(f'[{body}]')
        else:
            out.append(re.escape(c))
    return ''.join(out)


class Claimed:
    """The paths a set of outputs may write, for fast questions about many
    paths: a path is claimed when it is an output or lies within one (for
    a glob: matches it, or lies within a match), or contains one (a
    directory, or a subdataset, holding an output)."""

    def __init__(self, outputs: Iterable[str]):
        self._within: set[str] = set()
        self._containing: set[str] = set()
        globs = []
        for output in outputs:
            parts = _parts(output)
            literal = []
            for part in parts:
                if is_glob(part):
                    break
                literal.append(part)
            for i in range(1, len(literal) + (len(literal) < len(parts))):
                self._containing.add('/'.join(literal[:i]))
            if len(literal) == len(parts):
                self._within.add('/'.join(parts))
            else:
                globs.append('/'.join(_segment_regex(p) if is_glob(p)
                                      else re.escape(p) for p in parts))
        self._glob = re.compile('(?:%s)(?:/|\\Z)' % '|'.join(globs)) \
            if globs else None

    def __contains__(self, path: str) -> bool:
        if '' in self._within or path in self._containing:
            return True
        parts = path.split('/')
        if any('/'.join(parts[:i]) in self._within
               for i in range(1, len(parts) + 1)):
            return True
        return bool(self._glob and self._glob.match(path))


def lies_within(spec: str, output: str) -> bool:
    """Whether everything `spec` (a path or glob) may name lies within what
    `output` (a path or glob) may match: `spec` is, or is below, it."""
    ps, po = _parts(spec), _parts(output)
    if len(ps) < len(po):
        return False
    for x, y in zip(ps, po):
        # a wildcard of `spec` lies within only the same wildcard
        if is_glob(y) and not is_glob(x):
            if not fnmatch.fnmatchcase(x, y):
                return False
        elif x != y:
            return False
    return True


def overlap(a: str, b: str) -> bool:
    """Whether two root-relative outputs (paths or globs) may name a common
    path: one is, or lies within, what the other may match.  Compared
    component by component; two wildcard components are taken to
    overlap."""
    if not is_glob(a) and not is_glob(b):
        # the common case, asked of every open job's outputs (normalised
        # paths, as root_relative makes them): plain prefixes
        return a == '.' or b == '.' or a == b or \
            a.startswith(b + '/') or b.startswith(a + '/')
    pa, pb = _parts(a), _parts(b)
    for x, y in zip(pa, pb):
        if is_glob(x) and is_glob(y):
            continue
        if is_glob(x):
            x, y = y, x
        # x literal now
        if is_glob(y):
            if not fnmatch.fnmatchcase(x, y):
                return False
        elif x != y:
            return False
    return True
