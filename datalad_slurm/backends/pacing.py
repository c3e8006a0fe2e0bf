"""The pace of a dataset's Slurm queries.

Some sites allow squeue only every so many seconds, or rate-limit the RPCs
of slurmctld; a slurmctld that answers slowly, or with "Socket timed out",
is overloaded. Every process of a dataset (a ``finish --wait``, many jobs
finishing themselves at once) takes its query's slot from one small state
file, under a short lock: no two slots are closer than
``datalad.slurm.query-interval``, and after a slow or missing answer the
next slot is pushed back, further each time, until Slurm answers quickly
again. A process sleeps until its slot without holding the lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager

from ..repo import state
from ..slurm.status import SlurmTimeout

lgr = logging.getLogger('datalad.slurm.pacing')

# seconds of the first back-off after a slow answer, and of the longest
FIRST_BACKOFF = 5.0
LONGEST_BACKOFF = 300.0

# an answer slower than this part of the query timeout is a slow one
SLOW_SHARE = 0.25


@contextmanager
def paced(git_dir, *, interval: float, timeout: float):
    """Wait for this query's slot, then run the block (the query, which
    may take up to `timeout` seconds), noting how Slurm answered."""
    path = state.pace(git_dir)
    slot, backing_off = _update(
        path, lambda pace: (_take(pace, interval), 'backoff' in pace))
    delay = slot - time.time()
    if delay > 0:
        lgr.info('Waiting %.0f s before asking Slurm (%s)', delay,
                 'datalad.slurm.query-interval, or Slurm answered slowly'
                 if interval else 'Slurm answered slowly')
        time.sleep(delay)
    started = time.monotonic()
    try:
        yield
    except SlurmTimeout:
        _update(path, _slowed)
        raise
    if time.monotonic() - started > SLOW_SHARE * timeout:
        _update(path, _slowed)
    elif backing_off:
        # a quick answer ends the back-off; without one, nothing to note
        _update(path, _answered)


def _take(pace: dict, interval: float) -> float:
    slot = max(time.time(), pace.get('next', 0.0))
    if interval:
        # without an interval the file changes after slow answers only
        pace['next'] = slot + interval
    return slot


def _slowed(pace: dict) -> None:
    backoff = min(max(2 * pace.get('backoff', 0.0), FIRST_BACKOFF),
                  LONGEST_BACKOFF)
    lgr.warning('Slurm answered slowly or not at all: the next query of '
                'this dataset waits %.0f s', backoff)
    pace['backoff'] = backoff
    pace['next'] = max(pace.get('next', 0.0), time.time() + backoff)


def _answered(pace: dict) -> None:
    pace.pop('backoff', None)


def _update(path, change):
    """Apply `change` to the pace file's content under its lock; what it
    returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), 'r+') as f:
            text = f.read()
            try:
                pace = json.loads(text) if text else {}
            except ValueError:
                pace = {}  # half written by a process that died: start anew
            before = dict(pace)
            result = change(pace)
            if pace != before:
                f.seek(0)
                f.truncate()
                f.write(json.dumps(pace))
        return result
    finally:
        os.close(fd)
