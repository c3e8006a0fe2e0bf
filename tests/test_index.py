"""The open-job index is a cache: rebuilt from the history whenever it is
missing, corrupt or stale, and never the source of truth."""

import json
from pathlib import Path

import pytest

from datalad_slurm.repo.commit import commit_empty
from datalad_slurm.records.index import JobIndex
from datalad_slurm.records.format import (
    FINISH,
    SCHEDULE,
    compose_message,
    finish_title,
    schedule_title,
)

from conftest import git



@pytest.fixture
def ds(dataset):
    """The index needs no Slurm: records are made by hand."""
    return dataset


def _schedule(ds, job_id):
    return commit_empty(ds.repo, compose_message(
        SCHEDULE, schedule_title(job_id),
        {'slurm_job_id': job_id, 'outputs': [f'o{job_id}']}))


def _finish(ds, job_id, schedule_commit):
    return commit_empty(ds.repo, compose_message(
        FINISH, finish_title(job_id, 'Complete'),
        {'slurm_job_id': job_id, 'schedule_commit': schedule_commit}))


def _open_ids(ds, **kwargs):
    return [r.job_id for r in JobIndex(ds.repo, **kwargs).refresh()
            .open_jobs()]


def test_index_follows_the_history(ds):
    first = _schedule(ds, 1)
    _schedule(ds, 2)
    assert _open_ids(ds) == [1, 2]
    cache = Path(ds.repo.dot_git) / 'datalad-slurm' / 'index.json'
    assert json.loads(cache.read_text())['head'] == \
        git(ds, 'rev-parse', 'HEAD').strip()
    _finish(ds, 1, first)
    assert _open_ids(ds) == [2]
    assert JobIndex(ds.repo).refresh().find_job(1) == (None, first)


def test_index_rebuilt_when_missing_or_corrupt(ds):
    _schedule(ds, 1)
    assert _open_ids(ds) == [1]
    cache = Path(ds.repo.dot_git) / 'datalad-slurm' / 'index.json'
    cache.write_text('{ not json')
    assert _open_ids(ds) == [1]
    cache.unlink()
    assert _open_ids(ds) == [1]


def test_index_rebuilt_when_history_rewritten(ds):
    base = git(ds, 'rev-parse', 'HEAD').strip()
    _schedule(ds, 1)
    assert _open_ids(ds) == [1]
    git(ds, 'reset', '--hard', base)
    _schedule(ds, 2)
    assert _open_ids(ds) == [2]


def test_since_limits_the_view_and_leaves_the_cache(ds):
    _schedule(ds, 1)
    mark = git(ds, 'rev-parse', 'HEAD').strip()
    _schedule(ds, 2)
    assert _open_ids(ds) == [1, 2]
    assert _open_ids(ds, since=mark) == [2]
    assert _open_ids(ds) == [1, 2]
