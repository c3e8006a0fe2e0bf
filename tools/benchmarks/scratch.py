"""Scratch jobs: one job of many small files, in a clone of its own
against the work tree; many scratch jobs finished by one merge
(``finish --octopus``) against one merge per job."""

from __future__ import annotations

import subprocess
import time
import uuid

from datalad_slurm import config
from datalad_slurm.backends.local import ids
from datalad_slurm.backends.local.jobs import (
    BATCH,
    Job,
)
from datalad_slurm.modes.scratch.layout import (
    ScratchDir,
    branch_name,
)
from datalad_slurm.pool.tasks import DONE
from datalad_slurm.records.format import (
    FINISH,
    SCHEDULE,
    compose_message,
    schedule_title,
)
from datalad_slurm.records.history import iter_records
from datalad_slurm.repo import state

from .core import (
    Bench,
    LockWatch,
    _fast_import,
    check_clean,
    finish_commits,
    median,
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


def bench_octopus(b: Bench, sizes):
    """Many scratch jobs that have ended, finished by one ``datalad
    finish``: with --octopus (one merge of all their branches) against one
    merge per job; its time and the commits it makes.  In local mode, the
    jobs made as they would be found (SCHEDULE commits, local state files
    of complete jobs, delivered branches and notes, log files), since a
    thousand clones made by real jobs would measure the jobs, not finish.
    """
    count = sizes['octopus']
    tenth = max(count // 10, 2)
    # the first datalad command of a run pays for a cold cache: not these
    b.timed('datalad', 'finish', cwd=b.dataset('octopus-warm').path)
    runs = {1: [], count: [], tenth: []}
    for repetition in range(sizes['repeat']):
        # in turns, so that a machine busy for a while burdens no one kind
        order = list(runs)[repetition % 3:] + list(runs)[:repetition % 3]
        for octopus in order:
            runs[octopus].append(_octopus_finish(b, count, octopus))
    reference = median(t for t, _ in runs[1])
    b.row(f'finish of {count} ended scratch jobs, --octopus {count}',
          median(t for t, _ in runs[count]), 's', reference,
          'one merge per job')
    b.row('  commits it makes', median(c for _, c in runs[count]), '',
          median(c for _, c in runs[1]), 'one merge per job')
    b.row(f'finish of {count} ended scratch jobs, --octopus {tenth}',
          median(t for t, _ in runs[tenth]), 's', reference,
          'one merge per job')
    b.row('  commits it makes', median(c for _, c in runs[tenth]), '',
          median(c for _, c in runs[1]), 'one merge per job')


def _octopus_finish(b: Bench, count: int, octopus: int) -> tuple[float, int]:
    """Seconds ``datalad finish --octopus OCTOPUS`` takes for `count`
    ended scratch jobs, and the commits it makes."""
    ds = b.dataset(f'octopus-{octopus}-{len(list(b.workdir.iterdir()))}')
    job_ids = _ended_scratch_jobs(b, ds, count)
    before = b.run('git', 'rev-parse', 'HEAD', cwd=ds.path).stdout.strip()
    elapsed, _ = b.timed('datalad', 'finish', '--octopus', str(octopus),
                         cwd=ds.path)
    # the branch's own commits, not the delivered ones merged
    commits = int(b.run('git', 'rev-list', '--count', '--first-parent',
                        f'{before}..HEAD', cwd=ds.path).stdout)
    finished = {r.job_id for r in iter_records(ds.repo, f'{before}..HEAD')
                if r.kind == FINISH}
    if finished != set(job_ids):
        raise RuntimeError(f'finish --octopus {octopus} recorded '
                           f'{len(finished)} of {count} jobs')
    left = b.run('git', 'branch', '--list', 'datalad-slurm/*',
                 cwd=ds.path).stdout.split() + \
        list(state.scratch(ds.repo.dot_git).iterdir())
    if left or b.run('git', 'status', '--porcelain',
                     cwd=ds.path).stdout.strip():
        raise RuntimeError(f'finish --octopus {octopus} left the dataset '
                           f'dirty, or behind: {left[:5]}')
    b.run('git', 'fsck', '--no-progress', cwd=ds.path)
    return elapsed, commits


def _ended_scratch_jobs(b: Bench, ds, count: int) -> list[int]:
    """`count` scratch jobs of `ds` in local mode, each having written
    out/N/r in its clone and delivered it as its branch, and ended; their
    SCHEDULE commits made in one go."""
    ds.config.set(config.BACKEND, config.LOCAL, scope='local')
    base = ds.repo.get_hexsha()
    local = state.local(ds.repo.dot_git)
    now = time.time()
    job_ids = [ids.BASE + 1 + n for n in range(count)]
    marks = [uuid.uuid4().hex for _ in job_ids]
    delivered = _delivered(b, ds, base, job_ids)
    messages = []
    for n, (job_id, mark) in enumerate(zip(job_ids, marks)):
        b.remaining()
        log = f'slurm-{job_id}.out'
        (ds.pathobj / log).write_text(f'job {job_id}\n')
        job = Job.create(local, {
            'job_id': job_id, 'raw_ids': {BATCH: job_id}, 'array': None,
            'after': [], 'submitted': now - 3, 'workdir': ds.path},
            '#!/bin/sh\n', [BATCH])
        tasks = job.tasks
        tasks.claim()
        tasks.running(BATCH, start=now - 2, host='bench')
        tasks.end(BATCH, DONE, end=now - 1, exit_code=0, cpu_seconds=0.1)
        directory = ScratchDir.of(ds.repo, mark)
        directory.path.mkdir(parents=True)
        directory.delivered(None, {
            'base': base, 'branch': branch_name(job_id, None),
            'commit': delivered[n], 'left_out': []})
        messages.append(compose_message(SCHEDULE, schedule_title(job_id), {
            'cmd': f'sbatch jobs/write.sh out/{n}', 'dsid': ds.id,
            'pwd': '.', 'inputs': [], 'extra_inputs': [],
            'outputs': [f'out/{n}'], 'expand': None, 'chain': [],
            'message': None, 'depends_on': [], 'slurm_job_id': job_id,
            'slurm_array': None, 'slurm_cluster': config.LOCAL,
            'slurm_outputs': [log], 'slurm_output_patterns': ['slurm-%j.out'],
            'slurm_workdir': ds.path, 'scratch': str(b.workdir / 'clones'),
            'scratch_base': base, 'submission': mark,
            'submitted': time.strftime('%Y-%m-%dT%H:%M:%S+00:00',
                                       time.gmtime(now - 3))}))
    _fast_import(ds, messages)
    return job_ids


def _delivered(b: Bench, ds, base: str, job_ids: list[int]) -> list[str]:
    """The commit each job delivered on its branch: out/N/r on `base`."""
    stream = []
    for n, job_id in enumerate(job_ids):
        content = f'job {job_id}\n'
        message = f'[DATALAD SLURM] outputs of job {job_id}\n'
        stream.append(
            f'commit refs/heads/{branch_name(job_id, None)}\nmark :{n + 1}\n'
            f'committer bench <bench@example.com> {int(time.time())} +0000\n'
            f'data {len(message)}\n{message}from {base}\n'
            f'M 100644 inline out/{n}/r\ndata {len(content)}\n{content}\n')
    marks = b.workdir / 'octopus-marks'
    subprocess.run(['git', 'fast-import', '--quiet',
                    f'--export-marks={marks}'], input=''.join(stream),
                   text=True, cwd=ds.path, check=True)
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    marks.unlink()
    return [by_mark[f':{n + 1}'] for n in range(len(job_ids))]
