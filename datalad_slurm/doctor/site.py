"""What ``datalad slurm-doctor`` checks on the machine it runs on: that
Slurm answers, what its accounting keeps, its limits, and whether the
repository lock holds across nodes.

Each check is one result: 'ok' where datalad-slurm works as documented,
with what a site's setting means for the user where it differs from the
defaults; 'error', with how to fix it, where something a user relies on
does not work.
"""

from __future__ import annotations

import getpass
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException

from ..backends import cli
from ..repo.fslocks import repository_lock_problem
from ..slurm.site import Site
from ..slurm.status import SlurmError


def check_slurm(timeout: float, status: dict) -> Iterator[dict]:
    """Slurm's version and settings; then the checks that need them, or
    none of them where Slurm cannot be asked."""
    try:
        cli.require_version(timeout)
        # asked each time: what a process knows of the site is cached
        ping = cli.call(['scontrol', 'ping'], timeout=timeout)
        if ' is UP' not in ping:
            raise SlurmError(f'scontrol ping says {ping.strip()!r}')
        site = cli.site(timeout)
    except SlurmError as e:
        yield get_status_dict(
            check='slurm', status='error', exception=CapturedException(e),
            message=('Slurm cannot be asked: %s; datalad schedule and '
                     'finish need sbatch, squeue and sacct on PATH and '
                     'slurmctld answering (scontrol ping)', str(e)),
            **status)
        return
    yield get_status_dict(
        check='slurm', status='ok',
        message=('Slurm %s, cluster %s: slurmctld answers',
                 cli.version(timeout), site.cluster or 'unnamed'),
        **status)
    for check in (_accounting, _comments, _limits):
        try:
            yield check(site, timeout, status)
        except SlurmError as e:
            yield get_status_dict(
                check=check.__name__.lstrip('_'), status='error',
                exception=CapturedException(e),
                message=('could not be checked: %s', str(e)), **status)


def _accounting(site: Site, timeout: float, status: dict) -> dict:
    if not site.accounting:
        return get_status_dict(
            check='accounting', status='ok',
            message=('no accounting database: finish asks slurmctld only, '
                     'which forgets a job %s after its end, and knows no '
                     'memory or CPU use; finish jobs before that (datalad '
                     'finish as the job script\'s last line, or finish '
                     '--wait)', _seconds(site.min_job_age)),
            **status)
    cli.call(['sacct', '--noheader', '--allocations', '--starttime=now',
              '--format=JobID'], timeout=timeout)
    return get_status_dict(
        check='accounting', status='ok',
        message='the accounting database (slurmdbd) answers and keeps '
                'ended jobs',
        **status)


def _comments(site: Site, timeout: float, status: dict) -> dict:
    if site.accounting and site.stores_comments:
        message = ('the accounting database keeps job comments, by which '
                   'a submission sbatch gave no answer for is found later')
    elif site.accounting:
        message = ('the accounting database keeps no job comments '
                   '(AccountingStoreFlags without job_comment): a '
                   'submission sbatch gave no answer for is found by when '
                   'and where it was submitted, which cannot tell two '
                   'such submissions of one directory apart')
    else:
        message = ('a submission sbatch gave no answer for is found while '
                   'slurmctld holds its job only')
    return get_status_dict(check='comments', status='ok', message=message,
                           **status)


def _limits(site: Site, timeout: float, status: dict) -> dict:
    limits = [f'array task ids below {site.max_array_size} (MaxArraySize)'
              if site.max_array_size else 'arrays of any size']
    if site.accounting:
        counts = sorted({
            int(value) for value in cli.call(
                ['sacctmgr', '--noheader', '--parsable2', 'show', 'assoc',
                 'where', f'user={getpass.getuser()}',
                 'format=MaxSubmit'], timeout=timeout).split()
            if value.isdigit()})
        if counts:
            limits.append(f'at most {counts[0]} jobs queued or running at '
                          f'once (MaxSubmitJobs of your association)')
    return get_status_dict(
        check='limits', status='ok',
        message=('this cluster takes %s; schedule refuses an array '
                 'beyond MaxArraySize before anything changes, and sbatch '
                 'a job beyond MaxSubmitJobs, named in the error',
                 '; '.join(limits)),
        **status)


def check_locks(git_dir: str, status: dict) -> dict:
    problem = repository_lock_problem(git_dir)
    if problem:
        return get_status_dict(check='lock', status='error',
                               message=problem, **status)
    return get_status_dict(
        check='lock', status='ok',
        message=('the file system of %s shares its locks, as far as its '
                 'mount options tell', git_dir),
        **status)


def _seconds(value: int | None) -> str:
    return f'{value} s' if value is not None else 'minutes'
