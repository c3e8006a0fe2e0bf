"""The open-job index is a cache: rebuilt from the history whenever it is
missing, corrupt or stale, and never the source of truth."""

import json
import subprocess
from pathlib import Path

import pytest
from datalad.support.gitrepo import GitRepo

from datalad_slurm.repo import plumbing
from datalad_slurm.repo.commit import commit_empty
from datalad_slurm.records.index import JobIndex
from datalad_slurm.records.format import (
    FINISH,
    SCHEDULE,
    compose_message,
    finish_title,
    parse_message,
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


def test_recorded_commit_needs_no_scan(ds, monkeypatch):
    monkeypatch.setattr('datalad_slurm.records.index.SAVE_EVERY', 1)
    index = JobIndex(ds.repo).refresh()
    parent = index.head
    message = compose_message(SCHEDULE, schedule_title(7),
                              {'slurm_job_id': 7, 'outputs': ['o7']})
    sha = commit_empty(ds.repo, message, parent)
    index.recorded(parse_message(message, sha), parent)

    def no_scan(*args):
        raise AssertionError('the history was scanned')
    monkeypatch.setattr('datalad_slurm.records.index.iter_records', no_scan)
    again = JobIndex(ds.repo).refresh()
    assert again.head == sha
    assert [r.job_id for r in again.open_jobs()] == [7]


def test_recorded_commit_on_another_head_is_left_to_the_scan(ds):
    index = JobIndex(ds.repo).refresh()
    stale = index.head
    _schedule(ds, 1)
    message = compose_message(SCHEDULE, schedule_title(2),
                              {'slurm_job_id': 2, 'outputs': ['o2']})
    parent = plumbing.head(ds.repo)
    sha = commit_empty(ds.repo, message, parent)
    index.recorded(parse_message(message, sha), parent)
    assert index.head == stale
    assert _open_ids(ds) == [1, 2]


@pytest.mark.parametrize('refs', ['loose', 'packed', 'detached'])
def test_head_read_as_git_reads_it(ds, refs):
    if refs == 'packed':
        git(ds, 'pack-refs', '--all')
    elif refs == 'detached':
        git(ds, 'checkout', '--quiet', '--detach')
    assert plumbing.head(ds.repo) == git(ds, 'rev-parse', 'HEAD').strip()


def test_head_of_an_unborn_branch(tmp_path):
    subprocess.run(['git', 'init', '--quiet', str(tmp_path)], check=True)
    assert plumbing.head(GitRepo(str(tmp_path))) is None


def test_imported_commits_change_what_they_name(ds):
    names = ['plain.txt', 'with space', 'quote"d', 'new\nline', 'ümlaut']
    for name in names:
        (ds.pathobj / name).write_text(name)
    git(ds, 'add', '--', *names)
    staged = {}
    for line in git(ds, 'ls-files', '-z', '--stage', '--', *names).split(
            '\0'):
        if line:
            entry, _, path = line.partition('\t')
            staged[path] = entry.split()
    git(ds, 'reset', '--quiet')
    parent = plumbing.head(ds.repo)
    first, second, empty = plumbing.import_commits(ds.repo, parent, [
        ([plumbing.change_file(m, s, p) for p, (m, s, _) in staged.items()],
         'all of them\n'),
        ([plumbing.delete_path('with space'),
          plumbing.delete_path('jobs')], 'two fewer\n'),
        ([], 'nothing changes\n')])
    assert plumbing.head(ds.repo) == parent
    assert git(ds, 'rev-parse', f'{first}^', f'{second}^', f'{empty}^') \
        .split() == [parent, first, second]
    listed = git(ds, 'ls-tree', '-r', '-z', '--name-only', first).split('\0')
    assert set(names) <= set(listed)
    after = set(git(ds, 'ls-tree', '-r', '-z', '--name-only', second)
                .split('\0'))
    assert 'with space' not in after and 'jobs/write.sh' not in after
    assert git(ds, 'rev-parse', f'{second}^{{tree}}') == \
        git(ds, 'rev-parse', f'{empty}^{{tree}}')
    assert git(ds, 'log', '-1', '--format=%an <%ae>|%B', empty) == \
        'datalad-slurm tests <tests@example.com>|nothing changes\n\n'
    assert not git(ds, 'for-each-ref', 'refs/datalad-slurm/')


def test_recorded_commits_are_written_now_and_then(ds, monkeypatch):
    """Between writes of the cache, another reader scans the commits the
    index took in meanwhile, and sees the same."""
    monkeypatch.setattr('datalad_slurm.records.index.SAVE_EVERY', 3)
    index = JobIndex(ds.repo).refresh()
    for job_id in (1, 2):
        parent = index.head
        message = compose_message(SCHEDULE, schedule_title(job_id),
                                  {'slurm_job_id': job_id, 'outputs': []})
        sha = commit_empty(ds.repo, message, parent)
        index.recorded(parse_message(message, sha), parent)
    cache = Path(ds.repo.dot_git) / 'datalad-slurm' / 'index.json'
    assert json.loads(cache.read_text())['head'] != index.head
    assert _open_ids(ds) == [1, 2]


def test_current_index_is_kept_for_the_thread(ds, monkeypatch):
    first = JobIndex.current(ds.repo)
    _schedule(ds, 1)

    def no_load(self):
        raise AssertionError('the cache was read again')
    monkeypatch.setattr(JobIndex, '_load', no_load)
    again = JobIndex.current(ds.repo)
    assert again is first
    assert [r.job_id for r in again.open_jobs()] == [1]
