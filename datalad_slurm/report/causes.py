"""Why failed jobs failed, counted by cause: Slurm's own causes (out of
memory, timeout, node failure), a text a configured pattern finds in the
job's log, the exit code, or the state that ended it; so that one line
tells "37 ran out of memory"."""

from __future__ import annotations

import os.path as op
import re
from collections import Counter
from typing import Iterable

from ..records.logfiles import task_logs
from ..records.outcome import (
    MISSING_OUTPUTS,
    NODE_FAIL,
    OUT_OF_MEMORY,
    STATE_CAUSES,
    TIMEOUT,
    task_causes,
)

# how much of the end of a log is searched: failures are reported last,
# and a log may be of any size
LOG_TAIL = 1 << 20

# the prefix of a cause a pattern found in a log
LOG_CAUSE = 'log: '

_PHRASES = {
    OUT_OF_MEMORY: 'ran out of memory',
    TIMEOUT: 'timed out',
    NODE_FAIL: 'lost their node',
    MISSING_OUTPUTS: 'left outputs missing',
}


def failure_causes(root: str, data: dict,
                   pattern: re.Pattern | None = None) -> dict[str, int]:
    """How many tasks of the FINISH record `data` (one for a job that is no
    array) failed of each cause; `pattern` is looked for in the logs (under
    `root`) of those Slurm names no cause for."""
    causes = Counter()
    for task, cause in task_causes(data).items():
        if pattern is not None and cause not in STATE_CAUSES:
            found = _in_logs(root, task_logs(data, task), pattern)
            cause = LOG_CAUSE + found if found is not None else cause
        causes[cause] += 1
    return dict(causes)


def _in_logs(root: str, logs: list[str], pattern: re.Pattern) -> str | None:
    """What `pattern` matched last in the ends of the `logs` that are there
    to read (the first group's text, where it has one)."""
    for log in logs:
        try:
            with open(op.join(root, log), 'rb') as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - LOG_TAIL))
                text = f.read().decode(errors='replace')
        except OSError:
            # not there (an annexed log without its content): not read
            continue
        matches = list(pattern.finditer(text))
        if matches:
            last = matches[-1]
            return (last.group(1) if pattern.groups else last.group(0)) \
                .strip()
    return None


def describe_causes(counts: Iterable[dict[str, int]]) -> str:
    """The causes of many jobs' failures in one phrase, most frequent
    first: ``37 ran out of memory, 2 exit code 1``."""
    total = Counter()
    for causes in counts:
        total.update(causes)
    return ', '.join(
        f'{n} {_phrase(cause)}'
        for cause, n in sorted(total.items(), key=lambda c: (-c[1], c[0])))


def _phrase(cause: str) -> str:
    if cause in _PHRASES:
        return _PHRASES[cause]
    if cause.startswith('exit code '):
        return f'exited with code {cause[len("exit code "):]}'
    if cause.startswith(LOG_CAUSE):
        return f'logged {cause[len(LOG_CAUSE):]!r}'
    return f'ended {cause}'
