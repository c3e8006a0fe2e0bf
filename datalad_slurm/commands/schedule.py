"""datalad schedule: submit a batch job and record it."""

from __future__ import annotations

import logging
from argparse import REMAINDER

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
from datalad.interface.common_opts import save_message_opt
from datalad.interface.results import get_status_dict
from datalad.support.constraints import (
    EnsureChoice,
    EnsureFloat,
    EnsureInt,
    EnsureNone,
    EnsureStr,
)
from datalad.support.param import Parameter

from ..modes.base import Refused
from ..submit.dryrun import dry_run as submit_dry_run
from ..submit.request import from_schedule
from ..submit.submission import submit_job
from .helpdoc import indented_doc
from .render import render_result

lgr = logging.getLogger('datalad.slurm.schedule')


@build_doc
@indented_doc
class Schedule(Interface):
    """Submit a Slurm batch job and record it in the dataset.

    The counterpart of :command:`datalad run` for a cluster: the command
    is an ``sbatch`` invocation, which returns as soon as Slurm has
    accepted the job.  Inputs are retrieved and outputs unlocked first, as
    ``run`` does, then the job is submitted and a commit titled
    ``[DATALAD SCHEDULE] Submitted batch job N: Pending`` records the
    command, its inputs and outputs, the job id, array task ids and the
    job's Slurm log files.  Once the job has ended,
    :command:`datalad finish` saves its outputs in a matching FINISH commit.

    The dataset must have no unsaved changes (unless [CMD: --explicit
    CMD][PY: `explicit=True` PY]), so that the schedule commit shows the
    dataset exactly as the job sees it, job script included.  Outputs must
    lie within the dataset and must not overlap the outputs of a job that
    is still open (scheduled, not yet finished): two jobs writing the same
    files could not be told apart.

    A job whose inputs are (or contain, or lie in) outputs of open jobs
    depends on them: those inputs are not retrieved (they do not exist
    yet), and Slurm starts the job only once those jobs have completed
    (``--dependency=afterok``, every task of an array), and cancels it
    should one of them fail (``--kill-on-invalid-dep=yes``).  A pipeline
    is thus one schedule per step, all submitted at once.

    Many small tasks run as one job with [CMD: --tasks FILE CMD][PY:
    `tasks=FILE` PY]: each line of the committed task list is a shell
    command, and the job's batch script is datalad-slurm's task farmer,
    which runs them, as many at once as the allocation has CPUs, each with
    its own log file, and records each task's exit code, start, end and
    host.  The command then gives sbatch options only.

    With [CMD: --scratch DIR CMD][PY: `scratch=DIR` PY] the job works in a
    clone of its own on the node's storage under DIR (environment
    variables expanded on the node) and delivers its work as a branch
    ``datalad-slurm/job-JOBID``; its FINISH commit is a merge that takes
    the declared outputs from it.  Only the job's inputs, outputs and
    script then need to be saved: the job never sees the work tree.

    Paths are given relative to the current directory and recorded
    relative to the dataset root.  The command may use the placeholders of
    :command:`datalad run`, such as "{inputs}" and "{outputs}".
    """
    _examples_ = [
        dict(text="Schedule a job script that reads data/raw and writes "
                  "models/gold",
             code_cmd="datalad schedule -i data/raw -o models/gold "
                      "sbatch jobs/gold.sbatch",
             code_py="schedule(['sbatch', 'jobs/gold.sbatch'], "
                     "inputs=['data/raw'], outputs=['models/gold'])"),
        dict(text="A pipeline: the second step reads what the first one "
                  "writes, and starts once it has completed",
             code_cmd="datalad schedule -o prep sbatch jobs/prep.sh && "
                      "datalad schedule -i prep -o fit sbatch jobs/fit.sh",
             code_py="schedule(['sbatch', 'jobs/prep.sh'], "
                     "outputs=['prep']); schedule(['sbatch', "
                     "'jobs/fit.sh'], inputs=['prep'], outputs=['fit'])"),
        dict(text="Schedule an array job of ten tasks, with a message",
             code_cmd="datalad schedule -m 'silver sweep' -o models/silver "
                      "sbatch --array=0-9 jobs/silver.sbatch",
             code_py="schedule(['sbatch', '--array=0-9', "
                     "'jobs/silver.sbatch'], outputs=['models/silver'], "
                     "message='silver sweep')"),
        dict(text="Run the 5,000 lines of a task list as one job of 32 "
                  "CPUs, no task longer than ten minutes",
             code_cmd="datalad schedule --tasks jobs/tasks.txt "
                      "--task-timeout 600 -o results sbatch -c 32 "
                      "--time=4:00:00",
             code_py="schedule(['sbatch', '-c', '32', '--time=4:00:00'], "
                     "tasks='jobs/tasks.txt', task_timeout=600, "
                     "outputs=['results'])"),
        dict(text="Run a job in a clone of its own on the node's local "
                  "disk, merged back by finish",
             code_cmd="datalad schedule --scratch '$TMPDIR' -o models/gold "
                      "sbatch jobs/gold.sbatch",
             code_py="schedule(['sbatch', 'jobs/gold.sbatch'], "
                     "scratch='$TMPDIR', outputs=['models/gold'])"),
        dict(text="Show the sbatch command a job would be submitted with, "
                  "and the jobs it would wait for, submitting nothing",
             code_cmd="datalad schedule --dry-run -i prep -o fit "
                      "sbatch jobs/fit.sh",
             code_py="schedule(['sbatch', 'jobs/fit.sh'], inputs=['prep'], "
                     "outputs=['fit'], dry_run=True)"),
    ]

    result_renderer = 'tailored'

    _params_ = dict(
        cmd=Parameter(
            args=("cmd",),
            nargs=REMAINDER,
            metavar='SBATCH_COMMAND',
            doc="""the sbatch command that submits the job, with any sbatch
            options and the job script. A leading '--' can be used to
            separate it from the options of schedule."""),
        dataset=Parameter(
            args=("-d", "--dataset"),
            doc="""the dataset to record the job in. If not given, the
            dataset is found from the current directory.""",
            constraints=EnsureDataset() | EnsureNone()),
        inputs=Parameter(
            args=("-i", "--input"),
            dest="inputs",
            metavar="PATH",
            action='append',
            doc="""a file or directory (or glob) the job reads. Its content
            is retrieved before the job is submitted. [CMD: This option can
            be given more than once. CMD]"""),
        outputs=Parameter(
            args=("-o", "--output"),
            dest="outputs",
            metavar="PATH",
            action='append',
            doc="""a file or directory (or glob) the job writes. Present
            annexed files are unlocked, those without content removed, and
            :command:`datalad finish` saves exactly these paths (and the
            job's Slurm log files). [CMD: This option can be given more than
            once. CMD]"""),
        expand=Parameter(
            args=("--expand",),
            doc="""record the expanded globs instead of the patterns:
            inputs when the job is scheduled, outputs when it is
            finished.""",
            constraints=EnsureChoice(None, "inputs", "outputs", "both")),
        after=Parameter(
            args=("--after",),
            metavar="JOB_OR_COMMIT",
            action='append',
            doc="""start the job only after this open job (a Slurm job id
            or schedule commit) has completed, for an order the paths do
            not show. Jobs whose outputs are among the inputs are waited
            for anyway. [CMD: This option can be given more than once.
            CMD]"""),
        explicit=Parameter(
            args=("--explicit",),
            action="store_true",
            doc="""schedule even if the dataset has unsaved changes. They
            are not recorded; the finish commit saves only the declared
            outputs."""),
        tasks=Parameter(
            args=("--tasks",),
            metavar="FILE",
            doc="""run the lines of this task list (a committed file in the
            dataset: one shell command a line, blank lines and lines
            starting with # skipped) as one job, whose batch script is the
            task farmer; the sbatch command then gives sbatch options only,
            no job script and no --wrap. Each task runs from the submission
            directory with DATALAD_SLURM_TASK_ID set to its line number,
            its output in slurm-JOBID-tasks/LINE.log next to the job's
            Slurm log. Unless sbatch is given --signal, the job is
            submitted with --signal=B:TERM@60: a minute before the time
            limit the farmer puts the tasks still running back, unrecorded.
            With --array, the farmers of the array share the list, each task
            run once. The job is complete when every task has exited 0.""",
            constraints=EnsureStr() | EnsureNone()),
        workers=Parameter(
            args=("--workers",),
            metavar="N",
            doc="""with --tasks, run this many tasks at once in each
            farmer. Default: as many as the allocation has CPUs on the
            node (SLURM_CPUS_ON_NODE).""",
            constraints=EnsureInt() | EnsureNone()),
        task_timeout=Parameter(
            args=("--task-timeout",),
            metavar="SECONDS",
            doc="""with --tasks, end a task that runs longer than this,
            recording it as failed with reason timeout.""",
            constraints=EnsureFloat() | EnsureNone()),
        scratch=Parameter(
            args=("--scratch",),
            metavar="DIR",
            doc="""run the job in a clone of its own under DIR, on the
            compute node's local or scratch storage (quote environment
            variables, such as '$TMPDIR', to have them expanded on the
            node). The clone is of the schedule commit and shares the
            dataset's annex object store; the job script runs there,
            unchanged, from the submission directory mapped into the clone,
            while the dataset's work tree stays yours: unsaved changes
            outside the job's inputs, outputs and script do not block the
            schedule. The job commits its work in the clone, pushes it as
            branch datalad-slurm/job-JOBID (one per array task) and removes
            the clone; :command:`datalad finish` merges the declared
            outputs from it. Default: the configuration item
            datalad.slurm.scratch, if set.""",
            constraints=EnsureStr() | EnsureNone()),
        dry_run=Parameter(
            args=("--dry-run",),
            action="store_true",
            doc="""check and plan the submission, and stop before sbatch:
            report the sbatch command it would run (dependency, comment and
            scratch batch script included), the inputs it would get, the
            outputs it would make writable and the open jobs it would wait
            for. Nothing changes: no input is got, no file written or
            unlocked, no job submitted, no commit made. What would be
            refused is refused as it would be."""),
        message=save_message_opt,
    )

    @staticmethod
    @datasetmethod(name='schedule')
    @eval_results
    def __call__(
            cmd=None,
            *,
            dataset=None,
            inputs=None,
            outputs=None,
            expand=None,
            after=None,
            explicit=False,
            message=None,
            tasks=None,
            workers=None,
            task_timeout=None,
            scratch=None,
            dry_run=False):
        yield from schedule(
            cmd, dataset=dataset, inputs=inputs, outputs=outputs,
            expand=expand, after=after, explicit=explicit, message=message,
            tasks=tasks, workers=workers, task_timeout=task_timeout,
            scratch=scratch, dry_run=dry_run)

    custom_result_renderer = staticmethod(render_result)


def schedule(cmd, *, dataset=None, inputs=None, outputs=None, expand=None,
             after=None, explicit=False, message=None, tasks=None,
             workers=None, task_timeout=None, scratch=None, dry_run=False):
    """Generator behind :class:`Schedule`; see there."""
    ds = require_dataset(dataset, check_installed=True,
                         purpose='schedule a Slurm job')
    try:
        request = from_schedule(
            ds, cmd, dataset=dataset, inputs=inputs, outputs=outputs,
            expand=expand, after=after, explicit=explicit, message=message,
            tasks=tasks, workers=workers, task_timeout=task_timeout,
            scratch=scratch)
    except Refused as e:
        yield get_status_dict(status='impossible', message=str(e),
                              action='schedule', ds=ds, logger=lgr)
        return
    yield from (submit_dry_run if dry_run else submit_job)(ds, request)
