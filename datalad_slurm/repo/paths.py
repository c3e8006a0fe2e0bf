"""Input and output paths: normalising them and telling when they overlap."""

from __future__ import annotations

import os.path as op
from typing import Iterable

_GLOB_CHARS = set('*?[')


class OutsideDataset(ValueError):
    """A path does not lie within the dataset."""


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
        path = op.normpath(op.join(pwd, spec))
        rel = op.relpath(path, ds_path)
        if rel == op.pardir or rel.startswith(op.pardir + op.sep):
            raise OutsideDataset(spec)
        if rel not in normalised:
            normalised.append(rel)
    return normalised


def pwd_relative(ds_path: str, pwd: str, specs: Iterable[str]) -> list[str]:
    """The inverse of :func:`root_relative`."""
    return [op.relpath(op.join(ds_path, spec), pwd) for spec in specs]


def _literal_parts(spec: str) -> list[str]:
    """Leading path components of `spec` before any glob character; the
    whole dataset for '.'."""
    parts = []
    for part in spec.split('/'):
        if part in ('', '.') or _GLOB_CHARS & set(part):
            break
        parts.append(part)
    return parts


class Claimed:
    """The paths a set of outputs may write, for fast questions about many
    paths: a path is claimed when it lies within an output (or is one), or
    contains one (a subdataset holding an output)."""

    def __init__(self, outputs):
        self._within = set()
        self._containing = set()
        for output in outputs:
            parts = _literal_parts(output)
            self._within.add('/'.join(parts))
            for i in range(1, len(parts)):
                self._containing.add('/'.join(parts[:i]))

    def __contains__(self, path: str) -> bool:
        if '' in self._within or path in self._containing:
            return True
        parts = path.split('/')
        return any('/'.join(parts[:i]) in self._within
                   for i in range(1, len(parts) + 1))


def overlap(a: str, b: str) -> bool:
    """Whether two root-relative outputs may name a common path: equal, or
    one contains the other.  A glob is taken to cover everything below
    its literal leading directories."""
    pa, pb = _literal_parts(a), _literal_parts(b)
    shorter = min(len(pa), len(pb))
    return pa[:shorter] == pb[:shorter]
