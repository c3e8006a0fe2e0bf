"""The cluster a job goes to, where a site runs several behind one login
node: ``sbatch -M NAME`` (``--clusters``, an ``#SBATCH -M`` line, or
``SLURM_CLUSTERS``) sends it to another cluster than the one of this
machine's slurm.conf. Such a job is recorded with the option, and asked
about on its cluster (squeue, sacct ``-M``); one that names several
clusters, to go where it starts first, is refused, since its record
must say where it is."""

from __future__ import annotations

from ..records.format import Record
from ..slurm.jobspec import option_value


def cluster_option(argv: list[str], script_lines: list[str] | None,
                   environ: dict[str, str]) -> str | None:
    """The cluster named for the sbatch command `argv`: on its command
    line, in the job script's ``#SBATCH`` lines, or in the environment
    sbatch reads; None for the cluster of this machine's slurm.conf."""
    given = option_value(argv, script_lines, '--clusters', '-M')
    return (environ.get('SLURM_CLUSTERS') if given is None else given) \
        or None


def cluster_problem(option: str | None) -> str | None:
    """Why a job cannot be followed on the clusters `option` names."""
    if option is None or (',' not in option and option != 'all'):
        return None
    return (f'the job names several clusters (-M {option}), for Slurm to '
            f'send it where it starts first, but its record must say where '
            f'it runs: name one cluster')


def dependency_problem(cluster: str | None, depends: list[Record],
                       default: str | None) -> str | None:
    """Why a job on `cluster` (None: `default`, this machine's) cannot
    wait for the jobs `depends`: Slurm has no dependencies between the jobs
    of different clusters."""
    mine = cluster or default
    for record in depends:
        theirs = record.data.get('slurm_cluster') or \
            record.data.get('slurm_cluster_option') or default
        if theirs != mine:
            return (f'the job would run on cluster {mine}, and waits for '
                    f'job {record.job_id}, which runs on cluster {theirs}: '
                    f'Slurm cannot make a job wait for one on another '
                    f'cluster; schedule it on {theirs}, or after that job '
                    f'is finished')
    return None
