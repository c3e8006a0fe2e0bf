"""What a failed job asks for when it is submitted again: only its failed
array tasks (``reschedule --failed``), and more memory or time where Slurm
ended it for want of them (``--more-memory``, ``--more-time``).

The new values go on the sbatch command line, which overrides the job
script's ``#SBATCH`` lines; the new record's ``cmd`` is that command, and
its ``raised`` says what was raised, from what.
"""

from __future__ import annotations

import os.path as op
from dataclasses import (
    dataclass,
    field,
)

from ..modes.base import Refused
from ..modes.farm.submit import is_farm
from ..records.outcome import (
    OUT_OF_MEMORY,
    TIMEOUT,
    failed_tasks,
    slurm_causes,
    task_causes,
)
from ..slurm.jobspec import (
    SIZE,
    UNLIMITED_TIMES,
    compress_task_ids,
    format_memory,
    format_time_limit,
    job_script_head,
    memory_bytes,
    option_value,
    set_options,
    time_limit_seconds,
)
from .request import sbatch_argv

# sbatch's memory options, the one a job gives raised (they exclude each
# other)
_MEMORY_OPTIONS = ('--mem', '--mem-per-cpu', '--mem-per-gpu')


@dataclass
class Retry:
    """How to submit a failed job again: only the failed tasks, and with
    what more."""
    failed_only: bool = False
    more_memory: float | None = None
    more_time: float | None = None

    def raises(self, causes: set[str]) -> set[str]:
        """Which of a failed job's `causes` this retry raises the
        request of."""
        return {cause for cause, factor in ((OUT_OF_MEMORY, self.more_memory),
                                            (TIMEOUT, self.more_time))
                if factor is not None and cause in causes}


@dataclass
class Retried:
    """The command a job is submitted again with, and what was raised in
    it: option name (without dashes) to [old value, new value]."""
    cmd: str
    raised: dict[str, list[str]] = field(default_factory=dict)


def plan(ds, data: dict, retry: Retry, *, named: bool) -> Retried:
    """The command that submits the job of FINISH record `data` again as
    `retry` asks.  A factor for a job that did not run out of what it
    raises is refused where the job was `named`, and has no effect on a
    job of a range.

    Raises
    ------
    Refused
    """
    job = data['slurm_job_id']
    causes = slurm_causes(data)
    argv = sbatch_argv(data['cmd'])
    script_lines = job_script_head(
        argv, op.normpath(op.join(ds.path, data['pwd'])))
    options = []
    raised = {}
    if retry.failed_only:
        options.extend(_failed_array(data, argv, script_lines))
    for factor, cause, raise_ in (
            (retry.more_memory, OUT_OF_MEMORY, _raise_memory),
            (retry.more_time, TIMEOUT, _raise_time)):
        if factor is None:
            continue
        if cause not in causes:
            if named:
                raise Refused(
                    f'job {job} did not end {cause} '
                    f'({_states(data)}); '
                    f'--more-{"memory" if cause == OUT_OF_MEMORY else "time"}'
                    f' raises what a job ran out of: leave it out')
            continue
        long, old, new = raise_(data, argv, script_lines, factor)
        options.append((long, None, new))
        raised[long.lstrip('-')] = [old, new]
    cmd = set_options(data['cmd'], options) if options else data['cmd']
    return Retried(cmd=cmd, raised=raised)


def _states(data: dict) -> str:
    causes = sorted(set(task_causes(data).values()))
    return ', '.join(causes) or 'it completed'


def _failed_array(data: dict, argv: list[str], script_lines):
    """The --array option of only the failed tasks of an array job, where
    some of its tasks completed; a farm job runs only its failed tasks
    anyway."""
    tasks = data.get('slurm_array')
    if not tasks or is_farm(data):
        return []
    failed = sorted(int(t) for t in failed_tasks(data))
    if not failed or len(failed) == len(tasks):
        return []
    spec = option_value(argv, script_lines, '--array', '-a') or ''
    _, percent, throttle = spec.partition('%')
    return [('--array', '-a',
             compress_task_ids(failed) + (f'%{throttle}' if percent
                                          else ''))]


def _raise_memory(data: dict, argv, script_lines, factor: float):
    """(option, old value, raised value) of the memory the job asked for,
    or, where it asked none, of what Slurm gave it (sacct's ReqMem)."""
    job = data['slurm_job_id']
    for long in _MEMORY_OPTIONS:
        old = option_value(argv, script_lines, long)
        if old is not None:
            break
    else:
        long, old = _given_memory(data)
    size = memory_bytes(old)
    if not size:
        raise Refused(
            f'job {job} ran out of memory, but its memory request '
            f'{long}={old} is no amount to raise (0 is all of a node\'s); '
            f'give its script an #SBATCH --mem line')
    return long, old, format_memory(size * factor)


def _given_memory(data: dict) -> tuple[str, str]:
    """The memory option and value sacct says the job was given (ReqMem,
    per node or per CPU) where it asked none: the largest of its tasks
    that ran out of memory."""
    accounting = data.get('accounting') or {}
    if data.get('slurm_array') or isinstance(data.get('state'), dict):
        causes = task_causes(data)
        accounting = [a for t, a in accounting.items()
                      if causes.get(t) == OUT_OF_MEMORY and a]
    else:
        accounting = [accounting]
    given = []
    for acct in accounting:
        match = SIZE.fullmatch(acct.get('req_mem') or '')
        if match and memory_bytes(match['n'] + match['unit']):
            given.append((memory_bytes(match['n'] + match['unit']),
                          match['per'], match['n'] + match['unit']))
    if not given:
        raise Refused(
            f"job {data['slurm_job_id']} ran out of memory, but asked for "
            f"none (--mem) and its record has no memory Slurm gave it "
            f"(ReqMem) to raise; give its script an #SBATCH --mem line")
    _, per, old = max(given)
    return ('--mem-per-cpu' if per == 'c' else '--mem'), old


def _raise_time(data: dict, argv, script_lines, factor: float):
    """(option, old value, raised value) of the job's time limit."""
    job = data['slurm_job_id']
    old = option_value(argv, script_lines, '--time', '-t')
    if old is None:
        raise Refused(
            f'job {job} timed out under its partition\'s default time '
            f'limit, as it asked for none (--time); give its script an '
            f'#SBATCH --time line to raise')
    secs = time_limit_seconds(old)
    if old.strip().upper() in UNLIMITED_TIMES or not secs:
        raise Refused(
            f'job {job} timed out, but its time limit --time={old} is no '
            f'duration to raise; give its script an #SBATCH --time line of '
            f'minutes or [days-]hours:minutes:seconds')
    return '--time', old, format_time_limit(secs * factor)
