"""Farm jobs (``datalad schedule --tasks FILE``) on the real cluster: the
farmer as a Slurm job's batch script, signalled by Slurm, in an array of
farmers.  The same stories run without Slurm in test_farm.py."""

from __future__ import annotations

import subprocess

from datalad_slurm.records.history import read_record

from conftest import (
    JOB_WAIT,
    call,
    git,
    only,
    snapshot,
    wait_for_jobs,
)
from test_farm import (
    farm_of,
    farm_running,
    message,
    save_tasks,
    schedule_farm,
)

# fifty tasks on lines 1-50, those of lines 10 and 40 failing
FIFTY = ''.join('false\n' if line in (10, 40) else
                'echo "$DATALAD_SLURM_TASK_ID $SLURM_JOB_ID"\n'
                for line in range(1, 51))


def test_farm_job_of_fifty_tasks(ds):
    save_tasks(ds, FIFTY)
    scheduled = schedule_farm(ds, tasks='tasks.txt', workers=4,
                              outputs=['out'])
    job_id = scheduled['slurm_job_id']
    wait_for_jobs(job_id)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error'
    assert '10,40:FAILED' in message(res)

    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['message'] == f'Processed batch job {job_id}: Failed'
    data = read_record(ds.repo, 'HEAD').data
    assert len(data['state']) == 50
    assert data['farm_failed'] == [10, 40]
    assert data['farm_job_state'] in ('FAILED', 'COMPLETED')
    assert (ds.pathobj / f'slurm-{job_id}-tasks' / '3.log').read_text() == \
        f'3 {job_id}\n'
    assert git(ds, 'status', '--porcelain') == ''

    res = only(call(ds.reschedule), 'reschedule')
    assert res['status'] == 'ok', res
    assert read_record(ds.repo, 'HEAD').data['farm_task_ids'] == [10, 40]
    wait_for_jobs(res['slurm_job_id'])
    assert sorted(farm_of(ds).tasks.read()) == ['10', '40']


def test_task_timeout(ds):
    save_tasks(ds, 'sleep 60\ntrue\n')
    job_id = schedule_farm(ds, tasks='tasks.txt', task_timeout=1,
                           outputs=['out'])['slurm_job_id']
    wait_for_jobs(job_id)
    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['message'] == f'Processed batch job {job_id}: Timeout'
    data = read_record(ds.repo, 'HEAD').data
    assert data['state'] == {'1': 'TIMEOUT', '2': 'COMPLETED'}


def test_signal_to_the_batch_shell_puts_tasks_back(ds):
    job_id, farm = farm_running(ds, JOB_WAIT)
    subprocess.run(['scancel', '--signal=TERM', '--batch', str(job_id)],
                   check=True)
    wait_for_jobs(job_id)
    tasks = farm.tasks.read()
    assert [t['state'] for t in tasks.values()] == ['QUEUED'] * 4
    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    data = read_record(ds.repo, 'HEAD').data
    assert set(data['state'].values()) == {'CANCELLED'}


def test_array_of_farmers(ds):
    save_tasks(ds, 'mkdir -p out; echo "$DATALAD_SLURM_TASK_ID '
                   '$SLURM_ARRAY_TASK_ID" >> out/ran; sleep 0.5\n' * 20)
    job_id = schedule_farm(ds, ['sbatch', '--array=0-1'], tasks='tasks.txt',
                           workers=2, outputs=['out'])['slurm_job_id']
    wait_for_jobs(job_id)
    ran = [line.split() for line in
           (ds.pathobj / 'out' / 'ran').read_text().splitlines()]
    assert sorted(int(task) for task, _ in ran) == list(range(1, 21))
    assert only(call(ds.finish), 'finish')['status'] == 'ok'


def test_refusals_leave_head(ds):
    save_tasks(ds, '# nothing\n', 'empty.txt')
    save_tasks(ds, 'true\n')
    (ds.pathobj / 'tasks.txt').unlink()
    (ds.pathobj / 'tasks.txt').write_text('false\n')
    before = snapshot(ds)
    for tasks, said in (('missing.txt', 'does not exist'),
                        ('tasks.txt', 'not saved'),
                        ('empty.txt', 'has no tasks')):
        res = only(call(ds.schedule, ['sbatch'], tasks=tasks,
                        outputs=['out'], explicit=True), 'schedule')
        assert res['status'] == 'impossible', res
        assert said in message(res)
        assert snapshot(ds) == before
