"""The commit messages datalad-slurm writes and reads.

Each SCHEDULE, RESCHEDULE and FINISH commit carries a JSON record between
the same fences ``datalad run`` uses, written the same way (indent 1,
sorted keys), so that the history alone tells which jobs ran, how, and with
what outcome.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

SCHEDULE = 'SCHEDULE'
RESCHEDULE = 'RESCHEDULE'
FINISH = 'FINISH'
KINDS = (SCHEDULE, RESCHEDULE, FINISH)

_FENCE_BEGIN = '=== Do not change lines below ==='
_FENCE_END = '^^^ Do not change lines above ^^^'

_MESSAGE = re.compile(
    r'^\[DATALAD (?P<kind>SCHEDULE|RESCHEDULE|FINISH)\] (?P<head>.*?)\n'
    + re.escape(_FENCE_BEGIN) + r'\n(?P<record>.*)\n'
    + re.escape(_FENCE_END),
    re.DOTALL)

# a regular expression for `git log -E --grep` that finds all our commits
GREP_PATTERN = r'^\[DATALAD (SCHEDULE|RESCHEDULE|FINISH)\] '


class RecordError(ValueError):
    """A commit looks like a datalad-slurm commit but its record is broken."""


@dataclass
class Record:
    """One datalad-slurm record as found in (or destined for) a commit."""
    kind: str
    data: dict
    commit: str | None = None

    @property
    def job_id(self) -> int:
        return self.data['slurm_job_id']

    @property
    def is_schedule(self) -> bool:
        return self.kind in (SCHEDULE, RESCHEDULE)


def schedule_title(job_id: int) -> str:
    return f'Submitted batch job {job_id}: Pending'


def finish_title(job_id: int, outcome: str) -> str:
    return f'Processed batch job {job_id}: {outcome}'


def compose_message(kind: str, title: str, data: dict,
                    user_message: str | None = None) -> str:
    """Commit message for a record; the user's message, if any, comes first
    and the title follows as its own paragraph."""
    assert kind in KINDS
    record = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
    head = f'{user_message.strip()}\n\n{title}' if user_message else title
    return f'[DATALAD {kind}] {head}\n\n{_FENCE_BEGIN}\n{record}\n' \
           f'{_FENCE_END}\n'


def parse_message(message: str, commit: str | None = None) -> Record | None:
    """Parse a commit message; None if it is no datalad-slurm commit.

    Raises
    ------
    RecordError
      If the message has our tag and fences but no valid record.
    """
    match = _MESSAGE.match(message)
    if not match:
        return None
    try:
        data = json.loads(match.group('record'))
    except json.JSONDecodeError as e:
        raise RecordError(
            f'commit {commit or ""} has a datalad-slurm tag but its record '
            f'is not valid JSON: {e}') from e
    if not isinstance(data, dict) or 'slurm_job_id' not in data:
        raise RecordError(
            f'commit {commit or ""} has a datalad-slurm tag but its record '
            f'names no slurm_job_id')
    return Record(kind=match.group('kind'), data=data, commit=commit)
