"""Storms: hundreds of jobs that finish themselves at once, against one
finish of the same jobs from outside and against Slurm alone."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from datalad.api import Dataset
from held import release  # tools/held.py

from .core import (
    TOOLS,
    Bench,
    CpuMeter,
    LockWatch,
    check_clean,
    finish_commits,
    median,
    merged,
    wait_finishes,
)

STORM_CPUS = 64


@contextlib.contextmanager
def many_cpus(b: Bench):
    """The node advertising STORM_CPUS CPUs (tools/slurm-up --cpus) while
    the block runs, and what it had before afterwards."""
    cpus = int(b.run('sinfo', '--noheader', '--format=%c').stdout.split()[0])
    if cpus >= STORM_CPUS:
        yield
        return
    b.run(str(TOOLS / 'slurm-up'), '--cpus', str(STORM_CPUS))
    try:
        yield
    finally:
        subprocess.run([str(TOOLS / 'slurm-up')], check=False,
                       capture_output=True)


def bench_storm(b: Bench, sizes):
    """Jobs that end together, each with ``datalad finish $SLURM_JOB_ID``
    as its last line, against one ``datalad finish`` from outside of the
    same number of completed jobs; the node advertises STORM_CPUS CPUs
    (tools/slurm-up --cpus) for as long as it runs, so that dozens of jobs
    end within the same second."""
    with many_cpus(b):
        _storm(b, sizes['storm'])


def bench_scratchstorm(b: Bench, sizes):
    """The storm of scratch jobs: each scheduled with ``datalad schedule
    --scratch`` and finishing itself from its clone, against the same
    external finish of ordinary jobs as the storm's."""
    with many_cpus(b):
        _storm(b, sizes['scratchstorm'], scratch=True)


# a storm's job script, up to its finish line: its files, and when it got
# there (out/N/ended, a time.time())
STORM_JOB = ('#!/bin/sh\nmkdir -p "out/$1" && echo "$SLURM_JOB_ID" > '
             '"out/$1/r"\ndate +%s.%N > "out/$1/ended"\n')


def _storm(b: Bench, count: int, scratch: bool = False):
    """`count` held jobs running jobs/self.sh, released at once; with
    `scratch`, each scheduled with ``datalad schedule --scratch`` (else
    submitted with plain sbatch and recorded, see Bench.submit)."""
    kind = 'scratchstorm' if scratch else 'storm'
    ds = b.dataset(f'{kind}-{count}')
    (ds.pathobj / 'jobs' / 'self.sh').write_text(
        STORM_JOB + 'datalad finish "$SLURM_JOB_ID"\n')
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.gitkeep').write_text('')
    b.run('datalad', 'save', '-m', 'self-finishing job', cwd=ds.path)
    clones = b.workdir / f'{kind}-{count}-clones' if scratch else None
    if scratch:
        ids = [b.schedule(ds, '--scratch', str(clones), '-o', f'out/{i}',
                          'sbatch', '--hold', f'--job-name={b.tag}',
                          '--output=logs/%j.out', 'jobs/self.sh', str(i))
               for i in range(count)]
    else:
        ids = b.submit(ds, count, hold=True, script=['jobs/self.sh'])
    # how long the lock is held, together: the storm's serial part, one
    # holder at a time however many nodes the jobs end on (scratch jobs
    # hold it for their merges alone)
    with LockWatch(ds) as watch, CpuMeter() as cpu:
        release(ids, timeout=b.remaining())
        last = wait_finishes(b, ds, ids)
    # in the work tree: a scratch job's files came with its FINISH merge
    first = min(_ends(ds, count))
    b.wait_ended(ids)
    _check_storm(b, ds, ids, clones)

    ref = b.dataset(f'{kind}-ref-{count}')
    b.wait_ended(b.submit(ref, count, hold=False, writes=True))
    external, _ = b.timed('datalad', 'finish', cwd=ref.path)
    b.row(f'{count} {"scratch " if scratch else ""}jobs finishing '
          f'themselves, first end to last FINISH',
          last - first, 's', external, f'one datalad finish of {count}',
          # issue 14 asks a scratch storm for correctness (the checks
          # above), not for a time
          None if scratch else '<= 1.5 x reference')
    b.row('  the repository lock held meanwhile', watch.held(first, last),
          's', external, f'one datalad finish of {count}')
    if scratch:
        return
    b.row(f'  CPU busy from the release to the last FINISH, of '
          f'{os.cpu_count()} cores x {cpu.wall:.0f} s', cpu.busy, 's',
          os.cpu_count() * cpu.wall, 'all of it')
    # what the storm cannot go below here: Slurm running the same jobs, and
    # each job's finish a process of its own, on this many cores
    slurm_wall, slurm_cpu = _slurm_alone(b, count)
    b.row('  the same jobs without their finish line, first end to last '
          'end (Slurm alone)', slurm_wall, 's', external,
          f'one datalad finish of {count}')
    process = []
    for _ in range(5):
        start = os.times()
        b.run('datalad', 'finish', '--list-open-jobs', cwd=ref.path)
        end = os.times()
        process.append(end.children_user + end.children_system
                       - start.children_user - start.children_system)
    b.row('  CPU of one datalad finish process (--list-open-jobs)',
          median(process), 's')
    floor = (slurm_cpu + median(process) * count) / os.cpu_count()
    b.row('  the storm against its floor', last - first, 's', floor,
          f'CPU of Slurm alone + {count} such processes, on '
          f'{os.cpu_count()} cores')


def _slurm_alone(b: Bench, count: int) -> tuple[float, float]:
    """The storm's jobs without their finish line, released at once: the
    seconds from the first end to the last, and the CPU seconds the
    machine was busy from their release until squeue dropped them."""
    ds = b.dataset(f'slurm-alone-{count}')
    (ds.pathobj / 'jobs' / 'plain.sh').write_text(STORM_JOB)
    (ds.pathobj / 'logs').mkdir()
    ids = b.submit(ds, count, hold=True, script=['jobs/plain.sh'])
    with CpuMeter() as cpu:
        release(ids, timeout=b.remaining())
        b.wait_ended(ids)
    ends = _ends(ds, count)
    return max(ends) - min(ends), cpu.busy


def _ends(ds: Dataset, count: int) -> list[float]:
    """When the STORM_JOB scripts of jobs 0..count-1 got to their end."""
    return [float((ds.pathobj / 'out' / str(i) / 'ended').read_text())
            for i in range(count)]


def _check_storm(b: Bench, ds: Dataset, ids: list[int],
                 clones: Path | None = None):
    """Every job once, with its own files, finished inside itself."""
    seen = {}
    for sha in finish_commits(b, ds):
        files = merged(b, ds, sha)
        job = int(files[0].split('/')[-1].split('.')[0])
        i = files[-1].split('/')[1]
        expected = [f'logs/{job}.out', f'out/{i}/ended', f'out/{i}/r']
        if files != expected or job in seen:
            raise RuntimeError(f'FINISH {sha} of job {job} holds {files}')
        seen[job] = sha
    if sorted(seen) != sorted(ids):
        raise RuntimeError(f'jobs without a FINISH: '
                           f'{sorted(set(ids) - set(seen))}')
    check_clean(b, ds, ids, clones)
