"""Benchmarks of submitting: schedule from the shell and from Python,
a farm job, and a workload against datalad-slurm 0.2.8."""

from __future__ import annotations

import sys
import time

from .core import (
    ENV,
    Bench,
    median,
)


def bench_schedule(b: Bench, sizes):
    ds = b.dataset('schedule')
    runs, refs, sbatch = [], [], []
    for i in range(sizes['schedule']):
        runs.append(b.timed('datalad', 'schedule', '-o', f'out/{i}',
                            'sbatch', '--hold', f'--job-name={b.tag}',
                            'jobs/true.sh', cwd=ds.path)[0])
        refs.append(b.timed('datalad', 'run', 'true', cwd=ds.path)[0])
        sbatch.append(b.timed('sbatch', '--hold', f'--job-name={b.tag}',
                              'jobs/true.sh', cwd=ds.path)[0])
    b.cancel()
    b.row('schedule a trivial job', median(runs), 's', median(refs),
          'datalad run true', '<= 0.8 x reference')
    b.row('plain sbatch', median(sbatch), 's')


def bench_pyschedule(b: Bench, sizes):
    """ds.schedule() in a Python loop, each call next to its floor: one
    ``sbatch --parsable`` and one ``git commit`` of an unchanged tree (no
    hooks: git-annex's pre-commit hook alone costs more than the commit)."""
    ds = b.dataset('pyschedule')
    count = sizes['pyschedule']
    ours, floor = [], []
    for i in range(count):
        b.remaining()
        start = time.perf_counter()
        res = ds.schedule(['sbatch', '--hold', f'--job-name={b.tag}',
                           'jobs/true.sh'], outputs=[f'out/{i}'],
                          result_renderer='disabled', on_failure='stop')
        ours.append(time.perf_counter() - start)
        if [r['status'] for r in res] != ['ok']:
            raise RuntimeError(f'schedule gave {res}')
        start = time.perf_counter()
        b.run('sbatch', '--parsable', '--hold', f'--job-name={b.tag}',
              'jobs/true.sh', cwd=ds.path)
        b.run('git', 'commit', '--quiet', '--no-verify', '--allow-empty',
              '-m', 'floor', cwd=ds.path)
        floor.append(time.perf_counter() - start)
    b.cancel()
    b.row(f'ds.schedule() in a loop of {count}, per call', median(ours),
          's', median(floor), 'sbatch --parsable + git commit',
          '<= 3 x reference')
    last = max(1, count // 10)
    b.row(f'the same, last {last} calls', median(ours[-last:]), 's',
          median(floor[-last:]), 'sbatch --parsable + git commit')


def bench_farm(b: Bench, sizes):
    """Many tasks of ``true``: as one farm job of 8 workers against the
    same as one array job, each scheduled and finished with --wait; and a
    job's round trip in local mode against the same on the cluster."""
    count = sizes['farm']
    walls = {}
    for kind in ('farm', 'array'):
        ds = b.dataset(f'{kind}-{count}')
        (ds.pathobj / 'jobs' / 'tasks.txt').write_text('true\n' * count)
        # the tasks write nothing: their declared output is there already
        (ds.pathobj / 'out').mkdir()
        (ds.pathobj / 'out' / '.gitkeep').write_text('')
        b.run('datalad', 'save', '-m', 'task list', cwd=ds.path)
        start = time.perf_counter()
        if kind == 'farm':
            b.run('datalad', 'schedule', '--tasks', 'jobs/tasks.txt',
                  '--workers', '8', '-o', 'out', 'sbatch', '-c', '8',
                  f'--job-name={b.tag}', cwd=ds.path)
        else:
            b.run('datalad', 'schedule', '-o', 'out', 'sbatch',
                  f'--array=0-{count - 1}', f'--job-name={b.tag}',
                  'jobs/true.sh', cwd=ds.path)
        b.run('datalad', 'finish', '--wait', cwd=ds.path)
        walls[kind] = time.perf_counter() - start
    b.row(f'{count} tasks of true as one farm job of 8 workers',
          walls['farm'], 's', walls['array'], f'an array job of {count}')
    b.row('  the farm job per task', walls['farm'] / count, 's')
    trips = {}
    for mode in ('local', 'cluster'):
        ds = b.dataset(f'trip-{mode}')
        config = ['-c', 'datalad.slurm.backend=local'] \
            if mode == 'local' else []
        start = time.perf_counter()
        b.run('datalad', *config, 'schedule', '-o', 'out/0', 'sbatch',
              'jobs/write.sh', 'out/0', cwd=ds.path)
        b.run('datalad', *config, 'finish', '--wait', cwd=ds.path)
        trips[mode] = time.perf_counter() - start
    b.row('schedule and finish --wait of one job, local mode',
          trips['local'], 's', trips['cluster'], 'the same on the cluster')


UPSTREAM = 'datalad-slurm==0.2.8'


def bench_upstream(b: Bench, sizes):
    """The same workload with datalad-slurm 0.2.8 from PyPI, in a virtual
    environment of its own (its commands: slurm-schedule, slurm-finish)."""
    venv = b.workdir / 'upstream-venv'
    b.run(sys.executable, '-m', 'venv', str(venv))
    b.run(str(venv / 'bin' / 'pip'), 'install', '-q',
          '--disable-pip-version-check', 'datalad', UPSTREAM)
    theirs = str(venv / 'bin' / 'datalad')
    # ours may come from PYTHONPATH (a work tree under test): not theirs
    their_env = {k: v for k, v in ENV.items() if k != 'PYTHONPATH'}
    count = sizes['finishing'][1]
    for name, datalad, schedule_cmd, finish_cmd, list_opt, env in (
            ('upstream', theirs, 'slurm-schedule', 'slurm-finish', '-l',
             their_env),
            ('ours', 'datalad', 'schedule', 'finish', '--list-open-jobs',
             ENV)):
        ds = b.dataset(f'compare-{name}')
        times = [b.timed(datalad, schedule_cmd, '-o', f'held/{i}', 'sbatch',
                         f'--job-name={b.tag}', '--hold', 'jobs/true.sh',
                         cwd=ds.path, env=env)[0]
                 for i in range(sizes['schedule'])]
        b.cancel()
        b.compare.setdefault('schedule a trivial job', {})[name] = \
            median(times)
        ds = b.dataset(f'compare-finish-{name}')
        for i in range(count):
            b.timed(datalad, schedule_cmd, '-o', f'out/{i}', 'sbatch',
                    f'--job-name={b.tag}', 'jobs/write.sh', f'out/{i}',
                    cwd=ds.path, env=env)
        b.wait_ended(b.tagged())
        b.compare.setdefault(f'list {count} open jobs', {})[name] = \
            b.timed(datalad, finish_cmd, list_opt, cwd=ds.path, env=env)[0]
        b.compare.setdefault(f'finish {count} jobs, per job', {})[name] = \
            b.timed(datalad, finish_cmd, cwd=ds.path, env=env)[0] / count
        b.cancel()
    for what, figures in b.compare.items():
        b.row(f'{what} (vs upstream 0.2.8)', figures['ours'], 's',
              figures['upstream'], 'datalad-slurm 0.2.8')
