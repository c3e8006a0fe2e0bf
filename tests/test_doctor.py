"""datalad slurm-doctor: the set-up checked on this machine and, by a
test job, on a compute node; nothing of the dataset changes."""

from __future__ import annotations

import os
import signal
import subprocess

from conftest import (
    call,
    message_text,
    snapshot,
)

from datalad_slurm import config
from datalad_slurm.repo import state

SLURMCTLD_PID = '/run/datalad-slurm-cluster/slurmctld.pid'


def checks(results: list[dict]) -> dict[str, dict]:
    return {r['check']: r for r in results}


def test_doctor_on_the_local_cluster(ds):
    before = snapshot(ds)
    found = checks(call(ds.slurm_doctor))
    assert {c: r['status'] for c, r in found.items()} == {
        'lock': 'ok', 'slurm': 'ok', 'accounting': 'ok', 'comments': 'ok',
        'limits': 'ok', 'node': 'ok', 'node-git-annex': 'ok',
        'node-lock': 'ok'}, found
    assert 'MaxArraySize' in message_text(found['limits'])
    assert 'took the repository lock' in message_text(found['node-lock'])
    assert found['node-lock']['slurm_job_id']
    assert snapshot(ds) == before
    # a test job that found nothing wrong leaves no log
    assert not list(state.doctor(ds.repo.dot_git).glob('*.out'))


def test_doctor_without_test_job(ds):
    found = checks(call(ds.slurm_doctor, test_job=False))
    assert set(found) == {'lock', 'slurm', 'accounting', 'comments',
                          'limits'}


def test_a_test_job_without_datalad_on_its_path_is_named(ds):
    """A job that does not get this machine's environment (--export=NONE)
    finds no datalad on the node: an error that says so, its log kept."""
    found = checks(call(ds.slurm_doctor, job_option=['--export=NONE']))
    res = found['test-job']
    assert res['status'] == 'error', found
    assert 'without checking anything' in message_text(res)
    assert list(state.doctor(ds.repo.dot_git).glob('*.out'))


def test_a_test_job_that_does_not_start_is_cancelled(ds):
    found = checks(call(ds.slurm_doctor, job_option=['--hold'], job_wait=3))
    res = found['test-job']
    assert res['status'] == 'error', found
    assert 'did not end within 3 s, and was cancelled' in message_text(res)
    gone = subprocess.run(
        ['squeue', '-h', '-j', str(res['slurm_job_id']), '-o', '%T'],
        capture_output=True, text=True).stdout.strip()
    assert gone in ('', 'CANCELLED'), gone


def test_doctor_where_slurm_does_not_answer(ds):
    ds.config.set(config.QUERY_TIMEOUT, '2', scope='local')
    pid = int(open(SLURMCTLD_PID).read())
    os.kill(pid, signal.SIGSTOP)
    try:
        found = checks(call(ds.slurm_doctor))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert found['slurm']['status'] == 'error', found
    assert 'Slurm cannot be asked' in message_text(found['slurm'])
    assert 'node' not in found and 'test-job' not in found


def test_an_unreadable_job_option_is_refused(lds):
    before = snapshot(lds)
    res, = call(lds.slurm_doctor, job_option=['--comment="unclosed'])
    assert res['status'] == 'impossible'
    assert 'cannot read --job-option' in message_text(res)
    assert snapshot(lds) == before


def test_doctor_in_local_mode(lds):
    found = checks(call(lds.slurm_doctor))
    assert found['lock']['status'] == 'ok'
    assert found['slurm']['status'] == 'notneeded'


def test_the_checks_of_the_test_job(lds):
    """What the test job checks on its node, here on this machine."""
    found = checks(call(lds.slurm_doctor, in_job=lds.id))
    assert {c: r['status'] for c, r in found.items()} == {
        'node': 'ok', 'node-git-annex': 'ok', 'node-lock': 'ok'}


def test_a_node_that_sees_another_dataset_is_named(lds):
    found = checks(call(lds.slurm_doctor, in_job='another-dataset-id'))
    assert found['node-dataset']['status'] == 'error'
    assert 'same path' in message_text(found['node-dataset'])
