"""Concurrency and crashes: the repository lock, the journal, and the stress
tool run small."""

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datalad.api import Dataset
from datalad.utils import get_dataset_root

from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state
from datalad_slurm.repo.lock import (
    LockTimeout,
    repository_lock,
)

from conftest import (
    call,
    only,
    snapshot,
)

STRESS = Path(__file__).resolve().parent.parent / 'tools' / 'stress'


def _hold_lock(path, ready, release):
    with repository_lock(Dataset(path).repo, timeout=10):
        ready.set()
        release.wait(30)


@pytest.fixture
def locked(ds):
    """The dataset's lock, held by another process."""
    ctx = multiprocessing.get_context('fork')
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(ds.path, ready, release))
    holder.start()
    assert ready.wait(30)
    yield holder
    release.set()
    holder.join(30)


def test_lock_timeout_names_the_holder(ds, locked):
    ds.config.set('datalad.slurm.lock-timeout', '0.5', scope='local')
    before = snapshot(ds)
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    assert res['status'] == 'error'
    assert f'pid {locked.pid}' in res['message']
    assert 'datalad.slurm.lock-timeout' in res['message']
    assert snapshot(ds) == before


def test_one_lock_through_symlinks_and_subdirectories(ds, tmp_path, locked):
    link = tmp_path / 'link'
    link.symlink_to(ds.path)
    for path in (str(link), os.path.join(str(link), 'jobs'),
                 os.path.join(ds.path, 'jobs')):
        repo = Dataset(get_dataset_root(path)).repo
        assert state.lock(repo.dot_git) == state.lock(ds.repo.dot_git)
        with pytest.raises(LockTimeout):
            with repository_lock(repo, timeout=0.2):
                pass


def test_foreign_index_lock_is_waited_for_then_reported(ds):
    index_lock = Path(ds.repo.dot_git) / 'index.lock'
    index_lock.write_text('')
    try:
        ds.config.set('datalad.slurm.lock-timeout', '0.5', scope='local')
        res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                        outputs=['out']), 'schedule')
        assert res['status'] == 'error'
        assert 'index.lock' in res['message']
    finally:
        index_lock.unlink()


def _stress(*args):
    out = subprocess.run(
        [sys.executable, str(STRESS), '--json', '--timeout', '240', *args],
        capture_output=True, text=True)
    summaries = [json.loads(line) for line in out.stdout.splitlines()]
    assert summaries, out.stderr
    for summary in summaries:
        assert summary['errors'] == 0, summary
    return summaries


def test_parallel_schedules_with_distinct_outputs(slurm_cluster):
    summary, = _stress('--scenario', 'distinct', '--jobs', '12',
                       '--parallel', '4')
    assert summary['schedules'] == summary['slurm_jobs'] == 12


def test_parallel_schedules_with_overlapping_outputs(slurm_cluster):
    summary, = _stress('--scenario', 'overlap', '--jobs', '12',
                       '--parallel', '4')
    assert summary['accepted'] == summary['groups'] == 3
    assert summary['refused'] == 9
    assert summary['slurm_jobs'] == 3


def test_jobs_finishing_themselves_while_finish_runs_outside(slurm_cluster):
    summary, = _stress('--scenario', 'self-finish', '--jobs', '8',
                       '--parallel', '4')
    assert summary['finishes'] == 8


def test_crashes_are_recovered(slurm_cluster):
    summary, = _stress('--scenario', 'crash', '--jobs', '16')
    assert summary['schedules'] == summary['finishes'] == 2


def test_submission_interrupted_during_sbatch_is_reported(ds):
    """Killed while sbatch ran: whether Slurm took the job is unknown, so
    the user is told, once, and nothing is guessed."""
    from datalad_slurm.records import journal
    # a user's own --comment: no mark to look the submission up by
    entry = journal.begin(ds.repo, 'SCHEDULE', {'outputs': ['o']}, None,
                          ['sbatch', '--comment=mine', 'jobs/write.sh'],
                          marked=False, writable=['o'])
    entry.submitting()
    before = snapshot(ds)
    res = call(ds.finish)
    errors = [r for r in res if r['status'] == 'error']
    assert len(errors) == 1
    assert 'whether Slurm accepted it is unknown' in errors[0]['message'][0]
    assert not entry.path.exists()
    assert (entry.path.parent / 'unresolved' / entry.path.name).exists()
    assert snapshot(ds) == before
    # reported once
    assert [r['status'] for r in call(ds.finish)] == ['notneeded']


def test_journal_entry_of_a_committed_job_is_dropped(ds):
    """Killed after the schedule commit, before forgetting the entry: the
    job is not recorded twice."""
    from datalad_slurm.records import journal
    res = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                    outputs=['o']), 'schedule')
    try:
        recorded = read_record(ds.repo, res['commit']).data
        entry = journal.begin(ds.repo, 'SCHEDULE', recorded, None,
                              ['sbatch', 'jobs/write.sh'], marked=True,
                              writable=['o'])
        entry.submitted(recorded['slurm_job_id'])
        before = snapshot(ds)
        call(ds.finish)
        assert not entry.path.exists()
        assert snapshot(ds) == before
    finally:
        subprocess.run(['scancel', str(res['slurm_job_id'])], check=True)


def test_orphan_with_a_reused_job_id_is_recorded(ds):
    """Job ids are reused: an orphaned submission whose id an earlier,
    committed job had is no duplicate of it, and gets its own commit."""
    from datalad_slurm.records import journal
    res = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                    outputs=['o']), 'schedule')
    try:
        earlier = read_record(ds.repo, res['commit']).data
        orphan = dict(earlier, outputs=['o2'], submission='a-later-one')
        entry = journal.begin(ds.repo, 'SCHEDULE', orphan, None,
                              ['sbatch', 'jobs/write.sh'], marked=True,
                              writable=['o2'])
        entry.submitted(res['slurm_job_id'])
        recovered = [r for r in call(ds.finish) if r.get('commit')
                     and r['status'] == 'ok']
        assert len(recovered) == 1, recovered
        assert not entry.path.exists()
        again = read_record(ds.repo, recovered[0]['commit'])
        assert again.data['submission'] == 'a-later-one'
        assert again.data['outputs'] == ['o2']
    finally:
        subprocess.run(['scancel', str(res['slurm_job_id'])], check=True)
