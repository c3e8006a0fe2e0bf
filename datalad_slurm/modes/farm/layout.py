"""A farm job's directory, ``.git/datalad-slurm/farm/<submission>/``,
named by the submission's mark (known before sbatch runs, unlike the job
id, and unique where job ids are reused):

``farm.json``
  what the farmer needs: the submission directory, the directory the task
  logs go under, the worker count and the task timeout;
``tasks/``
  a state file per task (:mod:`datalad_slurm.pool.tasks`), keyed by the task's
  line number in the task list, queued with the line's command.

It is written whole before the job is submitted, so that every farmer of
an array of farmers finds the same list.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...pool.tasks import TaskFiles
from ...repo import state


@dataclass
class FarmDir:
    path: Path

    @classmethod
    def of(cls, repo, mark: str) -> 'FarmDir':
        return cls(state.farm(repo.dot_git) / mark)

    @property
    def tasks(self) -> TaskFiles:
        return TaskFiles(self.path / 'tasks')

    @property
    def exists(self) -> bool:
        return (self.path / 'farm.json').exists()

    def spec(self) -> dict:
        return json.loads((self.path / 'farm.json').read_text())

    def create(self, spec: dict, commands: dict[int, str]):
        """Write the directory whole, every task queued."""
        tmp = self.path.with_name(f'.new-{self.path.name}')
        tmp.mkdir(parents=True)
        try:
            (tmp / 'farm.json').write_text(json.dumps(spec, indent=1,
                                                      sort_keys=True))
            tasks = TaskFiles(tmp / 'tasks')
            for line, command in commands.items():
                tasks.queue(str(line), {'command': command})
            os.rename(tmp, self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def remove(self):
        """Undo a farm whose job was not submitted."""
        shutil.rmtree(self.path, ignore_errors=True)


def log_dir_name(job_id: int) -> str:
    """The directory of a farm job's task logs, next to its Slurm log."""
    return f'slurm-{job_id}-tasks'
