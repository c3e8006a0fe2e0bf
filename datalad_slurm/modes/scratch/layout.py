"""A scratch job's directory, ``.git/datalad-slurm/scratch/<submission>/``,
named by the submission's mark, which is unique where job ids are reused:

``spec.json``
  what the job needs to make its clone: the dataset, the commit to run on,
  inputs, outputs, the user's job script or ``--wrap`` command;
``batch.sh``
  the batch script sbatch is given (see :mod:`.submit`);
``delivered/TASK.json``
  what a task (``job`` for a job without array) pushed: its branch and
  commit, written by the job once the branch is in the dataset;
``failed/TASK.txt``
  why a task could not run its script, for finish to report.

The directory is removed once the job's FINISH commit is made.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...repo import state

BRANCH_PREFIX = 'datalad-slurm/job-'


def task_key(task_id: int | None) -> str:
    return 'job' if task_id is None else str(task_id)


def branch_name(job_id: int, task_id: int | None) -> str:
    """The branch a job (an array task) pushes: ``datalad-slurm/job-4711``,
    ``datalad-slurm/job-4711_3``."""
    return BRANCH_PREFIX + (str(job_id) if task_id is None
                            else f'{job_id}_{task_id}')


@dataclass
class ScratchDir:
    path: Path

    @classmethod
    def of(cls, repo, mark: str) -> 'ScratchDir':
        return cls(state.scratch(repo.dot_git) / mark)

    @property
    def batch_script(self) -> Path:
        return self.path / 'batch.sh'

    def spec(self) -> dict:
        return json.loads((self.path / 'spec.json').read_text())

    def create(self, spec: dict, batch_script: str):
        """Write the spec and the batch script, before sbatch runs."""
        self.path.mkdir(parents=True)
        state.write_json(self.path / 'spec.json', spec)
        self.batch_script.write_text(batch_script)

    def delivered(self, task_id: int | None, content: dict):
        self._note('delivered', f'{task_key(task_id)}.json', content)

    def failed(self, task_id: int | None, why: str):
        (self.path / 'failed').mkdir(exist_ok=True)
        (self.path / 'failed' / f'{task_key(task_id)}.txt').write_text(why)

    def deliveries(self) -> dict[str, dict]:
        """What each task delivered, by task key."""
        found = {}
        for path in sorted((self.path / 'delivered').glob('*.json')):
            try:
                found[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return found

    def failures(self) -> dict[str, str]:
        """Why tasks could not run, by task key."""
        return {path.stem: path.read_text().strip()
                for path in sorted((self.path / 'failed').glob('*.txt'))}

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def _note(self, kind: str, name: str, content: dict):
        (self.path / kind).mkdir(exist_ok=True)
        state.write_json(self.path / kind / name, content)
