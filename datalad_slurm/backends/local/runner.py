"""The process that runs a local job, detached from the datalad command
that scheduled it: it waits for the jobs it depends on, then lets the
farmer run the job's tasks.

``python -m datalad_slurm.backends.local.runner JOB_DIRECTORY``
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from ...pool.farmer import (
    Farmer,
    Launch,
    LaunchError,
)
from ...pool.slots import Slots
from ...pool.tasks import (
    DONE,
    FAILED,
    FINAL,
)
from ...slurm.jobspec import (
    placeholder_values,
    resolve_pattern,
)
from .jobs import (
    BATCH,
    LOST,
    Job,
    observe,
)

# how often the state of the jobs waited for is looked at
POLL = 0.2

# Slurm's reason for a job whose dependency can never be satisfied
NEVER = 'DependencyNeverSatisfied'


def run(job: Job):
    local_dir = job.path.parent.parent
    failed = wait_for(local_dir, job.spec['after'])
    if failed is not None:
        cancel(job, f'{NEVER}: job {failed} it depends on did not complete')
        return
    keys = list(job.spec['raw_ids'])
    Farmer(job.tasks,
           workers=min(job.spec['throttle'] or len(keys), len(keys)),
           slots=Slots(local_dir / 'slots', job.spec['workers']),
           launch=lambda key: launch(job, key)).run()


def wait_for(local_dir: Path, job_ids: list[int]) -> int | None:
    """Wait until every job of `job_ids` has completed; return the first
    that will not, or None."""
    waiting = list(job_ids)
    while waiting:
        for job_id in list(waiting):
            other = Job.load(local_dir, job_id)
            if other is None:
                return job_id
            states = {t['state'] for t in observe(other).tasks.values()}
            if states & {FAILED, LOST}:
                return job_id
            if states == {DONE}:
                waiting.remove(job_id)
        if waiting:
            time.sleep(POLL)
    return None


def cancel(job: Job, reason: str):
    while (key := job.tasks.claim()) is not None:
        job.tasks.end(key, FAILED, end=time.time(), cancelled=True,
                      exit_code=None, reason=reason)


def fail_unfinished(job: Job, reason: str):
    while job.tasks.claim() is not None:
        pass
    for key, task in job.tasks.read().items():
        if task['state'] not in FINAL:
            job.tasks.end(key, FAILED, end=time.time(), exit_code=None,
                          reason=reason)


def launch(job: Job, key: str) -> Launch:
    """How a task of `job` runs: its script, log files and environment, as
    Slurm's batch step would have them."""
    spec = job.spec
    task = None if key == BATCH else int(key)
    raw = spec['raw_ids'][key]
    host = socket.gethostname()
    values = placeholder_values(spec['job_id'], task, raw, name=spec['name'],
                                user=spec['user'], node=host)
    logs = []
    for pattern in spec['log_patterns']:
        path = resolve_pattern(pattern, values)
        if path is None:
            raise LaunchError(f'cannot resolve the log file pattern '
                              f'{pattern!r}')
        logs.append(os.path.join(spec['workdir'], path))
    # scheduled from inside another job, the job must not see that one's
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM')}
    env.update(
        SLURM_JOB_ID=str(raw), SLURM_JOBID=str(raw),
        SLURM_JOB_NAME=spec['name'], SLURM_SUBMIT_DIR=spec['submit_dir'],
        SLURM_SUBMIT_HOST=spec['host'], SLURM_CLUSTER_NAME='local',
        SLURM_JOB_NODELIST=host, SLURMD_NODENAME=host, SLURM_NNODES='1',
        SLURM_JOB_NUM_NODES='1')
    if task is not None:
        tasks = spec['array']
        env.update(
            SLURM_ARRAY_JOB_ID=str(spec['job_id']),
            SLURM_ARRAY_TASK_ID=str(task),
            SLURM_ARRAY_TASK_COUNT=str(len(tasks)),
            SLURM_ARRAY_TASK_MIN=str(min(tasks)),
            SLURM_ARRAY_TASK_MAX=str(max(tasks)))
    return Launch(argv=[str(job.script), *spec['args']], cwd=spec['workdir'],
                  env=env, stdout=logs[0], stderr=logs[-1],
                  append=spec['append'])


def main(path: str):
    # a session of its own: no terminal's hangup reaches the job, and its
    # tasks share the runner's process group
    os.setsid()
    # sh started this process in the background, which ignores SIGINT and
    # SIGQUIT; the job's tasks get them as a Slurm job would
    for number in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)
    job = Job(Path(path), {})
    try:
        job = Job.load(job.path.parent.parent, int(job.path.name))
        print(f'{time.ctime()}: running job {job.job_id} as '
              f'{getpass.getuser()} on {socket.gethostname()}', flush=True)
        run(job)
    except BaseException:
        traceback.print_exc()
        # what did not end is not left looking as if it still ran
        fail_unfinished(job, f'the local runner failed, see {job.log}')
        raise
    print(f'{time.ctime()}: job {job.job_id} ended', flush=True)


if __name__ == '__main__':
    main(sys.argv[1])
