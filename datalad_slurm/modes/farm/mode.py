"""The farm mode (``datalad schedule --tasks FILE``): the job's batch
script is the farmer, which runs a task list (:mod:`.submit`), and its
verdict is its tasks' (:mod:`.status`)."""

from __future__ import annotations

from ...records.format import Record
from ...slurm.status import JobStatus
from ..base import (
    Plan,
    Submission,
)
from .status import farm_status
from .submit import (
    FarmRequest,
    farm_dir_of,
    plan,
    recorded_log_dir,
)


class Farm:
    name = 'farm'
    in_work_tree = True

    def __init__(self, request: FarmRequest | None = None):
        # None for the mode of a record, which is not submitted again
        self.request = request

    def check(self, ds, argv, pwd_abs, inputs, outputs):
        pass

    def plan(self, ds, submission: Submission) -> Plan:
        return plan(ds, self.request, submission.argv, submission.pwd_abs,
                    submission.record, local=submission.local)

    def submitted(self, data: dict, job_id: int):
        data['farm_log_dir'] = recorded_log_dir(data, job_id)

    def undo(self, ds, data: dict):
        farm_dir_of(ds, data).remove()

    def status(self, ds, record: Record, job: JobStatus) -> JobStatus:
        return farm_status(ds, record, job)

    def failure_notes(self, ds, record: Record) -> list[str]:
        return []
