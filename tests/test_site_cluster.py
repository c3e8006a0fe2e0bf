"""Sites configured unlike the local cluster's defaults: the local cluster
reconfigured (tools/slurm-up --set) without an accounting database,
without stored job comments, with submission limits; each test puts the
defaults back."""

from __future__ import annotations

import contextlib
import subprocess
import time

import pytest
from conftest import (
    SLURM_UP,
    call,
    git,
    message_text,
    only,
    sbatch_as_journaled,
    snapshot,
    unknown_submission,
    wait_for_jobs,
)
from looseversion import LooseVersion

from datalad_slurm.backends import cli
from datalad_slurm.records import journal
from datalad_slurm.records.format import (
    compose_message,
    schedule_title,
)
from datalad_slurm.records.history import read_record
from datalad_slurm.repo.commit import commit_empty


@contextlib.contextmanager
def site(*settings: str):
    """The local cluster with the slurm.conf `settings` (KEY=VALUE) for
    the block."""
    subprocess.run([str(SLURM_UP), *(f'--set={s}' for s in settings)],
                   check=True, capture_output=True)
    # what a process knows of its site is read once
    cli._site = None
    try:
        yield
    finally:
        cli._site = None
        subprocess.run([str(SLURM_UP)], check=True, capture_output=True)


def forgotten(*job_ids: int, timeout: float = 120):
    """Wait until slurmctld no longer lists the jobs (MinJobAge after they
    ended, at its next purge)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(
            ['squeue', '-h', '--states=all',
             '--jobs=' + ','.join(map(str, job_ids))],
            capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, f'slurmctld keeps {job_ids}'
        time.sleep(1)


NO_ACCOUNTING = 'AccountingStorageType=accounting_storage/none'


def test_without_accounting_database(ds):
    """No slurmdbd: a job is finished on slurmctld's word, with what it
    cannot tell (memory and CPU use) named; a job it has forgotten is
    lost, and says why."""
    with site(NO_ACCOUNTING):
        res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                        outputs=['out']), 'schedule')
        assert res['status'] == 'ok', res
        wait_for_jobs(res['slurm_job_id'])
        res = only(call(ds.finish), 'finish')
        assert res['status'] == 'ok', res
        assert 'not known: memory and CPU use' in message_text(res)
        record = read_record(ds.repo, res['commit'])
        assert 'no accounting database' in record.data['not_known']
        assert record.data['state'] == 'COMPLETED'
        assert (ds.pathobj / 'out' / 'result.txt').exists()

        lost_id = 987654321
        commit_empty(ds.repo, compose_message(
            'SCHEDULE', schedule_title(lost_id), {
                'cmd': 'sbatch jobs/write.sh', 'dsid': ds.id, 'pwd': '.',
                'inputs': [], 'extra_inputs': [], 'outputs': ['gone'],
                'chain': [], 'slurm_job_id': lost_id, 'slurm_array': None,
                'slurm_outputs': [], 'slurm_output_patterns': []}))
        res = only(call(ds.finish), 'finish')
        assert res['status'] == 'error', res
        assert 'keeps no accounting database' in message_text(res)


def test_recovery_without_stored_comments(ds):
    """The database keeps no comments, and slurmctld has forgotten the
    job whose sbatch gave no answer: recovery finds it as the one job
    submitted from the dataset then; with two such jobs it cannot tell,
    says which they are, and sets the entry aside."""
    with site('AccountingStoreFlags=', 'MinJobAge=2'):
        entry = unknown_submission(ds)
        job_id = sbatch_as_journaled(ds, entry)
        wait_for_jobs(job_id)
        forgotten(job_id)
        recovered = [r for r in call(ds.finish) if r.get('commit')]
        assert recovered[0]['slurm_job_id'] == job_id, recovered
        assert 'recovered' in message_text(recovered[0])
        assert not journal.orphans(ds.repo)

        entry = unknown_submission(ds)
        twins = [sbatch_as_journaled(ds, entry), sbatch_as_journaled(ds, entry)]
        wait_for_jobs(*twins)
        forgotten(*twins)
        before = snapshot(ds)
        res, = [r for r in call(ds.finish) if r['status'] != 'notneeded']
        assert res['status'] == 'error', res
        assert f'one of the jobs {twins[0]}, {twins[1]}' in \
            message_text(res)
        assert snapshot(ds) == before
        assert not journal.orphans(ds.repo)
        assert (entry.path.parent / 'unresolved' / entry.path.name).exists()


def test_submission_limit_is_named_and_changes_nothing(ds):
    """Beyond MaxSubmitJobs sbatch refuses the job: an error that names
    the limit, and no record of a job that does not exist."""
    with site('AccountingStorageEnforce=limits'):
        limit = ['sacctmgr', '-i', 'modify', 'user', 'root', 'set']
        subprocess.run([*limit, 'MaxSubmitJobs=1'], check=True,
                       capture_output=True)
        try:
            first = only(call(ds.schedule, ['sbatch', '--hold',
                                            'jobs/write.sh'],
                              outputs=['out']), 'schedule')
            assert first['status'] == 'ok', first
            before = snapshot(ds)
            res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh',
                                          'other/x'],
                            outputs=['other']), 'schedule')
            assert res['status'] == 'error', res
            assert 'MaxSubmitJobs' in message_text(res)
            assert snapshot(ds) == before
            assert not journal.orphans(ds.repo)
        finally:
            subprocess.run([*limit, 'MaxSubmitJobs=-1'], check=True,
                           capture_output=True)
            subprocess.run(['scancel', '-u', 'root'])


@pytest.mark.parametrize('spec', ['8-12', '0-3,12'])
def test_array_beyond_max_array_size_is_refused(ds, spec):
    """MaxArraySize bounds the highest task id, not the count: refused
    before anything changes, with the limit named."""
    with site('MaxArraySize=12'):
        before = snapshot(ds)
        res = only(call(ds.schedule, ['sbatch', f'--array={spec}',
                                      'jobs/write.sh'],
                        outputs=['out']), 'schedule')
        assert res['status'] == 'impossible', res
        assert 'MaxArraySize' in message_text(res)
        assert snapshot(ds) == before
        assert git(ds, 'log', '-1', '--format=%s') == 'add job script\n'


def test_finish_wait_under_rpc_rate_limits(ds):
    """slurmctld limiting each user's RPCs (rl_enable, Slurm 23.02 on):
    its clients wait for their turn, and a pipeline's jobs are all
    finished as they end."""
    if cli.version(30) < LooseVersion('23.02'):
        pytest.skip(f'Slurm {cli.version(30)} has no RPC rate limits')
    with site('SlurmctldParameters=rl_enable,rl_bucket_size=4,'
              'rl_refill_rate=1,rl_refill_period=1'):
        ids = []
        for i in range(3):
            res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh',
                                          f'out{i}/r'],
                            outputs=[f'out{i}']), 'schedule')
            assert res['status'] == 'ok', res
            ids.append(res['slurm_job_id'])
        res = [r for r in call(ds.finish, wait=True, wait_timeout=300)
               if r['action'] == 'finish']
        assert sorted(r['slurm_job_id'] for r in res
                      if r['status'] == 'ok') == ids, res
