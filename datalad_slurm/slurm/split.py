"""An array job split into several jobs, each within the site's
MaxArraySize (``datalad schedule --array-split``): which task ids each part
takes, and the batch script that runs the user's job script in a part with
the task ids it would have seen in one array.

MaxArraySize limits the highest task id, not the count: a part takes task
ids whose distance from its smallest one (its offset) stays below the
limit, and is submitted with the ids minus its offset; its batch script
adds the offset back before it runs the user's script.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .jobspec import (
    compress_task_ids,
    directive_lines,
    interpreter,
)


@dataclass(frozen=True)
class Part:
    """One job of a split array: its offset and its original task ids."""
    offset: int
    tasks: tuple[int, ...]

    @property
    def local_tasks(self) -> list[int]:
        """The task ids Slurm knows the part's tasks by."""
        return [t - self.offset for t in self.tasks]

    def array_spec(self, throttle: int | None) -> str:
        """The part's ``--array``; a throttle applies to each part."""
        spec = compress_task_ids(self.local_tasks)
        return spec if throttle is None else f'{spec}%{throttle}'


def split_tasks(tasks: list[int], max_array_size: int) -> list[Part]:
    """Group the sorted task ids `tasks` into parts whose local ids stay
    below `max_array_size`, as few as can be."""
    parts: list[list[int]] = []
    for task in sorted(set(tasks)):
        if parts and task - parts[-1][0] < max_array_size:
            parts[-1].append(task)
        else:
            parts.append([task])
    return [Part(p[0], tuple(p)) for p in parts]


def part_script(part: Part, tasks: list[int], script: str | None,
                script_lines: list[str] | None, wrap: str | None) -> str:
    """The batch script of a part: the ``#SBATCH`` lines of the user's job
    script, verbatim, then the array variables as one array of `tasks`
    would have them, then the user's script (`script`, an absolute path,
    run with the interpreter of its ``#!`` line and the part's arguments)
    or the ``--wrap`` command `wrap`.

    Raises
    ------
    NotABatchScript
    """
    if script is not None:
        run = 'exec ' + shlex.join(
            [*interpreter(script, script_lines), script]) + ' "$@"'
    else:
        run = wrap
    return '\n'.join([
        '#!/bin/sh',
        f'# datalad-slurm: tasks {compress_task_ids(part.tasks)} of a split '
        f'array job (datalad schedule --array-split)',
        *directive_lines(script_lines if script is not None else None),
        *task_variables(part.offset, tasks),
        run,
        ''])


def task_variables(offset: int, tasks: list[int]) -> list[str]:
    """Shell lines that give a part's task the array variables of one
    array of `tasks`: its own id plus the part's `offset`, and the whole
    array's smallest and highest id and count."""
    return [
        f'SLURM_ARRAY_TASK_ID=$((SLURM_ARRAY_TASK_ID + {offset}))',
        f'SLURM_ARRAY_TASK_MIN={min(tasks)}',
        f'SLURM_ARRAY_TASK_MAX={max(tasks)}',
        f'SLURM_ARRAY_TASK_COUNT={len(tasks)}',
        'export SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN '
        'SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_COUNT',
    ]
