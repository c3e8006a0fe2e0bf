"""A local job's directory, ``.git/datalad-slurm/local/jobs/<id>/``:

``job.json``
  what was submitted (sbatch's options read, the ids, the directories);
``script``
  the job script as it was at submission (Slurm too runs that copy);
``runner.json``
  the process that runs the job (:mod:`.runner`);
``runner.log``
  that process's own output;
``tasks/``
  a state file per task (:mod:`datalad_slurm.pool.tasks`).

A job directory appears whole (it is made under a temporary name and
renamed), so a job either exists with all of it, or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ...pool.tasks import (
    FINAL,
    TaskFiles,
)
from ...slurm.status import LOST
from ...util.process import ProcessId

# key of the task of a job that is no array job
BATCH = 'batch'

# Seconds a job may be without its runner's record: the submitting process
# writes it right after starting the runner.
STARTING = 30


def jobs_dir(local_dir: Path) -> Path:
    return local_dir / 'jobs'


@dataclass
class Job:
    path: Path
    spec: dict

    @property
    def job_id(self) -> int:
        return self.spec['job_id']

    @property
    def tasks(self) -> TaskFiles:
        return TaskFiles(self.path / 'tasks')

    @property
    def script(self) -> Path:
        return self.path / 'script'

    @property
    def log(self) -> Path:
        return self.path / 'runner.log'

    @classmethod
    def load(cls, local_dir: Path, job_id: int) -> 'Job | None':
        path = jobs_dir(local_dir) / str(job_id)
        try:
            spec = json.loads((path / 'job.json').read_text())
        except FileNotFoundError:
            return None
        return cls(path, spec)

    @classmethod
    def create(cls, local_dir: Path, spec: dict, script: str,
               keys: list[str]) -> 'Job':
        """Write a job's directory, its tasks queued."""
        final = jobs_dir(local_dir) / str(spec['job_id'])
        tmp = final.with_name(f'.new-{final.name}')
        tmp.mkdir(parents=True)
        try:
            (tmp / 'job.json').write_text(json.dumps(spec, indent=1,
                                                     sort_keys=True))
            (tmp / 'script').write_text(script, errors='surrogateescape')
            (tmp / 'script').chmod(0o700)
            tasks = TaskFiles(tmp / 'tasks')
            for key in keys:
                tasks.queue(key, {'raw_job_id': spec['raw_ids'][key]})
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(final, spec)

    def discard(self, pid: int | None):
        """Undo a job whose start failed: end its runner (`pid`, if it was
        started) with its tasks, and remove its directory."""
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                # not in a session of its own yet, or ended
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.path, ignore_errors=True)

    def set_runner(self, runner: ProcessId):
        tmp = self.path / 'runner.json.tmp'
        tmp.write_text(json.dumps(runner.as_dict()))
        os.replace(tmp, self.path / 'runner.json')

    def runner(self) -> ProcessId | None:
        try:
            return ProcessId(**json.loads(
                (self.path / 'runner.json').read_text()))
        except FileNotFoundError:
            return None


@dataclass
class Observation:
    """A job's tasks as their state files tell, those a dead runner left
    unfinished marked LOST; `elsewhere` names the host of a runner that
    cannot be looked at from here (the dataset on a shared file system):
    its unfinished tasks are taken to run still."""
    tasks: dict[str, dict]
    elsewhere: str | None = None


def observe(job: Job) -> Observation:
    tasks = job.tasks.read()
    if all(t['state'] in FINAL for t in tasks.values()):
        return Observation(tasks)
    runner = job.runner()
    if runner is None:
        if time.time() - job.spec['submitted'] < STARTING:
            return Observation(tasks)
        why = 'its runner was never started'
    elif not runner.here:
        return Observation(tasks, elsewhere=runner.host)
    elif runner.alive():
        return Observation(tasks)
    else:
        why = f'its runner (pid {runner.pid}) is gone'
    # read again: the runner may have ended every task before it ended
    tasks = job.tasks.read()
    for task in tasks.values():
        if task['state'] not in FINAL:
            task['state'] = LOST
            task['reason'] = why
    return Observation(tasks)
