"""``datalad finish $SLURM_JOB_ID`` as the last line of a scratch job's
script: it runs in the clone, so it delivers the job's work first and then
finishes the job in the dataset the clone came from, holding the
repository lock only for the merge."""

from __future__ import annotations

import os
import os.path as op
from pathlib import Path

from datalad.distribution.dataset import Dataset
from datalad.interface.results import get_status_dict
from datalad.support.exceptions import (
    CapturedException,
    CommandError,
)

from ...slurm.env import own_job
from .clone import (
    ScratchError,
    deliver,
)
from .job import (
    CLONE,
    JOB_DIRECTORY,
)
from .layout import ScratchDir


def dataset_to_finish(ds, exit_status: int | None, status: dict):
    """The dataset a finish works on: `ds`, or, inside a scratch job's
    clone, the dataset the clone came from once the job's work is
    delivered; None after yielding why the work could not be delivered.
    """
    clone, directory = os.environ.get(CLONE), os.environ.get(JOB_DIRECTORY)
    own = own_job()
    if not (clone and directory and own):
        return ds
    job_dir = ScratchDir(Path(directory))
    try:
        spec = job_dir.spec()
        # the clone, found from the script's directory, or the dataset
        # named with -d
        if op.realpath(ds.path) not in (op.realpath(clone),
                                        op.realpath(spec['dataset'])):
            return ds
        deliver(clone, spec, job_dir, own[0], own[1],
                0 if exit_status is None else exit_status)
    except (ScratchError, CommandError, OSError, ValueError) as e:
        ce = CapturedException(e)
        yield get_status_dict(
            status='error', exception=ce,
            message=('could not deliver the work of job %s from its scratch '
                     'clone %s: %s; the job\'s batch script tries again when '
                     'the job script ends', own[0], clone, ce),
            **status)
        return None
    return Dataset(spec['dataset'])
