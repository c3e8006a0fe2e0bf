"""Local mode: the sbatch command carried out on this machine, without
Slurm (``datalad.slurm.backend = local``).

A small task farmer does the work: a pool of workers runs a job's tasks,
each task's state in a file of its own that moves from QUEUED to RUNNING to
DONE or FAILED by atomic renames.  A job lives in
``.git/datalad-slurm/local/jobs/<id>/``; a process detached from the
datalad command that scheduled it (:mod:`.runner`) runs it, and the
backend (:mod:`.backend`) reads its state files back into the job states
the Slurm backends report.

Why not GNU parallel, which runs task lists with ``--jobs``, ``--joblog``,
``--timeout`` and ``--resume-failed``: it is a system package (root to
install; not on a contributor's laptop or this suite's no-root tier, where
local mode must run), its joblog is one appended file per invocation, not
a state per task that a reader sees whole and several farmers can take
tasks from by renaming, and what local mode needs besides (a bound shared
by separate jobs, waiting for other jobs, Slurm's environment and log file
names per task, telling a dead runner from a live one) would still be ours
to write around it.  The standard library's subprocess, threads, flock and
rename do all of it.
"""
