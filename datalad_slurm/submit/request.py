"""What a submission asks for: a :class:`Request`, made from schedule's
options or from the record of a job to submit again.
"""

from __future__ import annotations

import os.path as op
import shlex
from dataclasses import (
    dataclass,
    field,
)

from datalad.utils import ensure_list

from .. import config
from ..modes.base import (
    Mode,
    Plain,
    Refused,
)
from ..modes.farm.status import rerun_request
from ..modes.farm.submit import (
    is_farm,
    option_problem,
    read_request,
    sbatch_problem,
)
from ..modes.select import for_request
from ..records import logfiles
from ..records.format import (
    RESCHEDULE,
    SCHEDULE,
)
from ..repo.paths import (
    OutsideDataset,
    root_relative,
    spelled_within,
)
from .cmdline import (
    normalize,
    working_directory,
)


@dataclass
class Request:
    """A job to submit, as schedule or reschedule asks for it."""
    # the sbatch command as recorded (placeholders not yet filled in)
    cmd: str
    # the submission directory, relative to the dataset root
    pwd: str
    # paths or globs relative to the dataset root
    inputs: list[str]
    outputs: list[str]
    extra_inputs: list[str] = field(default_factory=list)
    # files to make writable like outputs, without recording them
    extra_outputs: list[str] = field(default_factory=list)
    mode: Mode = field(default_factory=Plain)
    message: str | None = None
    # the schedule commits this submission repeats
    chain: list[str] = field(default_factory=list)
    kind: str = SCHEDULE
    expand: str | None = None
    # accept a dataset with unsaved changes
    explicit: bool = False
    # open jobs (ids or schedule commits) to start after, besides those
    # whose outputs are among the inputs
    after: list[str] = field(default_factory=list)
    action: str = 'schedule'
    # what a job submitted again asks more of than before: option name to
    # [old value, new value]
    raised: dict[str, list[str]] = field(default_factory=dict)


def sbatch_argv(cmd) -> list[str]:
    """The argument list of an sbatch command given as a list or a string.

    Raises
    ------
    Refused
      For a command that is no sbatch invocation, or cannot be split.
    """
    command = normalize(cmd) if cmd else ''
    try:
        argv = shlex.split(command)
    except ValueError as e:
        # an unbalanced quote, given as a string from Python
        raise Refused(f'cannot split the command {command!r} into '
                      f'arguments ({e}); check its quotes') from e
    if not argv or op.basename(argv[0]) != 'sbatch':
        raise Refused(
            f'not an sbatch command: {command!r}; schedule submits batch '
            f'jobs, as in: datalad schedule -o OUTPUT sbatch job.sh')
    return argv


def from_schedule(ds, cmd, *, dataset, inputs, outputs, expand, after,
                  explicit, message, tasks, workers, task_timeout,
                  scratch) -> Request:
    """The request of :func:`datalad schedule`'s arguments.

    Raises
    ------
    Refused
    """
    argv = sbatch_argv(cmd)
    problem = option_problem(tasks, workers, task_timeout) or (
        sbatch_problem(argv) if tasks is not None else None)
    if problem:
        raise Refused(problem)
    # outside the dataset (given by path), the job runs from its root
    pwd = spelled_within(ds.path, working_directory(dataset)) or ds.path
    paths = {}
    for name, specs in (('inputs', inputs), ('outputs', outputs),
                        ('tasks', tasks)):
        try:
            paths[name] = root_relative(ds.path, pwd, ensure_list(specs))
        except OutsideDataset as e:
            raise Refused(f'{name.rstrip("s")} {str(e)!r} lies outside the '
                          f'dataset {ds.path}; a job can only record paths '
                          f'within it') from e
    farm = read_request(ds, paths['tasks'][0], workers=workers,
                        task_timeout=task_timeout) \
        if tasks is not None else None
    if scratch is None:
        # set empty (datalad -c datalad.slurm.scratch=), a site's default
        # is off for this call
        scratch = config.get(ds, config.SCRATCH) or None
    if scratch is not None and not scratch.strip():
        raise Refused("--scratch names no directory; give one, such as "
                      "'$TMPDIR', or leave it out")
    return Request(
        cmd=normalize(cmd), pwd=op.relpath(pwd, ds.path),
        inputs=paths['inputs'], outputs=paths['outputs'],
        mode=for_request(farm, scratch), message=message, expand=expand,
        explicit=explicit, after=ensure_list(after))


def from_record(ds, data: dict, *, message: str | None, all_tasks: bool,
                after: list[str], cmd: str | None = None,
                raised: dict | None = None) -> Request:
    """The request that submits the job of FINISH record `data` again:
    of a farm job, the tasks that did not complete (or, with `all_tasks`,
    the whole list as it is now); with `cmd` instead of the recorded
    command, which asks for what `raised` says.

    Raises
    ------
    Refused
    """
    farm = rerun_request(ds, data, all_tasks) if is_farm(data) else None
    return Request(
        cmd=cmd or data['cmd'], pwd=data['pwd'], inputs=data['inputs'],
        extra_inputs=data.get('extra_inputs') or [],
        outputs=data['outputs'], extra_outputs=logfiles.fixed(data),
        mode=for_request(farm, data.get('scratch')),
        message=message or data.get('message'),
        chain=list(data.get('chain') or []) + [data['schedule_commit']],
        kind=RESCHEDULE, expand=data.get('expand'), after=after,
        action='reschedule', raised=dict(raised or {}))
