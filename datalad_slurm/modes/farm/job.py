"""The batch script of a farm job: the task farmer, run inside the
allocation, over the task list its schedule queued.

``python -m datalad_slurm.modes.farm.job FARM_DIRECTORY`` (see :mod:`.layout`)

Each task is one line of the list, run by ``/bin/sh -c`` from the
submission directory with ``DATALAD_SLURM_TASK_ID`` set to its line number,
its output (stdout and stderr) in a log file of its own under
``slurm-<job id>-tasks/`` next to the job's Slurm log.  Several farmers (an
array of farm jobs) share one list: each takes tasks by renaming their state
files, so every task runs once.

On SIGTERM (Slurm's ``--signal=B:TERM@60`` ahead of the time limit, or
``scancel --signal=TERM --batch``) the farmer takes no more tasks, ends the
running ones and puts them back to QUEUED: a task is recorded only once it
has ended by itself, and a later farm job (``datalad reschedule``) runs what
is left.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from ...pool.farmer import (
    Farmer,
    Launch,
)
from ...pool.tasks import (
    DONE,
    FINAL,
)
from .layout import (
    FarmDir,
    log_dir_name,
)

# exit status of a farmer stopped by a signal, as a shell reports it
STOPPED = 128 + signal.SIGTERM


class NotInAJob(RuntimeError):
    """The farmer runs outside a Slurm job (or local mode's stand-in)."""


def worker_count(spec: dict, env: dict) -> tuple[int, str]:
    """How many tasks run at once, and what said so: ``--workers``, else
    the CPUs Slurm gave the job on this node."""
    if spec.get('workers'):
        return spec['workers'], '--workers'
    for name in ('SLURM_CPUS_ON_NODE', 'SLURM_CPUS_PER_TASK'):
        if env.get(name, '').isdigit() and int(env[name]) > 0:
            return int(env[name]), name
    # local mode sets neither: the CPUs this process may run on
    return len(os.sched_getaffinity(0)), 'the CPUs of this machine'


def job_id_of(env: dict) -> int:
    """The farm job's id: that of the array for an array of farmers, which
    share one directory of task logs."""
    for name in ('SLURM_ARRAY_JOB_ID', 'SLURM_JOB_ID'):
        if env.get(name, '').isdigit():
            return int(env[name])
    raise NotInAJob('the farmer runs in no Slurm job (no SLURM_JOB_ID); it '
                    'is the batch script of a job datalad schedule --tasks '
                    'submits')


def launch(farm: FarmDir, spec: dict, key: str, log_dir: Path) -> Launch:
    log = str(log_dir / f'{key}.log')
    return Launch(argv=['/bin/sh', '-c', farm.tasks.taken(key)['command']],
                  cwd=spec['submit_dir'],
                  env=dict(os.environ, DATALAD_SLURM_TASK_ID=key),
                  stdout=log, stderr=log)


def run(directory: Path, env: dict) -> int:
    """Run the farm's tasks; return the farmer's exit status."""
    farm = FarmDir(directory)
    spec = farm.spec()
    log_dir = Path(spec['log_parent']) / log_dir_name(job_id_of(env))
    log_dir.mkdir(exist_ok=True)
    count, source = worker_count(spec, env)
    timeout = spec.get('task_timeout')
    print(f'{time.ctime()}: farmer on {socket.gethostname()}: {count} '
          f'workers ({source}), task timeout '
          f'{f"{timeout:g} s" if timeout else "none"}, tasks in '
          f'{farm.tasks.directory}, their logs in {log_dir}', flush=True)
    farmer = Farmer(farm.tasks, workers=count, slots=None,
                    launch=lambda key: launch(farm, spec, key, log_dir),
                    task_timeout=timeout, own_groups=True)

    def stop(number, frame):
        print(f'{time.ctime()}: signal {number}: putting the running tasks '
              f'back', flush=True)
        farmer.stop()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stop)
    farmer.run()
    states = [t['state'] for t in farm.tasks.read().values()]
    print(f'{time.ctime()}: farmer ended: {states.count(DONE)} of '
          f'{len(states)} tasks done, '
          f'{sum(s in FINAL and s != DONE for s in states)} failed',
          flush=True)
    if farmer.stopping:
        return STOPPED
    return 0 if all(s == DONE for s in states if s in FINAL) else 1


def main(argv: list[str]) -> int:
    try:
        return run(Path(argv[0]), dict(os.environ))
    except NotInAJob as e:
        print(f'datalad-slurm farm: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
