"""How a job ended, as its FINISH record tells: whether it succeeded,
which of its tasks failed, and of what."""

from __future__ import annotations

from ..slurm.status import TRANSITIONAL_STATES

# the title word of a job that completed without its declared outputs
OUTPUTS_MISSING = 'Outputs missing'

# the causes of a failure that Slurm's state names; any other failure is
# caused by its exit code (FAILED), or named by its state (CANCELLED, ...)
OUT_OF_MEMORY, TIMEOUT, NODE_FAIL = 'OUT_OF_MEMORY', 'TIMEOUT', 'NODE_FAIL'
STATE_CAUSES = (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL)
# the cause of a failure of a task that completed, in a job that left not
# all of its declared outputs
MISSING_OUTPUTS = 'MISSING_OUTPUTS'


def task_outcomes(data: dict) -> dict[str, tuple[str | None, int | None]]:
    """The state and exit code of each task of a FINISH record, by task
    key: '' for a job that is no array, the task id (or a farm job's line
    number) as text otherwise."""
    states, exits = data.get('state'), data.get('exit')
    if not isinstance(states, dict):
        return {'': (states, exits)}
    exits = exits if isinstance(exits, dict) else {}
    return {task: (state, exits.get(task)) for task, state in states.items()}


def _task_succeeded(data: dict, task: str, state: str | None,
                    exit_code: int | None) -> bool:
    # a task that finished itself before Slurm saw it end, by the exit
    # status its script passed (none: it got to the end)
    if data.get('finished_inside_job') and 'inside_job_task' in data:
        inside = data['inside_job_task']
        if task == ('' if inside is None else str(inside)) and \
                state in TRANSITIONAL_STATES:
            return data.get('inside_job_exit') in (None, 0)
    return state == 'COMPLETED' and exit_code == 0


def failed_tasks(data: dict) -> list[str]:
    """The keys (see :func:`task_outcomes`) of the tasks that did not
    complete with exit code 0; every task of a job that left not all of
    its declared outputs, which no task can be blamed for alone."""
    outcomes = task_outcomes(data)
    if data.get('missing_outputs'):
        return list(outcomes)
    return [task for task, (state, exit_code) in outcomes.items()
            if not _task_succeeded(data, task, state, exit_code)]


def record_succeeded(data: dict) -> bool:
    """Whether a FINISH record tells of a job that completed on every task
    with exit code 0 and left its declared outputs."""
    return not failed_tasks(data)


def task_causes(data: dict) -> dict[str, str]:
    """Why each failed task failed, by task key: one of
    :data:`STATE_CAUSES`, ``exit code N`` for a task that failed by its
    exit code, :data:`MISSING_OUTPUTS`, or Slurm's state otherwise."""
    outcomes = task_outcomes(data)
    causes = {}
    for task in failed_tasks(data):
        state, exit_code = outcomes[task]
        if state == 'COMPLETED' and exit_code == 0:
            causes[task] = MISSING_OUTPUTS
        elif state == 'FAILED' and exit_code is not None:
            causes[task] = f'exit code {exit_code}'
        elif state in TRANSITIONAL_STATES and \
                data.get('inside_job_exit') is not None:
            causes[task] = f"exit code {data['inside_job_exit']}"
        else:
            causes[task] = state or 'UNKNOWN'
    return causes


def slurm_causes(data: dict) -> set[str]:
    """The :data:`STATE_CAUSES` Slurm gave a job's failure: of its tasks,
    or for a farm job of the allocation that ran them."""
    farm = data.get('farm_job_state')
    if farm is not None:
        states = farm.values() if isinstance(farm, dict) else [farm]
        return {s for s in states if s in STATE_CAUSES}
    return {c for c in task_causes(data).values() if c in STATE_CAUSES}
