"""Storms: hundreds of jobs that finish themselves at once, against one
finish of the same jobs from outside and against Slurm alone."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
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
def many_cpus(b: Bench, sizes):
    """The node advertising STORM_CPUS CPUs (tools/slurm-up --cpus) while
    the block runs, and what it had before afterwards; the node as it is
    with --keep-cluster (a cluster others use)."""
    cpus = int(b.run('sinfo', '--noheader', '--format=%c').stdout.split()[0])
    if cpus >= STORM_CPUS or sizes.get('keep_cluster'):
        yield
        return
    b.run(str(TOOLS / 'slurm-up'), '--cpus', str(STORM_CPUS))
    try:
        yield
    finally:
        subprocess.run([str(TOOLS / 'slurm-up')], check=False,
                       capture_output=True)


def bench_storm(b: Bench, sizes):
    """Jobs that end together, each with ``datalad-slurm-done $?`` as its
    last line, against one ``datalad finish`` from outside of the same
    number of completed jobs; the node advertises STORM_CPUS CPUs
    (tools/slurm-up --cpus) for as long as it runs, so that dozens of jobs
    end within the same second."""
    with many_cpus(b, sizes):
        _storm(b, sizes['storm'])


def bench_scratchstorm(b: Bench, sizes):
    """The storm of scratch jobs: each scheduled with ``datalad schedule
    --scratch`` and finishing itself from its clone, against the same jobs
    without their finish line, finished by one datalad finish from
    outside."""
    with many_cpus(b, sizes):
        _storm(b, sizes['scratchstorm'], scratch=True)


# a storm's job script, up to its finish line: its files, and when it got
# there (out/N/ended, a time.time())
STORM_JOB = ('#!/bin/sh\nmkdir -p "out/$1" && echo "$SLURM_JOB_ID" > '
             '"out/$1/r"\ndate +%s.%N > "out/$1/ended"\n')

# what a job's own finish says in its log where it holds the lock
HOLDS = 'this job holds the repository lock'
# CPU seconds beyond which a job's own finish started DataLad
TOOK_OVER = 0.15


def _storm(b: Bench, count: int, scratch: bool = False):
    """`count` held jobs running jobs/self.sh, released at once; with
    `scratch`, each scheduled with ``datalad schedule --scratch`` (else
    submitted with plain sbatch and recorded, see Bench.submit)."""
    kind = 'scratchstorm' if scratch else 'storm'
    ds = b.dataset(f'{kind}-{count}')
    # the CPU of each job's own finish, measured by bash's time outside
    # the dataset (the file is written once the finish has ended), to the
    # millisecond: GNU time's hundredths rounded a finish of a few
    # milliseconds to none
    cpu_dir = b.workdir / f'{kind}-{count}-cpu'
    cpu_dir.mkdir()
    (ds.pathobj / 'jobs' / 'self.sh').write_text(
        STORM_JOB + 'bash -c \'TIMEFORMAT="%3U %3S"; { time '
        'datalad-slurm-done "$1" 2>&3; } 3>&2 2>"$2"\' timed $? '
        f'"{cpu_dir}/$SLURM_JOB_ID"\n')
    (ds.pathobj / 'jobs' / 'plain.sh').write_text(STORM_JOB)
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.gitkeep').write_text('')
    b.run('datalad', 'save', '-m', 'self-finishing job', cwd=ds.path)
    clones = b.workdir / f'{kind}-{count}-clones' if scratch else None
    ids = _scratch_jobs(b, ds, count, 'self.sh', clones, hold=True) \
        if scratch else b.submit(ds, count, hold=True, script=['jobs/self.sh'])
    # how long the lock is held, together: the storm's serial part, one
    # holder at a time however many nodes the jobs end on (scratch jobs
    # hold it for their merges alone)
    with LockWatch(ds) as watch, CpuMeter() as cpu:
        release(ids, timeout=b.remaining())
        last = wait_finishes(b, ds, ids)
    # in the work tree: a scratch job's files came with its FINISH merge
    first, last_end = min(_ends(ds, count)), max(_ends(ds, count))
    b.wait_ended(ids)
    _check_storm(b, ds, ids, clones)

    external, outside = _external(b, count, scratch)
    external_cpu = b.cpu
    what = f'{count} {"scratch " if scratch else ""}jobs'
    b.row(f'{what} finishing themselves (datalad-slurm-done), first end to '
          f'last FINISH', last - first, 's', outside or external,
          'the same jobs without the line, first end to the end of one '
          'datalad finish once all ended' if scratch else
          f'one datalad finish of the same {count} from outside',
          '<= 2 x reference')
    # what the jobs' finishing adds where Slurm ends them over a while
    b.row('  from the last job\'s end to the last FINISH', last - last_end,
          's', external, f'one datalad finish of {count}')
    if scratch:
        b.row('  that datalad finish alone', external, 's')
    b.row('  the repository lock held meanwhile', watch.held(first, last),
          's', external, f'one datalad finish of {count}')
    holders = [i for i in ids if HOLDS in (
        ds.pathobj / 'logs' / f'{i}.out').read_text()]
    others = [_cpu(cpu_dir / str(i)) for i in ids if i not in holders]
    # a job that did not get the lock, announced, and got it on its
    # second try commits too: it started DataLad (a scratch job's own
    # finish delivers its work with git, whatever it does next)
    took_over = '' if scratch else \
        f'; took it after announcing: {sum(c > TOOK_OVER for c in others)}'
    b.row(f'  jobs that got the lock at once and committed (of {count})'
          f'{took_over}', len(holders), 'jobs')
    if holders and not scratch:
        b.row('  CPU of the holding jobs\' own finishes, together (with '
              'git and git-annex)', sum(_cpu(cpu_dir / str(i))
                                        for i in holders), 's',
              external_cpu, f'one datalad finish of {count}')
    if others:
        b.row(f'  CPU of the own finish of a job that did not hold the lock '
              f'(median of {len(others)}; max {max(others):.3f} s)',
              median(others), 's', None, None,
              None if scratch else '<= 0.05 s')
    if scratch:
        return
    b.row(f'  CPU busy from the release to the last FINISH, of '
          f'{os.cpu_count()} cores x {cpu.wall:.0f} s', cpu.busy, 's',
          os.cpu_count() * cpu.wall, 'all of it')
    # what the storm cannot go below here: Slurm running the same jobs
    slurm_wall, slurm_cpu, then_finished = _slurm_alone(b, count)
    b.row('  the same jobs without their finish line, first end to last '
          'end (Slurm alone)', slurm_wall, 's', external,
          f'one datalad finish of {count}')
    # the storm's alternative, as the scratch storm's reference: the jobs
    # without the line, then one finish
    b.row('  the storm against the same jobs without the line, first end '
          'to the end of one datalad finish once all ended', last - first,
          's', then_finished, 'Slurm alone, then one datalad finish')
    b.row('  CPU busy from their release to their end (Slurm alone)',
          slurm_cpu, 's', cpu.busy, 'the storm\'s')
    b.row('  the storm against Slurm alone', last - first, 's', slurm_wall,
          'Slurm alone')


def _scratch_jobs(b: Bench, ds: Dataset, count: int, script: str,
                  clones: Path, hold: bool) -> list[int]:
    return [b.schedule(ds, '--scratch', str(clones), '-o', f'out/{i}',
                       'sbatch', *(['--hold'] if hold else []),
                       f'--job-name={b.tag}', '--output=logs/%j.out',
                       f'jobs/{script}', str(i))
            for i in range(count)]


def _external(b: Bench, count: int, scratch: bool
              ) -> tuple[float, float | None]:
    """Seconds of one ``datalad finish`` from outside of `count` completed
    jobs, submitted with plain sbatch and recorded; for `scratch`, of the
    storm's jobs without their finish line, released at once, and the
    seconds from the first end of their work to the end of that finish
    (their delivery is the batch script's then)."""
    kind = 'scratchstorm' if scratch else 'storm'
    ref = b.dataset(f'{kind}-ref-{count}')
    if not scratch:
        b.wait_ended(b.submit(ref, count, hold=False, writes=True))
        return b.timed('datalad', 'finish', cwd=ref.path)[0], None
    (ref.pathobj / 'jobs' / 'plain.sh').write_text(STORM_JOB)
    (ref.pathobj / 'logs').mkdir()
    (ref.pathobj / 'logs' / '.gitkeep').write_text('')
    b.run('datalad', 'save', '-m', 'plain job', cwd=ref.path)
    ids = _scratch_jobs(b, ref, count, 'plain.sh',
                        b.workdir / f'{kind}-ref-{count}-clones', hold=True)
    release(ids, timeout=b.remaining())
    b.wait_ended(ids)
    external, _ = b.timed('datalad', 'finish', cwd=ref.path)
    done = time.time()
    return external, done - min(_ends(ref, count))


def _cpu(path: Path) -> float:
    """User + system seconds, as bash's time wrote them ("%3U %3S")."""
    user, system = path.read_text().split('\n')[-2].split()
    return float(user) + float(system)


def _slurm_alone(b: Bench, count: int) -> tuple[float, float, float]:
    """The storm's jobs without their finish line, released at once: the
    seconds from the first end to the last, the CPU seconds the machine
    was busy from their release until squeue dropped them, and the
    seconds from the first end to the end of one datalad finish of them
    all, started then."""
    ds = b.dataset(f'slurm-alone-{count}')
    (ds.pathobj / 'jobs' / 'plain.sh').write_text(STORM_JOB)
    (ds.pathobj / 'logs').mkdir()
    ids = b.submit(ds, count, hold=True, script=['jobs/plain.sh'])
    with CpuMeter() as cpu:
        release(ids, timeout=b.remaining())
        b.wait_ended(ids)
    b.timed('datalad', 'finish', cwd=ds.path)
    done = time.time()
    ends = _ends(ds, count)
    return max(ends) - min(ends), cpu.busy, done - min(ends)


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
