"""Jobs Slurm stops and starts again (requeue, preemption, holds,
suspension), on the real cluster: open while Slurm may run them again,
and recorded by the run that ended."""

import subprocess
import time

import pytest

from datalad_slurm.records.history import read_record

from conftest import (
    call,
    only,
    snapshot,
    wait_for_jobs,
    write_script,
)


@pytest.fixture
def rerun(ds):
    """The dataset with jobs/rerun.sh: its first run waits to be stopped
    (requeued, preempted), a later one writes out/r quickly."""
    write_script(ds, 'jobs/rerun.sh', '''
        if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then exec sleep 120; fi
        mkdir -p out
        echo "run ${SLURM_RESTART_COUNT:-0}" > out/r
        ''')
    ds.save(result_renderer='disabled')
    return ds


def squeue_state(job_id: int) -> str:
    return subprocess.run(
        ['squeue', '-h', '-t', 'all', '-j', str(job_id), '-o', '%T'],
        capture_output=True, text=True).stdout.strip()


def wait_state(job_id: int, state: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while squeue_state(job_id) != state:
        assert time.monotonic() < deadline, \
            f'job {job_id} is {squeue_state(job_id)}, not {state}'
        time.sleep(0.2)


SCHEDULED: list[int] = []


@pytest.fixture(autouse=True)
def cancel_leftovers():
    """A failed test's job, still waiting for the node, would hold back
    the jobs of the tests after it."""
    yield
    if SCHEDULED:
        subprocess.run(['scancel', *map(str, SCHEDULED)], check=False)
        SCHEDULED.clear()


def schedule(ds, *argv: str) -> int:
    res = only(call(ds.schedule, ['sbatch', *argv], outputs=['out']),
               'schedule')
    assert res['status'] == 'ok', res
    SCHEDULED.append(res['slurm_job_id'])
    return res['slurm_job_id']


def assert_open(ds):
    """finish leaves the job open, as running, and changes nothing."""
    before = snapshot(ds)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'impossible', res
    assert 'still running' in res['message'][0]
    assert snapshot(ds) == before


def assert_finished_run(ds, job_id: int, restarts: int, text: str):
    wait_for_jobs(job_id)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res['message']
    record = read_record(ds.repo, 'HEAD')
    assert record.data['accounting']['restarts'] == restarts
    assert (ds.pathobj / 'out' / 'r').read_text() == text


def scontrol(*args):
    subprocess.run(['scontrol', *map(str, args)], check=True)


def test_requeued_job_stays_open_and_records_its_last_run(rerun):
    job_id = schedule(rerun, '--requeue', 'jobs/rerun.sh')
    wait_state(job_id, 'RUNNING')
    # Slurm holds a requeued job back until its credentials expired:
    # seconds on the local cluster (tools/slurm-up sets cred_expire)
    scontrol('requeue', job_id)
    wait_state(job_id, 'PENDING')
    assert_open(rerun)
    assert_finished_run(rerun, job_id, 1, 'run 1\n')


def test_requeued_and_held_job_stays_open_until_released(rerun):
    job_id = schedule(rerun, '--requeue', 'jobs/rerun.sh')
    wait_state(job_id, 'RUNNING')
    scontrol('requeuehold', job_id)
    wait_state(job_id, 'PENDING')
    assert_open(rerun)
    scontrol('release', job_id)
    assert_finished_run(rerun, job_id, 1, 'run 1\n')


def test_held_job_stays_open_until_released(ds):
    job_id = schedule(ds, '--hold', 'jobs/write.sh', 'out/r')
    wait_state(job_id, 'PENDING')
    assert_open(ds)
    scontrol('release', job_id)
    assert_finished_run(ds, job_id, 0, f'job {job_id} task none\n')


def test_suspended_job_stays_open_until_resumed(ds):
    write_script(ds, 'jobs/slow.sh', '''
        sleep 5
        mkdir -p out
        echo done > out/r
        ''')
    ds.save(result_renderer='disabled')
    job_id = schedule(ds, 'jobs/slow.sh')
    wait_state(job_id, 'RUNNING')
    scontrol('suspend', job_id)
    wait_state(job_id, 'SUSPENDED')
    assert_open(ds)
    scontrol('resume', job_id)
    assert_finished_run(ds, job_id, 0, 'done\n')


def test_preempted_job_is_waited_for(rerun):
    """A job of a lower partition tier preempted by one of the 'urgent'
    partition (tools/slurm-up) is requeued: finish --wait waits for its
    next run, it has not failed."""
    # the whole node, whatever its size: the urgent job needs it back
    job_id = schedule(rerun, '--requeue', '--exclusive', 'jobs/rerun.sh')
    wait_state(job_id, 'RUNNING')
    subprocess.run(['sbatch', '--quiet', '--partition=urgent',
                    '--exclusive', '--output=/dev/null', '--wrap=sleep 1'],
                   check=True, cwd=rerun.path)
    wait_state(job_id, 'PENDING')
    res = call(rerun.finish, wait=True, wait_timeout=120)
    assert [r['status'] for r in res if r['action'] == 'finish'] == ['ok'], [r['message'] for r in res]
    record = read_record(rerun.repo, 'HEAD')
    assert record.data['accounting']['restarts'] == 1
    assert 'Complete' in rerun.repo.format_commit('%s')
    assert (rerun.pathobj / 'out' / 'r').read_text() == 'run 1\n'
