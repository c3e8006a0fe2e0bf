"""Which mode a submission asks for, and which a record was submitted in.
"""

from __future__ import annotations

from .base import (
    Mode,
    Plain,
    Refused,
)
from .farm.mode import Farm
from .farm.submit import (
    FarmRequest,
    is_farm,
)
from .scratch.mode import Scratch


def for_request(farm: FarmRequest | None, scratch: str | None) -> Mode:
    """The mode of a job that runs the task list `farm`, or in a clone
    under `scratch`, or neither.

    Raises
    ------
    Refused
    """
    if farm is not None and scratch is not None:
        raise Refused('--scratch cannot run a task list (--tasks) yet; '
                      'schedule it without --scratch')
    if farm is not None:
        return Farm(farm)
    if scratch is not None:
        return Scratch(scratch)
    return Plain()


def of_record(data: dict) -> Mode:
    """The mode the job of SCHEDULE or FINISH record `data` ran in."""
    if is_farm(data):
        return Farm()
    if data.get('scratch'):
        return Scratch()
    return Plain()
