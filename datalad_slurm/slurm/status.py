"""What Slurm says of jobs, whichever backend asked: job and task states,
and the error raised when Slurm gives no answer."""

from __future__ import annotations

from dataclasses import (
    dataclass,
    field,
)
from datetime import (
    datetime,
    timedelta,
)
from typing import Iterable

from .jobspec import compress_task_ids

# Slurm states in which a job has not ended yet; a job in any of them is
# still running as far as datalad-slurm is concerned.
TRANSITIONAL_STATES = frozenset({
    'PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING', 'SUSPENDED',
    'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING',
    'STAGE_OUT', 'STOPPED', 'RESV_DEL_HOLD', 'SPECIAL_EXIT',
})

# The state of a task whose local runner died before the task ended (no
# Slurm state: Slurm's own lost jobs are those it does not report at all).
LOST = 'LOST'

# The words a FINISH commit title uses for a job's outcome.
OUTCOME_TITLES = {
    'COMPLETED': 'Complete',
    'FAILED': 'Failed',
    'CANCELLED': 'Cancelled',
    'TIMEOUT': 'Timeout',
    'OUT_OF_MEMORY': 'Out of memory',
    'NODE_FAIL': 'Node failure',
    'BOOT_FAIL': 'Boot failure',
    'DEADLINE': 'Deadline',
    'PREEMPTED': 'Preempted',
    'REVOKED': 'Revoked',
    'LOST': 'Lost',
}


class SlurmError(RuntimeError):
    """A Slurm program failed, could not be found, or did not answer."""


class SlurmTimeout(SlurmError):
    """A Slurm program did not answer in time: what it was asked to do may
    have been done, or not."""


class AccountingUnavailable(SlurmError):
    """Slurm's accounting database (slurmdbd) cannot be reached; slurmctld
    may still answer for the jobs it holds."""


class NoAccounting(AccountingUnavailable):
    """The cluster keeps no accounting database at all: slurmctld is all
    there is to ask, and it forgets a job MinJobAge after its end."""


# States that end one run of a job that Slurm may start again (requeue):
# under the same id, a new run follows.
RESTARTING_STATES = frozenset({
    'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'PREEMPTED', 'NODE_FAIL',
    'BOOT_FAIL',
})

# Clocks of the machines involved may disagree by this many seconds.
CLOCK_SKEW = 300

# Seconds within which slurmctld takes a submission whose sbatch gave no
# answer, if it takes it at all: it may still be working through a backlog.
SUBMISSION_WINDOW = 600


def slurm_time(text: str | None) -> datetime | None:
    """A time as Slurm's tools print it (local time, no zone), or as the
    records keep it (ISO 8601, possibly with a zone), as local naive time.
    """
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone().replace(tzinfo=None)
    return value


@dataclass
class TaskStatus:
    """What Slurm knows of one run of a job, or of one task of an array
    job."""
    task_id: int | None
    state: str
    exit_code: int | None = None
    raw_job_id: int | None = None
    start: str | None = None
    end: str | None = None
    elapsed: str | None = None
    nodes: str | None = None
    max_rss: str | None = None
    max_vmsize: str | None = None
    alloc_cpus: int | None = None
    total_cpu: str | None = None
    req_mem: str | None = None
    reason: str | None = None
    # what tells this job from another one Slurm gave the same id
    submit: str | None = None
    workdir: str | None = None
    cluster: str | None = None
    # how often Slurm started the job again (requeue)
    restarts: int = 0
    # slurmctld's word (squeue), without the accounting sacct adds
    from_squeue: bool = False
    # the job's own `datalad finish` got here: its work has ended, with
    # this exit status if the script passed one
    finished_inside: bool = False
    inside_exit: int | None = None

    @property
    def running(self) -> bool:
        return self.state in TRANSITIONAL_STATES and not self.finished_inside

    @property
    def succeeded(self) -> bool:
        if self.finished_inside:
            return self.inside_exit in (None, 0)
        return self.state == 'COMPLETED' and self.exit_code == 0


@dataclass(frozen=True)
class Identity:
    """What the schedule record tells of a job beyond its id (ids are
    reused: MaxJobId wraps, a cluster's state is reset, a federation shares
    one database): when slurmctld accepted it, where it runs, on which
    cluster."""
    submit: datetime | None
    workdir: str | None
    cluster: str | None

    @classmethod
    def of_record(cls, data: dict) -> 'Identity | None':
        """None for a record made before these were recorded."""
        if 'slurm_workdir' not in data:
            return None
        return cls(
            submit=slurm_time(data.get('slurm_submit_time') or
                              data.get('submitted')),
            workdir=data.get('slurm_workdir'),
            cluster=data.get('slurm_cluster'))

    def same_place(self, run: TaskStatus) -> bool:
        return all(mine is None or theirs is None or mine == theirs
                   for mine, theirs in ((self.workdir, run.workdir),
                                        (self.cluster, run.cluster)))

    def begins(self, run: TaskStatus) -> bool:
        """Whether `run` is this job's first run."""
        submitted = slurm_time(run.submit)
        return self.same_place(run) and (
            self.submit is None or submitted is None or
            abs((submitted - self.submit).total_seconds()) <= CLOCK_SKEW)

    def restarted(self, run: TaskStatus) -> bool:
        """Whether `run` may be a later run of this job: requeued, with its
        submit time moved to the requeue."""
        submitted = slurm_time(run.submit)
        return run.restarts > 0 and self.same_place(run) and (
            self.submit is None or submitted is None or
            submitted >= self.submit - timedelta(seconds=CLOCK_SKEW))


@dataclass(frozen=True)
class Expected:
    """What a schedule record says of its job, to read Slurm's answers
    with: the array task ids, and the job's identity."""
    tasks: list[int] | None = None
    identity: Identity | None = None
    # the cluster to ask (-M) for a job sent to another than this
    # machine's; None: this machine's
    cluster: str | None = None

    @classmethod
    def of_record(cls, data: dict) -> 'Expected':
        option = data.get('slurm_cluster_option')
        return cls(tasks=data.get('slurm_array'),
                   identity=Identity.of_record(data),
                   cluster=(data.get('slurm_cluster') or option)
                   if option else None)


# what is known of a job without a record: nothing (frozen, so one serves
# all; a listing of 10,000 jobs asked for it 30,000 times)
NOTHING_EXPECTED = Expected()


def pick_run(runs: list[TaskStatus], identity: Identity | None,
             ) -> TaskStatus | None:
    """The current run of the recorded job among all runs Slurm reports
    under its id (sacct ``--duplicates``, oldest first): the run that began
    as recorded, followed by the runs that requeues started.  Without an
    identity (old records), the last run."""
    if identity is None:
        return runs[-1] if runs else None
    chain: list[TaskStatus] = []
    for run in runs:
        if not chain:
            if identity.begins(run):
                chain.append(run)
        elif chain[-1].state in RESTARTING_STATES and \
                identity.same_place(run):
            chain.append(run)
        elif chain[-1].running and identity.begins(run):
            # the same run again, further on: sacct can still list a task
            # in its array's pending range when the task has run already
            chain[-1] = run
        else:
            # a job that reused the id after this one ended
            break
    if not chain:
        return None
    chain[-1].restarts = max(chain[-1].restarts, len(chain) - 1)
    return chain[-1]


@dataclass
class JobStatus:
    """Slurm's account of a job and all its array tasks."""
    job_id: int
    tasks: list[TaskStatus] = field(default_factory=list)
    # array task ids Slurm has not reported on (yet)
    missing_tasks: list[int] = field(default_factory=list)
    # why Slurm could not be asked all it knows of the job (the accounting
    # database was down): what it did not report is not known to be lost
    unanswered: str | None = None
    # who was asked, for a job nobody reports
    unknown_to: str = 'Slurm (sacct, squeue)'
    # what Slurm keeps no record of (a cluster without accounting)
    not_known: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.tasks)

    @property
    def phase(self) -> str:
        """One of 'running', 'complete', 'failed', 'lost', or 'unknown'
        (what Slurm did not report could not be asked)."""
        if self.unanswered and (not self.tasks or self.missing_tasks):
            return 'unknown'
        if not self.tasks:
            return 'lost'
        if self.missing_tasks or any(t.running for t in self.tasks):
            return 'running'
        if any(t.state == LOST for t in self.tasks):
            return 'lost'
        if all(t.succeeded for t in self.tasks):
            return 'complete'
        return 'failed'

    @property
    def outcome(self) -> str:
        """Title word for a FINISH commit ('Complete', 'Failed', ...)."""
        if self.phase == 'lost':
            return OUTCOME_TITLES['LOST']
        if self.phase == 'complete':
            return OUTCOME_TITLES['COMPLETED']
        for task in self.tasks:
            if not task.succeeded and not task.running:
                # COMPLETED with a non-zero exit code is a failure too
                state = 'FAILED' if task.state == 'COMPLETED' else task.state
                return OUTCOME_TITLES.get(state, state.capitalize())
        return 'Running'

    def describe(self) -> str:
        """Compact per-task state summary, e.g. '0-2:COMPLETED 3:FAILED'."""
        if not self.tasks:
            return 'UNKNOWN'
        return describe_states(
            [(t.task_id, t.state) for t in self.tasks] +
            [(i, 'UNKNOWN') for i in self.missing_tasks])


def describe_states(tasks: Iterable[tuple[int | None, str]]) -> str:
    """Task states as a compact summary, e.g. '0-2:COMPLETED 3:FAILED';
    the state alone for a job that is no array."""
    tasks = list(tasks)
    if len(tasks) == 1 and tasks[0][0] is None:
        return tasks[0][1]
    groups: dict[str, list[int | None]] = {}
    for task_id, state in tasks:
        groups.setdefault(state, []).append(task_id)
    return ' '.join(
        f'{compress_task_ids(i for i in ids if i is not None)}:{state}'
        for state, ids in sorted(groups.items(),
                                 key=lambda i: min(x or 0 for x in i[1])))


def add_task(status: JobStatus, new: TaskStatus):
    # with --duplicates a requeued job appears several times; the last
    # record is the current one
    for i, task in enumerate(status.tasks):
        if task.task_id == new.task_id:
            status.tasks[i] = new
            return
    status.tasks.append(new)
    status.tasks.sort(key=lambda t: -1 if t.task_id is None else t.task_id)
