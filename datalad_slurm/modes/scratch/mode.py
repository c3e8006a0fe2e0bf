"""The scratch mode (``datalad schedule --scratch DIR``): the job runs in
a clone of its own (:mod:`.submit` wraps its batch script), and comes
back as a branch that its FINISH commit merges (:mod:`.merge`)."""

from __future__ import annotations

from ... import config
from ...records.format import Record
from ...slurm.status import JobStatus
from ..base import (
    Plan,
    Submission,
)
from . import merge
from .layout import ScratchDir
from .submit import (
    check,
    plan,
)


class Scratch:
    name = 'scratch'
    # unsaved changes elsewhere are never seen by the job, and its outputs
    # come back by its branch
    in_work_tree = False

    def __init__(self, directory: str | None = None):
        # where the clone goes, as the compute node spells it; None for
        # the mode of a record, which is not submitted again
        self.directory = directory

    def check(self, ds, argv, pwd_abs, inputs, outputs):
        check(ds, argv, pwd_abs, inputs, outputs)

    def plan(self, ds, submission: Submission) -> Plan:
        return plan(
            ds, submission.argv, submission.pwd_abs, submission.record,
            scratch=self.directory, keep=config.get(ds, config.KEEP_SCRATCH),
            script_lines=submission.script_lines,
            depends_on=submission.depends_on)

    def submitted(self, data: dict, job_id: int):
        pass

    def undo(self, ds, data: dict):
        ScratchDir.of(ds.repo, data['submission']).remove()

    def status(self, ds, record: Record, job: JobStatus) -> JobStatus:
        return job

    def failure_notes(self, ds, record: Record) -> list[str]:
        return merge.failure_notes(ds, record)
