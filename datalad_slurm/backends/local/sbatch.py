"""The sbatch command line as local mode reads it: which options it
honours, and which it cannot (named in a warning, never dropped silently).
"""

from __future__ import annotations

import os.path as op
from dataclasses import dataclass

from ...slurm.jobspec import (
    directives,
    expand_task_ids,
    log_patterns,
    option_list,
    script_head,
    script_index,
)
from ...slurm.status import SlurmError

# what local mode does as Slurm would; 'parsable' and 'comment' are what
# datalad-slurm itself adds, 'quiet' and 'verbose' concern sbatch's own
# messages only
HONOURED = frozenset({
    'array', 'output', 'error', 'job-name', 'chdir', 'wrap', 'dependency',
    'kill-on-invalid-dep', 'comment', 'parsable', 'open-mode', 'quiet',
    'verbose',
})

# options with which sbatch submits no job at all
NO_JOB = frozenset({'test-only', 'help', 'usage', 'version'})


@dataclass
class Request:
    """A local submission: sbatch's options (the command line's over the
    ``#SBATCH`` lines'), and the job script or ``--wrap`` command."""
    options: dict[str, str | None]
    # sbatch's own part of the command line
    sbatch_argv: list[str]
    script: str | None
    args: list[str]
    script_lines: list[str] | None
    # options as given that local mode cannot honour
    unhonoured: list[str]
    array: list[int] | None
    # the %N of --array: at most N tasks at once
    throttle: int | None
    # the jobs of --dependency=afterok
    after: list[int]

    @property
    def name(self) -> str:
        # Slurm's default: the script's file name
        return self.options.get('job-name') or (
            op.basename(self.script) if self.script else 'wrap')

    def log_patterns(self) -> list[str]:
        return log_patterns(self.sbatch_argv, self.script_lines,
                            is_array=self.array is not None)


def _array(spec: str | None) -> list[int] | None:
    if spec is None:
        return None
    try:
        tasks = expand_task_ids(spec)
    except ValueError as e:
        raise SlurmError(f'--array={spec} is no array specification '
                         f'({e})') from e
    if not tasks:
        raise SlurmError(f'--array={spec} names no tasks')
    return tasks


def _throttle(spec: str | None) -> int | None:
    _, percent, limit = (spec or '').partition('%')
    if not percent:
        return None
    if not limit.isdigit() or int(limit) < 1:
        raise SlurmError(f'--array={spec}: the throttle after % must be a '
                         f'positive number')
    return int(limit)


def _after(spec: str | None) -> list[int]:
    """Job ids of ``afterok:ID[:ID][,afterok:ID]``; any other kind is
    refused: running a job too early would be worse than not running it.
    """
    ids = []
    for part in filter(None, (spec or '').split(',')):
        kind, _, rest = part.partition(':')
        numbers = rest.split(':')
        if kind != 'afterok' or not all(n.isdigit() for n in numbers):
            raise SlurmError(f'--dependency={spec}: local mode honours only '
                             f'afterok:ID[:ID...], every one to hold')
        ids.extend(int(n) for n in numbers)
    return ids


def parse(argv: list[str], cwd: str) -> Request:
    """Read an sbatch command line as sbatch would, a job script relative
    to `cwd`.

    Raises
    ------
    SlurmError
      What local mode cannot carry out as Slurm would, with sbatch's own
      words where sbatch would refuse it too.
    """
    end = script_index(argv)
    script = argv[end] if end < len(argv) else None
    lines = _script_lines(script, cwd) if script is not None else None
    options, spelled = _options(argv[1:end], lines)
    _check(options, spelled, script)
    return Request(options=options, sbatch_argv=argv[:end], script=script,
                   args=argv[end + 1:] if script is not None else [],
                   script_lines=lines,
                   unhonoured=_unhonoured(options, spelled),
                   array=_array(options.get('array')),
                   throttle=_throttle(options.get('array')),
                   after=_after(options.get('dependency')))


def _script_lines(script: str, cwd: str) -> list[str]:
    lines = script_head(op.join(cwd, script))
    if lines is None:
        raise SlurmError(f'sbatch: error: Unable to open file {script}')
    if not lines or not lines[0].startswith('#!'):
        raise SlurmError(
            f'sbatch: error: {script} does not look like a batch script: '
            f'its first line must start with #! followed by the path to an '
            f'interpreter')
    return lines


def _options(tokens: list[str], lines: list[str] | None,
             ) -> tuple[dict[str, str | None], dict[str, str]]:
    """The options by long name, the command line's over the ``#SBATCH``
    lines', and each as it was given."""
    options: dict[str, str | None] = {}
    spelled: dict[str, str] = {}
    for name, value, as_given in option_list(tokens) + \
            option_list(directives(lines or [])):
        if name not in options:
            options[name] = value
            spelled[name] = as_given
    return options, spelled


def _check(options: dict, spelled: dict, script: str | None):
    if script is None and not options.get('wrap'):
        raise SlurmError('sbatch: error: no batch script and no --wrap '
                         'command given')
    if script is not None and 'wrap' in options:
        raise SlurmError('sbatch: error: a batch script and --wrap cannot '
                         'both be given')
    for name in sorted(NO_JOB.intersection(options)):
        raise SlurmError(f'{spelled[name]}: sbatch submits no job with it, so '
                         f'there is nothing to schedule')


def _unhonoured(options: dict, spelled: dict) -> list[str]:
    unhonoured = [spelled[n] for n in options if n not in HONOURED and not (
        # the job runs with the environment it was scheduled in
        n == 'export' and (options[n] or '').upper() == 'ALL')]
    if (options.get('kill-on-invalid-dep') or '').lower() == 'no':
        # the runner cannot wait for ever for a job that never ends
        unhonoured.append(f'{spelled["kill-on-invalid-dep"]} (a job whose '
                          f'dependency failed is cancelled)')
    return unhonoured
