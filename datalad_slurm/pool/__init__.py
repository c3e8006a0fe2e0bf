"""The task pool that runs a farm job's task list and a local job's tasks:
state files per task (:mod:`.tasks`), worker slots shared by a dataset's
local jobs (:mod:`.slots`), and the farmer that runs them
(:mod:`.farmer`).

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
