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


def ended_elsewhere(ds, grace: float, output: str):
    """With an output grace of `grace` s, a job declaring `output` that
    has ended having written elsewhere."""
    ds.config.set(config.OUTPUT_GRACE, str(grace), scope='local')
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'elsewhere/r'],
                      outputs=[output])


def show_late(ds):
    """out/r, as a shared file system shows it, at last."""
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'r').write_text('late\n')


@any_backend
def test_job_without_its_outputs_fails_after_the_grace(ds):
    ended_elsewhere(ds, 0, 'out')
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
    ended_elsewhere(ds, 600, 'out')
    before = snapshot(ds)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'impossible', res
    assert 'not there yet' in message_text(res)
    assert snapshot(ds) == before
    show_late(ds)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert git(ds, 'log', '-1', '--format=%s').endswith(': Complete\n')
    assert git(ds, 'ls-files', 'out') == 'out/r\n'


@any_backend
def test_wait_waits_for_outputs_shown_late(ds):
    ended_elsewhere(ds, 600, 'out/r')
    later = threading.Timer(2, show_late, [ds])
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
