"""Submitting a farm job (``datalad schedule --tasks FILE``): the task list
checked, its tasks queued in the job's directory (:mod:`.layout`), and
the sbatch command that runs the farmer (:mod:`.job`) as the job's batch
script.

The batch script is ``sbatch --wrap='exec python -m
datalad_slurm.modes.farm.job DIR'``: no script file to generate and keep,
the recorded command stays the user's sbatch options, and ``exec`` makes
the farmer the batch shell itself, the one process ``--signal=B:...`` reaches.
"""

from __future__ import annotations

import os.path as op
import shlex
from dataclasses import dataclass

from ...repo import plumbing
from ...repo.paths import is_outside
from ...slurm.jobspec import (
    log_patterns,
    option_list,
    script_index,
    sets_option,
)
from ...util.process import python_argv
from ..base import (
    Plan,
    Refused,
)
from .layout import (
    FarmDir,
    log_dir_name,
)

# Slurm tells the farmer this long before the time limit to put its running
# tasks back: time enough to end them and write their state files
DEFAULT_SIGNAL = 'B:TERM@60'


@dataclass
class FarmRequest:
    """A task list to run as one job."""
    # the task list, relative to the dataset root, and its blob at HEAD
    path: str
    blob: str
    # command by line number: the tasks this job runs
    commands: dict[int, str]
    # the line numbers of a job that runs only some of the list
    task_ids: list[int] | None
    workers: int | None
    task_timeout: float | None


def option_problem(tasks, workers, task_timeout) -> str | None:
    """What is wrong with schedule's farm options, or None."""
    if tasks is None:
        given = [name for name, value in (('--workers', workers),
                                          ('--task-timeout', task_timeout))
                 if value is not None]
        if given:
            them = 'them' if len(given) > 1 else 'it'
            return (f'{" and ".join(given)} '
                    f'{"concern" if len(given) > 1 else "concerns"} the tasks '
                    f'of a task list; give the list with --tasks FILE, or '
                    f'leave {them} out')
        return None
    if workers is not None and (isinstance(workers, bool) or
                                not isinstance(workers, int) or workers < 1):
        return (f'--workers {workers!r} is no number of workers; give a '
                f'positive whole number, or leave it out to use as many as '
                f'the allocation has CPUs')
    if task_timeout is not None and not task_timeout > 0:
        return (f'--task-timeout {task_timeout!r} is no time limit; give a '
                f'positive number of seconds')
    return None


def sbatch_problem(argv: list[str]) -> str | None:
    """Why an sbatch command cannot take a task list, or None: the farmer
    is the job's batch script."""
    end = script_index(argv)
    if end < len(argv):
        return (f'--tasks runs the task list as the job\'s batch script, so '
                f'the job script {argv[end]} cannot be given as well; leave '
                f'it out (sbatch options only), or schedule it without '
                f'--tasks')
    if any(name == 'wrap' for name, _, _ in option_list(argv[1:])):
        return ('--tasks runs the task list as the job\'s batch script, so '
                '--wrap cannot be given as well; put the command in the task '
                'list, or schedule it without --tasks')
    return None


def read_request(ds, path: str, *, workers: int | None,
                 task_timeout: float | None) -> FarmRequest:
    """Every task of the task list at `path` (relative to the root), as
    committed.

    Raises
    ------
    Refused
    """
    blob, commands = read_task_list(ds, path)
    return FarmRequest(path=path, blob=blob, commands=commands,
                       task_ids=None, workers=workers,
                       task_timeout=task_timeout)


def read_task_list(ds, path: str) -> tuple[str, dict[int, str]]:
    """The blob at HEAD and the tasks (by line number) of a task list,
    which must be committed as it is in the work tree.

    Raises
    ------
    Refused
    """
    full = op.join(ds.path, path)
    if not op.lexists(full):
        raise Refused(f'the task list {path} does not exist; write it (one '
                      f'command a line) and save it')
    if op.isdir(full):
        raise Refused(f'the task list {path} is a directory; give a file of '
                      f'one command a line')
    listed = plumbing.git(ds.repo, ['ls-tree', '-z', 'HEAD', '--', path])
    _, kind, blob = listed.partition('\t')[0].split(' ') \
        if listed else ('', '', '')
    if kind != 'blob':
        raise Refused(f'the task list {path} is not committed; save it '
                      f'(datalad save {path}), so that the schedule commit '
                      f'records the tasks the job runs')
    if plumbing.git(ds.repo, ['status', '--porcelain', '--', path]):
        raise Refused(f'the task list {path} has changes that are not '
                      f'saved; save them (datalad save {path}), so that the '
                      f'schedule commit records the tasks the job runs')
    try:
        with open(full, encoding='utf-8', errors='surrogateescape') as f:
            text = f.read()
    except OSError as e:
        raise Refused(f'cannot read the task list {path} ({e.strerror}); '
                      f'get its content first (datalad get {path})') from e
    commands = {number: line for number, line in
                enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith('#')}
    if not commands:
        raise Refused(f'the task list {path} has no tasks (blank lines and '
                      f'# comments do not count); add one command a line')
    return blob, commands


def prepare(ds, farm: FarmRequest, argv: list[str], pwd_abs: str,
            record: dict, *, local: bool) -> tuple[list[str], FarmDir]:
    """:func:`plan` the job and queue its tasks; the sbatch command and
    the job's directory.

    Raises
    ------
    Refused
    """
    planned = plan(ds, farm, argv, pwd_abs, record, local=local)
    planned.write()
    return planned.argv, FarmDir.of(ds.repo, record['submission'])


def plan(ds, farm: FarmRequest, argv: list[str], pwd_abs: str,
         record: dict, *, local: bool) -> Plan:
    """Add the farm keys to the schedule `record` (its ``submission`` mark
    names the job's directory) and return the sbatch command that runs the
    farmer with that directory, and what queues the tasks there.

    Raises
    ------
    Refused
    """
    log_parent = _log_parent(ds, argv, pwd_abs)
    directory = FarmDir.of(ds.repo, record['submission'])
    record.update(
        farm_tasks=farm.path, farm_task_blob=farm.blob,
        farm_task_ids=farm.task_ids, farm_workers=farm.workers,
        farm_task_timeout=farm.task_timeout,
        # %A until the job id is known (see recorded_log_dir)
        farm_log_dir=op.normpath(op.join(op.relpath(log_parent, ds.path),
                                         log_dir_name('%A'))))
    extra = []
    # local mode has no time limit to be signalled ahead of
    if not local and not sets_option(argv, [], '--signal'):
        extra.append(f'--signal={DEFAULT_SIGNAL}')
    wrap = 'exec ' + shlex.join(python_argv('datalad_slurm.modes.farm.job',
                                            str(directory.path)))
    return Plan(
        [*argv, *extra, f'--wrap={wrap}'],
        write=lambda: directory.create(
            {'submit_dir': pwd_abs, 'log_parent': log_parent,
             'workers': farm.workers, 'task_timeout': farm.task_timeout},
            farm.commands),
        files={str(directory.path): None})


def recorded_log_dir(data: dict, job_id: int) -> str:
    """The schedule record's ``farm_log_dir``, the job id filled in."""
    return data['farm_log_dir'].replace(log_dir_name('%A'),
                                        log_dir_name(job_id))


def _log_parent(ds, argv: list[str], pwd_abs: str) -> str:
    """Where the task logs go: the directory of the job's Slurm log (its
    stdout file), which must be one directory for the whole job, in the
    dataset."""
    is_array = any(name == 'array' for name, _, _ in option_list(argv[1:]))
    stdout = log_patterns(argv, None, is_array=is_array)[0]
    chdir = [value for name, value, _ in option_list(argv[1:])
             if name == 'chdir']
    workdir = op.normpath(op.join(pwd_abs, chdir[0] if chdir else '.'))
    parent = op.dirname(stdout)
    if '%' in parent:
        raise Refused(f'the task logs go next to the job\'s Slurm log, in one '
                      f'directory for all its tasks, but the directory of '
                      f'--output={stdout} is a pattern; give --output a '
                      f'directory without %')
    parent = op.normpath(op.join(workdir, parent))
    if is_outside(op.relpath(parent, ds.path)):
        raise Refused(f'the task logs go next to the job\'s Slurm log, in '
                      f'{parent}, outside the dataset, where finish cannot '
                      f'save them; give --output a file in the dataset')
    if not op.isdir(parent):
        raise Refused(f'the directory of the job\'s Slurm log, {parent}, '
                      f'does not exist (Slurm does not create it); create '
                      f'it in the dataset, e.g. with a .gitkeep')
    return parent


def farm_dir_of(ds, data: dict) -> FarmDir:
    """The directory of the farm job a schedule record describes."""
    return FarmDir.of(ds.repo, data['submission'])


def is_farm(data: dict) -> bool:
    return bool(data.get('farm_tasks'))
