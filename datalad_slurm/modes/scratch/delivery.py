"""A scratch job's own finish, first step: deliver the job's work from its
clone, and name the dataset the clone came from, where the job is then
announced.  Imports nothing of DataLad, so that ``datalad-slurm-done``
in a scratch job stays light (:mod:`datalad_slurm.finish.done`)."""

from __future__ import annotations

import os
import os.path as op
from pathlib import Path

from ...slurm.env import own_job
from .clone import deliver
from .job import (
    CLONE,
    JOB_DIRECTORY,
)
from .layout import ScratchDir


def deliver_own_work(path: str, exit_status: int | None) -> str | None:
    """Inside a scratch job's clone, with `path` the clone (or the
    dataset it came from): deliver the job's work, and return the
    dataset's path.  None where this process runs in no scratch job, or
    `path` is another dataset.

    Raises
    ------
    ScratchError, CommandError, OSError, ValueError
      What stopped the delivery.
    """
    clone, directory = os.environ.get(CLONE), os.environ.get(JOB_DIRECTORY)
    own = own_job()
    if not (clone and directory and own):
        return None
    job_dir = ScratchDir(Path(directory))
    spec = job_dir.spec()
    # the clone, found from the script's directory, or the dataset named
    # with -d
    if op.realpath(path) not in (op.realpath(clone),
                                 op.realpath(spec['dataset'])):
        return None
    deliver(clone, spec, job_dir, own[0], own[1],
            0 if exit_status is None else exit_status)
    return spec['dataset']
