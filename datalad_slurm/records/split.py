"""The record of an array job submitted as several jobs
(``schedule --array-split``, see :mod:`datalad_slurm.slurm.split`), read
as one job: its parts' job ids, what Slurm is asked of each, and their
answers folded into one status under the original task ids.

The record's ``slurm_job_id`` is the first part's, ``slurm_array`` all
original task ids, and ``slurm_array_parts`` lists each part's job id,
offset (what its local task ids are below the original ones) and original
task ids.
"""

from __future__ import annotations

from dataclasses import replace

from ..slurm.status import (
    LOST,
    Expected,
    JobStatus,
    TaskStatus,
    slurm_time,
)
from .format import Record

PARTS = 'slurm_array_parts'


def parts(data: dict) -> list[dict]:
    """The parts of a split job's record; none for any other job."""
    return data.get(PARTS) or []


def job_ids(data: dict) -> list[int]:
    """Every job id a record's job has in Slurm."""
    return [p['job_id'] for p in parts(data)] or [data['slurm_job_id']]


def by_job_id(records) -> dict[int, Record]:
    """Each of `records` by every job id its job has in Slurm: a split
    array's by each part's."""
    return {i: r for r in records for i in job_ids(r.data)}


def announced_as_recorded(announced: dict[int, list], records,
                          ) -> dict[int, list]:
    """Announced (task id, exit status) pairs by job id (see
    :func:`datalad_slurm.finish.announcements.announced_tasks`) by the
    job ids of `records` instead: a split array's parts announce under
    their own ids, and their tasks under the original ids already."""
    recorded = by_job_id(records)
    found: dict[int, list] = {}
    for job_id, tasks in announced.items():
        record = recorded.get(job_id)
        found.setdefault(record.job_id if record else job_id,
                         []).extend(tasks)
    return found


def later_parts(data: dict) -> list[int]:
    """The job ids of a split job's parts after the first (whose id is
    the record's): what the listings show besides."""
    return job_ids(data)[1:]


def label(job_id, later: list[int] | None) -> str:
    """A job's id as listings show it: a split job's with its later parts'
    ids, '101+102'."""
    return '+'.join(map(str, [job_id, *(later or [])]))


def part_ids(data: dict, task_id: int | None) -> tuple[int, int | None]:
    """(job id, task id) under which Slurm knows the original task
    `task_id` of the record's job."""
    for part in parts(data):
        if task_id in part['tasks']:
            return part['job_id'], task_id - part['offset']
    return data['slurm_job_id'], task_id


def original_task(data: dict, job_id: int, task_id: int | None,
                  ) -> int | None:
    """The original id of task `task_id` of part `job_id`."""
    for part in parts(data):
        if part['job_id'] == job_id and task_id is not None:
            return task_id + part['offset']
    return task_id


def as_recorded(records: list[Record], own: tuple[int, int | None] | None,
                ) -> tuple[int, int | None] | None:
    """(job id, task id) of the job this process runs in (`own`) as the
    record among `records` names it: a part of a split array by the first
    part's id.  The task id is the original one already: the part's batch
    script set it so."""
    if own is not None:
        for record in records:
            if own[0] in job_ids(record.data):
                return record.job_id, own[1]
    return own


def expected(record: Record) -> dict[int, Expected]:
    """What Slurm is asked of each job of `record`, by job id."""
    whole = Expected.of_record(record.data)
    found = {}
    for part in parts(record.data):
        identity = whole.identity
        if identity is not None and part.get('slurm_submit_time'):
            identity = replace(identity, submit=slurm_time(
                part['slurm_submit_time']))
        found[part['job_id']] = replace(
            whole, identity=identity,
            tasks=[t - part['offset'] for t in part['tasks']])
    return found or {record.job_id: whole}


def fold(record: Record, statuses: dict[int, JobStatus]) -> JobStatus:
    """The parts' statuses in `statuses` as one status of the record's job,
    under the original task ids: a part Slurm knows nothing of counts as
    lost, unless Slurm could not be asked all it knows."""
    whole = JobStatus(record.job_id)
    for part in parts(record.data):
        job = statuses[part['job_id']]
        offset = part['offset']
        whole.tasks.extend(
            replace(t, task_id=None if t.task_id is None
                    else t.task_id + offset) for t in job.tasks)
        whole.missing_tasks.extend(t + offset for t in job.missing_tasks)
        if not job.tasks:
            if job.unanswered:
                whole.missing_tasks.extend(part['tasks'])
            else:
                whole.tasks.extend(TaskStatus(task_id=t, state=LOST)
                                   for t in part['tasks'])
        whole.unanswered = whole.unanswered or job.unanswered
        whole.not_known = whole.not_known or job.not_known
        whole.unknown_to = job.unknown_to
    whole.tasks.sort(key=lambda t: -1 if t.task_id is None else t.task_id)
    whole.missing_tasks = sorted(set(whole.missing_tasks))
    return whole


def folded(records: list[Record], statuses: dict[int, JobStatus],
           ) -> dict[int, JobStatus]:
    """`statuses` of every job id of `records` as one status per record,
    by its ``slurm_job_id``."""
    result = dict(statuses)
    for record in records:
        if not parts(record.data):
            continue
        if not all(i in statuses for i in job_ids(record.data)):
            continue
        for i in job_ids(record.data):
            result.pop(i, None)
        result[record.job_id] = fold(record, statuses)
    return result
