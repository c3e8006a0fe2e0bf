"""What ran: one summary per job, read from the records of the history,
with how long it waited, where it ran and how well it used what it asked
for (``seff``'s CPU and memory efficiency)."""

from __future__ import annotations

import functools
import re
import statistics
from typing import Iterable

from ..records.format import (
    FINISH,
    RESCHEDULE,
    Record,
)
from ..records.history import (
    newest_messages,
    parse_or_warn,
)
from ..records.outcome import record_succeeded
from ..records.split import (
    label,
    later_parts,
)
from ..slurm.jobspec import (
    seconds,
    size_bytes,
)
from ..slurm.status import (
    describe_states,
    slurm_time,
)
from ..util.bulk import builds_many
from .causes import (
    describe_causes,
    failure_causes,
)

OPEN, COMPLETE, FAILED = 'open', 'complete', 'failed'
_FINISH_TAG = f'[DATALAD {FINISH}]'
STATES = (OPEN, COMPLETE, FAILED)


def job_summaries(repo, revision_range: str = 'HEAD',
                  failure_pattern: re.Pattern | None = None) -> list[dict]:
    """One summary per job scheduled in `revision_range`, oldest first;
    `failure_pattern` is looked for in the logs of failed jobs (see
    :func:`.causes.failure_causes`)."""
    return read_summaries(repo, revision_range, failure_pattern)[0]


@builds_many
def read_summaries(repo, revision_range: str = 'HEAD',
                   failure_pattern: re.Pattern | None = None,
                   ) -> tuple[list[dict], dict[str, Record]]:
    """The summaries of :func:`job_summaries`, and the FINISH records in
    `revision_range` of jobs scheduled before it, by schedule commit."""
    # newest first, as git reads the history: a job's FINISH commit comes
    # before its schedule commit, and is held only until that comes
    finishes: dict[str, Record] = {}
    summaries = []
    for sha, message in newest_messages(repo, revision_range):
        if message.startswith(_FINISH_TAG):
            # one record per job, several where jobs were finished together
            for record in parse_or_warn(message, sha):
                # of two (there should be none), the newer counts
                finishes.setdefault(record.data.get('schedule_commit'),
                                    record)
            continue
        finish = finishes.pop(sha, None)
        # a FINISH record repeats its schedule record: parse that only for
        # open jobs
        schedules = [finished_schedule(message[len('[DATALAD '):]
                                       .split(']')[0], sha, finish)] \
            if finish else parse_or_warn(message, sha)
        summaries.extend(summarise(schedule, finish, root=repo.path,
                                   failure_pattern=failure_pattern)
                         for schedule in schedules)
    summaries.reverse()
    return summaries, finishes


def finished_schedule(kind: str, commit: str, finish: Record) -> Record:
    """The schedule record of a finished job, of `kind`, in `commit`, as
    its FINISH record repeats it."""
    return Record(kind=kind, data=finish.data, commit=commit)


def summarise(schedule: Record, finish: Record | None, *,
              root: str | None = None,
              failure_pattern: re.Pattern | None = None) -> dict:
    """The summary of one job from its schedule and (if finished) FINISH
    record; times as Slurm's tools print them, durations in seconds,
    sizes in bytes, efficiencies as fractions; a failed job's tasks
    counted by the cause of their failure (its logs, under `root`, read
    for `failure_pattern`)."""
    data = (finish or schedule).data
    tasks = _tasks(data) if finish else []
    state = OPEN if finish is None else \
        COMPLETE if record_succeeded(data) else FAILED
    causes = failure_causes(root or '', data, failure_pattern) \
        if state == FAILED else {}
    # Slurm's times sort as text
    starts = [t['start'] for t in tasks if t['start']]
    ends = [t['end'] for t in tasks if t['end']]
    waits = [t['queue_wait'] for t in tasks if t['queue_wait'] is not None]
    used = sum(t['cpu_time'] for t in tasks if t['cpu_time'] is not None
               and t['elapsed'] and t['alloc_cpus'])
    offered = sum(t['elapsed'] * t['alloc_cpus'] for t in tasks
                  if t['cpu_time'] is not None and t['elapsed'] and
                  t['alloc_cpus'])
    memory = [t['max_rss'] / t['req_mem'] for t in tasks
              if t['max_rss'] and t['req_mem']]
    return {
        'slurm_job_id': schedule.job_id,
        'slurm_later_parts': later_parts(schedule.data),
        'kind': 'reschedule' if schedule.kind == RESCHEDULE else 'schedule',
        'array_tasks': len(schedule.data['slurm_array'])
        if schedule.data.get('slurm_array') else None,
        'job_state': state,
        'failure_causes': causes,
        'slurm_state': describe_states(
            (t['task'], t['state']) for t in tasks) if tasks else None,
        'submitted': schedule.data.get('slurm_submit_time')
        or schedule.data.get('submitted'),
        'started': min(starts) if starts else None,
        'ended': max(ends) if ends else None,
        'queue_wait': min(waits) if waits else None,
        'elapsed': max((t['elapsed'] for t in tasks
                        if t['elapsed'] is not None), default=None),
        'nodes': ','.join(dict.fromkeys(
            t['nodes'] for t in tasks if t['nodes'])) or None,
        'max_rss': max((t['max_rss'] for t in tasks if t['max_rss']),
                       default=None),
        'cpu_efficiency': used / offered if offered else None,
        'mem_efficiency': max(memory) if memory else None,
        'outputs': schedule.data.get('outputs', []),
        'depends_on': schedule.data.get('depends_on') or [],
        'commit': schedule.commit,
        'finish_commit': finish.commit if finish else None,
        'tasks': tasks,
    }


# Slurm's durations and sizes repeat from job to job (a campaign's jobs
# take alike), each converted once
_seconds = functools.lru_cache(maxsize=1 << 14)(seconds)
_size_bytes = functools.lru_cache(maxsize=1 << 14)(size_bytes)


def _tasks(data: dict) -> list[dict]:
    """Per task (one, None, for a job that is no array): what the FINISH
    record holds, in numbers."""
    states, exits = data.get('state'), data.get('exit')
    accounting = data.get('accounting') or {}
    if not isinstance(states, dict):
        states, exits, accounting = ({None: states}, {None: exits},
                                     {None: accounting})
    tasks = []
    for key, state in states.items():
        acct = accounting.get(key) or {}
        cpus = acct.get('alloc_cpus')
        submit = slurm_time(acct.get('submit'))
        start = slurm_time(acct.get('start'))
        tasks.append({
            'task': int(key) if str(key).isdigit() else None,
            'state': state,
            'exit': exits.get(key) if isinstance(exits, dict) else exits,
            'submit': acct.get('submit'),
            'start': acct.get('start'),
            'end': acct.get('end'),
            'queue_wait': (start - submit).total_seconds()
            if start and submit else None,
            'elapsed': _seconds(acct.get('elapsed')),
            'nodes': acct.get('nodes'),
            'alloc_cpus': cpus,
            'cpu_time': _seconds(acct.get('total_cpu')),
            'max_rss': _size_bytes(acct.get('max_rss')),
            'req_mem': _size_bytes(acct.get('req_mem'), cpus),
            'reason': acct.get('reason'),
        })
    return tasks


def overview(summaries: Iterable[dict], worst: int = 3) -> str:
    """One line on many jobs: how many per state, the median queue wait,
    the median CPU and memory efficiency, and the least efficient jobs."""
    summaries = list(summaries)
    counts = {s: sum(1 for j in summaries if j['job_state'] == s)
              for s in STATES}
    parts = [f'{len(summaries)} jobs: ' + ', '.join(
        f'{n} {s}' for s, n in counts.items() if n)]
    causes = describe_causes(j.get('failure_causes') or {}
                             for j in summaries)
    if causes:
        parts.append(f'failures by cause: {causes}')
    for what, key, show in (('queue wait', 'queue_wait', _duration),
                            ('CPU efficiency', 'cpu_efficiency', _percent),
                            ('memory efficiency', 'mem_efficiency',
                             _percent)):
        values = [j[key] for j in summaries if j[key] is not None]
        if values:
            parts.append(f'median {what} {show(statistics.median(values))}')
    low = sorted((j for j in summaries if j['cpu_efficiency'] is not None),
                 key=lambda j: j['cpu_efficiency'])[:worst]
    if low:
        parts.append('lowest CPU efficiency: ' + ', '.join(
            f"job {j['slurm_job_id']} ({_percent(j['cpu_efficiency'])})"
            for j in low))
    return '; '.join(parts)


# A table's cells repeat their values (the same queue wait, efficiency,
# memory of many jobs), each formatted once
_formatted = functools.lru_cache(maxsize=1 << 12)


@_formatted
def _duration(value: float | None) -> str:
    if value is None:
        return ''
    value = int(round(value))
    days, rest = divmod(value, 86400)
    clock = f'{rest // 3600:d}:{rest % 3600 // 60:02d}:{rest % 60:02d}'
    return f'{days}-{clock}' if days else clock


@_formatted
def _percent(value: float | None) -> str:
    return '' if value is None else f'{100 * value:.0f}%'


@_formatted
def _size(value: int | None) -> str:
    if not value:
        return ''
    for unit in 'KMGT':
        value /= 1024
        if value < 1024 or unit == 'T':
            return f'{value:.1f}{unit}'


# the table on a terminal: title, and the cell of a summary
COLUMNS = (
    ('JOB', lambda j: label(j['slurm_job_id'], j['slurm_later_parts'])),
    ('KIND', lambda j: j['kind'] + (f"[{j['array_tasks']}]"
                                    if j['array_tasks'] else '')),
    ('STATE', lambda j: j['slurm_state'] or j['job_state']),
    ('SUBMITTED', lambda j: j['submitted'] or ''),
    ('WAIT', lambda j: _duration(j['queue_wait'])),
    ('ELAPSED', lambda j: _duration(j['elapsed'])),
    ('NODES', lambda j: j['nodes'] or ''),
    ('MAXRSS', lambda j: _size(j['max_rss'])),
    ('CPU', lambda j: _percent(j['cpu_efficiency'])),
    ('MEM', lambda j: _percent(j['mem_efficiency'])),
    ('COMMIT', lambda j: (j['commit'] or '')[:8]),
    ('OUTPUTS', lambda j: ' '.join(j['outputs'])),
)
