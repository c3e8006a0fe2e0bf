"""What a FINISH commit records and saves for a job that has ended."""

from __future__ import annotations

import os
from dataclasses import (
    dataclass,
    field,
)

from ..modes.farm.status import (
    FarmStatus,
    finish_keys,
)
from ..modes.scratch.merge import (
    forget,
    plan_merge,
)
from ..records import logfiles
from ..records.format import (
    FINISH,
    Record,
    compose_message,
    finish_title,
)
from ..records.outcome import OUTPUTS_MISSING
from ..repo.commit import CommitPlan
from ..repo.paths import declared_paths
from ..slurm.status import JobStatus
from .injob import stop_writing_to


@dataclass
class FinishPlan(CommitPlan):
    """The FINISH commit of one job: a :class:`CommitPlan` that keeps its
    title and record, for a FINISH commit of several jobs to carry."""
    title: str = ''
    outcome: str = ''
    record: dict = field(default_factory=dict)
    # the schedule record of a scratch job, whose outputs come from its
    # branches; None for other jobs
    scratch: Record | None = None


def plan_finish(ds, record: Record, job: JobStatus, own, job_status: dict,
                close_failed: bool = False) -> FinishPlan:
    """What the FINISH commit of a job saves, and its message; `own` is
    the job this process runs in, if any (see :mod:`.injob`).

    Raises
    ------
    NotMergeable
      For a scratch job whose branches cannot be merged as they are.
    """
    farm = isinstance(job, FarmStatus)
    # the Slurm log files are the farm job's own, its task logs besides
    logs = logfiles.resolved(record, job.allocation if farm else job)
    merge = None
    if record.data.get('scratch'):
        # the outputs come from the job's branches, not the work tree
        merge = plan_merge(ds, record, strict=job.phase == 'complete'
                           and not close_failed)
        outputs = sorted(merge.changes)
    else:
        outputs = output_paths(ds, record)
    data = finish_record(record, job, logs, outputs)
    if job_status.get('missing_outputs'):
        data['missing_outputs'] = job_status['missing_outputs']
    if farm:
        data.update(finish_keys(job))
        outputs = outputs + job.task_logs
    if merge:
        data.update(merge.record_keys())
    restore = None
    if own and own[0] == record.job_id:
        restore = stop_writing_to([os.path.join(ds.path, p) for p in logs])
    outcome = OUTPUTS_MISSING if job_status.get('missing_outputs') \
        else job.outcome
    title = finish_title(record.job_id, outcome)
    if job.not_known:
        job_status = dict(job_status, not_known=job.not_known)
    return FinishPlan(
        title=title, outcome=outcome, record=data,
        scratch=record if merge else None,
        key=(title + (merge.summary() if merge else ''), job_status),
        paths=logs if merge else outputs + logs,
        message=compose_message(FINISH, title, data),
        on_failure=restore, name=record.commit,
        requires=tuple(record.data.get('depends_on') or ()),
        merges=tuple(merge.parents) if merge else (),
        merged=merge.changes if merge else {},
        on_success=(lambda sha: forget(ds, [record])) if merge else None)


def output_paths(ds, record: Record) -> list[str]:
    """Declared outputs as paths to save, globs expanded."""
    return declared_paths(ds.path, record.data.get('outputs', []))


def finish_record(record: Record, job: JobStatus, logs: list[str],
                  outputs: list[str]) -> dict:
    """The FINISH record: the schedule record, the job's outcome and what
    sacct knows of its run.  `outputs` are the saved outputs, recorded
    instead of the declared globs when the schedule asked to expand them.
    """
    data = dict(record.data)
    data['schedule_commit'] = record.commit
    data['slurm_outputs'] = logs
    per_task = {t.task_id: t for t in job.tasks}

    def by_task(get):
        if record.data.get('slurm_array') is None and None in per_task:
            return get(per_task[None])
        return {str(k): get(t) for k, t in per_task.items()}

    data['state'] = by_task(lambda t: t.state)
    data['exit'] = by_task(lambda t: t.exit_code)
    data['accounting'] = by_task(lambda t: dict(
        submit=t.submit, start=t.start, end=t.end, elapsed=t.elapsed,
        nodes=t.nodes, max_rss=t.max_rss, max_vmsize=t.max_vmsize,
        alloc_cpus=t.alloc_cpus, total_cpu=t.total_cpu, req_mem=t.req_mem,
        reason=t.reason, restarts=t.restarts))
    if job.not_known:
        data['not_known'] = job.not_known
    inside = next((t for t in job.tasks if t.finished_inside), None)
    if inside is not None:
        # Slurm's word on this task is the running state it reported; what
        # is known besides is that the job script got to its finish
        data['finished_inside_job'] = True
        data['inside_job_task'] = inside.task_id
        data['inside_job_exit'] = inside.inside_exit
    if record.data.get('expand') in ('outputs', 'both'):
        data['outputs'] = outputs
    return data
