"""``datalad finish --list-open-jobs``: each open job, with Slurm's word
on it and what it waits for."""

from __future__ import annotations

from datalad.interface.results import get_status_dict

from ..records.format import Record
from ..records.index import JobIndex
from ..records.split import (
    label,
    later_parts,
)
from ..slurm.status import JobStatus


def list_open(index: JobIndex, records: list[Record],
              statuses: dict[int, JobStatus], status: dict):
    """One result per job of `records`: its state, as Slurm's `statuses`
    tell, and the open jobs and pending reasons it waits for."""
    for record in records:
        job = statuses[record.job_id]
        waits = [str(index.open[c].job_id)
                 for c in record.data.get('depends_on') or []
                 if c in index.open]
        reasons = sorted({t.reason for t in job.tasks
                          if t.state == 'PENDING' and t.reason})
        state = job.describe()
        yield get_status_dict(
            status='ok', commit=record.commit,
            outputs=record.data.get('outputs', []),
            slurm_job_id=record.job_id, slurm_state=state,
            slurm_later_parts=later_parts(record.data),
            depends_on=record.data.get('depends_on') or [],
            waits_for=' '.join(filter(None, [
                ','.join(waits), ' '.join(f'({r})' for r in reasons)])),
            message=('job %s: %s', label(record.job_id,
                                         later_parts(record.data)), state),
            **status)
