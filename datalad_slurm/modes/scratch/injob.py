"""``datalad finish $SLURM_JOB_ID`` as the last line of a scratch job's
script: it runs in the clone, so it delivers the job's work first and then
finishes the job in the dataset the clone came from, holding the
repository lock only for the merge."""

from __future__ import annotations

import os

from datalad.distribution.dataset import Dataset
from datalad.interface.results import get_status_dict
from datalad.support.exceptions import (
    CapturedException,
    CommandError,
)

from ...slurm.env import own_job
from .clone import ScratchError
from .delivery import deliver_own_work
from .job import CLONE


def dataset_to_finish(ds, exit_status: int | None, status: dict):
    """The dataset a finish works on: `ds`, or, inside a scratch job's
    clone, the dataset the clone came from once the job's work is
    delivered; None after yielding why the work could not be delivered.
    """
    try:
        origin = deliver_own_work(ds.path, exit_status)
    except (ScratchError, CommandError, OSError, ValueError) as e:
        ce = CapturedException(e)
        yield get_status_dict(
            status='error', exception=ce,
            message=('could not deliver the work of job %s from its scratch '
                     'clone %s: %s; the job\'s batch script tries again when '
                     'the job script ends', (own_job() or [None])[0],
                     os.environ.get(CLONE), ce),
            **status)
        return None
    return ds if origin is None else Dataset(origin)
