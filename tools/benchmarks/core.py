"""What every benchmark uses: the runner (:class:`Bench`) with its time
limit and Slurm helpers, meters of CPU time and of the lock, the readers
of FINISH commits, and the table of results."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from datalad.api import Dataset

from datalad_slurm.records.format import (
    SCHEDULE,
    compose_message,
    schedule_title,
)
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state
from datalad_slurm.repo.lock import (
    LockHeld,
    git_dir_lock,
)

TOOLS = Path(__file__).resolve().parents[1]

ENV = dict(os.environ,
           GIT_AUTHOR_NAME='datalad-slurm bench',
           GIT_AUTHOR_EMAIL='bench@example.com',
           GIT_COMMITTER_NAME='datalad-slurm bench',
           GIT_COMMITTER_EMAIL='bench@example.com')
# as users run it: with Python's bytecode cache, which a site that sets
# this (as some CI images do) would otherwise deny the commands timed here
ENV.pop('PYTHONDONTWRITEBYTECODE', None)


class Deadline(Exception):
    pass


class Bench:
    def __init__(self, workdir: Path, timeout: float):
        self.workdir = workdir
        self.deadline = time.monotonic() + timeout
        self.rows: list[dict] = []
        self.compare: dict[str, dict[str, float]] = {}
        self.tag = f'bench-{os.getpid()}'

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Deadline()
        return left

    def run(self, *argv, cwd=None, check=True) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=cwd, env=ENV, text=True,
                              capture_output=True, check=check,
                              timeout=self.remaining())

    def timed(self, *argv, cwd=None, env=None) -> tuple[float, int]:
        """Wall seconds and peak RSS (MB) of one command."""
        # stderr to a file, not a pipe: nobody reads a pipe during wait4,
        # and a command that logs more than it holds would block forever
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=cwd, env=env or ENV,
                                    stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
            err.seek(0)
            stderr = err.read().decode(errors='replace')
        proc.returncode = os.waitstatus_to_exitcode(status)
        # with the command's children it waited for (git, git-annex)
        self.cpu = usage.ru_utime + usage.ru_stime
        if proc.returncode and argv[:2] != ('datalad', 'finish'):
            raise RuntimeError(f'{argv} failed: {stderr[-2000:]}')
        return elapsed, usage.ru_maxrss // 1024

    def dataset(self, name: str) -> Dataset:
        path = self.workdir / name
        self.run('datalad', 'create', str(path))
        jobs = path / 'jobs'
        jobs.mkdir()
        (jobs / 'true.sh').write_text('#!/bin/sh\ntrue\n')
        (jobs / 'write.sh').write_text(
            '#!/bin/sh\nmkdir -p "$1" && date > "$1/r"\n')
        self.run('datalad', 'save', '-m', 'job script', cwd=path)
        return Dataset(path)

    def row(self, what, value, unit, reference=None, ref_what=None,
            target=None):
        self.rows.append(dict(
            what=what, value=round(value, 4), unit=unit,
            reference=None if reference is None else round(reference, 4),
            reference_what=ref_what,
            ratio=None if not reference else round(value / reference, 2),
            target=target))

    # ---- open jobs made quickly: real held jobs, recorded records ----
    def submit(self, ds: Dataset, count: int, hold: bool,
               writes: bool = False, script: list[str] | None = None,
               wrap: str | None = None) -> list[int]:
        """`count` jobs: `script` with the job's number as its argument,
        logging to logs/%j.out, or else a --wrap'ed command (`wrap`, or one
        writing out/N/r, or true) logging to Slurm's default.  Their
        SCHEDULE commits are made in one go, with git fast-import."""
        ids = []
        for i in range(count):
            self.remaining()
            command = wrap or (f'mkdir -p out/{i} && echo $SLURM_JOB_ID > '
                               f'out/{i}/r' if writes else 'true')
            argv = ['sbatch', '--parsable', f'--job-name={self.tag}'] + \
                (['--hold'] if hold else []) + \
                (['--output=logs/%j.out', *script, str(i)] if script else
                 [f'--wrap={command}'])
            ids.append(int(self.run(*argv, cwd=ds.path).stdout.split(';')[0]))
        logs = 'logs/{}.out' if script else 'slurm-{}.out'
        submitted = time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime())
        _fast_import(ds, [compose_message(
            SCHEDULE, schedule_title(job_id), {
                'cmd': 'sbatch --wrap=...', 'dsid': ds.id, 'pwd': '.',
                'inputs': [], 'extra_inputs': [],
                'outputs': [f'out/{i}'], 'expand': None, 'chain': [],
                'message': None, 'slurm_job_id': job_id,
                'slurm_array': None, 'slurm_cluster': None,
                'slurm_outputs': [logs.format(job_id)],
                'slurm_output_patterns': [logs.format('%j')],
                'submitted': submitted}) for i, job_id in enumerate(ids)])
        return ids

    def schedule(self, ds: Dataset, *argv) -> int:
        """``datalad schedule ARGV`` in `ds` through the CLI; the job's
        id, from the record of the schedule commit it made."""
        self.run('datalad', 'schedule', *argv, cwd=ds.path)
        return read_record(ds.repo, 'HEAD').job_id

    def queued(self, ids: list[int]) -> str | None:
        """Those of `ids` squeue lists ('' for none), or None where it
        failed."""
        proc = self.run('squeue', '--noheader',
                        f'--jobs={",".join(map(str, ids))}', '--format=%i',
                        check=False)
        return None if proc.returncode else proc.stdout.strip()

    def wait_ended(self, ids: list[int]):
        while True:
            self.remaining()
            if not self.queued(ids):
                return
            time.sleep(0.5)

    def accounted(self, ids: list[int]) -> list[str]:
        """sacct's JobID|State|ExitCode of each of `ids`, once none is
        PENDING, RUNNING or COMPLETING there: slurmdbd learns of a job's
        end after squeue has dropped it."""
        while True:
            lines = self.run('sacct', '--noheader', '--parsable2',
                             '--allocations', '--format=JobID,State,ExitCode',
                             '--jobs=' + ','.join(map(str, ids))
                             ).stdout.split()
            if len(lines) >= len(ids) and not any(
                    line.split('|')[1] in ('PENDING', 'RUNNING',
                                           'COMPLETING')
                    for line in lines):
                return lines
            self.remaining()
            time.sleep(0.5)

    def tagged(self) -> list[int]:
        out = self.run('squeue', '--noheader', '--states=all',
                       f'--name={self.tag}', '--format=%F').stdout
        return sorted({int(i) for i in out.split() if i.isdigit()})

    def cancel(self):
        subprocess.run(['scancel', f'--name={self.tag}'], check=False)


def median(values):
    return statistics.median(values)


class CpuMeter:
    """The CPU seconds this machine spent busy (all processes, all cores:
    /proc/stat less idle and iowait) within the ``with`` block, and the
    block's wall seconds."""

    def __enter__(self) -> 'CpuMeter':
        self._start = self._read(), time.monotonic()
        self.busy = self.wall = 0.0
        return self

    def __exit__(self, *exc):
        self.busy = self._read() - self._start[0]
        self.wall = time.monotonic() - self._start[1]

    @staticmethod
    def _read() -> float:
        with open('/proc/stat') as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf('SC_CLK_TCK')


class LockWatch:
    """How long other processes hold the repository lock of a dataset, as
    seen by trying to take it without blocking every `every` seconds (and
    letting it go at once) in a thread of this process."""

    def __init__(self, ds: Dataset, every: float = 0.005):
        self.ds = ds
        self.every = every
        # (from, to) in time.time(), each a stretch it was found busy
        self.busy: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> 'LockWatch':
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _poll(self):
        since = None
        while not self._stop.is_set():
            now = time.time()
            try:
                # as any process that takes the lock: one that lets go of
                # it with jobs announced meanwhile starts their committer
                with git_dir_lock(self.ds.repo.dot_git, 1, once=True,
                                  dataset=self.ds.path):
                    pass
            except LockHeld:
                if since is None:
                    since = now
            else:
                if since is not None:
                    self.busy.append((since, now))
                    since = None
            self._stop.wait(self.every)
        if since is not None:
            self.busy.append((since, time.time()))

    def held(self, start: float, end: float) -> float:
        """Seconds the lock was held between `start` and `end`."""
        return sum(max(0.0, min(to, end) - max(since, start))
                   for since, to in self.busy)


def _fast_import(ds: Dataset, messages: list[str]):
    """Commit the tree of HEAD again with each of `messages`, in order."""
    head = ds.repo.get_hexsha()
    now = int(time.time())
    stream = [
        f'commit refs/heads/{ds.repo.get_active_branch()}\n'
        f'committer bench <bench@example.com> {now} +0000\n'
        f'data {len(message.encode())}\n{message}'
        + (f'from {head}\n' if n == 0 else '') + '\n'
        for n, message in enumerate(messages)]
    # the tree stays HEAD's: index and work tree need no update
    subprocess.run(['git', 'fast-import', '--quiet', '--force'],
                   input=''.join(stream), text=True, cwd=ds.path, check=True)


def render(rows: list[dict]) -> str:
    header = ['measurement', 'median', 'reference', 'ratio', 'target']
    lines = [[r['what'], f"{r['value']} {r['unit']}",
              '' if r['reference'] is None else
              f"{r['reference']} {r['unit']} ({r['reference_what']})",
              '' if r['ratio'] is None else f"{r['ratio']}x",
              r['target'] or ''] for r in rows]
    widths = [max(len(x[i]) for x in [header] + lines)
              for i in range(len(header))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(line, widths))
                     .rstrip() for line in [header] + lines)


def finish_commits(b: Bench, ds: Dataset) -> list[str]:
    """The FINISH commits of `ds`, newest first."""
    return b.run('git', 'rev-list', '--grep', r'^\[DATALAD FINISH\]',
                 'HEAD', cwd=ds.path).stdout.split()


def merged(b: Bench, ds: Dataset, sha: str) -> list[str]:
    """The files commit `sha` changed against its first parent: for a
    scratch job's FINISH merge, what it merged."""
    return sorted(b.run('git', 'diff', '--name-only', f'{sha}^1', sha,
                        cwd=ds.path).stdout.split())


# how long the FINISH commits of jobs that all ended may take to come
COMMITTER_GRACE = 60


def wait_finishes(b: Bench, ds: Dataset, ids: list[int],
                  every: float = 0.2) -> float:
    """Wait for the FINISH commits of `ids`, jobs finishing themselves;
    return the time (time.time()) the last was seen.  Jobs that all ended
    without them made them never: RuntimeError then, not a wait until the
    deadline."""
    ended, asked = None, time.monotonic()
    while True:
        b.remaining()
        found = len(finish_commits(b, ds))
        if found >= len(ids):
            return time.time()
        if ended and time.monotonic() - ended > COMMITTER_GRACE:
            raise RuntimeError(f'the jobs ended, and made only {found} of '
                               f'{len(ids)} FINISH commits')
        if not ended and time.monotonic() - asked >= 1:
            # a job's FINISH commit is in before the job ends, or made by
            # the holder of the lock it announced itself to, which may be
            # a committer that runs on
            asked = time.monotonic()
            ended = asked if b.queued(ids) == '' else None
        time.sleep(every)


def check_clean(b: Bench, ds: Dataset, ids: list[int],
                clones: Path | None = None):
    """The jobs `ids` all COMPLETED 0:0, and nothing left behind: git and
    git-annex fsck clean, nothing unsaved, no branch or directory of a
    scratch job, and no clone in the scratch directory `clones`."""
    bad = [line for line in b.accounted(ids)
           if not line.endswith('|COMPLETED|0:0')]
    if bad:
        raise RuntimeError(f'jobs whose own finish failed: {bad[:5]}')
    b.run('git', 'fsck', '--no-progress', cwd=ds.path)
    said = b.run('git', 'annex', 'fsck', '--fast', '--quiet',
                 cwd=ds.path).stdout.strip()
    if said:
        raise RuntimeError(f'git annex fsck --fast: {said[-2000:]}')
    if b.run('git', 'status', '--porcelain', cwd=ds.path).stdout.strip():
        raise RuntimeError('the jobs left the dataset dirty')
    left = b.run('git', 'branch', '--list', 'datalad-slurm/*',
                 cwd=ds.path).stdout.split()
    for where in (state.scratch(ds.repo.dot_git), clones):
        if where and where.exists():
            left += [str(p) for p in where.iterdir()]
    if left:
        raise RuntimeError(f'the jobs left behind: {left[:5]}')
