"""Scratch jobs: one job of many small files, in a clone of its own
against the work tree."""

from __future__ import annotations

from .core import (
    Bench,
    LockWatch,
    check_clean,
    finish_commits,
    merged,
    wait_finishes,
)


def bench_scratch(b: Bench, sizes):
    """One job writing many small files and finishing itself (``datalad
    finish $SLURM_JOB_ID`` as its last line), run in a scratch clone
    (--scratch) against the same job in the shared tree: the time from the
    script's end to its FINISH commit, and how long the repository lock is
    held meanwhile, as LockWatch sees it."""
    count = sizes['scratch']
    scratch = _scratch_job(b, count, scratch=True)
    shared = _scratch_job(b, count, scratch=False)
    b.row(f'scratch job of {count} small files, script end to its FINISH',
          scratch[0], 's', shared[0], 'the same job in the shared tree')
    b.row('  the repository lock held meanwhile', scratch[1], 's',
          shared[1], 'the same job in the shared tree')


def _scratch_job(b: Bench, count: int, scratch: bool) -> tuple[float, float]:
    """Seconds from the job script's end to its FINISH commit, and seconds
    the repository lock was held meanwhile."""
    name = f'scratch{"" if scratch else "-ref"}-{count}'
    ds = b.dataset(name)
    # the end is noted outside the dataset, so that out/ holds `count` files
    (ds.pathobj / 'jobs' / 'many.sh').write_text(
        '#!/bin/sh\nmkdir -p out && (cd out && i=0 && while [ $i -lt "$1" ]'
        '; do echo $i > f$i; i=$((i+1)); done)\n'
        'date +%s.%N > "$2"\n'
        'datalad finish "$SLURM_JOB_ID"\n')
    b.run('datalad', 'save', '-m', 'job writing many files', cwd=ds.path)
    clones = b.workdir / f'{name}-clones'
    ended = b.workdir / f'{name}-ended'
    with LockWatch(ds) as watch:
        job_id = b.schedule(ds, *(['--scratch', str(clones)] if scratch
                                  else []),
                            '-o', 'out', 'sbatch', f'--job-name={b.tag}',
                            'jobs/many.sh', str(count), str(ended))
        finished = wait_finishes(b, ds, [job_id], every=0.05)
    end = float(ended.read_text())
    b.wait_ended([job_id])
    finishes = finish_commits(b, ds)
    if len(finishes) != 1:
        raise RuntimeError(f'job {job_id} has {len(finishes)} FINISH commits')
    files = merged(b, ds, finishes[0])
    outputs = [f for f in files if f.startswith('out/')]
    if len(outputs) != count or set(files) - set(outputs) != {
            f'slurm-{job_id}.out'}:
        raise RuntimeError(f'the FINISH of job {job_id} brings '
                           f'{len(outputs)} outputs of {count}, and '
                           f'{sorted(set(files) - set(outputs))}')
    check_clean(b, ds, [job_id], clones if scratch else None)
    return finished - end, watch.held(end, finished)
