"""Farm jobs (``datalad schedule --tasks FILE``), end to end in local mode:
a task list run as one job by the task farmer, finished, rescheduled."""

from __future__ import annotations

import os
import shlex
import signal
import threading
import time

import pytest
from conftest import (
    call,
    git,
    only,
    snapshot,
)
from test_local import (
    WAIT,
    committed_files,
    tasks_of,
    wait_local,
)

from datalad_slurm.modes.farm.layout import FarmDir
from datalad_slurm.modes.farm.submit import (
    prepare,
    read_request,
)
from datalad_slurm.pool.farmer import (
    Farmer,
    Launch,
)
from datalad_slurm.pool.tasks import TaskFiles
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state

# twenty tasks on lines 2-21, those of lines 5 and 13 failing
TWENTY = '# twenty tasks\n' + ''.join(
    'false\n' if line in (5, 13) else 'echo "$DATALAD_SLURM_TASK_ID $PWD"\n'
    for line in range(2, 22))


def save_tasks(ds, text: str, path: str = 'tasks.txt'):
    # the list may be annexed: a new file, not new content for the old one
    (ds.pathobj / path).unlink(missing_ok=True)
    (ds.pathobj / path).write_text(text)
    ds.save(path, message='task list', result_renderer='disabled')


def schedule_farm(ds, cmd=('sbatch',), **kwargs) -> dict:
    res = only(call(ds.schedule, list(cmd), **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    return res


def farm_of(ds, commit='HEAD') -> FarmDir:
    return FarmDir.of(ds.repo, read_record(ds.repo, commit).data['submission'])


def farm_running(ds, wait: float) -> tuple[int, FarmDir]:
    """A farm job of four long tasks, once two of them run."""
    save_tasks(ds, 'sleep 60\n' * 4)
    job_id = schedule_farm(ds, tasks='tasks.txt', workers=2,
                           outputs=['out'])['slurm_job_id']
    farm = farm_of(ds)
    deadline = time.monotonic() + wait
    while [t['state'] for t in farm.tasks.read().values()].count(
            'RUNNING') < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job_id, farm


def message(res: dict) -> str:
    text = res['message']
    return text if isinstance(text, str) else text[0] % text[1:]


def test_farm_job_with_failing_tasks(lds):
    save_tasks(lds, TWENTY)
    scheduled = schedule_farm(lds, tasks='tasks.txt', workers=4,
                              outputs=['out'])
    job_id = scheduled['slurm_job_id']
    record = read_record(lds.repo, 'HEAD').data
    assert record['farm_tasks'] == 'tasks.txt'
    assert record['farm_task_blob'] == git(lds, 'rev-parse',
                                           'HEAD:tasks.txt').strip()
    assert (record['farm_workers'], record['farm_task_timeout'],
            record['farm_task_ids']) == (4, None, None)
    assert record['farm_log_dir'] == f'slurm-{job_id}-tasks'
    assert record['cmd'] == 'sbatch'
    wait_local(lds, job_id)

    before = snapshot(lds)
    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'error'
    assert '5,13:FAILED' in message(res)
    assert snapshot(lds) == before

    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    assert res['message'] == f'Processed batch job {job_id}: Failed'
    data = read_record(lds.repo, 'HEAD').data
    lines = [str(line) for line in range(2, 22)]
    assert sorted(data['state'], key=int) == lines
    assert {k for k, v in data['state'].items() if v == 'FAILED'} == \
        {'5', '13'}
    assert data['exit']['5'] == 1 and data['exit']['2'] == 0
    assert data['farm_failed'] == [5, 13]
    for task in data['accounting'].values():
        assert task['start'] and task['end'] and task['nodes']
    assert committed_files(lds) == sorted(
        [f'slurm-{job_id}-tasks/{line}.log' for line in lines] +
        [f'slurm-{job_id}.out'])
    # each task from the submission directory, with its id
    assert (lds.pathobj / f'slurm-{job_id}-tasks' / '7.log').read_text() \
        == f'7 {lds.path}\n'
    assert git(lds, 'status', '--porcelain') == ''
    first_finish = git(lds, 'rev-parse', 'HEAD').strip()

    res = only(call(lds.reschedule), 'reschedule')
    assert res['status'] == 'ok', res
    again = read_record(lds.repo, 'HEAD').data
    assert again['farm_task_ids'] == [5, 13]
    assert again['chain'] == [scheduled['commit']]
    assert sorted(farm_of(lds).tasks.read()) == ['13', '5']
    wait_local(lds, res['slurm_job_id'])
    assert only(call(lds.finish, close_failed_jobs=True),
                'finish')['status'] == 'ok'

    res = only(call(lds.reschedule, first_finish, all_tasks=True),
               'reschedule')
    assert res['status'] == 'ok', res
    assert read_record(lds.repo, 'HEAD').data['farm_task_ids'] is None
    assert sorted(farm_of(lds).tasks.read(), key=int) == lines
    wait_local(lds, res['slurm_job_id'])


def test_complete_farm_job(lds):
    save_tasks(lds, 'mkdir -p out && echo "$DATALAD_SLURM_TASK_ID" > '
                    'out/$DATALAD_SLURM_TASK_ID\n' * 3)
    job_id = schedule_farm(lds, tasks='tasks.txt',
                           outputs=['out'])['slurm_job_id']
    wait_local(lds, job_id)
    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert res['message'] == f'Processed batch job {job_id}: Complete'
    data = read_record(lds.repo, 'HEAD').data
    assert data['state'] == {'1': 'COMPLETED', '2': 'COMPLETED',
                             '3': 'COMPLETED'}
    assert (data['farm_failed'], data['farm_job_state']) == ([], 'COMPLETED')
    assert 'out/2' in committed_files(lds)


def test_task_timeout(lds):
    save_tasks(lds, 'sleep 30\ntrue\n')
    job_id = schedule_farm(lds, tasks='tasks.txt', task_timeout=0.5,
                           outputs=['out'])['slurm_job_id']
    wait_local(lds, job_id)
    tasks = farm_of(lds).tasks.read()
    assert (tasks['1']['state'], tasks['1']['timeout']) == ('FAILED', 0.5)
    assert tasks['1']['reason'].startswith('timeout')
    assert tasks['2']['state'] == 'DONE'
    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['message'] == f'Processed batch job {job_id}: Timeout'
    data = read_record(lds.repo, 'HEAD').data
    assert data['state'] == {'1': 'TIMEOUT', '2': 'COMPLETED'}
    assert data['accounting']['1']['reason'].startswith('timeout')


@pytest.mark.parametrize('signalled', ['farmer', 'every process'])
def test_term_puts_running_tasks_back(lds, signalled):
    """SIGTERM to the farmer (--signal=B:TERM, scancel --batch), or to every
    process of the job at once, tasks first (scancel, a time limit without
    --signal=B:): the running tasks are put back, none recorded FAILED."""
    job_id, farm = farm_running(lds, WAIT)
    listed = only(call(lds.finish, list_open_jobs=True))
    assert listed['slurm_state'] == '1-2:RUNNING 3-4:PENDING'
    running = [t['pid'] for t in farm.tasks.read().values()
               if t['state'] == 'RUNNING']
    # the farmer is the local job's batch script, as it is Slurm's
    farmer = tasks_of(lds, job_id)['batch']['pid']
    if signalled == 'every process':
        for pid in running:
            os.killpg(pid, signal.SIGTERM)
        time.sleep(0.1)
    os.kill(farmer, signal.SIGTERM)
    wait_local(lds, job_id)

    tasks = farm.tasks.read()
    assert [t['state'] for t in tasks.values()] == ['QUEUED'] * 4
    assert sorted(t.get('put_back', 0) for t in tasks.values()) == \
        [0, 0, 1, 1]
    assert all('start' not in t for t in tasks.values())
    for pid in running:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert tasks_of(lds, job_id)['batch']['exit_code'] == 128 + 15

    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    data = read_record(lds.repo, 'HEAD').data
    assert set(data['state'].values()) == {'CANCELLED'}
    assert data['farm_failed'] == [1, 2, 3, 4]
    assert data['farm_job_state'] == 'FAILED'
    assert all(a['reason'].startswith('never ran')
               for a in data['accounting'].values())


def test_array_of_farmers_shares_one_list(lds):
    lds.config.set('datalad.slurm.local-workers', '2', scope='local')
    save_tasks(lds, 'mkdir -p out; echo "$DATALAD_SLURM_TASK_ID '
                    '$SLURM_ARRAY_TASK_ID" >> out/ran; sleep 0.2\n' * 20)
    job_id = schedule_farm(lds, ['sbatch', '--array=0-1'], tasks='tasks.txt',
                           workers=2, outputs=['out'])['slurm_job_id']
    wait_local(lds, job_id)
    ran = [line.split() for line in
           (lds.pathobj / 'out' / 'ran').read_text().splitlines()]
    assert sorted(int(task) for task, _ in ran) == list(range(1, 21))
    assert {farmer for _, farmer in ran} == {'0', '1'}
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    # one directory of task logs for the array, besides each farmer's log
    assert sorted(committed_files(lds)) == sorted(
        ['out/ran'] + [f'slurm-{job_id}-tasks/{i}.log' for i in range(1, 21)]
        + [f'slurm-{job_id}_{i}.out' for i in (0, 1)])


def test_two_farmers_run_each_task_once(tmp_path):
    tasks = TaskFiles(tmp_path / 'tasks')
    for line in range(1, 41):
        tasks.queue(str(line), {'command': 'true'})
    logs = tmp_path / 'logs'
    logs.mkdir()

    def launch(key):
        return Launch(argv=['true'], cwd=str(tmp_path), env={},
                      stdout=str(logs / key), stderr=str(logs / key))
    farmers = [Farmer(TaskFiles(tmp_path / 'tasks'), workers=2, slots=None,
                      launch=launch, own_groups=True) for _ in range(2)]
    threads = [threading.Thread(target=f.run) for f in farmers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = tasks.read()
    assert len(states) == 40
    assert {t['state'] for t in states.values()} == {'DONE'}
    assert len({t['pid'] for t in states.values()}) == 40


REFUSALS = {
    'missing': (dict(tasks='nope.txt'), None, 'does not exist'),
    'untracked': (dict(tasks='new.txt'), None, 'is not committed'),
    'dirty': (dict(tasks='tasks.txt'), 'dirty', 'not saved'),
    'empty': (dict(tasks='empty.txt'), None, 'has no tasks'),
    'job script': (dict(tasks='tasks.txt'), 'script',
                   'job script jobs/write.sh cannot be given'),
    'wrap': (dict(tasks='tasks.txt'), 'wrap', '--wrap cannot be given'),
    'workers alone': (dict(workers=2), None, 'give the list with --tasks'),
    'timeout alone': (dict(task_timeout=5), None,
                      'give the list with --tasks'),
    'no workers': (dict(tasks='tasks.txt', workers=0), None,
                   'no number of workers'),
    'negative workers': (dict(tasks='tasks.txt', workers=-3), None,
                         'no number of workers'),
    'no timeout': (dict(tasks='tasks.txt', task_timeout=0), None,
                   'no time limit'),
    'log pattern': (dict(tasks='tasks.txt'), 'pattern',
                    'give --output a directory without %'),
}


@pytest.mark.parametrize('case', REFUSALS)
def test_refusals_change_nothing(lds, case):
    kwargs, variant, said = REFUSALS[case]
    save_tasks(lds, 'true\n')
    save_tasks(lds, '# nothing to do\n\n', 'empty.txt')
    cmd = {'script': ['sbatch', 'jobs/write.sh'],
           'wrap': ['sbatch', '--wrap', 'true'],
           'pattern': ['sbatch', '--output=%u/slurm-%j.out']}.get(
        variant, ['sbatch'])
    if case == 'untracked':
        (lds.pathobj / 'new.txt').write_text('true\n')
    if variant == 'dirty':
        # an annexed file: a new file, not new content for the old one
        (lds.pathobj / 'tasks.txt').unlink()
        (lds.pathobj / 'tasks.txt').write_text('false\n')
    before = snapshot(lds)
    res = only(call(lds.schedule, cmd, outputs=['out'],
                    explicit=variant == 'dirty', **kwargs), 'schedule')
    assert res['status'] == 'impossible', res
    assert said in message(res)
    assert snapshot(lds) == before
    assert not state.farm(lds.repo.dot_git).exists() or \
        not list(state.farm(lds.repo.dot_git).iterdir())


def test_reschedule_of_some_tasks_needs_the_same_list(lds):
    save_tasks(lds, 'true\nfalse\n')
    job_id = schedule_farm(lds, tasks='tasks.txt',
                           outputs=['out'])['slurm_job_id']
    wait_local(lds, job_id)
    assert only(call(lds.finish, close_failed_jobs=True),
                'finish')['status'] == 'ok'
    save_tasks(lds, 'false\ntrue\n')
    before = snapshot(lds)
    res = only(call(lds.reschedule, 'HEAD~1'), 'reschedule')
    assert res['status'] == 'impossible', res
    assert 'give --all-tasks' in message(res)
    assert snapshot(lds) == before


@pytest.mark.parametrize('local, given, expected', [
    (False, [], ['--signal=B:TERM@60']),
    (False, ['--signal=B:USR1@300'], []),
    # local mode has no time limit to be signalled ahead of
    (True, [], []),
])
def test_farm_sbatch_command(dataset, local, given, expected):
    save_tasks(dataset, 'true\n')
    request = read_request(dataset, 'tasks.txt', workers=None,
                           task_timeout=None)
    record = {'submission': 'f' * 32}
    argv, farm = prepare(dataset, request, ['sbatch', '-c', '4', *given],
                         dataset.path, record, local=local)
    assert argv[:-1] == ['sbatch', '-c', '4', *given, *expected]
    assert argv[-1].startswith('--wrap=exec ')
    wrapped = shlex.split(argv[-1][len('--wrap='):])
    assert wrapped[0] == 'exec' and wrapped[-1] == str(farm.path)
    assert "'datalad_slurm.modes.farm.job'" in wrapped[-2]
    assert farm.tasks.read() == {'1': {'command': 'true', 'key': '1',
                                       'state': 'QUEUED'}}
    assert record['farm_log_dir'] == 'slurm-%A-tasks'


def test_all_tasks_of_a_job_without_a_task_list(lds):
    job_id = only(call(lds.schedule, ['sbatch', 'jobs/write.sh'],
                       outputs=['out']), 'schedule')['slurm_job_id']
    wait_local(lds, job_id)
    assert only(call(lds.finish), 'finish')['status'] == 'ok'
    before = snapshot(lds)
    res = only(call(lds.reschedule, all_tasks=True), 'reschedule')
    assert res['status'] == 'impossible', res
    assert 'ran no task list' in message(res)
    assert snapshot(lds) == before
