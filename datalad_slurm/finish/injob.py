"""Finishing a job from inside itself: ``datalad finish $SLURM_JOB_ID`` as
the last line of a job script."""

from __future__ import annotations

import os
from typing import Callable

from ..slurm.status import (
    JobStatus,
    TaskStatus,
    add_task,
)


def own_task_finished(job: JobStatus, task_id: int | None,
                      exit_status: int | None):
    """``datalad finish $SLURM_JOB_ID`` as a job script's last line: the
    script got there, so its work has ended (with `exit_status`, if the
    script passed one), though Slurm still sees the job running.  Slurm's
    own word on the task is kept as it is."""
    own = next((t for t in job.tasks if t.task_id == task_id), None)
    if own is None:
        # not reported yet; this process runs inside it
        own = TaskStatus(task_id=task_id, state='RUNNING')
        add_task(job, own)
    own.finished_inside, own.inside_exit = True, exit_status
    if task_id in job.missing_tasks:
        job.missing_tasks.remove(task_id)


def stop_writing_to(paths: list[str]) -> Callable[[], None]:
    """Inside a job, this process's output goes to the job's log file;
    silence it before the log is saved, so that the saved log is final.
    Returns what undoes it, for when the log is not saved after all and a
    failure must reach the log."""
    logs = set()
    for path in paths:
        try:
            st = os.stat(path)
            logs.add((st.st_dev, st.st_ino))
        except OSError:
            continue
    saved = {}
    devnull = None
    for fd in (1, 2):
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in logs:
            devnull = devnull or os.open(os.devnull, os.O_WRONLY)
            saved[fd] = os.dup(fd)
            os.dup2(devnull, fd)
    if devnull is not None:
        os.close(devnull)

    def restore():
        while saved:
            fd, original = saved.popitem()
            os.dup2(original, fd)
            os.close(original)
    return restore
