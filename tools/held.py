"""Releasing held jobs for tools/bench, tools/stress and the tests.

slurmctld refuses to update a job that slurmdbd has not yet given its
database index ("Job update not available right now, the DB index is being
set, try again in a bit"), which happens to jobs submitted a few seconds
earlier when slurmdbd is busy; ``scontrol release`` then exits 1 having
released all the others.
"""

from __future__ import annotations

import time
from typing import Iterable

from datalad_slurm.backends import cli
from datalad_slurm.slurm.status import SlurmError

HELD = ('JobHeldUser', 'JobHeldAdmin')


def release(job_ids: Iterable[int], *, timeout: float = 120):
    """Release the held jobs `job_ids`, again and again for those that
    slurmctld cannot update yet, until `timeout` seconds have passed.
    SlurmError with scontrol's words if it refuses for another reason or
    for too long."""
    ids = sorted(set(map(int, job_ids)))
    deadline = time.monotonic() + timeout
    while ids:
        try:
            cli.call(['scontrol', 'release', ','.join(map(str, ids))],
                     timeout=max(1.0, deadline - time.monotonic()))
            return
        except SlurmError as e:
            if 'try again' not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(1)
        ids = sorted({job for job, run in cli.squeue_runs(
            ids, timeout=max(1.0, deadline - time.monotonic()))
            if run.state == 'PENDING' and run.reason in HELD})
