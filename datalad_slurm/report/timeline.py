"""A picture of what ran: the jobs of the history in the Chrome Trace Event
Format, which ui.perfetto.dev and chrome://tracing open.

A complete event (``"ph": "X"``, times in microseconds) per job or array
task, on a process per node and a thread per slot of that node busy at
the same time; each task's queue wait is an event of its own, on the
process "queue"; job id, task, commits and state are in ``args``.
"""

from __future__ import annotations

import json

from ..slurm.jobspec import expand_hostlist
from ..slurm.status import slurm_time

QUEUE_PID = 0


def trace_events(summaries: list[dict]) -> list[dict]:
    """The trace events of the finished jobs among `summaries` (see
    :func:`.summary.job_summaries`)."""
    runs, waits = [], []
    for job in summaries:
        for task in job['tasks']:
            start, end = slurm_time(task['start']), slurm_time(task['end'])
            submit = slurm_time(task['submit'])
            args = {'job': job['slurm_job_id'], 'task': task['task'],
                    'state': task['state'], 'commit': job['commit'],
                    'finish_commit': job['finish_commit']}
            name = f"job {job['slurm_job_id']}" + (
                '' if task['task'] is None else f"_{task['task']}")
            if start and end:
                for node in expand_hostlist(task['nodes'] or '') or ['?']:
                    runs.append((node, _us(start), _us(end), name, args))
            if submit and start:
                waits.append((_us(submit), _us(start), name, args))

    events = [_meta('process_name', QUEUE_PID, None, 'queue')]
    nodes = sorted({r[0] for r in runs})
    pids = {node: i for i, node in enumerate(nodes, start=1)}
    for node, pid in pids.items():
        events.append(_meta('process_name', pid, None, f'node {node}'))
    for pid, items in [(QUEUE_PID, [(QUEUE_PID, *w) for w in waits])] + [
            (pids[n], [r for r in runs if r[0] == n]) for n in nodes]:
        for slot, (_, ts, end, name, args) in _slots(items):
            events.append({
                'name': name if pid != QUEUE_PID else f'{name} queued',
                'cat': 'job' if pid != QUEUE_PID else 'queue', 'ph': 'X',
                'ts': ts, 'dur': end - ts, 'pid': pid, 'tid': slot,
                'args': args})
        for slot in sorted({e['tid'] for e in events
                            if e.get('ph') == 'X' and e['pid'] == pid}):
            events.append(_meta('thread_name', pid, slot, f'slot {slot}'))
    return events


def write_timeline(path: str, summaries: list[dict]) -> int:
    """Write the trace file; return how many complete events it holds."""
    events = trace_events(summaries)
    with open(path, 'w') as f:
        json.dump({'traceEvents': events, 'displayTimeUnit': 'ms'}, f,
                  indent=None)
    return sum(1 for e in events if e['ph'] == 'X')


def _slots(items: list[tuple]) -> list[tuple[int, tuple]]:
    """Each interval (.., start, end, ..) on the lowest slot free at its
    start, so that no two events of a slot overlap."""
    ends: list[int] = []
    placed = []
    for item in sorted(items, key=lambda i: (i[1], i[2])):
        slot = next((i for i, end in enumerate(ends) if end <= item[1]),
                    len(ends))
        if slot == len(ends):
            ends.append(item[2])
        else:
            ends[slot] = item[2]
        placed.append((slot, item))
    return placed


def _meta(name: str, pid: int, tid: int | None, value: str) -> dict:
    event = {'name': name, 'ph': 'M', 'pid': pid, 'args': {'name': value}}
    if tid is not None:
        event['tid'] = tid
    return event


def _us(when) -> int:
    return int(when.timestamp() * 1_000_000)
