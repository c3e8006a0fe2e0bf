"""The summaries of all jobs of the history, kept under ``.git/``.

Reading 100,000 jobs' records from git takes git alone seconds; the
summaries of the jobs up to a commit (the tip) are therefore kept, and the
next ``datalad jobs`` reads only the commits made since.  The history is
the only truth: a missing or unusable cache, or one whose tip is no longer
in the history (a reset, a rebase, another branch), is rebuilt from it;
losing the cache loses nothing.

A summary depends on its job's commits and, for a failed job, on what the
configured failure pattern finds in its logs: the pattern is part of the
cache's key, and a cache made with another pattern is rebuilt.  A FINISH
commit among the new commits replaces the summary its job had while open.

The file holds each summary as a list of its values, the keys once: half
the size of a list of dicts, and loaded in half the time.
"""

from __future__ import annotations

import json
import logging
import re

from ..repo import (
    plumbing,
    state,
)
from ..util.bulk import builds_many
from .summary import (
    finished_schedule,
    read_summaries,
    summarise,
)

lgr = logging.getLogger('datalad.slurm.summaries')

# raised whenever a summary's keys or the meaning of its values change
_FORMAT_VERSION = 1

_KINDS = {'reschedule': 'RESCHEDULE', 'schedule': 'SCHEDULE'}


def cached_summaries(repo,
                     failure_pattern: re.Pattern | None = None) -> list[dict]:
    """The summaries of all jobs of the history up to HEAD, oldest first,
    as :func:`.summary.job_summaries` gives them, through the cache."""
    head = plumbing.head(repo)
    if head is None:
        return []
    key = _key(failure_pattern)
    path = state.summaries(repo.dot_git)
    tip, summaries = _load(path, key)
    if tip == head:
        return summaries
    if tip is not None and repo.is_ancestor(tip, head):
        summaries = _update(repo, summaries, f'{tip}..{head}',
                            failure_pattern)
    else:
        if tip is not None:
            lgr.debug('Rebuilding the job summaries: %s is no longer in '
                      'the history', tip)
        summaries = read_summaries(repo, head, failure_pattern)[0]
    _save(path, key, head, summaries)
    return summaries


def _key(failure_pattern: re.Pattern | None) -> dict:
    from .. import __version__
    return {'version': _FORMAT_VERSION, 'package': __version__,
            'failure_pattern': failure_pattern.pattern
            if failure_pattern is not None else None}


def _update(repo, summaries: list[dict], revision_range: str,
            failure_pattern: re.Pattern | None) -> list[dict]:
    """`summaries` with the jobs of `revision_range` appended, and those of
    its FINISH records of earlier jobs replacing their summaries."""
    new, finishes = read_summaries(repo, revision_range, failure_pattern)
    if finishes:
        place = {s['commit']: i for i, s in enumerate(summaries)}
        for commit, finish in finishes.items():
            i = place.get(commit)
            if i is None:
                # as a read of the whole history does: a FINISH record
                # naming no schedule commit of it is no job
                continue
            summaries[i] = summarise(
                finished_schedule(_KINDS[summaries[i]['kind']], commit,
                                  finish),
                finish, root=repo.path, failure_pattern=failure_pattern)
    summaries.extend(new)
    return summaries


@builds_many
def _load(path, key: dict) -> tuple[str | None, list[dict]]:
    """The tip and summaries of the cache at `path`; (None, []) where
    there is none made with `key`."""
    try:
        cached = json.loads(path.read_bytes())
        if cached.get('key') != key:
            lgr.debug('Rebuilding the job summaries, made with %s, not %s',
                      cached.get('key'), key)
            return None, []
        keys, task_keys = cached['keys'], cached['task_keys']
        summaries = []
        for row in cached['summaries']:
            summary = dict(zip(keys, row))
            summary['tasks'] = [dict(zip(task_keys, task))
                                for task in summary['tasks']]
            summaries.append(summary)
        return cached['head'], summaries
    except FileNotFoundError:
        return None, []
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        lgr.debug('Rebuilding the job summaries, the cache is unusable: %s',
                  e)
        return None, []


def _save(path, key: dict, head: str, summaries: list[dict]):
    keys = list(summaries[0]) if summaries else []
    task_keys = next((list(s['tasks'][0]) for s in summaries if s['tasks']),
                     [])
    tasks = keys.index('tasks') if keys else None
    try:
        path.parent.mkdir(exist_ok=True)
        state.write_json(path, {
            'key': key, 'head': head, 'keys': keys, 'task_keys': task_keys,
            'summaries': [_row(s, tasks) for s in summaries],
        }, sort_keys=False)
    except OSError as e:
        lgr.debug('Could not write the job summaries: %s', e)


def _row(summary: dict, tasks: int) -> list:
    row = list(summary.values())
    row[tasks] = [list(task.values()) for task in row[tasks]]
    return row
