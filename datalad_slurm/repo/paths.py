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
from typing import (
    Callable,
    Iterable,
    Iterator,
)

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


def existing_or_tracked(root: str, paths: list[str],
                        git: Callable[[list[str]], str]) -> list[str]:
    """The `paths` that exist in the work tree at `root` or are tracked by
    git, so that a job's deleting a declared output is recorded too.
    `git`: runs git with the arguments it is given in the repository at
    `root`, and returns its output."""
    present = [p for p in paths if op.lexists(op.join(root, p))]
    missing = [p for p in paths if p not in present]
    if missing:
        files = [t for t in git(['ls-files', '-z', '--', *missing])
                 .split('\0') if t]
        present.extend(p for p in missing
                       if any(is_within(t, [p]) for t in files))
    return present


def status_argv(paths: Iterable[str] = (), *,
                both_ends: bool = False) -> list[str]:
    """The git arguments that list modified and untracked paths (under
    `paths`, if given), for :func:`status_paths` to read; `both_ends`: of
    a renamed file, its old path too, not just the new."""
    return ['status', '--porcelain=v1', '-z', '--untracked-files=all',
            '--ignore-submodules=none',
            *(['--no-renames'] if both_ends else []), '--', *paths]


def status_paths(out: str) -> list[str]:
    """The paths ``git status --porcelain=v1 -z`` lists (see
    :func:`status_argv`): of a rename, the new path (the old one only
    where renames are not detected, as ``--no-renames``)."""
    entries = iter(out.split('\0'))
    changed = []
    for entry in entries:
        if not entry:
            continue
        if entry[0] in 'RC':
            next(entries, None)  # the rename's source
        changed.append(entry[3:].rstrip('/'))
    return changed


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


class _Node:
    """One path component of the literal outputs: the outputs that are
    this path, and the components below it."""

    __slots__ = ('here', 'below')

    def __init__(self):
        # (owner, position in the owner's outputs), as an ordered set
        self.here: dict[tuple, None] = {}
        self.below: dict[str, _Node] = {}

    def everything(self) -> Iterator[tuple]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield from node.here
            stack.extend(node.below.values())


class Outputs:
    """Many owners' outputs (paths or globs), for questions about a few
    paths against all of them: asking :func:`overlap` of every output would
    make each of a pipeline's submissions cost as much as all the open
    jobs' outputs.

    Literal outputs hang in a tree of path components, where a path's
    ancestors are the nodes on its way and its descendants the subtree it
    reaches; an output that is a glob, or has no name, is asked the old
    way, one by one: there are few of them.  The answers are those of
    :func:`overlap`, :func:`lies_within` and :class:`Claimed`, to the
    letter."""

    def __init__(self):
        self._root = _Node()
        self._owned: dict[object, list[str]] = {}
        # owner -> [(position, output)] of the outputs the tree cannot hold
        self._odd: dict[object, list[tuple[int, str]]] = {}
        self._odd_claimed: Claimed | None = None

    def add(self, owner, outputs: Iterable[str]):
        self.discard(owner)
        self._owned[owner] = outputs = list(outputs)
        for position, output in enumerate(outputs):
            if _in_tree(output):
                self._node(_parts(output)).here[owner, position] = None
            else:
                self._odd.setdefault(owner, []).append((position, output))
                self._odd_claimed = None

    def discard(self, owner):
        for position, output in enumerate(self._owned.pop(owner, ())):
            if _in_tree(output):
                self._unlink(_parts(output), (owner, position))
        if self._odd.pop(owner, None) is not None:
            self._odd_claimed = None

    def overlapping(self, spec: str) -> Iterator[tuple[object, int]]:
        """(owner, position) of each output that may name a path `spec`
        (a path or glob) may name, as :func:`overlap` tells."""
        for writer in _overlapping(self._root, _parts(spec)):
            # the tree spells every path normalised; overlap has the last
            # word on paths that are not
            if overlap(self._output(writer), spec):
                yield writer
        for owner, odd in self._odd.items():
            for position, output in odd:
                if overlap(output, spec):
                    yield owner, position

    def hold(self, spec: str) -> bool:
        """Whether everything `spec` (a path or glob) may name lies within
        an output, as :func:`lies_within` tells."""
        # the tree's components are literal: a wildcard of `spec` ends its
        # way, as it lies within no literal component in lies_within
        if any(node.here for node in self._way(_parts(spec))):
            return True
        return any(lies_within(spec, output)
                   for odd in self._odd.values() for _, output in odd)

    def __contains__(self, path: str) -> bool:
        """Whether `path` is claimed, as by a :class:`Claimed` of all the
        outputs."""
        parts = path.split('/')
        way = self._way(parts)
        # a node stands only where an output is or lies below: a path that
        # goes all the way is an output or holds one
        if len(way) > len(parts) or any(node.here for node in way):
            return True
        if self._odd_claimed is None:
            self._odd_claimed = Claimed(
                output for odd in self._odd.values() for _, output in odd
                if output)
        return path in self._odd_claimed

    def _output(self, writer: tuple[object, int]) -> str:
        owner, position = writer
        return self._owned[owner][position]

    def _node(self, parts: list[str]) -> _Node:
        node = self._root
        for part in parts:
            node = node.below.setdefault(part, _Node())
        return node

    def _way(self, parts: list[str]) -> list[_Node]:
        """The nodes from the root along `parts`, as far as the tree goes."""
        way = [self._root]
        for part in parts:
            node = way[-1].below.get(part)
            if node is None:
                break
            way.append(node)
        return way

    def _unlink(self, parts: list[str], writer: tuple[object, int]):
        way = self._way(parts)
        del way[-1].here[writer]
        # no node may stay where nothing is written: `in` takes the end of
        # a path's way for an output at or below it
        for parent, part, node in reversed(list(zip(way, parts, way[1:]))):
            if node.here or node.below:
                break
            del parent.below[part]


def _in_tree(output: str) -> bool:
    # the empty name is no '.': overlap and Claimed tell them apart
    return bool(output) and not is_glob(output)


def _overlapping(node: _Node, parts: list[str]) -> Iterator[tuple]:
    """The writers of the literal outputs below `node` that may overlap
    the path (or glob) of the components `parts` below it: those on its
    way, and all below where it ends."""
    while parts:
        yield from node.here
        part, parts = parts[0], parts[1:]
        if is_glob(part):
            for name, child in node.below.items():
                if fnmatch.fnmatchcase(name, part):
                    yield from _overlapping(child, parts)
            return
        node = node.below.get(part)
        if node is None:
            return
    yield from node.everything()


def declared_paths(root: str, outputs: list[str]) -> list[str]:
    """`outputs` (relative to `root`) as paths to save, globs expanded in
    the work tree at `root`."""
    # imported when needed: the rest of this module serves processes that
    # need nothing of DataLad (a scratch job's own, before it delivers)
    from datalad.support.globbedpaths import GlobbedPaths
    paths = []
    for spec in outputs:
        if is_glob(spec):
            paths.extend(GlobbedPaths([spec], pwd=root).expand_strict())
        else:
            # literal paths count even when gone: a deletion is an output
            paths.append(spec)
    return paths
