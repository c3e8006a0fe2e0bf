"""The commit messages datalad-slurm writes and reads.

Each SCHEDULE, RESCHEDULE and FINISH commit carries a JSON record between
the same fences ``datalad run`` uses, written the same way (indent 1,
sorted keys), so that the history alone tells which jobs ran, how, and with
what outcome.  A FINISH commit of several jobs together (``finish
--octopus``) carries one fenced record per job, one after the other: each
job still has one FINISH record, found where any other is.
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

# a message's tag, and where its first record begins: found with
# str.find, not a pattern's lazy '.*?', which tries the fence at each
# character of the title (100,000 messages: a third of reading them)
_TAG = re.compile(r'\[DATALAD (?P<kind>SCHEDULE|RESCHEDULE|FINISH)\] ')
_BEGIN = '\n' + _FENCE_BEGIN + '\n'
# one record ends there: no line of JSON written with an indent starts
# with the fence
_END = '\n' + _FENCE_END
# the next record of several, after the one before
_NEXT = re.compile(r'\n+' + re.escape(_FENCE_BEGIN) + r'\n')

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


def chunk_title(outcomes: list[str]) -> str:
    """The title of a FINISH commit of several jobs: how many, and how they
    ended (``Processed 3 batch jobs: 2 Complete, 1 Failed``)."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    told = next(iter(counts)) if len(counts) == 1 else ', '.join(
        f'{n} {outcome}' for outcome, n in counts.items())
    return f'Processed {len(outcomes)} batch jobs: {told}'


def _fenced(data: dict) -> str:
    record = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
    return f'{_FENCE_BEGIN}\n{record}\n{_FENCE_END}\n'


def compose_message(kind: str, title: str, data: dict,
                    user_message: str | None = None) -> str:
    """Commit message for a record; the user's message, if any, comes first
    and the title follows as its own paragraph."""
    assert kind in KINDS
    head = f'{user_message.strip()}\n\n{title}' if user_message else title
    return f'[DATALAD {kind}] {head}\n\n{_fenced(data)}'


def compose_chunk(title: str, records: list[tuple[str, dict]]) -> str:
    """The message of one FINISH commit of several jobs: `title`, then the
    title of each job's record, then the records, each between its fences,
    as (title, record) pairs give them."""
    titles = '\n'.join(t for t, _ in records)
    return f'[DATALAD {FINISH}] {title}\n\n{titles}\n\n' + \
        '\n'.join(_fenced(data) for _, data in records)


def parse_records(message: str, commit: str | None = None) -> list[Record]:
    """The records of a commit message, in their order: one, or one per
    job of a FINISH commit of several; none if it is no datalad-slurm
    commit.

    Raises
    ------
    RecordError
      If the message has our tag and fences but a record is not valid.
    """
    match = _TAG.match(message)
    begin = message.find(_BEGIN, match.end()) if match else -1
    if begin < 0:
        return []
    kind, start = match.group('kind'), begin + len(_BEGIN)
    records = []
    while True:
        end = message.find(_END, start)
        if end < 0:
            raise RecordError(
                f'commit {commit or ""} has a datalad-slurm tag but a '
                f'record without its closing fence')
        records.append(Record(kind=kind, commit=commit,
                              data=_data(message[start:end], commit)))
        following = _NEXT.match(message, end + len(_END))
        if not following:
            return records
        start = following.end()


def parse_message(message: str, commit: str | None = None) -> Record | None:
    """Parse the message of a commit of one job; None if it is no
    datalad-slurm commit.

    Raises
    ------
    RecordError
      If the message has our tag and fences but no valid record, or the
      records of several jobs (read those with :func:`parse_records`).
    """
    records = parse_records(message, commit)
    if len(records) > 1:
        raise RecordError(
            f'commit {commit or ""} records {len(records)} jobs, not one')
    return records[0] if records else None


def _data(text: str, commit: str | None) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(
            f'commit {commit or ""} has a datalad-slurm tag but its record '
            f'is not valid JSON: {e}') from e
    if not isinstance(data, dict) or 'slurm_job_id' not in data:
        raise RecordError(
            f'commit {commit or ""} has a datalad-slurm tag but its record '
            f'names no slurm_job_id')
    return data
