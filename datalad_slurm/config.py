"""Configuration items of datalad-slurm, registered the DataLad way so that
``datalad configuration`` lists and documents them."""

from __future__ import annotations

from datalad.support.constraints import (
    EnsureChoice,
    EnsureFloat,
    EnsureRange,
)
from datalad.support.extensions import register_config

LOCK_TIMEOUT = 'datalad.slurm.lock-timeout'
QUERY_TIMEOUT = 'datalad.slurm.query-timeout'
BACKEND = 'datalad.slurm.backend'

register_config(
    LOCK_TIMEOUT,
    'Seconds to wait for the repository lock',
    description='datalad-slurm serialises all git writes of concurrent '
    'schedule, finish and reschedule calls on one dataset with a lock '
    'under .git/. A call that cannot get the lock within this many seconds '
    'gives up with an error naming the process that holds it.',
    type=EnsureFloat() & EnsureRange(min=0),
    default=300.0,
    dialog='question',
)
register_config(
    QUERY_TIMEOUT,
    'Seconds to wait for an answer from Slurm',
    description='Timeout for each call of sbatch, sacct, squeue and '
    'scontrol. A busy slurmctld can take long to answer; raise this on a '
    'large cluster rather than retrying.',
    type=EnsureFloat() & EnsureRange(min=1),
    default=60.0,
    dialog='question',
)
register_config(
    BACKEND,
    'How to talk to Slurm',
    description="'cli' uses Slurm's command-line tools (sbatch, sacct, "
    "squeue, scontrol); 'auto', the default, does the same.",
    type=EnsureChoice('auto', 'cli'),
    default='auto',
    dialog='question',
)


def get(ds, name: str):
    """Value of a registered item, with the dataset's configuration first."""
    return ds.config.obtain(name)
