"""Scale: big outputs, 10,000 jobs, listing, finishing, the history and
the report over many records."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

from datalad.api import Dataset
from held import release  # tools/held.py

from datalad_slurm.records.format import (
    FINISH,
    GREP_PATTERN,
    SCHEDULE,
    compose_message,
    finish_title,
    schedule_title,
)

from .core import (
    Bench,
    finish_commits,
    median,
)
from .storms import many_cpus


def bench_bigoutput(b: Bench, sizes):
    """One job writing many small files: its finish against ``git annex
    add`` and ``git commit`` of the same files by hand."""
    count = sizes['bigoutput']
    write = (f'mkdir -p out/0 && cd out/0 && i=0 && while [ $i -lt {count} ]'
             f'; do echo $i > f$i; i=$((i+1)); done')
    ds = b.dataset(f'bigoutput-{count}')
    ids = b.submit(ds, 1, hold=False, wrap=write)
    b.wait_ended(ids)
    ours, rss = b.timed('datalad', 'finish', cwd=ds.path)
    files = b.run('git', 'show', '--format=', '--name-only', 'HEAD',
                  cwd=ds.path).stdout.split()
    if len(files) != count + 1:
        raise RuntimeError(f'finish committed {len(files)} files')
    ref = b.dataset(f'bigoutput-ref-{count}')
    b.run('sh', '-c', write, cwd=ref.path)
    start = time.perf_counter()
    b.run('git', 'annex', 'add', '--quiet', 'out/0', cwd=ref.path)
    b.run('git', 'commit', '--quiet', '-m', 'by hand', cwd=ref.path)
    by_hand = time.perf_counter() - start
    b.row(f'finish a job of {count} small files', ours, 's', by_hand,
          'git annex add + git commit', '<= 2 x reference')
    b.row('the same, peak RSS', rss, 'MB')


def bench_tenk(b: Bench, sizes):
    """Ten thousand open jobs: listed while they are held, then finished
    once they all completed; against git-annex adding the same files, which
    is most of finishing."""
    count = sizes['tenk']
    # that many jobs start and end faster on more (advertised) CPUs
    with many_cpus(b, sizes):
        ds = b.dataset(f'tenk-{count}')
        ids = b.submit(ds, count, hold=True, writes=True)
        # the SCHEDULE commits were made with fast-import, past the index
        # of open jobs, which the first command then builds from the
        # history: shown apart, as the first datalad jobs is
        first, _ = b.timed('datalad', 'finish', '--list-open-jobs',
                           cwd=ds.path)
        listed = [b.timed('datalad', 'finish', '--list-open-jobs',
                          cwd=ds.path) for _ in range(sizes['repeat'])]
        b.row(f'list {count} open jobs', median(t for t, _ in listed), 's',
              *_target(count >= 10000, 0.5), '<= 0.5 s at 10,000')
        b.row(f'list {count} open jobs, first call (builds the index)',
              first, 's')
        b.row(f'list {count} open jobs, peak RSS',
              max(rss for _, rss in listed), 'MB', target='<= 300 MB')
        release(ids, timeout=b.remaining())
        b.wait_ended(ids)
        seconds, rss = b.timed('datalad', 'finish', cwd=ds.path)
        finished = len(finish_commits(b, ds))
        if finished != count:
            raise RuntimeError(f'finish committed {finished} of {count}')
        ref = b.dataset(f'tenk-ref-{count}')
        b.run('sh', '-c', f'i=0; while [ $i -lt {count} ]; do mkdir -p '
              f'out/$i && echo $i > out/$i/r && echo $i > slurm-$i.out; '
              f'i=$((i+1)); done', cwd=ref.path)
        start = time.perf_counter()
        b.run('git', 'annex', 'add', '--quiet', '.', cwd=ref.path)
        annex = time.perf_counter() - start
        b.row(f'finish {count} jobs, per job', seconds / count, 's',
              annex / count, 'git annex add of their 2 files',
              '<= 0.006 s')
        commits = _git_alone(b, ds, ids)
        b.row('  git alone: the same files committed one job a commit '
              '(fast-import), per job', commits / count, 's')
        b.row('  finish against its floor, per job', seconds / count, 's',
              (annex + commits) / count, 'git annex add + git alone')
        b.row(f'finish {count} jobs, peak RSS', rss, 'MB',
              target='<= 300 MB')


def _git_alone(b: Bench, ds: Dataset, ids: list[int]) -> float:
    """Seconds git fast-import takes, in a new repository that borrows the
    objects of `ds` (alternates), to make what finishing `ids` (jobs of
    Bench.submit with `writes`) committed there: one commit per job,
    adding its two files as they are in HEAD.  Each commit rewrites the
    trees of the directories the jobs share."""
    tree = {}
    for line in b.run('git', 'ls-tree', '-r', '-z', 'HEAD',
                      cwd=ds.path).stdout.split('\0'):
        if line:
            meta, path = line.split('\t', 1)
            mode, _, sha = meta.split()
            tree[path] = f'{mode} {sha}'
    stream = ''.join(
        f'commit refs/heads/main\ncommitter bench <bench@example.com> {n} '
        f'+0000\ndata 7\nfinish\n'
        f'M {tree[f"out/{n}/r"]} out/{n}/r\n'
        f'M {tree[f"slurm-{job}.out"]} slurm-{job}.out\n\n'
        for n, job in enumerate(ids))
    repo = b.workdir / f'git-alone-{len(ids)}'
    b.run('git', 'init', '--quiet', str(repo))
    (repo / '.git' / 'objects' / 'info' / 'alternates').write_text(
        f'{Path(ds.repo.dot_git).resolve() / "objects"}\n')
    start = time.perf_counter()
    subprocess.run(['git', 'fast-import', '--quiet'], cwd=repo,
                   input=stream, text=True, check=True,
                   timeout=b.remaining())
    return time.perf_counter() - start


def bench_listing(b: Bench, sizes):
    for count in sizes['listing']:
        ds = b.dataset(f'list-{count}')
        b.submit(ds, count, hold=True)
        times = [b.timed('datalad', 'finish', '--list-open-jobs',
                         cwd=ds.path)[0] for _ in range(sizes['repeat'])]
        b.cancel()
        b.row(f'list {count} open jobs', median(times), 's',
              target='<= 3 s at 1,000' if count >= 1000 else None)


def bench_finishing(b: Bench, sizes):
    save_ref = []
    for count in sizes['finishing']:
        per_job, peak = [], []
        for r in range(sizes['repeat']):
            ds = b.dataset(f'finish-{count}-{r}')
            ids = b.submit(ds, count, hold=False, writes=True)
            b.wait_ended(ids)
            seconds, rss = b.timed('datalad', 'finish', cwd=ds.path)
            finished = b.run('git', 'log', '--oneline', '--grep',
                             r'^\[DATALAD FINISH\]', cwd=ds.path)
            if len(finished.stdout.splitlines()) != count:
                raise RuntimeError(f'finish committed only '
                                   f'{len(finished.stdout.splitlines())} of '
                                   f'{count} jobs')
            per_job.append(seconds / count)
            peak.append(rss)
            if not save_ref:
                for k in range(max(3, sizes['repeat'])):
                    (ds.pathobj / f'small-{k}.txt').write_text(str(k))
                    save_ref.append(b.timed('datalad', 'save', '-m', 'x',
                                            f'small-{k}.txt',
                                            cwd=ds.path)[0])
        b.row(f'finish {count} jobs, per job', median(per_job), 's',
              median(save_ref), 'datalad save of one file',
              '<= 0.15 s at 500' if count >= 500 else None)
        b.row(f'finish {count} jobs, peak RSS', max(peak), 'MB',
              target='< 300 MB at 500' if count >= 500 else None)


def bench_history(b: Bench, sizes):
    """schedule, --list-open-jobs and finish on a long history against the
    same on a short one, taken in turns so that the machine's drift falls
    on both alike; the first command on each builds the job index (a scan
    of the whole history, once), timed apart."""
    results: dict[str, dict[int, list[float]]] = {}
    datasets = {}
    for commits in sizes['history']:
        ds = datasets[commits] = b.dataset(f'history-{commits}')
        _add_commits(ds, commits)
        results.setdefault('index', {})[commits] = b.timed(
            'datalad', 'finish', '--list-open-jobs', cwd=ds.path)[0]
    for r in range(sizes['repeat'] * 2):
        for commits, ds in datasets.items():
            results.setdefault('schedule', {}).setdefault(commits, []).append(
                b.timed('datalad', 'schedule', '-o', f'held/{r}', 'sbatch',
                        '--hold', f'--job-name={b.tag}', 'jobs/true.sh',
                        cwd=ds.path)[0])
            results.setdefault('list', {}).setdefault(commits, []).append(
                b.timed('datalad', 'finish', '--list-open-jobs',
                        cwd=ds.path)[0])
    b.cancel()
    b.wait_ended(b.tagged())
    for ds in datasets.values():
        b.run('datalad', 'finish', '--close-failed-jobs', cwd=ds.path)
    for _ in range(sizes['repeat'] * 2):
        ids = {commits: b.submit(ds, 1, hold=False, writes=True)
               for commits, ds in datasets.items()}
        b.wait_ended([i for job_ids in ids.values() for i in job_ids])
        for commits, ds in datasets.items():
            results.setdefault('finish', {}).setdefault(commits, []).append(
                b.timed('datalad', 'finish', cwd=ds.path)[0])
    small, large = sorted(sizes['history'])
    for what, label in (('schedule', 'schedule a job'),
                        ('list', 'list open jobs'),
                        ('finish', 'finish one job')):
        b.row(f'{label}, {large} commits', median(results[what][large]), 's',
              median(results[what][small]), f'the same with {small} commits',
              '<= 1.1 x reference')
    b.row(f'first command on {large} commits (builds the index)',
          results['index'][large], 's', results['index'][small],
          f'the same with {small} commits')


def bench_report(b: Bench, sizes):
    """datalad jobs over a history of finished jobs, each a pair of commits
    with records as finish writes them (made with git fast-import): the
    first call, which reads the whole history and builds the cache of the
    job summaries, and the calls after it, which read the cache."""
    count = sizes['report']
    ds = b.dataset(f'report-{count}')
    _add_finished_jobs(ds, count)
    cold = b.timed('datalad', 'jobs', cwd=ds.path)
    times = [b.timed('datalad', 'jobs', cwd=ds.path)
             for _ in range(sizes['repeat'])]
    full = count >= 100000
    b.row(f'datalad jobs, {count} finished jobs',
          median(t for t, _ in times), 's', *_target(full, 3),
          '<= 3 s at 100,000' if full else None)
    b.row(f'datalad jobs, {count} finished jobs, peak RSS',
          max(rss for _, rss in times), 'MB', *_target(full, 300),
          '<= 300 MB at 100,000' if full else None)
    b.row(f'datalad jobs, {count} finished jobs, first call (builds the '
          'cache)', cold[0], 's', *_target(full, 3))
    b.row('  first call against git alone reading the records (its floor)',
          cold[0], 's', _git_log_alone(b, ds), 'git log of the records')
    b.row(f'datalad jobs, {count} finished jobs, first call, peak RSS',
          cold[1], 'MB', *_target(full, 300))


def _git_log_alone(b: Bench, ds: Dataset) -> float:
    """Seconds git takes to write the records' messages, as datalad jobs
    asks for them, to nobody."""
    start = time.perf_counter()
    subprocess.run(['git', 'log', '--no-color', '--format=%H%x1f%B%x1e',
                    '--extended-regexp', f'--grep={GREP_PATTERN}', 'HEAD',
                    '--'], cwd=ds.path, stdout=subprocess.DEVNULL,
                   check=True, timeout=b.remaining())
    return time.perf_counter() - start


def _target(applies: bool, value: float) -> tuple:
    """A row's reference where it is the issue's target itself, so that
    its ratio says how far off the target the figure is."""
    return (value, 'the target') if applies else (None, None)


def bench_failures(b: Bench, sizes):
    """datalad jobs over a history of failed jobs, which it counts by
    cause: half ran out of memory, half failed with exit code 1 and say
    why in their logs; without and with datalad.slurm.failure-pattern,
    which reads those logs, against the same count of complete jobs."""
    count = sizes['failures']
    complete = b.dataset(f'complete-{count}')
    _add_finished_jobs(complete, count)
    failed = b.dataset(f'failed-{count}')
    _add_finished_jobs(failed, count, failing=True)
    logs = failed.pathobj / 'logs'
    logs.mkdir()
    for i in range(count):
        (logs / f'{100000 + i}.out').write_text(
            'step 1\n' * 200 + 'disk quota exceeded\n')
    runs = {}
    for name, ds, argv in (
            ('complete', complete, ['datalad', 'jobs']),
            ('failed', failed, ['datalad', 'jobs']),
            ('pattern', failed, ['datalad', '-c',
                                 'datalad.slurm.failure-pattern=quota',
                                 'jobs'])):
        runs[name] = [b.timed(*argv, cwd=ds.path)
                      for _ in range(sizes['repeat'])]
    reference = median(t for t, _ in runs['complete'])
    b.row(f'datalad jobs, {count} failed jobs (causes counted)',
          median(t for t, _ in runs['failed']), 's', reference,
          f'{count} complete jobs')
    b.row(f'datalad jobs, {count} failed jobs, failure-pattern in the logs',
          median(t for t, _ in runs['pattern']), 's', reference,
          f'{count} complete jobs')
    b.row(f'datalad jobs, {count} failed jobs, failure-pattern, peak RSS',
          max(rss for _, rss in runs['pattern']), 'MB',
          max(rss for _, rss in runs['complete']), 'complete jobs')


def _add_finished_jobs(ds: Dataset, count: int, failing: bool = False):
    """Grow the history by `count` jobs, a SCHEDULE and a FINISH commit
    each, with git fast-import; `failing`: every other job ran out of
    memory, the others failed with exit code 1, each with a log.  A
    FINISH record names its schedule commit by sha, so the shas are
    worked out here, as git computes them, and checked against what
    fast-import made.  The stream is written as it is made, not held: a
    peak RSS the kernel reports for a command counts the memory of the
    process that started it (fork copies it), so the 100,000 jobs' 200 MB
    of stream would be counted in `datalad jobs`'."""
    head = ds.repo.get_hexsha()
    tree = ds.repo.call_git_oneline(['rev-parse', 'HEAD^{tree}'])
    branch = ds.repo.get_active_branch()
    parent = head
    fast_import = subprocess.Popen(
        ['git', 'fast-import', '--quiet', '--force'], stdin=subprocess.PIPE,
        text=True, cwd=ds.path)
    for i in range(count):
        job_id = 100000 + i
        schedule = {
            'cmd': 'sbatch jobs/true.sh', 'dsid': ds.id, 'pwd': '.',
            'inputs': [], 'extra_inputs': [], 'outputs': [f'out/{i}'],
            'chain': [], 'message': None, 'expand': None, 'depends_on': [],
            'slurm_job_id': job_id, 'slurm_array': None,
            'slurm_cluster': 'bench',
            'slurm_outputs': [f'logs/{job_id}.out'] if failing else [],
            'slurm_output_patterns': [], 'slurm_workdir': ds.path,
            'slurm_submit_time': '2026-01-01T00:00:00',
            'submission': f'bench-{i}',
            'submitted': '2026-01-01T00:00:00+00:00'}
        messages = [compose_message(SCHEDULE, schedule_title(job_id),
                                    schedule)]
        state, exit_code, title = (
            ('OUT_OF_MEMORY', 0, 'Out of memory') if i % 2 else
            ('FAILED', 1, 'Failed')) if failing else \
            ('COMPLETED', 0, 'Complete')
        for n, message in enumerate(messages * 2):
            if n == 1:
                message = compose_message(
                    FINISH, finish_title(job_id, title), dict(
                        schedule, schedule_commit=parent, state=state,
                        exit=exit_code, accounting={
                            'submit': '2026-01-01T00:00:00',
                            'start': '2026-01-01T00:00:05',
                            'end': '2026-01-01T00:01:05',
                            'elapsed': '00:01:00', 'nodes': 'node1',
                            'alloc_cpus': 2, 'total_cpu': '01:30.000',
                            'req_mem': '4000M', 'max_rss': '1024000K',
                            'max_vmsize': '2048000K', 'reason': None,
                            'restarts': 0}))
            who = f'bench <bench@example.com> {1700000000 + 2 * i + n} +0000'
            body = (f'tree {tree}\nparent {parent}\nauthor {who}\n'
                    f'committer {who}\n\n{message}').encode()
            parent = hashlib.sha1(
                b'commit %d\0' % len(body) + body).hexdigest()
            fast_import.stdin.write(
                f'commit refs/heads/{branch}\nauthor {who}\n'
                f'committer {who}\ndata {len(message.encode())}\n{message}'
                + (f'from {head}\n' if not i and not n else '') + '\n')
    fast_import.stdin.close()
    if fast_import.wait():
        raise RuntimeError('git fast-import failed')
    if ds.repo.get_hexsha() != parent:
        raise RuntimeError('fast-import made other commits than expected')
    subprocess.run(['git', 'reset', '--quiet', '--hard'], cwd=ds.path,
                   check=True)


def _add_commits(ds: Dataset, count: int):
    """Grow the history fast with git fast-import: one small file changed
    per commit."""
    head = ds.repo.get_hexsha()
    stream = []
    for i in range(count):
        data, message = f'{i}\n', f'filler {i}\n'
        stream.append(
            f'commit refs/heads/{ds.repo.get_active_branch()}\n'
            f'committer bench <bench@example.com> {1700000000 + i} +0000\n'
            f'data {len(message)}\n{message}'
            + (f'from {head}\n' if i == 0 else '')
            + f'M 100644 inline filler.txt\ndata {len(data)}\n{data}\n')
    subprocess.run(['git', 'fast-import', '--quiet', '--force'],
                   input=''.join(stream), text=True, cwd=ds.path, check=True)
    subprocess.run(['git', 'reset', '--quiet', '--hard'], cwd=ds.path,
                   check=True)
