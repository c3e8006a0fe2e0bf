"""Local mode (datalad.slurm.backend = local), end to end without Slurm:
sbatch, sacct, squeue and the other Slurm tools placed first on PATH fail,
and each call is noted, to prove that none is ever made."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import (
    call,
    git,
    only,
    snapshot,
    write_script,
)

from datalad_slurm import backends
from datalad_slurm.backends.local import ids
from datalad_slurm.backends.local.backend import LocalBackend
from datalad_slurm.backends.local.jobs import Job
from datalad_slurm.pool.tasks import TaskFiles
from datalad_slurm.records.format import Record
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state

WAIT = 30


def schedule(ds, cmd, **kwargs) -> dict:
    res = only(call(ds.schedule, cmd, **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    return res


def wait_local(ds, *job_ids: int) -> dict:
    """Wait until the local jobs have ended, as their state files tell."""
    deadline = time.monotonic() + WAIT
    while True:
        statuses = LocalBackend(ds).query(job_ids, timeout=1)
        if all(s.phase != 'running' for s in statuses.values()):
            return statuses
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def tasks_of(ds, job_id: int) -> dict[str, dict]:
    return Job.load(state.local(ds.repo.dot_git), job_id).tasks.read()


def committed_files(ds, commit='HEAD'):
    return sorted(git(ds, 'show', '--format=', '--name-only', commit).split())


def test_round_trip(lds):
    scheduled = schedule(lds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
    job_id = scheduled['slurm_job_id']
    assert ids.is_local(job_id)
    record = read_record(lds.repo, 'HEAD').data
    assert record['slurm_cluster'] == 'local'
    assert record['slurm_outputs'] == [f'slurm-{job_id}.out']
    listed = only(call(lds.finish, list_open_jobs=True))
    assert listed['slurm_job_id'] == job_id
    wait_local(lds, job_id)

    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert git(lds, 'log', '-1', '--format=%s') == \
        f'[DATALAD FINISH] Processed batch job {job_id}: Complete\n'
    assert committed_files(lds) == ['out/result.txt', f'slurm-{job_id}.out']
    data = read_record(lds.repo, 'HEAD').data
    assert data['schedule_commit'] == scheduled['commit']
    assert (data['state'], data['exit']) == ('COMPLETED', 0)
    assert data['accounting']['start'] and data['accounting']['end']
    assert data['accounting']['nodes']
    assert (lds.pathobj / 'out' / 'result.txt').read_text() == \
        f'job {job_id} task none\n'
    assert git(lds, 'status', '--porcelain') == ''
    jobs = only(call(lds.jobs))
    assert (jobs['slurm_job_id'], jobs['job_state']) == (job_id, 'complete')


def test_array_throttle(lds):
    # more workers than the throttle allows: the throttle is what limits
    lds.config.set('datalad.slurm.local-workers', '4', scope='local')
    write_script(lds, 'jobs/array.sh', '''
        #SBATCH --output=logs/%x-%A_%a.log
        mkdir -p arr
        sleep 0.2
        echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_JOB_ID" \
            > arr/$SLURM_ARRAY_TASK_ID.txt
        ''')
    (lds.pathobj / 'logs').mkdir()
    (lds.pathobj / 'logs' / '.gitkeep').touch()
    lds.save(result_renderer='disabled')
    job_id = schedule(lds, ['sbatch', '--array=0-4%2', 'jobs/array.sh'],
                      outputs=['arr'])['slurm_job_id']
    wait_local(lds, job_id)

    tasks = tasks_of(lds, job_id)
    assert sorted(tasks) == ['0', '1', '2', '3', '4']
    events = sorted([(t['start'], 1) for t in tasks.values()] +
                    [(t['end'], -1) for t in tasks.values()])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert most == 2
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    assert committed_files(lds) == sorted(
        [f'arr/{i}.txt' for i in range(5)] +
        [f'logs/array.sh-{job_id}_{i}.log' for i in range(5)])
    # each task has an id of its own, as with Slurm
    assert (lds.pathobj / 'arr' / '3.txt').read_text() == \
        f'{job_id} 3 {job_id + 3}\n'
    data = read_record(lds.repo, 'HEAD').data
    assert data['state'] == {str(i): 'COMPLETED' for i in range(5)}


def test_local_workers_bound_all_jobs(lds):
    lds.config.set('datalad.slurm.local-workers', '1', scope='local')
    write_script(lds, 'jobs/nap.sh', 'mkdir -p "$1"; sleep 0.2\n')
    lds.save(result_renderer='disabled')
    first = schedule(lds, ['sbatch', 'jobs/nap.sh', 'a'], outputs=['a'])
    second = schedule(lds, ['sbatch', 'jobs/nap.sh', 'b'], outputs=['b'])
    wait_local(lds, first['slurm_job_id'], second['slurm_job_id'])
    (a,), (b,) = (tasks_of(lds, r['slurm_job_id']).values()
                  for r in (first, second))
    assert a['end'] <= b['start'] or b['end'] <= a['start']


def test_failing_job(lds):

    job_id = schedule(lds, ['sbatch', 'jobs/write.sh', 'out/r.txt', '3'],
                      outputs=['out'])['slurm_job_id']
    wait_local(lds, job_id)
    before = snapshot(lds)
    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'error'
    assert 'ended unsuccessfully (FAILED' in res['message'][0] % \
        res['message'][1:]
    assert snapshot(lds) == before

    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    assert res['message'] == f'Processed batch job {job_id}: Failed'
    data = read_record(lds.repo, 'HEAD').data
    assert (data['state'], data['exit']) == ('FAILED', 3)
    assert f'slurm-{job_id}.out' in committed_files(lds)


def test_chdir(lds):
    (lds.pathobj / 'sub').mkdir()
    (lds.pathobj / 'sub' / '.gitkeep').touch()
    lds.save(result_renderer='disabled')
    job_id = schedule(lds, ['sbatch', '--chdir=sub', 'jobs/write.sh'],
                      outputs=['sub/out'])['slurm_job_id']
    assert read_record(lds.repo, 'HEAD').data['slurm_workdir'] == \
        str(lds.pathobj / 'sub')
    wait_local(lds, job_id)
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    assert committed_files(lds) == ['sub/out/result.txt',
                                    f'sub/slurm-{job_id}.out']


def test_wrap(lds):
    job_id = schedule(lds, [
        'sbatch', '-J', 'wrapped', '--wrap',
        'mkdir -p w && echo "$SLURM_JOB_NAME $SLURM_SUBMIT_DIR" > w/name && '
        'grep SigIgn /proc/$$/status > w/ignored'],
        outputs=['w'])['slurm_job_id']
    wait_local(lds, job_id)
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    assert (lds.pathobj / 'w' / 'name').read_text() == \
        f'wrapped {lds.path}\n'
    # SIGINT and SIGQUIT reach the job, as under Slurm
    ignored = int((lds.pathobj / 'w' / 'ignored').read_text().split()[1], 16)
    assert not ignored & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGQUIT - 1))


def test_dependency(lds):
    write_script(lds, 'jobs/first.sh', 'mkdir -p a; sleep 0.2; '
                 'echo one > a/x\n')
    write_script(lds, 'jobs/second.sh', 'mkdir -p b; cat a/x > b/y\n')
    lds.save(result_renderer='disabled')
    first = schedule(lds, ['sbatch', 'jobs/first.sh'], outputs=['a'])
    second = schedule(lds, ['sbatch', 'jobs/second.sh'], inputs=['a'],
                      outputs=['b'])
    assert read_record(lds.repo, 'HEAD').data['depends_on'] == \
        [first['commit']]
    wait_local(lds, first['slurm_job_id'], second['slurm_job_id'])
    (a,), (b,) = (tasks_of(lds, r['slurm_job_id']).values()
                  for r in (first, second))
    assert b['start'] >= a['end']
    results = call(lds.finish)
    assert [r['status'] for r in results if r['action'] == 'finish'] == \
        ['ok', 'ok']
    assert (lds.pathobj / 'b' / 'y').read_text() == 'one\n'


def test_failed_dependency_cancels(lds):
    write_script(lds, 'jobs/second.sh', 'mkdir -p b; cat out/r.txt > b/y\n')
    lds.save(result_renderer='disabled')
    first = schedule(lds, ['sbatch', 'jobs/write.sh', 'out/r.txt', '1'],
                     outputs=['out'])
    second = schedule(lds, ['sbatch', 'jobs/second.sh'], inputs=['out'],
                      outputs=['b'])
    statuses = wait_local(lds, first['slurm_job_id'], second['slurm_job_id'])
    assert statuses[second['slurm_job_id']].describe() == 'CANCELLED'
    results = {r['slurm_job_id']: r for r in call(lds.finish)
               if r['action'] == 'finish'}
    message = results[second['slurm_job_id']]['message']
    assert 'was not run' in message[0] % message[1:]


def test_reschedule(lds):
    first = schedule(lds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
    wait_local(lds, first['slurm_job_id'])
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    res = only(call(lds.reschedule), 'reschedule')
    assert res['status'] == 'ok', res
    job_id = res['slurm_job_id']
    assert job_id > first['slurm_job_id']
    data = read_record(lds.repo, 'HEAD').data
    assert data['chain'] == [first['commit']]
    assert data['slurm_cluster'] == 'local'
    wait_local(lds, job_id)
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    assert f'job {job_id} task none' in \
        (lds.pathobj / 'out' / 'result.txt').read_text()


def test_killed_job_is_lost(lds):
    write_script(lds, 'jobs/long.sh', 'mkdir -p out; sleep 30\n')
    lds.save(result_renderer='disabled')
    job_id = schedule(lds, ['sbatch', 'jobs/long.sh'],
                      outputs=['out'])['slurm_job_id']
    job = Job.load(state.local(lds.repo.dot_git), job_id)
    deadline = time.monotonic() + WAIT
    while tasks_of(lds, job_id)['batch']['state'] != 'RUNNING':
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # the runner dies; its task may live on, but nobody will record its end
    pid = job.runner().pid
    os.kill(pid, signal.SIGKILL)

    deadline = time.monotonic() + WAIT
    while (status := LocalBackend(lds).query([job_id], timeout=1)[job_id]
           ).phase != 'lost':
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    listed = only(call(lds.finish, list_open_jobs=True))
    assert listed['slurm_state'] == 'LOST'
    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'error'
    assert f'runner (pid {pid}) is gone' in res['message'][0] % \
        res['message'][1:]
    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['message'] == f'Processed batch job {job_id}: Lost'


def test_unhonoured_options_are_named_in_a_warning(lds):
    warnings = []

    class Collect(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())
    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger('datalad.slurm.local')
    logger.addHandler(handler)
    try:
        write_script(lds, 'jobs/big.sh', '''
            #SBATCH --mem=4G
            mkdir -p out; echo big > out/big
            ''')
        lds.save(result_renderer='disabled')
        job_id = schedule(lds, ['sbatch', '--partition=gpu', '-N', '2',
                                'jobs/big.sh'], outputs=['out'])[
            'slurm_job_id']
    finally:
        logger.removeHandler(handler)
    assert len(warnings) == 1, warnings
    assert str(job_id) in warnings[0]
    for option in ('--partition=gpu', '-N 2', '--mem=4G'):
        assert option in warnings[0]
    wait_local(lds, job_id)
    assert only(call(lds.finish), 'finish')['status'] == 'ok'


@pytest.mark.parametrize('cmd, said', [
    (['sbatch', 'jobs/missing.sh'], 'Unable to open file jobs/missing.sh'),
    (['sbatch', '--dependency=afterany:1', 'jobs/write.sh'],
     'honours only afterok'),
    (['sbatch', f'--dependency=afterok:{ids.BASE + 99}', 'jobs/write.sh'],
     'no local job of this dataset'),
    (['sbatch', '--array=0-3%0', 'jobs/write.sh'], 'throttle'),
    (['sbatch'], 'no batch script'),
    (['sbatch', '--test-only', 'jobs/write.sh'], 'submits no job'),
])
def test_refusals_change_nothing(lds, cmd, said):
    before = snapshot(lds)
    res = only(call(lds.schedule, cmd, outputs=['out']), 'schedule')
    assert res['status'] == 'error', res
    assert said in res['message'][0] % res['message'][1:]
    assert snapshot(lds) == before


def test_finish_inside_a_local_job(lds):
    write_script(lds, 'jobs/self.sh', '''
        mkdir -p out; echo self > out/self
        datalad finish --exit-status $? "$SLURM_JOB_ID"
        ''')
    lds.save(result_renderer='disabled')
    job_id = schedule(lds, ['sbatch', 'jobs/self.sh'],
                      outputs=['out'])['slurm_job_id']
    wait_local(lds, job_id)
    assert git(lds, 'log', '-1', '--format=%s') == \
        f'[DATALAD FINISH] Processed batch job {job_id}: Complete\n', \
        (lds.pathobj / f'slurm-{job_id}.out').read_text()
    data = read_record(lds.repo, 'HEAD').data
    assert data['finished_inside_job'] is True
    assert git(lds, 'status', '--porcelain') == ''


def test_jobs_are_asked_of_what_ran_them(no_slurm, dataset):
    """A local job is asked of its state files whatever the configured
    backend; in local mode a Slurm job is not asked of Slurm."""
    local = Record('SCHEDULE', {'slurm_job_id': ids.BASE + 5,
                                'slurm_cluster': 'local'}, 'a' * 40)
    statuses = backends.query(dataset, [local])
    assert statuses[local.job_id].phase == 'lost'
    assert 'local mode' in statuses[local.job_id].unknown_to

    dataset.config.set('datalad.slurm.backend', 'local', scope='local')
    remote = Record('SCHEDULE', {'slurm_job_id': 42,
                                 'slurm_cluster': 'cluster'}, 'b' * 40)
    statuses = backends.query(dataset, [local, remote])
    assert statuses[42].phase == 'unknown'
    assert 'does not ask Slurm' in statuses[42].unanswered


def test_counter_never_hands_out_a_recorded_id(tmp_path):
    directory = tmp_path / 'local'
    assert ids.reserve(directory, 3, lambda: ids.BASE) == ids.BASE + 1
    assert ids.reserve(directory, 1, lambda: ids.BASE) == ids.BASE + 4
    (directory / 'counter').unlink()
    # the history knows ids up to BASE + 7
    assert ids.reserve(directory, 1, lambda: ids.BASE + 7) == ids.BASE + 8


def test_each_task_is_claimed_once(tmp_path):
    keys = [str(i) for i in range(200)]
    for key in keys:
        TaskFiles(tmp_path / 'tasks').queue(key, {})
    claimed = []
    # two farmers sharing the list, each with two workers
    farmers = [TaskFiles(tmp_path / 'tasks') for _ in range(2)]

    def worker(tasks):
        while (key := tasks.claim()) is not None:
            claimed.append(key)
            tasks.end(key, 'DONE')
    threads = [threading.Thread(target=worker, args=(farmers[i % 2],))
               for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed, key=int) == keys
    assert {t['state'] for t in TaskFiles(tmp_path / 'tasks').read()
            .values()} == {'DONE'}
    assert not list(Path(tmp_path / 'tasks').glob('*.tmp'))


def test_journaled_local_submission_is_recorded_later(lds, monkeypatch):
    """A crash between the local submission and its schedule commit: the
    next command completes the record the way the job was submitted."""
    from datalad_slurm.submit import complete as recording

    def fail(*args, **kwargs):
        raise RuntimeError('crash before the schedule commit')
    head = git(lds, 'rev-parse', 'HEAD')
    with monkeypatch.context() as patched:
        patched.setattr(recording, 'commit_empty', fail)
        res = only(call(lds.schedule, ['sbatch', 'jobs/write.sh'],
                        outputs=['out']), 'schedule')
    assert res['status'] == 'error'
    job_id = res['slurm_job_id']
    assert git(lds, 'rev-parse', 'HEAD') == head
    wait_local(lds, job_id)

    results = call(lds.finish)
    recovered = [r for r in results if r.get('recovered')]
    assert [r['slurm_job_id'] for r in recovered] == [job_id]
    assert read_record(lds.repo, 'HEAD~1').data['slurm_cluster'] == 'local'
    assert git(lds, 'log', '-1', '--format=%s') == \
        f'[DATALAD FINISH] Processed batch job {job_id}: Complete\n'


SIDE_BY_SIDE = {
    # scenario: (sacct's line after the job id, the local state file)
    'complete': ('COMPLETED|0:0', {'state': 'DONE', 'exit_code': 0}),
    'failed': ('FAILED|3:0', {'state': 'FAILED', 'exit_code': 3}),
    'killed': ('FAILED|0:9', {'state': 'FAILED', 'exit_code': None,
                              'signal': 9}),
    'cancelled': ('CANCELLED|0:0', {'state': 'FAILED', 'exit_code': None,
                                    'cancelled': True}),
    'running': ('RUNNING|0:0', {'state': 'RUNNING'}),
    'pending': ('PENDING|0:0', {'state': 'QUEUED'}),
    'lost': (None, {'state': 'LOST'}),
}


@pytest.mark.parametrize('scenario', SIDE_BY_SIDE)
def test_local_and_cli_backends_agree(scenario, tmp_path):
    """The local backend maps its state files to the states, phases and
    outcomes the CLI backend reads from sacct for the same job's fate."""
    from datalad_slurm.backends import cli
    from datalad_slurm.backends.local.backend import task_status
    from datalad_slurm.slurm import parse
    from datalad_slurm.slurm.status import JobStatus

    sacct, state = SIDE_BY_SIDE[scenario]
    cli_job = JobStatus(7)
    if sacct:
        fields = ['7', '7', *sacct.split('|'), '2026-01-01T10:00:00',
                  '2026-01-01T10:00:01', '2026-01-01T10:00:02', '00:00:01',
                  'node1', '', '', '1', '00:00.010', '', '', '/d', 'c']
        cli.add_runs({7: cli_job}, parse.parse_sacct('|'.join(fields)), {})
    spec = {'raw_ids': {'batch': 7}, 'submitted': time.time(), 'after': [],
            'workdir': '/d'}
    local_job = JobStatus(7, tasks=[task_status(
        Job(tmp_path, spec), 'batch',
        dict(state, start=time.time(), end=time.time(), host='here'))])
    if scenario == 'lost':
        # Slurm's lost job is one it does not report; a local one is a
        # task whose runner died
        assert (cli_job.phase, local_job.phase) == ('lost', 'lost')
        assert cli_job.outcome == local_job.outcome == 'Lost'
        return
    (cli_task,), (local_task,) = cli_job.tasks, local_job.tasks
    assert (local_task.state, local_task.exit_code) == \
        (cli_task.state, cli_task.exit_code)
    assert local_job.phase == cli_job.phase
    assert local_job.outcome == cli_job.outcome
    assert local_job.describe() == cli_job.describe()


def test_command_line_job_outlives_the_command(no_slurm, dataset, tmp_path):
    """``datalad -c datalad.slurm.backend=local schedule`` on the command
    line: the job runs on after the command has ended, and a finish
    without the setting asks its state files."""
    import subprocess
    go = tmp_path / 'go'
    write_script(dataset, 'jobs/wait.sh', f'''
        i=0
        while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
        mkdir -p out; echo waited > out/w
        ''')
    dataset.save(result_renderer='disabled')

    def datalad(*args):
        return subprocess.run(['datalad', *args], cwd=dataset.path,
                              capture_output=True, text=True)
    try:
        done = datalad('-c', 'datalad.slurm.backend=local', 'schedule',
                       '-o', 'out', 'sbatch', 'jobs/wait.sh')
        assert done.returncode == 0, done.stderr
        job_id = read_record(dataset.repo, 'HEAD').data['slurm_job_id']
        assert LocalBackend(dataset).query([job_id], timeout=1)[
            job_id].phase == 'running'
    finally:
        # the job ends, whatever became of the test
        go.touch()
    wait_local(dataset, job_id)
    done = datalad('finish')
    assert done.returncode == 0, done.stderr
    assert f'Processed batch job {job_id}: Complete' in done.stdout
    assert (dataset.pathobj / 'out' / 'w').read_text() == 'waited\n'


@pytest.mark.parametrize('value', ['0', 'many'])
def test_unusable_worker_count_is_refused(lds, value):
    lds.config.set('datalad.slurm.local-workers', value, scope='local')
    before = snapshot(lds)
    res = only(call(lds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    assert res['status'] == 'impossible'
    assert 'datalad.slurm.local-workers' in res['message']
    assert snapshot(lds) == before
    assert not (state.local(lds.repo.dot_git) / 'jobs').exists()
