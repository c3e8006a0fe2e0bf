"""Scratch mode (``datalad schedule --scratch DIR``): a job that works in a
clone of its own on node-local or scratch storage, and comes back to the
dataset as a branch that its FINISH commit merges.

``submit``
  the schedule side: the batch script that wraps the user's job script,
  and the job's directory under ``.git/``;
``layout``
  that directory, shared by the job and finish: the job's spec, what each
  task delivered, and why a task could not run;
``clone``
  inside the job: the clone, its outputs made writable, the delivery of its
  work (commit, annexed content made known to the dataset, the branch
  pushed), and its removal;
``upstream``
  inside the job: the outputs of the jobs it depends on, brought in;
``job``
  the batch script's process (``python -m datalad_slurm.modes.scratch.job``);
``injob``
  ``datalad finish $SLURM_JOB_ID`` in the job script: delivery first;
``merge``
  the finish side: what the FINISH merge takes from the job's branches.
"""
