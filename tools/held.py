"""Releasing held jobs for tools/bench, tools/stress and the tests.

slurmctld refuses to update a job that slurmdbd has not yet given its
database index ("Job update not available right now, the DB index is being
set, try again in a bit"), which happens to jobs submitted a few seconds
earlier when slurmdbd is busy; ``scontrol release`` then exits 1 having
released all the others.
"""

from __future__ import annotations

import subprocess
import time
from typing import Iterable

HELD = ('JobHeldUser', 'JobHeldAdmin')


def release(job_ids: Iterable[int], *, timeout: float = 120, env=None):
    """Release the held jobs `job_ids`, again and again for those that
    slurmctld cannot update yet, until `timeout` seconds have passed.
    RuntimeError with scontrol's words if it refuses for another reason or
    for too long."""
    ids = [str(j) for j in job_ids]
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(['scontrol', 'release', ','.join(ids)],
                              capture_output=True, text=True, env=env,
                              timeout=timeout)
        if proc.returncode == 0:
            return
        if 'try again' not in proc.stderr or time.monotonic() > deadline:
            raise RuntimeError(f'scontrol release: {proc.stderr.strip()}')
        time.sleep(1)
        ids = still_held(ids, env=env)
        if not ids:
            return


def still_held(job_ids: list[str], env=None) -> list[str]:
    """Those of `job_ids` that squeue shows pending on a hold."""
    out = subprocess.run(
        ['squeue', '--noheader', '--states=PENDING', '--format=%i|%r',
         '--jobs=' + ','.join(job_ids)],
        capture_output=True, text=True, env=env, check=True, timeout=60
    ).stdout
    return [job for job, _, reason in
            (line.partition('|') for line in out.split())
            if reason in HELD]
