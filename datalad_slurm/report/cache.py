"""The summaries of all jobs of the history, kept under ``.git/``.

Reading 100,000 jobs' records from git takes git alone seconds; the
summaries of the jobs up to a commit (the tip) are therefore kept, and the
next ``datalad jobs`` reads only the commits made since.  The history is
the only truth: a missing or unusable cache, or one whose tip is no longer
in the history (a reset, a rebase, another branch), is rebuilt from it;
losing the cache loses nothing.

A summary depends on its job's commits and, for a failed job, on what the
configured failure pattern finds in its logs, which may change without a
commit (a log got from a remote): the cache holds the summaries without a
pattern, and with one the failed jobs' logs are read on every call.  A
FINISH commit among the new commits replaces the summary its job had
while open.  The new jobs come after the cached ones: jobs scheduled on
another branch, merged since, are listed after them, where a read of the
whole history would place them by their commits' dates.
"""

from __future__ import annotations

import itertools
import json
import logging
import re

import datalad_slurm

from ..repo import (
    plumbing,
    state,
)
from ..records.format import (
    RESCHEDULE,
    SCHEDULE,
)
from ..records.history import (
    messages_of,
    parse_or_warn,
)
from ..util.bulk import builds_many
from .causes import failure_causes
from .summary import (
    FAILED,
    finished_schedule,
    read_summaries,
    summarise,
)

lgr = logging.getLogger('datalad.slurm.summaries')

# raised whenever a summary's keys or the meaning of its values change
_FORMAT_VERSION = 1

# a summary's kind, as its record's
_KINDS = {'reschedule': RESCHEDULE, 'schedule': SCHEDULE}

# the cache's tip, which is given to git
_SHA = re.compile('[0-9a-f]{40}(?:[0-9a-f]{24})?')


def cached_summaries(repo,
                     failure_pattern: re.Pattern | None = None) -> list[dict]:
    """The summaries of all jobs of the history up to HEAD, oldest first,
    as :func:`.summary.job_summaries` gives them, through the cache."""
    head = plumbing.head(repo)
    if head is None:
        return []
    key = _key()
    path = state.summaries(repo.dot_git)
    tip, summaries = _load(path, key)
    if tip is not None and tip != head and repo.is_ancestor(tip, head):
        summaries = _update(repo, summaries, f'{tip}..{head}')
        _save(path, key, head, summaries)
    elif tip != head:
        if tip is not None:
            lgr.debug('Rebuilding the job summaries: %s is no longer in '
                      'the history', tip)
        summaries = _rebuilt(repo, path, key, head)
    if failure_pattern is not None:
        _find_causes(repo, summaries, failure_pattern)
    return summaries


def _rebuilt(repo, path, key: dict, head: str) -> list[dict]:
    """The summaries of the history up to `head`, read from it and saved,
    then read back from the cache as the calls after this one read them:
    read from the history, each summary holds values of its own, strewn
    among the freed records they were parsed from; read back, they share
    their values and lie together (the first call over 100,000 jobs then
    peaked at 279 MB, not 351 MB, for 0.3 s more)."""
    summaries = read_summaries(repo, head)[0]
    if not _save(path, key, head, summaries):
        return summaries
    del summaries
    tip, summaries = _load(path, key)
    # another call may have saved another commit's summaries meanwhile
    return summaries if tip == head else read_summaries(repo, head)[0]


def _key() -> dict:
    # a summary's keys and values may change with any version
    return {'version': _FORMAT_VERSION,
            'package': datalad_slurm.__version__}


def _find_causes(repo, summaries: list[dict], failure_pattern: re.Pattern):
    """The failed jobs' causes as `failure_pattern` finds them in their
    logs: what the logs say now (a log got since, or changed), as a read
    of the history would, not what they said when the cache was made."""
    failed: dict[str, dict[str, dict]] = {}
    for summary in summaries:
        if summary['job_state'] == FAILED:
            failed.setdefault(summary['finish_commit'], {})[
                summary['commit']] = summary
    for sha, message in messages_of(repo, failed):
        # a FINISH commit of several jobs holds a record of each
        for finish in parse_or_warn(message, sha):
            summary = failed[sha].get(finish.data.get('schedule_commit'))
            if summary is not None:
                summary['failure_causes'] = failure_causes(
                    repo.path, finish.data, failure_pattern)


def _update(repo, summaries: list[dict],
            revision_range: str) -> list[dict]:
    """`summaries` with the jobs of `revision_range` appended, and those of
    its FINISH records of earlier jobs replacing their summaries."""
    new, finishes = read_summaries(repo, revision_range)
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
                finish, root=repo.path)
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
        texts: dict = {}
        tasks = iter(_records(cached['tasks'], texts))
        summaries = _records(cached['summaries'], texts)
        for summary in summaries:
            summary['tasks'] = list(itertools.islice(tasks,
                                                     summary['tasks']))
        head = cached['head']
        if not isinstance(head, str) or not _SHA.fullmatch(head):
            raise ValueError(f'no commit: {head!r}')
        return head, summaries
    except FileNotFoundError:
        return None, []
    except (ValueError, KeyError, TypeError, AttributeError,
            IndexError) as e:
        lgr.debug('Rebuilding the job summaries, the cache is unusable: %s',
                  e)
        return None, []


def _save(path, key: dict, head: str, summaries: list[dict]) -> bool:
    """Whether the cache at `path` now holds `summaries`."""
    try:
        path.parent.mkdir(exist_ok=True)
        state.write_parts(path, _encoded(key, head, summaries))
    except OSError as e:
        lgr.debug('Could not write the job summaries: %s', e)
        return False
    return True


def _encoded(key: dict, head: str, summaries: list[dict]):
    """The cache's JSON, a column at a time: of 100,000 jobs, all columns
    and their text at once took 75 MB."""
    yield b'{"key": %s, "head": %s, "summaries": [' % (
        json.dumps(key).encode(), json.dumps(head).encode())
    # a summary's tasks: their count here, themselves in 'tasks'
    yield from _columns(summaries, tasks=len)
    yield b'], "tasks": ['
    yield from _columns([t for s in summaries for t in s['tasks']])
    yield b']}'


# The file holds records (dicts of the same keys, in the same order) as
# columns, a column of a few distinct texts or numbers as those values and
# each record's place among them, and texts are loaded once each: the
# records then share one object per distinct value (a job's start, its
# task's start), where a list of dicts would make one per record and key
# (100,000 jobs' summaries took 320 MB that way).

def _columns(records: list[dict], **convert):
    """[key, column] per key of `records`, in their order, as JSON, each
    after a comma but the first; a key's values given to its function in
    `convert`, if it has one."""
    keys = list(records[0]) if records else []
    # all columns in one pass over the records, each visited once: a pass
    # per column read 100,000 jobs' dicts from memory 21 times
    columns = list(zip(*map(dict.values, records)))
    for i, k in enumerate(keys):
        values, columns[i] = columns[i], None
        if k in convert:
            values = list(map(convert[k], values))
        yield (b', ' if i else b'') + json.dumps([k, _column(values)]).encode()


def _column(values: list):
    """{'values': distinct values, 'codes': the place of each} where the
    values are texts, numbers or null with repeats; {'texts': values}
    where they are texts or null; else `values`."""
    kinds = set(map(type, values))
    if not kinds <= _SCALARS:
        return values
    # of one kind, no two values are one key of a dict; of several, 1, 1.0
    # and True would be, but are not one JSON value
    keys = values if len(kinds - {type(None)}) <= 1 else \
        list(zip(map(type, values), values))
    # the distinct values in the order they first come, each then given
    # its place: the loops over all values are map's and dict's, not ours
    places = dict.fromkeys(keys)
    if len(places) <= len(values) // 2:
        for i, value in enumerate(places):
            places[value] = i
        distinct = list(places) if keys is values else \
            [v for _, v in places]
        return {'values': distinct, 'codes': list(map(places.__getitem__,
                                                      keys))}
    if kinds <= {str, type(None)}:
        return {'texts': values}
    return values


_SCALARS = {str, int, float, bool, type(None)}


def _records(columns: list, texts: dict) -> list[dict]:
    """The records of `columns`; their texts the objects in `texts`,
    which takes in those it has none of."""
    keys = [k for k, _ in columns]
    values = [_values(column, texts) for _, column in columns]
    return [dict(zip(keys, row)) for row in zip(*values)]


def _values(column, texts: dict) -> list:
    if isinstance(column, list):
        return column
    if 'texts' in column:
        return list(map(texts.setdefault, column['texts'], column['texts']))
    distinct = [texts.setdefault(v, v) if v.__class__ is str else v
                for v in column['values']]
    return list(map(distinct.__getitem__, column['codes']))
