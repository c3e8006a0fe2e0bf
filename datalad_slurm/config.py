"""Configuration items of datalad-slurm, registered the DataLad way so that
``datalad configuration`` lists and documents them."""

from __future__ import annotations

import os
import re

from datalad.interface.common_cfg import definitions
from datalad.support.constraints import (
    Constraint,
    EnsureBool,
    EnsureChoice,
    EnsureFloat,
    EnsureInt,
    EnsureNone,
    EnsureRange,
    EnsureStr,
)
from datalad.support.extensions import register_config

LOCK_TIMEOUT = 'datalad.slurm.lock-timeout'
QUERY_TIMEOUT = 'datalad.slurm.query-timeout'
QUERY_INTERVAL = 'datalad.slurm.query-interval'
OUTPUT_GRACE = 'datalad.slurm.output-grace'
BACKEND = 'datalad.slurm.backend'
LOCAL_WORKERS = 'datalad.slurm.local-workers'
SCRATCH = 'datalad.slurm.scratch'
KEEP_SCRATCH = 'datalad.slurm.keep-scratch'
KEEP_ENVIRONMENT = 'datalad.slurm.keep-environment'
FAILURE_PATTERN = 'datalad.slurm.failure-pattern'

# the backend value that runs jobs on this machine instead of Slurm
LOCAL = 'local'

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
    description='Timeout for each call of sbatch, sacct and squeue. A '
    'busy slurmctld can take long to answer; raise this on a '
    'large cluster rather than retrying.',
    type=EnsureFloat() & EnsureRange(min=1),
    default=60.0,
    dialog='question',
)
register_config(
    QUERY_INTERVAL,
    'Seconds at least between two questions to Slurm',
    description='The shortest time between two queries of the jobs of a '
    'dataset (squeue, sacct), for sites that allow them only so often; '
    'kept across all processes of the dataset (a finish --wait and jobs '
    'that finish themselves together keep it). Whatever it is, a query '
    'after one Slurm answered slowly or not at all waits longer, from 5 s '
    'doubling up to 300 s, until Slurm answers quickly again. 0: no '
    'interval of its own.',
    type=EnsureFloat() & EnsureRange(min=0),
    default=0.0,
    dialog='question',
)
register_config(
    OUTPUT_GRACE,
    'Seconds to wait for the outputs of a job that has completed',
    description='A job Slurm reports complete whose declared outputs are '
    'not there is given this long after its end for them to appear, as '
    'files written on a node can show late on a shared file system (NFS '
    'caches directories for up to a minute); then it is reported failed, '
    'and --close-failed-jobs closes it as "Outputs missing".',
    type=EnsureFloat() & EnsureRange(min=0),
    default=60.0,
    dialog='question',
)
register_config(
    BACKEND,
    'How to talk to Slurm',
    description="'cli' uses Slurm's command-line tools (sacct, squeue) to "
    "ask about jobs; 'pyslurm' the Slurm database through pyslurm, which "
    "must match the cluster's Slurm release (major.minor); 'auto' pyslurm "
    "where it matches, the command-line tools otherwise; these submit with "
    "sbatch. 'local' runs the sbatch command on this machine, without "
    "Slurm, and answers from its state files under .git/datalad-slurm/; "
    "it is never chosen by itself, since a login node is no place to run "
    "jobs.",
    type=EnsureChoice('auto', 'cli', 'pyslurm', LOCAL),
    default='cli',
    dialog='question',
)
register_config(
    LOCAL_WORKERS,
    'How many tasks local jobs run at once',
    description="With datalad.slurm.backend = local: the number of tasks "
    "(jobs, array tasks) of one dataset that run at the same time on this "
    "machine; the others wait for a free slot. The value in force when a "
    "job is scheduled applies to it. Default: the machine's cores.",
    type=EnsureInt() & EnsureRange(min=1),
    default=os.cpu_count() or 1,
    dialog='question',
)

register_config(
    SCRATCH,
    'Where jobs run in clones of their own',
    description="A directory on the compute nodes' fast local or scratch "
    "storage (environment variables such as $TMPDIR are expanded on the "
    "node): each job scheduled works in a temporary clone of the dataset "
    "there and comes back as a branch its FINISH commit merges, as with "
    "datalad schedule --scratch DIR. Unset: jobs work in the dataset "
    "itself.",
    type=EnsureStr() | EnsureNone(),
    default=None,
    dialog='question',
)
register_config(
    KEEP_SCRATCH,
    'Keep the scratch clones of jobs',
    description="Leave the clone of a scratch job in place when the job "
    "ends, for debugging; its path is in the job's log. Applies to jobs "
    "scheduled while it is set.",
    type=EnsureBool(),
    default=False,
    dialog='yesno',
)

register_config(
    KEEP_ENVIRONMENT,
    'Slurm variables a job submitted from inside a job keeps',
    description="A job scheduled from inside a Slurm job (a pipeline step "
    "that schedules its successor) is submitted without the SLURM_* and "
    "SBATCH_* variables of the job it is scheduled from, which would give "
    "it that job's CPU, memory and task settings; except those named "
    "here, separated by spaces (a site's SLURM_CONF, or an SBATCH_ACCOUNT "
    "the new job is to have).",
    type=EnsureStr(),
    default='SLURM_CONF',
    dialog='question',
)



class EnsureRegex(Constraint):
    """A Python regular expression, compiled."""

    def __call__(self, value):
        try:
            return re.compile(value)
        except (re.error, TypeError) as e:
            raise ValueError(f'not a regular expression: {e}') from e

    def short_description(self):
        return 'regular expression'


register_config(
    FAILURE_PATTERN,
    'What in a failed job\'s log names its failure',
    description="A Python regular expression looked for in the Slurm log "
    "files of each failed job (or array task) whose state Slurm gave no "
    "cause of its own (out of memory, timeout, node failure): datalad jobs "
    "counts those it is found in by the text it matched (its first group, "
    "where it has one), such as 'CUDA out of memory|Segmentation fault', "
    "rather than by their exit codes. Unset: logs are not read.",
    type=EnsureRegex() | EnsureNone(),
    default=None,
    dialog='question',
)

ITEMS = (LOCK_TIMEOUT, QUERY_TIMEOUT, QUERY_INTERVAL, OUTPUT_GRACE, BACKEND,
         LOCAL_WORKERS, SCRATCH, KEEP_SCRATCH, KEEP_ENVIRONMENT,
         FAILURE_PATTERN)


class ConfigError(ValueError):
    """A configuration item has a value it cannot take."""


def get(ds, name: str):
    """Value of a registered item.  Set in several scopes (system, global,
    the dataset's, ``datalad -c``), the nearest wins, as in git.

    Raises
    ------
    ConfigError
    """
    return _get(ds.config, name)


def _get(cfg, name: str):
    item = definitions[name]
    # DataLad gives all values of an item set more than once, nearest last
    value = cfg.get(name, default=None, get_all=False)
    if value is None:
        return item['default']
    try:
        return item['type'](value)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f'{name} is set to {value!r}, which it cannot take ({e}); '
            f'fix it with git config (see datalad configuration)') from e


def problem(ds) -> str | None:
    """Why the configuration is unusable, or None; asked once, before a
    command changes anything."""
    # ds.config checks the dataset's repository each time it is asked for
    cfg = ds.config
    for name in ITEMS:
        try:
            _get(cfg, name)
        except ConfigError as e:
            return str(e)
    return None
