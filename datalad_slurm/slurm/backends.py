"""Which way to ask Slurm about jobs: its command-line tools, or pyslurm.

Both backends answer :func:`query` with the same :class:`~.status.JobStatus`
objects, so that a job's phase (running, complete, failed, lost) does not
depend on the backend.  Submission always uses ``sbatch``.

pyslurm links against one release of libslurm and talks Slurm's wire
protocol, so it is only used when its version matches the cluster's Slurm
(major.minor).  ``datalad.slurm.backend``: ``cli`` (the default),
``pyslurm``, or ``auto`` (pyslurm where it matches, the CLI otherwise).
"""

from __future__ import annotations

import importlib
import logging
from typing import Iterable

from looseversion import LooseVersion

from .. import config
from . import cli
from .pyslurmdb import PyslurmBackend
from .status import (
    Expected,
    JobStatus,
    SlurmError,
)

lgr = logging.getLogger('datalad.slurm.backends')


class CliBackend:
    """sacct for everything, squeue for what sacct does not know yet."""
    name = 'cli'

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected: dict[int, Expected] | None = None,
              ) -> dict[int, JobStatus]:
        return cli.query(job_ids, timeout=timeout, expected=expected)


def select(ds) -> CliBackend | PyslurmBackend:
    """The backend configured for `ds` (``datalad.slurm.backend``).

    Raises
    ------
    SlurmError
      If pyslurm was asked for explicitly and cannot be used.
    """
    choice = config.get(ds, config.BACKEND)
    if choice == 'cli':
        return CliBackend()
    try:
        pyslurm = importlib.import_module('pyslurm')
        usable, why = _matches(pyslurm, config.get(ds, config.QUERY_TIMEOUT))
    except ImportError as e:
        usable, why = False, f'pyslurm cannot be imported ({e})'
    if usable:
        lgr.debug('Asking Slurm through pyslurm %s', pyslurm.__version__)
        return PyslurmBackend(pyslurm)
    if choice == 'pyslurm':
        raise SlurmError(
            f'datalad.slurm.backend is pyslurm, but {why}; install the '
            f'pyslurm release matching the cluster, or set the backend to '
            f'auto or cli')
    lgr.debug('Using the Slurm command-line tools: %s', why)
    return CliBackend()


def _matches(pyslurm, timeout: float) -> tuple[bool, str]:
    """Whether pyslurm was built for the cluster's Slurm release."""
    theirs = LooseVersion(str(getattr(pyslurm, '__version__', '0')))
    ours = cli.version(timeout)
    if theirs.version[:2] != ours.version[:2]:
        return False, (f'pyslurm {theirs} is built for another Slurm than '
                       f'this cluster\'s {ours}')
    return True, ''
