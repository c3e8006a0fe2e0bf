"""Building many small objects at once, with the cyclic garbage collector
paused.

CPython's collector runs a pass every few hundred new container objects,
and its older generations' passes walk everything alive.  Reading the
records of 10,000 open jobs and Slurm's lines about them makes millions of
dicts, lists and records, none of them in a reference cycle; the passes
this set off took about a tenth of a ``--list-open-jobs``.  Such work runs
with the collector paused; reference counting still frees what it drops,
and the collector runs again as soon as it ends.
"""

from __future__ import annotations

import contextlib
import functools
import gc


@contextlib.contextmanager
def paused_gc():
    """Pause the cyclic garbage collector for the block, unless it is
    paused already (by the caller, or an enclosing block)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def builds_many(func):
    """Run `func` (a function, not a generator) with the collector
    paused."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with paused_gc():
            return func(*args, **kwargs)
    return wrapper
