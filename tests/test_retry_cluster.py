"""Submitting again what failed, with what it lacked, where Slurm's own
state matters: a job that really runs into its time limit.

This cluster does not enforce memory (memory is no consumable resource,
no cgroups, jobacct_gather without OverMemoryKill), so no job ends
OUT_OF_MEMORY on it: tests/test_retry.py raises memory from a recorded
FINISH instead.
"""

import subprocess

from conftest import (
    call,
    only,
    scancel,
    wait_for_jobs,
    write_script,
)

from datalad_slurm.records.history import read_record

# Slurm keeps time limits in whole minutes and checks them about every
# 30 s: a job of --time=1 that sleeps on ends TIMEOUT within ~100 s
TIMEOUT_WAIT = 240


def test_timeout_task_again_with_more_time(ds):
    write_script(ds, 'jobs/slow.sh', '''
        #SBATCH --time=1
        mkdir -p out
        echo "task $SLURM_ARRAY_TASK_ID" > out/$SLURM_ARRAY_TASK_ID
        if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then sleep 600; fi
        ''')
    ds.save(message='slow job', result_renderer='disabled')
    scheduled = only(call(ds.schedule, ['sbatch', '--array=0-1',
                                        'jobs/slow.sh'], outputs=['out']),
                     'schedule')
    assert scheduled['status'] == 'ok', scheduled
    wait_for_jobs(scheduled['slurm_job_id'], timeout=TIMEOUT_WAIT)
    closed = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert closed['status'] == 'ok', closed
    data = read_record(ds.repo, 'HEAD').data
    assert data['state'] == {'0': 'COMPLETED', '1': 'TIMEOUT'}

    report = only(call(ds.jobs, scheduled['slurm_job_id']))
    assert report['failure_causes'] == {'TIMEOUT': 1}

    again = only(call(ds.reschedule, failed=True, more_time=2),
                 'reschedule')
    assert again['status'] == 'ok', again
    try:
        record = read_record(ds.repo, 'HEAD').data
        assert record['cmd'] == \
            'sbatch --array=1 --time=00:02:00 jobs/slow.sh'
        assert record['slurm_array'] == [1]
        assert record['raised'] == {'time': ['1', '00:02:00']}
        # Slurm's word on what the new job asks for
        shown = subprocess.run(
            ['scontrol', '-o', 'show', 'job', str(again['slurm_job_id'])],
            capture_output=True, text=True, check=True).stdout
        assert 'TimeLimit=00:02:00' in shown, shown
        assert 'ArrayTaskId=1 ' in shown, shown
    finally:
        scancel(again['slurm_job_id'])
    wait_for_jobs(again['slurm_job_id'])
