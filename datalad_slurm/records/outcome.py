"""How a job ended, as its FINISH record tells."""

from __future__ import annotations

from ..slurm.status import TRANSITIONAL_STATES

# the title word of a job that completed without its declared outputs
OUTPUTS_MISSING = 'Outputs missing'


def record_succeeded(data: dict) -> bool:
    """Whether a FINISH record tells of a job that completed on every task
    with exit code 0 and left its declared outputs; a task that finished
    itself before Slurm saw it end by the exit status its script passed
    (none: it got to the end)."""
    states, exits = data.get('state'), data.get('exit')
    if not isinstance(states, dict):
        states, exits = {'': states}, {'': exits}
    if data.get('missing_outputs'):
        return False
    inside = None
    if data.get('finished_inside_job') and 'inside_job_task' in data:
        task = data['inside_job_task']
        inside = '' if task is None else str(task)
    return all(
        data.get('inside_job_exit') in (None, 0)
        if task == inside and state in TRANSITIONAL_STATES
        else state == 'COMPLETED' and exits.get(task) == 0
        for task, state in states.items())
