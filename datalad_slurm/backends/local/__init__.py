"""Local mode: the sbatch command carried out on this machine, without
Slurm (``datalad.slurm.backend = local``).

:mod:`.sbatch` reads the command line as sbatch would, :mod:`.ids` gives
the job an id, and the job lives in
``.git/datalad-slurm/local/jobs/<id>/`` (:mod:`.jobs`).  A process
detached from the datalad command that scheduled it (:mod:`.runner`) runs
its tasks with the task pool that farm jobs use too
(:mod:`datalad_slurm.pool`), and the backend (:mod:`.backend`) reads their
state files back into the job states the Slurm backends report.
"""
