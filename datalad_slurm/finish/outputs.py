"""Declared outputs a job that completed has not left in the dataset.

On a shared file system a job's end can be seen before the files it
wrote: NFS clients cache directory contents for up to a minute. A job
Slurm reports complete whose declared outputs are not there is therefore
given ``datalad.slurm.output-grace`` seconds after its end for them to
appear, and only then called failed, without its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..records.format import Record
from ..repo.commit import existing_or_tracked
from ..repo.paths import (
    declared_paths,
    is_glob,
)
from ..slurm.status import (
    JobStatus,
    slurm_time,
)


@dataclass(frozen=True)
class Missing:
    """The declared outputs of a complete job that are not there."""
    outputs: list[str]
    # seconds of the grace still to come (0: it has passed)
    left: float

    def describe(self) -> str:
        return ', '.join(self.outputs)


def missing_outputs(repo, outputs: list[str]) -> list[str]:
    """The declared `outputs` (relative to the root of `repo`) that are
    not there: a path that neither exists nor is tracked (a job may
    delete a tracked output, as its work), a glob that matches nothing."""
    literal = [o for o in outputs if not is_glob(o)]
    present = set(existing_or_tracked(repo, literal)) if literal else set()
    return [o for o in outputs
            if (not declared_paths(repo.path, [o]) if is_glob(o) else
                o not in present)]


def awaited(ds, record: Record, job: JobStatus, grace: float,
            ) -> Missing | None:
    """What is missing of the outputs of `record`'s job, if Slurm says it
    is complete; None where nothing is, or for a scratch job, whose
    outputs come from its branches."""
    if job.phase != 'complete' or record.data.get('scratch'):
        return None
    missing = missing_outputs(ds.repo, record.data.get('outputs') or [])
    if not missing:
        return None
    ends = [slurm_time(t.end) for t in job.tasks]
    if None in ends or not ends:
        # a task that finishes itself: it wrote on this very machine
        return Missing(missing, 0.0)
    since = (datetime.now() - max(ends)).total_seconds()
    return Missing(missing, max(0.0, grace - since))
