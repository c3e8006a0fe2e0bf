"""The open-job index is a cache: rebuilt from the history whenever it is
missing, corrupt or stale, and never the source of truth."""

import json
import random
import re
import subprocess

import pytest
from conftest import git
from datalad.support.exceptions import CommandError
from datalad.support.gitrepo import GitRepo
from test_paths import (
    _random_outputs,
    _random_spec,
)

from datalad_slurm.records.format import (
    FINISH,
    SCHEDULE,
    compose_message,
    finish_title,
    parse_message,
    schedule_title,
)
from datalad_slurm.records.history import newest_messages
from datalad_slurm.records.index import JobIndex
from datalad_slurm.repo import plumbing
from datalad_slurm.repo import state
from datalad_slurm.repo.commit import commit_empty
from datalad_slurm.repo.paths import (
    Claimed,
    lies_within,
    overlap,
)
from datalad_slurm.slurm.jobspec import pattern_regex
from datalad_slurm.submit.checks import find_conflicts
from datalad_slurm.submit.dependencies import find_dependencies


@pytest.fixture
def ds(dataset):
    """The index needs no Slurm: records are made by hand."""
    return dataset


def _schedule(ds, job_id, **data):
    data.setdefault('outputs', [f'o{job_id}'])
    return commit_empty(ds.repo, compose_message(
        SCHEDULE, schedule_title(job_id), {'slurm_job_id': job_id, **data}))


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
    cache = state.index_cache(ds.repo.dot_git)
    assert json.loads(cache.read_text())['head'] == \
        git(ds, 'rev-parse', 'HEAD').strip()
    _finish(ds, 1, first)
    assert _open_ids(ds) == [2]
    assert JobIndex(ds.repo).refresh().find_job(1) == (None, first)


def test_index_rebuilt_when_missing_or_corrupt(ds):
    _schedule(ds, 1)
    assert _open_ids(ds) == [1]
    cache = state.index_cache(ds.repo.dot_git)
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


def _recorded(index, ds, job_id):
    parent = index.head
    message = compose_message(SCHEDULE, schedule_title(job_id),
                              {'slurm_job_id': job_id, 'outputs': []})
    sha = commit_empty(ds.repo, message, parent)
    index.recorded(parse_message(message, sha), parent)
    return sha


def _no_scan(monkeypatch):
    def no_scan(*args):
        raise AssertionError('the history was scanned')
    monkeypatch.setattr('datalad_slurm.records.index.iter_records', no_scan)


def test_recorded_commits_are_kept_in_the_delta(ds, monkeypatch):
    """Between writes of all open jobs, the delta tells another reader what
    the index took in meanwhile, with no scan of the history; once it holds
    SAVE_EVERY records, all are written again."""
    monkeypatch.setattr('datalad_slurm.records.index.SAVE_EVERY', 3)
    index = JobIndex(ds.repo).refresh()
    cache = state.index_cache(ds.repo.dot_git)
    base = json.loads(cache.read_text())['head']
    for job_id in (1, 2):
        _recorded(index, ds, job_id)
    assert json.loads(cache.read_text())['head'] == base
    with monkeypatch.context() as m:
        _no_scan(m)
        again = JobIndex(ds.repo).refresh()
        assert again.head == index.head
        assert [r.job_id for r in again.open_jobs()] == [1, 2]
    _recorded(index, ds, 3)
    assert json.loads(cache.read_text())['head'] == index.head
    assert _open_ids(ds) == [1, 2, 3]


def test_commits_without_records_move_the_delta(ds, monkeypatch):
    JobIndex(ds.repo).refresh()
    _schedule(ds, 1)
    commit_empty(ds.repo, 'not a record')
    JobIndex(ds.repo).refresh()
    _no_scan(monkeypatch)
    again = JobIndex(ds.repo).refresh()
    assert again.head == plumbing.head(ds.repo)
    assert [r.job_id for r in again.open_jobs()] == [1]


@pytest.mark.parametrize('damage', ['corrupt', 'other base', 'no index'])
def test_unusable_delta_is_ignored(ds, damage):
    index = JobIndex(ds.repo).refresh()
    first = _recorded(index, ds, 1)
    _finish(ds, 1, first)
    _schedule(ds, 2)
    delta = state.index_delta(ds.repo.dot_git)
    if damage == 'corrupt':
        delta.write_text('{"version": 1, "base": ')
    elif damage == 'other base':
        content = json.loads(delta.read_text())
        delta.write_text(json.dumps(dict(content, base='0' * 40)))
    else:
        state.index_cache(ds.repo.dot_git).unlink()
    assert _open_ids(ds) == [2]


def test_current_index_is_kept_for_the_thread(ds, monkeypatch):
    first = JobIndex.current(ds.repo)
    _schedule(ds, 1)

    def no_load(self):
        raise AssertionError('the cache was read again')
    monkeypatch.setattr(JobIndex, '_load', no_load)
    again = JobIndex.current(ds.repo)
    assert again is first
    assert [r.job_id for r in again.open_jobs()] == [1]


# What the submission's checks asked of every open job in turn, before the
# index kept the open jobs' paths: the answers to keep.

def _conflicts_job_by_job(index, outputs):
    conflicts = []
    for record in index.open_jobs():
        clashing = [o for o in record.data.get('outputs', [])
                    if any(overlap(o, mine) for mine in outputs)]
        if clashing:
            conflicts.append(
                f'job {record.job_id} (commit {record.commit[:8]}) writes '
                f'{", ".join(clashing)}')
    return conflicts


def _dependencies_job_by_job(index, inputs):
    jobs = [r.commit for r in index.open_jobs()
            if any(overlap(i, o) for i in inputs
                   for o in r.data.get('outputs', []))]
    to_get = [i for i in inputs
              if not any(lies_within(i, o) for r in index.open_jobs()
                         for o in r.data.get('outputs', []))]
    return jobs, to_get


def _claimed_job_by_job(index, path):
    jobs = index.open_jobs()
    claimed = Claimed(o for r in jobs for o in r.data.get('outputs', []) +
                      [r.data.get('farm_log_dir')] if o)
    logs = {p for r in jobs for p in r.data.get('slurm_output_patterns') or []}
    is_log = re.compile('|'.join(pattern_regex(p).pattern for p in logs)) \
        if logs else None
    return path in claimed or bool(is_log and is_log.match(path))


def _random_record(rng, job_id):
    data = {'outputs': _random_outputs(rng)}
    if rng.random() < 0.2:
        data['farm_log_dir'] = rng.choice(['a', 'out/b', f'logs/{job_id}'])
    if rng.random() < 0.7:
        data['slurm_output_patterns'] = [rng.choice(
            ['slurm-%j.out', 'out/%x-%j.log', f'logs/{job_id}-%a.err'])]
    return data


def _assert_answers_as_job_by_job(ds, index, rng):
    for _ in range(15):
        specs = [_random_spec(rng) for _ in range(rng.randint(1, 3))]
        assert find_conflicts(index, specs) == \
            _conflicts_job_by_job(index, specs)
        found = find_dependencies(ds.repo, index, specs, [])
        assert (found.commits, found.to_get) == \
            _dependencies_job_by_job(index, specs)
        for path in [_random_spec(rng, globs=False), 'slurm-12.out',
                     'out/name-3.log', 'logs/4-1.err']:
            assert index.paths.claimed(path) is \
                _claimed_job_by_job(index, path), path


@pytest.mark.parametrize('seed', range(3))
def test_open_paths_answer_as_asked_of_each_job(ds, seed):
    """Jobs recorded by the submitting index, scanned from commits of
    others, finished: the index of their paths follows each change."""
    rng = random.Random(seed)
    index = JobIndex(ds.repo).refresh()
    _assert_answers_as_job_by_job(ds, index, rng)
    open_commits = {}
    for job_id in range(1, 31):
        data = _random_record(rng, job_id)
        if rng.random() < 0.5:
            parent = index.head
            message = compose_message(SCHEDULE, schedule_title(job_id),
                                      {'slurm_job_id': job_id, **data})
            sha = commit_empty(ds.repo, message, parent)
            index.recorded(parse_message(message, sha), parent)
        else:
            sha = _schedule(ds, job_id, **data)
        open_commits[job_id] = sha
        if rng.random() < 0.3:
            finished = rng.choice(sorted(open_commits))
            _finish(ds, finished, open_commits.pop(finished))
        index.refresh()
        _assert_answers_as_job_by_job(ds, index, rng)
    assert [r.job_id for r in index.open_jobs()] == sorted(open_commits)
    # read from the cache, and from the commits since
    _assert_answers_as_job_by_job(ds, JobIndex(ds.repo).refresh(), rng)


def test_open_paths_follow_a_rewritten_history(ds):
    base = git(ds, 'rev-parse', 'HEAD').strip()
    first = _schedule(ds, 1, outputs=['out/a'])
    index = JobIndex(ds.repo).refresh()
    assert [r.commit for r, _ in index.paths.writing(['out'])] == [first]
    git(ds, 'reset', '--hard', base)
    second = _schedule(ds, 2, outputs=['out/b'])
    index.refresh()
    assert [(r.commit, clashing) for r, clashing in
            index.paths.writing(['out'])] == [(second, ['out/b'])]
    assert not index.paths.claimed('out/a')


def test_history_is_read_as_git_writes_it(ds, monkeypatch):
    """Records read from git's output in pieces smaller than one of them
    are those read in one piece, newest first, with a message that is
    not ASCII; a reader may stop half way; a bad revision is git's
    error."""
    first = _schedule(ds, 1, message='über')
    _finish(ds, 1, first)
    _schedule(ds, 2)
    whole = list(newest_messages(ds.repo))
    entries = plumbing.git_entries

    def small_pieces(repo, args, separator, **kwargs):
        return entries(repo, args, separator, chunk=7, **kwargs)

    monkeypatch.setattr(plumbing, 'git_entries', small_pieces)
    assert list(newest_messages(ds.repo)) == whole
    assert [parse_message(m).job_id for _, m in whole] == [2, 1, 1]
    assert 'über' in whole[2][1]
    stream = newest_messages(ds.repo)
    next(stream)
    stream.close()
    with pytest.raises(CommandError):
        list(newest_messages(ds.repo, 'no-such-branch'))
