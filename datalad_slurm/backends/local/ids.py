"""Local job ids: a counter under ``.git/datalad-slurm/local/``, in a range
Slurm never hands out.

Slurm's job ids are 32-bit (federation packs a cluster's number into their
top bits, so every id Slurm can give is below 2**32).  Local ids start
above :data:`BASE`, 10**10: no local id can name a Slurm job recorded in the
same dataset, and the counter reads off the tail (10000000007 is local job
7).  Like Slurm, a job of N tasks takes N consecutive ids, its tasks' own
ids (``%j``, ``$SLURM_JOB_ID``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

BASE = 10 ** 10


def is_local(job_id: int) -> bool:
    return job_id > BASE


def reserve(directory: Path, count: int,
            highest_known: Callable[[], int]) -> int:
    """The first of `count` new consecutive ids.  `highest_known` tells the
    last id in use, for a counter that is missing (its directory removed):
    the ids recorded in the history must not be handed out again."""
    directory.mkdir(parents=True, exist_ok=True)
    counter = directory / 'counter'
    with open(directory / 'counter.lock', 'a') as lock:
        # the repository lock is held during submission already; this one
        # keeps the counter whole for any caller
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            text = counter.read_text().strip()
        except FileNotFoundError:
            text = ''
        first = int(text) if text else max(BASE, highest_known()) + 1
        tmp = counter.with_suffix('.tmp')
        tmp.write_text(f'{first + count}\n')
        os.replace(tmp, counter)
    return first
