"""datalad slurm-doctor: check the set-up datalad-slurm relies on."""

from __future__ import annotations

import logging
import shlex

from datalad.distribution.dataset import (
    EnsureDataset,
    datasetmethod,
    require_dataset,
)
from datalad.interface.base import (
    Interface,
    build_doc,
    eval_results,
)
from datalad.interface.results import get_status_dict
from datalad.support.constraints import (
    EnsureFloat,
    EnsureNone,
    EnsureRange,
    EnsureStr,
)
from datalad.support.param import Parameter

from .. import config
from ..doctor.injob import check_node
from ..doctor.site import (
    check_locks,
    check_slurm,
)
from ..doctor.testjob import run_test_job
from .helpdoc import indented_doc
from .render import render_check

lgr = logging.getLogger('datalad.slurm.doctor')

ACTION = 'slurm-doctor'


@build_doc
@indented_doc
class SlurmDoctor(Interface):
    """Check the set-up that scheduling and finishing jobs relies on.

    One result per check, each saying what is missing and how to fix it:
    Slurm answers (sbatch, squeue, sacct, slurmctld); what its accounting
    keeps (an accounting database, job comments) and what that means for
    finishing jobs and finding submissions; the site's limits on arrays
    and submitted jobs; whether the file system of the dataset's ``.git/``
    shares the repository lock between nodes. A short test job then runs
    on a compute node, as a job of the dataset would: it checks that
    datalad, datalad-slurm and git-annex are there, that the node sees the
    dataset at the same path, and takes the repository lock from there.

    It changes nothing of the dataset: the test job's script and log are
    kept under ``.git/datalad-slurm/doctor/`` (a failed job's log stays
    there, for reading). Checks that fail are errors, so that the command
    fails where the set-up does.
    """
    _examples_ = [
        dict(text="Check the set-up, with a test job on a compute node",
             code_cmd="datalad slurm-doctor",
             code_py="slurm_doctor()"),
        dict(text="Check without a test job",
             code_cmd="datalad slurm-doctor --no-test-job",
             code_py="slurm_doctor(test_job=False)"),
        dict(text="Run the test job in a partition of its own",
             code_cmd="datalad slurm-doctor --job-option=--partition=debug",
             code_py="slurm_doctor(job_option=['--partition=debug'])"),
    ]

    result_renderer = 'tailored'

    _params_ = dict(
        dataset=Parameter(
            args=("-d", "--dataset"),
            doc="""the dataset to check for. If not given, the dataset is
            found from the current directory.""",
            constraints=EnsureDataset() | EnsureNone()),
        test_job=Parameter(
            args=("--no-test-job",),
            dest="test_job",
            action="store_false",
            doc="""check this machine only, without a test job."""),
        job_option=Parameter(
            args=("--job-option",),
            action="append",
            metavar="OPTION",
            doc="""an sbatch option for the test job, such as the
            partition or account the site needs (give it once per
            option).""",
            constraints=EnsureStr() | EnsureNone()),
        job_wait=Parameter(
            args=("--job-wait",),
            metavar="SECONDS",
            doc="""how long to wait for the test job to end, in the queue
            included, before it is cancelled (default 300).""",
            constraints=(EnsureFloat() & EnsureRange(min=1)) |
            EnsureNone()),
        in_job=Parameter(
            args=("--in-job",),
            metavar="DATASET_ID",
            doc="""run the checks of the test job, which passes the id of
            the dataset it was submitted for; for the test job itself.""",
            constraints=EnsureStr() | EnsureNone()),
    )

    @staticmethod
    @datasetmethod(name='slurm_doctor')
    @eval_results
    def __call__(
            *,
            dataset=None,
            test_job=True,
            job_option=None,
            job_wait=None,
            in_job=None):
        yield from slurm_doctor(dataset=dataset, test_job=test_job,
                                job_option=job_option, job_wait=job_wait,
                                in_job=in_job)

    custom_result_renderer = staticmethod(render_check)


def slurm_doctor(*, dataset=None, test_job=True, job_option=None,
                 job_wait=None, in_job=None):
    """Generator behind :class:`SlurmDoctor`; see there."""
    ds = require_dataset(dataset, check_installed=True,
                         purpose='check the set-up of datalad-slurm')
    status = dict(action=ACTION, ds=ds, logger=lgr)
    if in_job is not None:
        yield from check_node(ds, in_job, status)
        return
    try:
        options = [o for option in job_option or []
                   for o in shlex.split(option)]
    except ValueError as e:
        yield get_status_dict(
            check='test-job', status='impossible',
            message=('cannot read --job-option %s (%s); quote it as the '
                     'shell would', ' '.join(job_option), e),
            **status)
        return
    problem = config.problem(ds)
    if problem:
        yield get_status_dict(check='configuration', status='error',
                              message=problem, **status)
        return
    yield check_locks(str(ds.repo.dot_git), status)
    if config.get(ds, config.BACKEND) == config.LOCAL:
        yield get_status_dict(
            check='slurm', status='notneeded',
            message=('datalad.slurm.backend is %s: jobs run on this '
                     'machine, and Slurm is not asked', config.LOCAL),
            **status)
        return
    slurm = list(check_slurm(config.get(ds, config.QUERY_TIMEOUT), status))
    yield from slurm
    if not test_job or slurm[0]['status'] != 'ok':
        return
    yield from run_test_job(ds, options, job_wait or 300.0, status)
