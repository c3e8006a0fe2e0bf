"""What a mode of running a job provides, and the plain mode.

A mode says where and how a job runs: in the dataset's work tree (the
plain mode, here), as a task list that the farmer runs (:mod:`.farm`), or
in a clone of its own (:mod:`.scratch`).  Submission asks a mode to
:meth:`~Mode.check` a job before anything changes and to
:meth:`~Mode.plan` it: the sbatch command, and the job's own files, which
a submission writes with the repository lock held (:meth:`Plan.write`) and
a dry run never writes; a submission that never reached Slurm is undone
by :meth:`~Mode.undo`; finish asks the mode
of a record for the job's :meth:`~Mode.status` and for notes on its
failure.  Which mode a request or a record has, :mod:`.select` says.
"""

from __future__ import annotations

from dataclasses import (
    dataclass,
    field,
)
from typing import (
    Callable,
    Protocol,
)

from ..records.format import Record
from ..slurm.status import JobStatus


class Refused(ValueError):
    """A job that its mode cannot submit; the message says what to do."""


@dataclass
class Submission:
    """What a mode is given of a submission it prepares."""
    # the sbatch command, placeholders filled in, dependencies added
    argv: list[str]
    # the directory it is submitted from
    pwd_abs: str
    # the SCHEDULE record to be committed: the mode adds its keys; its
    # ``submission`` mark names the job's directory
    record: dict
    # the job script's lines, where sbatch reads one
    script_lines: list[str] | None
    # the records of the open jobs it waits for
    depends_on: list[Record]
    # submitted by local mode, which has no time limit
    local: bool


@dataclass
class Plan:
    """How a mode submits a job: the sbatch command, and what writes the
    job's own files, which must exist before sbatch runs."""
    argv: list[str]
    write: Callable[[], None] = field(default=lambda: None)
    # the files `write` writes, by path, with their content where it
    # is text a user may want to see (a batch script); None otherwise
    files: dict[str, str | None] = field(default_factory=dict)


class Mode(Protocol):
    name: str
    # the job reads and writes the dataset's work tree: nothing there may
    # be unsaved (unless --explicit), and its outputs are made writable
    in_work_tree: bool

    def check(self, ds, argv: list[str], pwd_abs: str, inputs: list[str],
              outputs: list[str]):
        """Refuse what the mode cannot run, before anything changes.

        Raises
        ------
        Refused
        """

    def plan(self, ds, submission: Submission) -> Plan:
        """The sbatch command to submit and the job's own files, not yet
        written; the mode's keys are added to the submission's record.

        Raises
        ------
        Refused
        """

    def submitted(self, data: dict, job_id: int):
        """Complete the mode's keys of the SCHEDULE record `data` with what
        only the job id tells."""

    def undo(self, ds, data: dict):
        """Remove what :meth:`plan`'s write wrote for the SCHEDULE record
        `data`, whose job never reached Slurm."""

    def status(self, ds, record: Record, job: JobStatus) -> JobStatus:
        """The job's status as the mode sees it, from Slurm's `job`."""

    def failure_notes(self, ds, record: Record) -> list[str]:
        """What the job noted of why it failed, beyond Slurm's word."""


class Plain:
    """A job that runs the user's batch script in the work tree."""
    name = 'plain'
    in_work_tree = True

    def check(self, ds, argv, pwd_abs, inputs, outputs):
        pass

    def plan(self, ds, submission: Submission) -> Plan:
        return Plan(submission.argv)

    def submitted(self, data: dict, job_id: int):
        pass

    def undo(self, ds, data: dict):
        pass

    def status(self, ds, record: Record, job: JobStatus) -> JobStatus:
        return job

    def failure_notes(self, ds, record: Record) -> list[str]:
        return []
