"""Scratch jobs (``datalad schedule --scratch DIR``) on the real cluster:
clones made by the job on the node, array tasks with a clone each, jobs
finishing themselves from their clones.  The refusals and the local-mode
stories are in test_scratch.py."""

from __future__ import annotations

import subprocess
import time

import pytest

import test_scratch as local_mode
from conftest import (
    call,
    git,
    only,
    schedule_and_wait,
    wait_for_jobs,
    write_script,
)
from test_farm import message
from test_scratch import (
    finish_waiting,
    merged_files,
    schedule_scratch,
)

from datalad_slurm.modes.scratch.layout import branch_name
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state


def finished_once_each(ds, job_ids):
    """Every job has exactly one FINISH commit, a merge."""
    for job_id in job_ids:
        finishes = git(ds, 'log', '--format=%H %P', '--grep',
                       rf'^\[DATALAD FINISH\] Processed batch job {job_id}:'
                       ).splitlines()
        assert len(finishes) == 1, (job_id, finishes)
        assert len(finishes[0].split()) >= 3, finishes


def assert_clean(ds):
    assert git(ds, 'status', '--porcelain') == ''
    assert git(ds, 'branch', '--list', 'datalad-slurm/*') == ''
    assert not any(state.scratch(ds.repo.dot_git).iterdir())
    git(ds, 'fsck', '--no-progress')
    assert git(ds, 'annex', 'fsck', '--fast', '--quiet') == ''


def test_round_trip_with_annexed_outputs(ds, tmp_path):
    write_script(ds, 'jobs/big.sh', '''
        #SBATCH --output=logs/%x-%j.out
        mkdir -p out
        head -c 200000 /dev/urandom > out/data.bin
        echo "$PWD" > out/where.txt
        ''')
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.gitkeep').write_text('')
    ds.save(result_renderer='disabled')
    scratch = tmp_path / 'scratch'
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/big.sh'],
                                  outputs=['out'], scratch=str(scratch))
    job_id = scheduled['slurm_job_id']
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert merged_files(ds) == [f'logs/big.sh-{job_id}.out', 'out/data.bin',
                                'out/where.txt']
    # the script ran in the clone, which is gone
    where = (ds.pathobj / 'out' / 'where.txt').read_text().strip()
    assert where.startswith(str(scratch))
    assert list(scratch.iterdir()) == []
    # the content is in the dataset's annex, and its location log says so
    assert git(ds, 'annex', 'find', '--in', 'here', 'out/data.bin') == \
        'out/data.bin\n'
    assert (ds.pathobj / 'out' / 'data.bin').stat().st_size == 200000
    assert_clean(ds)

    res = only(call(ds.reschedule, 'HEAD'), 'reschedule')
    assert res['status'] == 'ok', res
    wait_for_jobs(res['slurm_job_id'])
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert read_record(ds.repo, 'HEAD').data['scratch'] == str(scratch)
    assert_clean(ds)


def test_array_job_merges_every_task(ds, tmp_path):
    write_script(ds, 'jobs/task.sh', '''
        mkdir -p out
        echo "task $SLURM_ARRAY_TASK_ID" > "out/$SLURM_ARRAY_TASK_ID.txt"
        ''')
    ds.save(result_renderer='disabled')
    scheduled = schedule_and_wait(ds, ['sbatch', '--array=0-2',
                                       'jobs/task.sh'],
                                  outputs=['out'], scratch=str(tmp_path))
    job_id = scheduled['slurm_job_id']
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert len(git(ds, 'log', '-1', '--format=%P').split()) == 4
    data = read_record(ds.repo, 'HEAD').data
    assert data['scratch_branches'] == {
        str(t): branch_name(job_id, t) for t in range(3)}
    assert [f for f in merged_files(ds) if f.startswith('out/')] == [
        'out/0.txt', 'out/1.txt', 'out/2.txt']
    assert (ds.pathobj / 'out' / '2.txt').read_text() == 'task 2\n'
    assert_clean(ds)


@pytest.mark.parametrize('finish', ['datalad finish "$SLURM_JOB_ID"',
                                    'datalad-slurm-done $?'])
def test_jobs_finishing_themselves_from_their_clones(ds, tmp_path, finish):
    write_script(ds, 'jobs/self.sh', f'''
        mkdir -p "out/$1"
        echo "$SLURM_JOB_ID" > "out/$1/r"
        {finish}
        ''')
    ds.save(result_renderer='disabled')
    ids = [schedule_scratch(ds, ['sbatch', 'jobs/self.sh', str(i)], tmp_path,
                            outputs=[f'out/{i}'])['slurm_job_id']
           for i in range(4)]
    statuses = wait_for_jobs(*ids)
    assert all(s.phase == 'complete' for s in statuses.values()), statuses
    finished_once_each(ds, ids)
    for i, job_id in enumerate(ids):
        assert (ds.pathobj / 'out' / str(i) / 'r').read_text() == \
            f'{job_id}\n'
    assert read_record(ds.repo, 'HEAD').data['finished_inside_job']
    assert_clean(ds)
    assert list(tmp_path.glob('datalad-slurm-job-*')) == []


def test_scratch_directory_named_by_a_variable_of_the_node(ds, tmp_path):
    """The variable is set in the job's environment only (--export), so
    only the node can expand it."""
    node_scratch = tmp_path / 'node'
    scheduled = schedule_and_wait(
        ds, ['sbatch', f'--export=ALL,NODE_SCRATCH={node_scratch}',
             'jobs/write.sh'],
        outputs=['out'], scratch='$NODE_SCRATCH/clones')
    assert read_record(ds.repo, 'HEAD').data['scratch'] == \
        '$NODE_SCRATCH/clones'
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    log = (ds.pathobj / f'slurm-{scheduled["slurm_job_id"]}.out').read_text()
    assert f'running in {node_scratch}/clones/' in log
    assert list((node_scratch / 'clones').iterdir()) == []


def test_failing_job_and_kept_clone(ds, tmp_path):
    ds.config.set('datalad.slurm.keep-scratch', 'true', scope='local')
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh',
                                       'out/partial.txt', '3'],
                                  outputs=['out'], scratch=str(tmp_path))
    job_id = scheduled['slurm_job_id']
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error'
    assert 'ended unsuccessfully' in message(res)
    kept = list(tmp_path.glob(f'datalad-slurm-job-{job_id}-*'))
    assert len(kept) == 1 and (kept[0] / 'out' / 'partial.txt').exists()
    # what the job pushed before it failed comes in with the close
    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    assert res['message'] == f'Processed batch job {job_id}: Failed'
    assert 'out/partial.txt' in merged_files(ds)
    assert_clean(ds)


def test_array_tasks_finishing_themselves_from_their_clones(ds, tmp_path):
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p out
        echo "$SLURM_ARRAY_TASK_ID" > "out/$SLURM_ARRAY_TASK_ID.txt"
        datalad finish "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    job_id = schedule_scratch(ds, ['sbatch', '--array=0-2', 'jobs/self.sh'],
                              tmp_path, outputs=['out'])['slurm_job_id']
    job = wait_for_jobs(job_id)[job_id]
    assert job.phase == 'complete', job
    finished_once_each(ds, [job_id])
    assert len(git(ds, 'log', '-1', '--format=%P').split()) == 4
    assert sorted(p.name for p in (ds.pathobj / 'out').iterdir()) == [
        '0.txt', '1.txt', '2.txt']
    assert_clean(ds)


def test_on_the_cluster_as_in_local_mode(ds, tmp_path):
    """The local-mode stories whose steps Slurm runs differently."""
    local_mode.test_undeclared_file_is_left_out_and_named(ds, tmp_path)
    local_mode.test_unsaved_edits_elsewhere_do_not_block(ds, tmp_path)


def test_variable_the_node_lacks_fails_the_job(ds):
    schedule_scratch(ds, ['sbatch', 'jobs/write.sh'], '$NO_SUCH_SCRATCH/x',
                     outputs=['out'])
    res = only(finish_waiting(ds))
    assert res['status'] == 'error', res
    assert 'names $NO_SUCH_SCRATCH, which is not set on' in message(res)


def test_job_stopped_by_a_signal_delivers_nothing(ds, tmp_path):
    write_script(ds, 'jobs/long.sh', '''
        mkdir -p out
        echo started > out/partial
        sleep 120
        ''')
    ds.save(result_renderer='disabled')
    scratch = tmp_path / 'scratch'
    job_id = schedule_scratch(ds, ['sbatch', 'jobs/long.sh'], scratch,
                              outputs=['out'])['slurm_job_id']
    deadline = time.monotonic() + 60
    while not list(scratch.glob(f'datalad-slurm-job-{job_id}-*/out')):
        assert time.monotonic() < deadline, 'the job did not start'
        time.sleep(0.2)
    # as Slurm signals a job ahead of its time limit (--signal=B:TERM@...)
    subprocess.run(['scancel', '--signal=TERM', '--batch', str(job_id)],
                   check=True)
    wait_for_jobs(job_id)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error', res
    log = (ds.pathobj / f'slurm-{job_id}.out').read_text()
    assert 'its work is not delivered' in log
    assert git(ds, 'branch', '--list', 'datalad-slurm/*') == ''
    assert list(scratch.iterdir()) == []


def test_octopus_of_jobs_slurm_saw_end_differently(ds, tmp_path):
    """One commit merges an array job's tasks, a job that completed and one
    Slurm saw fail (closed), as Slurm's states and exit codes tell; each
    record keeps its own job's."""
    write_script(ds, 'jobs/task.sh', '''
        mkdir -p out/a
        echo "task $SLURM_ARRAY_TASK_ID" > "out/a/$SLURM_ARRAY_TASK_ID"
        ''')
    ds.save(result_renderer='disabled')
    array = schedule_scratch(ds, ['sbatch', '--array=0-1', 'jobs/task.sh'],
                             tmp_path, outputs=['out/a'])
    done = schedule_scratch(ds, ['sbatch', 'jobs/write.sh', 'out/b/r'],
                            tmp_path, outputs=['out/b'])
    failed = schedule_scratch(ds, ['sbatch', 'jobs/write.sh', 'out/c/r',
                                   '3'], tmp_path, outputs=['out/c'])
    ids = [j['slurm_job_id'] for j in (array, done, failed)]
    wait_for_jobs(*ids)
    res = [r for r in call(ds.finish, octopus=3, close_failed_jobs=True)
           if r['action'] == 'finish']
    assert [r['status'] for r in res] == ['ok'] * 3, [
        message(r) for r in res]
    assert len({r['commit'] for r in res}) == 1
    assert git(ds, 'log', '-1', '--format=%s') == \
        '[DATALAD FINISH] Processed 3 batch jobs: 2 Complete, 1 Failed\n'
    # the array's two tasks, each job's delivered commit
    assert len(git(ds, 'log', '-1', '--format=%P').split()) == 5
    states = {s['slurm_job_id']: (s['job_state'], s['slurm_state'])
              for s in call(ds.jobs, ids)}
    assert states[ids[0]][0] == states[ids[1]][0] == 'complete'
    assert states[ids[2]] == ('failed', 'FAILED')
    assert (ds.pathobj / 'out' / 'c' / 'r').exists()
    assert_clean(ds)
