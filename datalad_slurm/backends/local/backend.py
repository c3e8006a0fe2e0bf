"""The local backend: submits on this machine and answers from the state
files, with the same objects the Slurm backends answer with."""

from __future__ import annotations

import getpass
import logging
import os.path as op
import socket
import time
from datetime import datetime
from subprocess import CalledProcessError
from typing import Iterable

from ... import config
from ...pool.tasks import (
    DONE,
    QUEUED,
    RUNNING,
)
from ...records.history import Commits
from ...records.index import JobIndex
from ...repo import state
from ...slurm.site import Site
from ...slurm.status import (
    LOST,
    Expected,
    JobStatus,
    NOTHING_EXPECTED,
    SlurmError,
    TaskStatus,
    add_task,
    pick_run,
)
from ...util.process import (
    NoProcfs,
    ProcessId,
    boot_id,
    python_argv,
    spawn_detached,
)
from ..cli import Submitted
from . import (
    ids,
    runner,
)
from .jobs import (
    BATCH,
    Job,
    jobs_dir,
    observe,
)
from .sbatch import (
    Request,
    parse,
)

lgr = logging.getLogger('datalad.slurm.local')

# what the records name as the cluster of a local job
CLUSTER = config.LOCAL

WRAPPED = '#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{}\n'


class LocalBackend:
    """Jobs run on this machine by :mod:`.runner`, told of by their state
    files."""
    name = config.LOCAL

    def __init__(self, ds):
        self.ds = ds
        self.dir = state.local(ds.repo.dot_git)

    def check(self, timeout: float):
        try:
            boot_id()
        except NoProcfs as e:
            raise SlurmError(str(e)) from e

    def site(self, timeout: float) -> Site:
        # this machine sets no limits of a cluster
        return Site(cluster=CLUSTER)

    def submit(self, argv: list[str], *, cwd: str, timeout: float) -> int:
        """Start the job of an sbatch command line on this machine; return
        its id.

        Raises
        ------
        SlurmError
          Where sbatch would refuse the job, or it cannot be started; then
          nothing runs.
        """
        try:
            return self._submit(argv, op.normpath(cwd))
        except OSError as e:
            raise SlurmError(f'local mode could not start the job: '
                             f'{e}') from e

    def _submit(self, argv: list[str], cwd: str) -> int:
        request = parse(argv, cwd)
        for job_id in request.after:
            if Job.load(self.dir, job_id) is None:
                raise SlurmError(
                    f'--dependency: job {job_id} is no local job of this '
                    f'dataset, so local mode cannot wait for it')
        keys = [str(t) for t in request.array] if request.array else [BATCH]
        first = ids.reserve(self.dir, len(keys), self._highest_known)
        job = Job.create(self.dir, self._spec(request, cwd, first, keys),
                         _script(request, cwd), keys)
        self._start(job)
        if request.unhonoured:
            lgr.warning('Local job %s runs without what local mode cannot '
                        'honour: %s', first, ', '.join(request.unhonoured))
        return first

    def _spec(self, request: Request, cwd: str, first: int,
              keys: list[str]) -> dict:
        """What the runner needs to know of a job (``job.json``)."""
        script = op.normpath(op.join(cwd, request.script)) \
            if request.script is not None else None
        return {
            'job_id': first,
            'raw_ids': {k: first + i for i, k in enumerate(keys)},
            'array': request.array, 'throttle': request.throttle,
            'after': request.after, 'name': request.name,
            'user': getpass.getuser(), 'host': socket.gethostname(),
            'submit_dir': cwd,
            'workdir': op.normpath(op.join(
                cwd, request.options.get('chdir') or '.')),
            # as Slurm tells it: the script's path and its arguments
            'command': ' '.join([script, *request.args]) if script else None,
            'args': request.args,
            'log_patterns': request.log_patterns(),
            'append': request.options.get('open-mode') == 'append',
            'comment': request.options.get('comment'),
            'workers': config.get(self.ds, config.LOCAL_WORKERS),
            'submitted': time.time(), 'unhonoured': request.unhonoured,
        }

    @staticmethod
    def _start(job: Job):
        pid = None
        try:
            pid = spawn_detached(
                python_argv('datalad_slurm.backends.local.runner',
                            str(job.path)),
                log=job.log, cwd=job.path)
            job.set_runner(ProcessId.of(pid))
        except (OSError, CalledProcessError) as e:
            # a job not reported as submitted must not run
            job.discard(pid)
            raise SlurmError(f'local mode could not start job '
                             f'{job.job_id}: {e}') from e
        lgr.debug('Local job %s runs in process %s', job.job_id, pid)

    def cancel(self, job_ids: list[int], *, timeout: float,
               cluster: str | None = None):
        # only tasks that have not started: this machine sets no
        # MaxArraySize, so no split array's part is submitted here
        for job_id in job_ids:
            runner.cancel(self._job(job_id), 'cancelled')

    def describe_submitted(self, job_id: int, *, timeout: float,
                           cluster: str | None = None) -> Submitted:
        job = self._job(job_id)
        spec = job.spec
        return Submitted(
            job_id=job_id, array_tasks=spec['array'], cluster=CLUSTER,
            name=spec['name'], user=spec['user'], workdir=spec['workdir'],
            command=spec['command'],
            submit_time=epoch_as_slurm_time(spec['submitted']))

    def find_marked(self, comment: str, *, since: float, workdir: str,
                    timeout: float, cluster: str | None = None,
                    ) -> list[int]:
        for path in jobs_dir(self.dir).glob('[0-9]*'):
            job = Job.load(self.dir, int(path.name))
            if job is not None and job.spec.get('comment') == comment:
                return [job.job_id]
        return []

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected: dict[int, Expected] | None = None,
              ) -> dict[int, JobStatus]:
        expected = expected or {}
        statuses = {}
        for job_id in sorted(set(int(i) for i in job_ids)):
            status = statuses[job_id] = JobStatus(
                job_id, unknown_to='local mode (its state files under '
                f'{self.dir})')
            job = Job.load(self.dir, job_id)
            if job is None:
                continue
            identity = expected.get(job_id, NOTHING_EXPECTED).identity
            try:
                observed = observe(job)
            except NoProcfs as e:
                raise SlurmError(str(e)) from e
            for key, task in observed.tasks.items():
                if observed.elsewhere and task['state'] in (QUEUED, RUNNING):
                    task['reason'] = (f'its runner is on {observed.elsewhere}'
                                      f', ask there whether it still runs')
                run = pick_run([task_status(job, key, task)], identity)
                if run is not None:
                    add_task(status, run)
            wanted = expected.get(job_id, NOTHING_EXPECTED).tasks or []
            seen = {t.task_id for t in status.tasks}
            status.missing_tasks = [t for t in wanted if t not in seen] \
                if status.tasks else []
        return statuses

    def _job(self, job_id: int) -> Job:
        job = Job.load(self.dir, job_id)
        if job is None:
            raise SlurmError(f'local mode knows no job {job_id}: there is '
                             f'no {jobs_dir(self.dir) / str(job_id)}')
        return job

    def _highest_known(self) -> int:
        """The last local id in use, by the job directories and the
        history, for a counter that went missing."""
        known = [ids.BASE]
        for path in jobs_dir(self.dir).glob('[0-9]*'):
            job = Job.load(self.dir, int(path.name))
            if job is not None:
                known.extend(job.spec['raw_ids'].values())
        index = JobIndex(self.ds.repo).refresh()
        for record in index.open_jobs():
            if ids.is_local(record.job_id):
                known.append(record.job_id +
                             len(record.data.get('slurm_array') or [0]) - 1)
        finished = [(entry['job'], entry['finish'])
                    for entry in index.finished.values()
                    if ids.is_local(entry['job'])]
        if finished:
            # the latest local job took the highest ids
            job_id, commit = max(finished)
            # its FINISH commit may record other jobs besides
            with Commits(self.ds.repo) as commits:
                record = next((r for r in commits.records(commit)
                               if r.job_id == job_id), None)
            known.append(job_id + len(
                (record.data if record else {}).get('slurm_array') or [0])
                - 1)
        return max(known)


def _script(request: Request, cwd: str) -> str:
    """The job script to keep: Slurm too runs the script as it was at
    submission, whatever becomes of the file."""
    if request.script is None:
        return WRAPPED.format(request.options['wrap'])
    with open(op.join(cwd, request.script), errors='surrogateescape') as f:
        return f.read()


def task_status(job: Job, key: str, task: dict) -> TaskStatus:
    """A task's state file as Slurm's account of one run."""
    spec = job.spec
    state = task['state']
    start, end = task.get('start'), task.get('end')
    if state == DONE:
        slurm_state, exit_code = 'COMPLETED', 0
    elif state in (QUEUED, RUNNING):
        # sacct's 0:0 of a job that has not ended
        slurm_state = {QUEUED: 'PENDING', RUNNING: 'RUNNING'}[state]
        exit_code = 0
    elif state == LOST:
        slurm_state, exit_code = LOST, None
    elif task.get('cancelled'):
        # as Slurm reports a job it cancelled before it ran: 0:0
        slurm_state, exit_code = 'CANCELLED', 0
    else:
        # a task killed by a signal has no exit code (sacct: -1 here too)
        slurm_state = 'FAILED'
        exit_code = -1 if task.get('signal') else task.get('exit_code')
    reason = task.get('reason')
    if state == QUEUED and spec['after']:
        reason = 'Dependency'
    elif task.get('cancelled'):
        reason = 'DependencyNeverSatisfied'
    return TaskStatus(
        task_id=None if key == BATCH else int(key),
        state=slurm_state, exit_code=exit_code,
        raw_job_id=spec['raw_ids'][key],
        submit=epoch_as_slurm_time(spec['submitted']),
        start=epoch_as_slurm_time(start), end=epoch_as_slurm_time(end),
        elapsed=sacct_duration((end or time.time()) - start)
        if start else None,
        nodes=task.get('host') if start else None,
        alloc_cpus=1,
        total_cpu=sacct_duration(task['cpu_seconds'], fraction=True)
        if task.get('cpu_seconds') is not None else None,
        reason=reason, workdir=spec['workdir'], cluster=CLUSTER)


def epoch_as_slurm_time(epoch: float | None) -> str | None:
    """Epoch seconds as Slurm's tools print times: local, no zone."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).strftime('%Y-%m-%dT%H:%M:%S')


def sacct_duration(seconds: float, fraction: bool = False) -> str:
    """Seconds as sacct prints durations: [D-]HH:MM:SS, and MM:SS.mmm for
    CPU times under an hour (`fraction`)."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if fraction and not days and not hours:
        return f'{minutes:02d}:{secs + seconds - whole:06.3f}'
    clock = f'{hours:02d}:{minutes:02d}:{secs:02d}'
    return f'{days}-{clock}' if days else clock
