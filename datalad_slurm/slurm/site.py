"""What a site's Slurm configuration says that datalad-slurm relies on:
its limits, and what its accounting keeps.

Read from ``scontrol show config``, whose "Key = Value" lines are the one
form every release prints (``--json`` for it came late); ``(null)`` and
the like mean unset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .jobspec import expand_task_ids
from .parse import value_of

_LINE = re.compile(r'^([A-Za-z][A-Za-z0-9_]*(?:\[\d+\])?)\s*=\s?(.*)$')


def parse_config(out: str) -> dict[str, str | None]:
    """``scontrol show config``'s settings by name (unset: None)."""
    settings = {}
    for line in out.splitlines():
        match = _LINE.match(line)
        if match:
            value = match.group(2).strip()
            # scontrol alone writes some unset settings as 'none'
            settings[match.group(1)] = None if value == 'none' else \
                value_of(value)
    return settings


@dataclass(frozen=True)
class Site:
    """The settings of a cluster that change what datalad-slurm can do."""
    cluster: str | None = None
    # array task ids must be below this (MaxArraySize); None: no limit
    max_array_size: int | None = None
    # a database (slurmdbd) keeps the jobs that slurmctld has forgotten
    accounting: bool = True
    # the database keeps a job's --comment, which marks a submission
    stores_comments: bool = True
    # seconds after its end that slurmctld keeps a job (MinJobAge)
    min_job_age: int | None = None

    @classmethod
    def of_config(cls, settings: dict[str, str | None]) -> Site:
        storage = settings.get('AccountingStorageType') or ''
        flags = (settings.get('AccountingStoreFlags') or '').split(',')
        size = settings.get('MaxArraySize')
        age = (settings.get('MinJobAge') or '').split(' ')[0]
        return cls(
            cluster=settings.get('ClusterName'),
            max_array_size=int(size) if size and size.isdigit() else None,
            accounting=storage.endswith('/slurmdbd'),
            stores_comments='job_comment' in flags,
            min_job_age=int(age) if age.isdigit() else None)

    def array_problem(self, spec: str) -> str | None:
        """Why the site cannot take an array of task ids `spec`, or None.
        """
        if self.max_array_size is None:
            return None
        highest = max(expand_task_ids(spec), default=0)
        if highest < self.max_array_size:
            return None
        return (f'the array {spec} has task ids up to {highest}, but this '
                f'cluster takes task ids below {self.max_array_size} only '
                f'(MaxArraySize); number the tasks from 0, or add '
                f'--array-split to submit it as several jobs')
