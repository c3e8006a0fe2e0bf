"""Local mode: the sbatch command carried out on this machine, without
Slurm (``datalad.slurm.backend = local``).

A small task farmer does the work: a pool of workers runs a job's tasks,
each task's state in a file of its own that moves from QUEUED to RUNNING to
DONE or FAILED by atomic renames.  A job lives in
``.git/datalad-slurm/local/jobs/<id>/``; a process detached from the
datalad command that scheduled it (:mod:`.runner`) runs it, and the
backend (:mod:`.backend`) reads its state files back into the job states
the Slurm backends report.
"""
