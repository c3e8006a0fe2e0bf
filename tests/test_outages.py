"""Slurm's daemons down, each stopped by its pid file on the real local
cluster and started again by tools/slurm-up: nothing is recorded wrong,
nothing hangs, and the next command after the outage needs no repair."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    SLURM_UP,
    call,
    git,
    only,
    scancel,
    schedule_and_wait,
    snapshot,
    wait_for_jobs,
    write_script,
)

from datalad_slurm.backends import cli
from datalad_slurm.records import journal
from datalad_slurm.records.format import (
    compose_message,
    schedule_title,
)
from datalad_slurm.records.history import read_record
from datalad_slurm.repo.commit import commit_empty
from datalad_slurm.slurm.status import (
    AccountingUnavailable,
    JobStatus,
    NoAccounting,
    SlurmError,
    TaskStatus,
)

RUN_DIR = Path('/run/datalad-slurm-cluster')


@contextlib.contextmanager
def stopped(daemon: str):
    """`daemon` (slurmdbd, slurmctld, munged) down for the block."""
    pid = int((RUN_DIR / f'{daemon}.pid').read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f'/proc/{pid}').exists() and \
            Path(f'/proc/{pid}/stat').read_text().split()[2] != 'Z':
        assert time.monotonic() < deadline, f'{daemon} did not stop'
        time.sleep(0.1)
    try:
        yield
    finally:
        subprocess.run([str(SLURM_UP)], check=True, capture_output=True)


def forge_unknown_job(ds, scheduled: dict) -> int:
    """A schedule record of a job id that Slurm never had: the database
    would say it is lost."""
    record = read_record(ds.repo, scheduled['commit']).data
    job_id = record['slurm_job_id'] + 500000
    record = dict(record, slurm_job_id=job_id, outputs=['forged'],
                  submission='forged')
    commit_empty(ds.repo, compose_message('SCHEDULE', schedule_title(job_id),
                                          record))
    return job_id


def open_job_ids(ds) -> set[int]:
    return {r['slurm_job_id'] for r in call(ds.finish, list_open_jobs=True)
            if r['action'] == 'list-open-jobs'}


def test_accounting_down(ds):
    """slurmdbd down: finish answers from slurmctld for the jobs it holds,
    tells of the others that it cannot tell, and schedule still works."""
    ended = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'a/r'],
                              outputs=['a'])
    forged = forge_unknown_job(ds, ended)
    with stopped('slurmdbd'):
        res = {r['slurm_job_id']: r for r in call(ds.finish)}
        assert res[ended['slurm_job_id']]['status'] == 'ok', \
            res[ended['slurm_job_id']]['message']
        assert res[forged]['status'] == 'impossible'
        assert 'cannot tell now' in res[forged]['message'][0]
        assert 'slurmdbd' in res[forged]['message'][-1]
        assert open_job_ids(ds) == {forged}
        # sbatch does not need the database
        later = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'b/r'],
                          outputs=['b']), 'schedule')
        assert later['status'] == 'ok', later
        wait_for_slurmctld(later['slurm_job_id'])
    # once it is back, the database tells the rest
    res = {r['slurm_job_id']: r for r in call(ds.finish)}
    assert res[later['slurm_job_id']]['status'] == 'ok', res
    assert res[forged]['status'] == 'error'
    assert 'knows no job' in res[forged]['message'][0]
    assert (ds.pathobj / 'b' / 'r').exists()


def wait_for_slurmctld(job_id: int, timeout: float = 60):
    """Wait until slurmctld says the job has ended (sacct cannot)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(
            ['squeue', '-h', '-t', 'all', '-j', str(job_id), '-o', '%T'],
            capture_output=True, text=True).stdout.strip() != 'COMPLETED':
        assert time.monotonic() < deadline, f'job {job_id} did not end'
        time.sleep(0.2)


def assert_nothing_changed(ds, before):
    assert snapshot(ds) == before
    assert not journal.has_entries(ds.repo)


@pytest.mark.parametrize('daemon, says', [
    ('slurmctld', 'slurmctld) cannot be reached'),
    ('munged', 'refused to authenticate'),
])
def test_daemon_down(ds, daemon, says):
    """schedule and finish give an error that names the cause, within the
    query timeout, and change nothing; afterwards both work."""
    write_script(ds, 'jobs/wait.sh', 'sleep 300\n')
    ds.save(result_renderer='disabled')
    running = only(call(ds.schedule, ['sbatch', 'jobs/wait.sh'],
                        outputs=['w']), 'schedule')
    assert running['status'] == 'ok', running
    # an output of a finished job, annexed and locked, to be made writable
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'a/r'], outputs=['a'])
    assert only(call(ds.finish, 'HEAD'), 'finish')['status'] == 'ok'
    before = snapshot(ds)
    with stopped(daemon):
        start = time.monotonic()
        res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'a/r'],
                        outputs=['a']), 'schedule')
        assert res['status'] == 'error', res
        assert says in res['message'][-1]
        assert_nothing_changed(ds, before)
        assert (ds.pathobj / 'a' / 'r').is_symlink()
        res = only(call(ds.finish), 'finish')
        assert res['status'] == 'error', res
        assert says in res['message'][-1]
        assert_nothing_changed(ds, before)
        # sbatch and squeue give up by themselves within seconds
        assert time.monotonic() - start < 60
    scancel(running['slurm_job_id'])
    wait_for_jobs(running['slurm_job_id'])
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'a/r'],
                    outputs=['a']), 'schedule')
    assert res['status'] == 'ok', res
    wait_for_jobs(res['slurm_job_id'])
    res = call(ds.finish, close_failed_jobs=True)
    assert [r['status'] for r in res] == ['ok', 'ok'], res
    assert git(ds, 'status', '--porcelain') == ''


# -- what the tools said (Slurm 22.05), without a cluster ---------------------

SACCT_NO_DBD = '''\
sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:localhost:6819: Connection refused
sacct: error: Sending PersistInit msg: Connection refused
sacct: error: Problem talking to the database: Connection refused
'''
SBATCH_NO_CTLD = '''\
sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)
'''
SACCT_NO_MUNGE = '''\
sacct: error: If munged is up, restart with --num-threads=10
sacct: error: Munge encode failed: Failed to access "/run/munge/munge.socket.2": No such file or directory (Did you start munged?)
sacct: error: slurm_send_node_msg: auth_g_create: REQUEST_PERSIST_INIT has authentication error
sacct: error: slurm_persist_conn_open: failed to send persistent connection init message to localhost:6819
sacct: error: Sending PersistInit msg: Protocol authentication error
sacct: error: Problem talking to the database: Protocol authentication error
'''

SBATCH_SUBMIT_LIMIT = '''\
sbatch: error: QOSMaxSubmitJobPerUserLimit
sbatch: error: Batch job submission failed: Job violates accounting/QOS \
policy (job submit limit, user's size and/or time limits)
'''


@pytest.mark.parametrize('program, stderr, kind, says', [
    ('sacct', SACCT_NO_DBD, AccountingUnavailable, 'slurmdbd'),
    ('sbatch', SBATCH_NO_CTLD, SlurmError, 'slurmctld) cannot be reached'),
    # the database is not what is missing then
    ('sacct', SACCT_NO_MUNGE, SlurmError, 'munged'),
    ('sbatch', 'sbatch: error: invalid partition specified: x\n', SlurmError,
     'invalid partition'),
    ('sacct', 'Slurm accounting storage is disabled\n', NoAccounting,
     'keeps no accounting database'),
    ('sbatch', SBATCH_SUBMIT_LIMIT, SlurmError,
     '(QOSMaxSubmitJobPerUserLimit, sacctmgr\'s MaxSubmitJobs)'),
])
def test_daemon_down_is_named(program, stderr, kind, says):
    error = cli.failure(program, stderr, 1)
    assert type(error) is kind
    assert says in str(error)
    # one line of what the tool said, not all of its chatter
    assert '\n' not in str(error)


def test_job_not_reported_while_accounting_is_down_is_unknown():
    down = 'the database cannot be reached'
    assert JobStatus(1, unanswered=down).phase == 'unknown'
    assert JobStatus(1).phase == 'lost'
    array = JobStatus(2, tasks=[TaskStatus(0, 'COMPLETED', 0)],
                      missing_tasks=[1], unanswered=down)
    assert array.phase == 'unknown'
    array.missing_tasks = []
    assert array.phase == 'complete'
