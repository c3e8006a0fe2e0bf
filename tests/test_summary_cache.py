"""The cache of the job summaries behind datalad jobs: built by the first
call, reused, brought up to date from the commits made since, rebuilt where
it cannot be; its answers always those of a read of the whole history."""

from __future__ import annotations

import logging
import re

import pytest
from conftest import (
    call,
    git,
    only,
    write_script,
)

from datalad_slurm.records.history import messages_of
from datalad_slurm.report import cache
from datalad_slurm.report.summary import job_summaries
from datalad_slurm.repo import state

from test_local import (
    schedule,
    wait_local,
)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The revision ranges the cache reads the history of."""
    ranges = []
    read = cache.read_summaries

    def counted(repo, revision_range, *args, **kwargs):
        ranges.append(revision_range)
        return read(repo, revision_range, *args, **kwargs)
    monkeypatch.setattr(cache, 'read_summaries', counted)
    return ranges


def _jobs(ds) -> list[dict]:
    results = call(ds.jobs)
    # what a read of the whole history, without the cache, gives
    assert [{k: r[k] for k in summary} for r, summary
            in zip(results, job_summaries(ds.repo))] == \
        job_summaries(ds.repo)
    assert len(results) == len(job_summaries(ds.repo))
    return results


def _finished(ds, *job_ids):
    wait_local(ds, *job_ids)
    call(ds.finish, close_failed_jobs=True)


def test_cache_is_built_reused_and_updated(lds, reads):
    first = schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'],
                     outputs=['one'])
    head = git(lds, 'rev-parse', 'HEAD').strip()
    assert [r['job_state'] for r in _jobs(lds)] == ['open']
    assert reads == [head]
    assert state.summaries(lds.repo.dot_git).exists()

    # nothing new: nothing read
    again = _jobs(lds)
    assert reads == [head]
    assert [r['job_state'] for r in again] == ['open']

    # the FINISH commit replaces the open job's summary
    _finished(lds, first['slurm_job_id'])
    finish = git(lds, 'rev-parse', 'HEAD').strip()
    job = only(_jobs(lds))
    assert reads == [head, f'{head}..{finish}']
    assert (job['job_state'], job['finish_commit']) == ('complete', finish)

    # a failed job and its FINISH commit, both since the last call
    second = schedule(lds, ['sbatch', 'jobs/write.sh', 'two/r', '3'],
                      outputs=['two'])
    _finished(lds, second['slurm_job_id'])
    now = git(lds, 'rev-parse', 'HEAD').strip()
    assert [(r['slurm_job_id'], r['job_state']) for r in _jobs(lds)] == [
        (first['slurm_job_id'], 'complete'),
        (second['slurm_job_id'], 'failed')]
    assert reads[-1] == f'{finish}..{now}'


def test_cache_is_rebuilt_after_a_reset(lds, reads):
    job = schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'],
                   outputs=['one'])
    _finished(lds, job['slurm_job_id'])
    assert only(_jobs(lds))['job_state'] == 'complete'
    # back to the schedule commit: the cache's tip is gone from the history
    git(lds, 'reset', '--quiet', '--hard', 'HEAD~1')
    head = git(lds, 'rev-parse', 'HEAD').strip()
    assert only(_jobs(lds))['job_state'] == 'open'
    assert reads[-1] == head


@pytest.mark.parametrize('damage', [
    b'{"key": ', b'[]', b'{"key": null}', b'\xff\xfe', 'head',
])
def test_unusable_cache_is_rebuilt(lds, reads, caplog, damage):
    job = schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'],
                   outputs=['one'])
    _finished(lds, job['slurm_job_id'])
    before = _jobs(lds)
    path = state.summaries(lds.repo.dot_git)
    if damage == 'head':
        # a file of the right form, its tip no commit
        damage = path.read_bytes().replace(
            git(lds, 'rev-parse', 'HEAD').strip().encode(), b'--all')
    path.write_bytes(damage)
    with caplog.at_level(logging.DEBUG, logger='datalad.slurm.summaries'):
        assert _jobs(lds) == before
    assert len(reads) == 2 and '..' not in reads[1]
    assert 'Rebuilding the job summaries' in caplog.text
    # and written again, whole
    assert cache._load(path, cache._key())[1] == \
        job_summaries(lds.repo)


def test_unwritable_cache_answers_from_the_history(lds, reads,
                                                   monkeypatch):
    """A cache that cannot be written (a full disk, a read-only .git):
    the summaries read from the history are the answer, each time."""
    schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'], outputs=['one'])

    def full(path, parts, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(state, 'write_parts', full)
    assert only(_jobs(lds))['job_state'] == 'open'
    assert only(_jobs(lds))['job_state'] == 'open'
    assert len(reads) == 2
    assert not state.summaries(lds.repo.dot_git).exists()


def test_cache_of_another_commit_saved_meanwhile(lds, reads, monkeypatch):
    """Another call saved the summaries of another commit between this
    call's save and its read-back: this call reads the history again,
    not the other commit's summaries."""
    schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'], outputs=['one'])
    load = cache._load
    loads = []

    def other_tip(path, key):
        loads.append(path)
        tip, summaries = load(path, key)
        # the first load finds no cache; the read-back another tip
        return ('0' * 40, []) if len(loads) == 2 else (tip, summaries)
    monkeypatch.setattr(cache, '_load', other_tip)
    assert only(_jobs(lds))['job_state'] == 'open'
    assert len(loads) == 2 and len(reads) == 2


def test_failure_pattern_reads_the_logs_as_they_are(lds, reads):
    write_script(lds, 'jobs/fail.sh', '''
        echo "disk quota exceeded"
        exit 1
        ''')
    lds.save(message='add failing job', result_renderer='disabled')
    job = schedule(lds, ['sbatch', 'jobs/fail.sh'])
    _finished(lds, job['slurm_job_id'])
    pattern = re.compile('quota')
    assert only(cache.cached_summaries(lds.repo))['failure_causes'] == \
        {'exit code 1': 1}
    found = cache.cached_summaries(lds.repo, pattern)
    assert only(found)['failure_causes'] == {'log: quota': 1}
    assert found == job_summaries(lds.repo, failure_pattern=pattern)
    # the pattern needs no cache of its own
    assert len(reads) == 1
    # a log not there (an annexed one without its content), then got
    log = f"slurm-{job['slurm_job_id']}.out"
    (lds.pathobj / log).unlink()
    assert only(cache.cached_summaries(lds.repo, pattern))[
        'failure_causes'] == {'exit code 1': 1}
    git(lds, 'checkout', '--', log)
    assert cache.cached_summaries(lds.repo, pattern) == found
    assert len(reads) == 1


def test_since_reads_only_its_range(lds, reads):
    first = schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'],
                     outputs=['one'])
    second = schedule(lds, ['sbatch', 'jobs/write.sh', 'two/r'],
                      outputs=['two'])
    jobs = call(lds.jobs, since=first['commit'])
    assert [r['slurm_job_id'] for r in jobs] == [second['slurm_job_id']]
    assert reads == []
    assert not state.summaries(lds.repo.dot_git).exists()


def test_messages_of_given_commits(lds):
    first = schedule(lds, ['sbatch', 'jobs/write.sh', 'one/r'],
                     outputs=['one'])
    second = schedule(lds, ['sbatch', 'jobs/write.sh', 'two/r'],
                      outputs=['two'])
    found = list(messages_of(lds.repo, [second['commit'], first['commit']]))
    assert [sha for sha, _ in found] == [second['commit'], first['commit']]
    assert all(message.startswith('[DATALAD SCHEDULE]')
               for _, message in found)
    assert list(messages_of(lds.repo, [])) == []
