"""The one way to Slurm, or to what stands in for it: which backend submits
a job and tells of it just submitted, and which answers for jobs already
recorded.

Slurm's backends answer :func:`query` with the same
:class:`~datalad_slurm.slurm.status.JobStatus` objects, so that a job's
phase (running, complete, failed, lost) does not depend on the backend:

``cli``
  sacct and squeue; ``pyslurm`` the Slurm database through pyslurm, used
  only when its version matches the cluster's Slurm (major.minor); ``auto``
  pyslurm where it matches, the CLI otherwise.  These submit with sbatch.
``local``
  no Slurm: the job runs on this machine
  (:mod:`datalad_slurm.backends.local`), and its state files answer.
  Only ever used when configured.

What submits is a :class:`Submitter`, what answers a :class:`Query`: the
two interfaces every backend keeps (local mode both).

A recorded job is asked of what ran it: a local job of its state files,
whatever the configured backend, and a Slurm job of Slurm, never of local
mode.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import (
    Iterable,
    Protocol,
)

from looseversion import LooseVersion

from .. import config
from ..records import split
from ..records.format import Record
from ..slurm.env import submission_environment
from ..slurm.site import Site
from ..slurm.status import (
    Expected,
    JobStatus,
    SlurmError,
)
from ..util.bulk import builds_many
from . import cli
from .local import ids
from .pacing import paced
from .pyslurmdb import PyslurmBackend

lgr = logging.getLogger('datalad.slurm.backends')

SLURM = 'slurm'


class Submitter(Protocol):
    """What submits jobs, and tells of one just submitted."""
    # recorded in the journal: a submission is completed by what made it
    name: str

    def check(self, timeout: float):
        """Raise SlurmError where nothing can be submitted now."""

    def site(self, timeout: float) -> Site:
        """What the cluster allows, asked once a process."""

    def submit(self, argv: list[str], *, cwd: str, timeout: float) -> int:
        """Submit the sbatch command `argv` from `cwd`; the job id.

        Raises
        ------
        SlurmTimeout
          When whether the job was accepted is not known.
        SlurmError
          When it was not.
        """

    def cancel(self, job_ids: list[int], *, timeout: float,
               cluster: str | None = None):
        """Cancel jobs just submitted (a split array's parts, when a later
        part was refused).

        Raises
        ------
        SlurmError
        """

    def describe_submitted(self, job_id: int, *, timeout: float,
                           cluster: str | None = None) -> cli.Submitted:
        """The facts of a job just submitted (to `cluster`, None: this
        machine's) that its record keeps."""

    def find_marked(self, comment: str, *, since: float, workdir: str,
                    timeout: float, cluster: str | None = None,
                    ) -> list[int]:
        """The jobs that may be the one submitted with `comment` since
        `since` (epoch) from `workdir` (to `cluster`): one, or, where Slurm
        keeps no comments, those that were submitted from there then; none
        if nobody knows one."""


class Query(Protocol):
    """What answers for jobs already recorded."""
    name: str

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected: dict[int, Expected] | None = None,
              ) -> dict[int, JobStatus]:
        """A status for each of `job_ids`, in one batched question."""


class CliBackend:
    """squeue for what is queued or running, sacct for the rest, and
    squeue again for what sacct does not know yet."""
    name = 'cli'

    def query(self, job_ids: Iterable[int], *, timeout: float,
              expected: dict[int, Expected] | None = None,
              ) -> dict[int, JobStatus]:
        return cli.query(job_ids, timeout=timeout, expected=expected)


class SbatchSubmitter:
    """sbatch submits, squeue tells of a job just submitted, and of one a
    submission's mark names."""
    name = SLURM

    def __init__(self, keep_environment: list[str]):
        # in a job, the SLURM_* and SBATCH_* variables sbatch keeps
        self.keep_environment = keep_environment

    def check(self, timeout: float):
        cli.require_version(timeout)

    def site(self, timeout: float) -> Site:
        return cli.site(timeout)

    def submit(self, argv: list[str], *, cwd: str, timeout: float) -> int:
        return cli.submit(argv, cwd=cwd, timeout=timeout,
                          env=submission_environment(
                              dict(os.environ), self.keep_environment))

    def cancel(self, job_ids: list[int], *, timeout: float,
               cluster: str | None = None):
        cli.call(['scancel', *cli.on(cluster), *map(str, job_ids)],
                 timeout=timeout)

    def describe_submitted(self, job_id: int, *, timeout: float,
                           cluster: str | None = None) -> cli.Submitted:
        return cli.describe_submitted(job_id, timeout=timeout,
                                      cluster=cluster)

    def find_marked(self, comment: str, *, since: float, workdir: str,
                    timeout: float, cluster: str | None = None,
                    ) -> list[int]:
        return cli.find_marked(comment, since=since, workdir=workdir,
                               timeout=timeout, cluster=cluster)


def submitter(ds, name: str | None = None) -> Submitter:
    """What submits jobs: local mode where configured, sbatch otherwise;
    `name` (a submitter's ``name``) for a submission journaled earlier,
    which must be completed the way it was made."""
    if name is None:
        local = config.get(ds, config.BACKEND) == config.LOCAL
        name = config.LOCAL if local else SLURM
    if name == config.LOCAL:
        return _local(ds)
    return SbatchSubmitter(config.get(ds, config.KEEP_ENVIRONMENT).split())


def _local(ds):
    # imported when needed: the commands on a cluster never need it
    from .local.backend import LocalBackend
    return LocalBackend(ds)


def is_local(record: Record) -> bool:
    return record.data.get('slurm_cluster') == config.LOCAL or \
        ids.is_local(record.job_id)


@builds_many
def query(ds, records: list[Record]) -> dict[int, JobStatus]:
    """What ran the jobs of `records` says of them, in one batched query per
    backend.

    Raises
    ------
    SlurmError
    """
    timeout = config.get(ds, config.QUERY_TIMEOUT)
    # a split array job is asked of as its parts, and answered as one
    expected = {i: e for r in records for i, e in split.expected(r).items()}
    local, others = [], []
    for r in records:
        (local if is_local(r) else others).extend(split.job_ids(r.data))
    statuses = {}
    if local:
        statuses.update(_local(ds).query(local, timeout=timeout,
                                         expected=expected))
    if others and config.get(ds, config.BACKEND) == config.LOCAL:
        # local mode is for machines without Slurm: Slurm is not asked
        statuses.update({i: JobStatus(i, unanswered=(
            f'it ran on a Slurm cluster, and datalad.slurm.backend is '
            f'{config.LOCAL}, which does not ask Slurm; finish it where '
            f'Slurm runs')) for i in others})
    elif others:
        backend = select(ds)
        with paced(ds.repo.dot_git, timeout=timeout,
                   interval=config.get(ds, config.QUERY_INTERVAL)):
            statuses.update(backend.query(others, timeout=timeout,
                                          expected=expected))
    return split.folded(records, statuses)


def select(ds) -> Query:
    """The backend that asks Slurm for `ds` (``datalad.slurm.backend``).

    Raises
    ------
    SlurmError
      If pyslurm was asked for explicitly and cannot be used.
    """
    choice = config.get(ds, config.BACKEND)
    if choice == config.LOCAL:
        raise SlurmError('datalad.slurm.backend is local, which does not ask '
                         'Slurm')
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
