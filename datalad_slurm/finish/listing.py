"""``datalad finish --list-open-jobs``: each open job, with Slurm's word
on it and what it waits for."""

from __future__ import annotations

from ..records.format import Record
from ..records.index import JobIndex
from ..records.split import (
    label,
    later_parts,
)
from ..slurm.status import JobStatus
from ..util.results import shared_fields


def list_open(index: JobIndex, records: list[Record],
              statuses: dict[int, JobStatus], status: dict):
    """One result per job of `records`: its state, as Slurm's `statuses`
    tell, and the open jobs and pending reasons it waits for."""
    shared = shared_fields(status, status='ok')
    open_ = index.open
    for record in records:
        data = record.data
        job = statuses[record.job_id]
        depends_on = data.get('depends_on') or []
        # most jobs wait for nothing and have one task: no joins for them
        waits = ','.join(str(open_[c].job_id) for c in depends_on
                         if c in open_) if depends_on else ''
        reasons = {t.reason for t in job.tasks
                   if t.state == 'PENDING' and t.reason}
        reasons = ' '.join(f'({r})' for r in sorted(reasons)) \
            if reasons else ''
        state = job.describe()
        later = later_parts(data)
        yield dict(
            shared, commit=record.commit,
            outputs=data.get('outputs', []),
            slurm_job_id=record.job_id, slurm_state=state,
            slurm_later_parts=later,
            depends_on=depends_on,
            waits_for=f'{waits} {reasons}' if waits and reasons
            else waits or reasons,
            message=('job %s: %s',
                     label(record.job_id, later) if later else record.job_id,
                     state))
