"""A job that completes without its declared outputs: given
datalad.slurm.output-grace after its end for them to show (a shared file
system shows a node's files late), then failed."""

from __future__ import annotations

import threading

import pytest
from conftest import (
    any_backend,
    call,
    git,
    message_text,
    only,
    schedule_and_wait,
    snapshot,
)

from datalad_slurm import config
from datalad_slurm.finish.outputs import missing_outputs
from datalad_slurm.records.history import read_record
from datalad_slurm.records.outcome import record_succeeded


def grace(ds, seconds: float):
    ds.config.set(config.OUTPUT_GRACE, str(seconds), scope='local')


@any_backend
def test_job_without_its_outputs_fails_after_the_grace(ds):
    grace(ds, 0)
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'elsewhere/r'],
                      outputs=['out'])
    before = snapshot(ds)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error', res
    assert 'without its declared outputs out' in message_text(res)
    assert snapshot(ds) == before

    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    assert git(ds, 'log', '-1', '--format=%s').endswith(
        ': Outputs missing\n')
    record = read_record(ds.repo, res['commit'])
    assert record.data['missing_outputs'] == ['out']
    assert not record_succeeded(record.data)


@any_backend
def test_outputs_shown_late_are_waited_for(ds):
    grace(ds, 600)
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'elsewhere/r'],
                      outputs=['out'])
    before = snapshot(ds)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'impossible', res
    assert 'not there yet' in message_text(res)
    assert snapshot(ds) == before
    # as a shared file system shows them, at last
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'r').write_text('late\n')
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert git(ds, 'log', '-1', '--format=%s').endswith(': Complete\n')
    assert git(ds, 'ls-files', 'out') == 'out/r\n'


@any_backend
def test_wait_waits_for_outputs_shown_late(ds):
    grace(ds, 600)
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'elsewhere/r'],
                      outputs=['out/r'])

    def show():
        (ds.pathobj / 'out').mkdir()
        (ds.pathobj / 'out' / 'r').write_text('late\n')
    later = threading.Timer(2, show)
    later.start()
    try:
        res = only(call(ds.finish, wait=True, wait_timeout=120), 'finish')
    finally:
        later.cancel()
    assert res['status'] == 'ok', res
    assert git(ds, 'ls-files', 'out') == 'out/r\n'


@pytest.mark.parametrize('outputs, missing', [
    (['new'], ['new']),
    # a tracked output the job deleted is its work, not missing
    (['jobs/write.sh'], []),
    (['res/*.txt'], ['res/*.txt']),
    (['jobs/*.sh', 'res/*.txt', 'jobs'], ['res/*.txt']),
])
def test_missing_outputs(dataset, outputs, missing):
    (dataset.pathobj / 'jobs' / 'write.sh').unlink()
    (dataset.pathobj / 'jobs' / 'kept.sh').write_text('')
    assert missing_outputs(dataset.repo, outputs) == missing
