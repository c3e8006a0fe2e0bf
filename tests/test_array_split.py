"""An array beyond the site's MaxArraySize submitted as several jobs
(schedule --array-split), recorded and finished as one.

The local cluster keeps Slurm's default MaxArraySize=1001 (task ids up to
1000): --array=0-1500:500 is split into tasks {0,500,1000} (offset 0) and
{1500} (offset 1500, task 0 to Slurm).
"""

import json
import os.path as op

import pytest
from conftest import (
    call,
    git,
    message_text,
    only,
    snapshot,
    wait_for_jobs,
    write_script,
)

from datalad_slurm.backends import SbatchSubmitter
from datalad_slurm.backends import cli as slurm
from datalad_slurm.records import journal
from datalad_slurm.records.format import Record
from datalad_slurm.records.history import iter_records
from datalad_slurm.records.logfiles import task_logs
from datalad_slurm.records.split import (
    as_recorded,
    expected,
    fold,
    folded,
    job_ids,
    original_task,
    part_ids,
)
from datalad_slurm.repo import state
from datalad_slurm.slurm.jobspec import (
    NotABatchScript,
    array_throttle,
    compress_task_ids,
    named_as_script,
)
from datalad_slurm.slurm.split import (
    Part,
    part_script,
    split_tasks,
)
from datalad_slurm.slurm.status import (
    JobStatus,
    TaskStatus,
)

SPLIT = ['sbatch', '--array=0-1500:500', 'jobs/tasks.sh']

# each task writes its task id as it sees it, and the array's bounds
TASKS = """
    #SBATCH --output=logs/%x-%A_%a.out
    mkdir -p out
    echo "$SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_MAX $SLURM_ARRAY_TASK_COUNT $*" > out/$SLURM_ARRAY_TASK_ID
    test "$SLURM_ARRAY_TASK_ID" != "${FAIL_TASK:-none}"
    """


# -- without a cluster -------------------------------------------------------

def test_parts_keep_their_local_ids_below_the_limit():
    parts = split_tasks([0, 500, 1000, 1500], 1001)
    assert parts == [Part(0, (0, 500, 1000)), Part(1500, (1500,))]
    assert parts[1].local_tasks == [0]
    assert split_tasks(list(range(999, 1003)), 1001) == \
        [Part(999, (999, 1000, 1001, 1002))]
    assert split_tasks(list(range(0, 2500)), 1000) == [
        Part(0, tuple(range(0, 1000))), Part(1000, tuple(range(1000, 2000))),
        Part(2000, tuple(range(2000, 2500)))]
    assert split_tasks([3, 7, 5000, 5001, 9000], 1000) == [
        Part(3, (3, 7)), Part(5000, (5000, 5001)), Part(9000, (9000,))]


def test_a_part_is_submitted_with_compressed_local_ids_and_the_throttle():
    part = Part(1000, (1000, 1001, 1002, 1500))
    assert part.array_spec(None) == '0-2,500'
    assert part.array_spec(4) == '0-2,500%4'
    assert array_throttle('0-9%3') == 3
    assert array_throttle('0-9') is None
    assert compress_task_ids([5, 1, 2, 3]) == '1-3,5'


def test_the_part_script_gives_the_task_its_original_id():
    lines = ['#!/bin/bash -e\n', '#SBATCH --output=x-%a.out\n',
             '# a comment\n', '#SBATCH -c 2\n', 'echo hi\n',
             '#SBATCH --late=ignored\n']
    text = part_script(Part(1500, (1500, 2000)), [0, 1500, 2000],
                       '/data/job script.sh', lines, None)
    assert text.splitlines() == [
        '#!/bin/sh',
        '# datalad-slurm: tasks 1500,2000 of a split array job (datalad '
        'schedule --array-split)',
        '#SBATCH --output=x-%a.out', '#SBATCH -c 2',
        'SLURM_ARRAY_TASK_ID=$((SLURM_ARRAY_TASK_ID + 1500))',
        'SLURM_ARRAY_TASK_MIN=0', 'SLURM_ARRAY_TASK_MAX=2000',
        'SLURM_ARRAY_TASK_COUNT=3',
        'export SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN '
        'SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_COUNT',
        "exec /bin/bash -e '/data/job script.sh' \"$@\""]
    wrapped = part_script(Part(0, (0,)), [0], None, None, 'echo $X')
    assert wrapped.splitlines()[-1] == 'echo $X'
    with pytest.raises(NotABatchScript):
        part_script(Part(0, (0,)), [0], '/s.sh', ['echo\n'], None)


def test_a_standin_batch_script_keeps_the_job_name():
    assert named_as_script(['sbatch', '-c', '2'], None, '/d/job.sh') == \
        ['sbatch', '-c', '2', '--job-name=job.sh']
    assert named_as_script(['sbatch'], None, None) == \
        ['sbatch', '--job-name=wrap']
    for options, lines in ((['sbatch', '-J', 'mine'], None),
                           (['sbatch', '--job-name=mine'], None),
                           (['sbatch'], ['#!/bin/sh\n', '#SBATCH -J mine\n'])):
        assert named_as_script(options, lines, '/d/job.sh') == options


def split_record(**extra) -> Record:
    return Record('SCHEDULE', {
        'slurm_job_id': 10, 'slurm_array': [0, 500, 1000, 1500],
        'slurm_workdir': '/w', 'slurm_cluster': 'c',
        'slurm_submit_time': '2026-01-01T10:00:00',
        'slurm_array_parts': [
            {'job_id': 10, 'offset': 0, 'tasks': [0, 500, 1000],
             'slurm_submit_time': '2026-01-01T10:00:00'},
            {'job_id': 12, 'offset': 1500, 'tasks': [1500],
             'slurm_submit_time': '2026-01-01T10:00:05'}], **extra},
        commit='c0ffee')


def test_a_split_record_is_asked_of_as_its_parts():
    record = split_record()
    assert job_ids(record.data) == [10, 12]
    asked = expected(record)
    assert asked[10].tasks == [0, 500, 1000]
    assert asked[12].tasks == [0]
    assert asked[12].identity.submit.second == 5
    assert part_ids(record.data, 1500) == (12, 0)
    assert part_ids(record.data, 500) == (10, 500)
    assert original_task(record.data, 12, 0) == 1500
    assert original_task(record.data, 10, 500) == 500
    plain = Record('SCHEDULE', {'slurm_job_id': 7, 'slurm_array': [0, 1]})
    assert job_ids(plain.data) == [7]
    assert list(expected(plain)) == [7]
    assert as_recorded([plain, record], (12, 1500)) == (10, 1500)
    assert as_recorded([plain, record], (7, 1)) == (7, 1)
    assert as_recorded([record], None) is None


def test_a_task_of_a_split_record_has_its_part_s_logs():
    record = split_record(
        slurm_output_patterns=['logs/%x-%A_%a.out'],
        slurm_outputs=['logs/j-10_0.out', 'logs/j-10_500.out',
                       'logs/j-10_1000.out', 'logs/j-12_0.out'])
    assert task_logs(record.data, '1500') == ['logs/j-12_0.out']
    assert task_logs(record.data, '0') == ['logs/j-10_0.out']
    assert task_logs(record.data, '500') == ['logs/j-10_500.out']


def done(task_id, state='COMPLETED', code=0):
    return TaskStatus(task_id=task_id, state=state, exit_code=code)


def test_the_parts_answers_fold_into_one_job_under_original_ids():
    record = split_record()
    first = JobStatus(10, [done(0), done(500), done(1000)])
    statuses = {10: first, 12: JobStatus(12, [done(0, 'FAILED', 1)]),
                7: JobStatus(7)}
    whole = folded([record], statuses)
    assert set(whole) == {10, 7}
    job = whole[10]
    assert job.phase == 'failed'
    assert job.describe() == '0,500,1000:COMPLETED 1500:FAILED'
    assert [t.task_id for t in job.tasks] == [0, 500, 1000, 1500]
    # a part still running keeps the job running
    running = fold(record, {10: first, 12: JobStatus(12, [done(0, 'RUNNING',
                                                               None)])})
    assert running.phase == 'running'
    # a part Slurm knows nothing of is lost, unless it could not be asked
    lost = fold(record, {10: first, 12: JobStatus(12)})
    assert lost.phase == 'lost' and lost.describe().endswith('1500:LOST')
    unknown = fold(record, {10: first,
                            12: JobStatus(12, unanswered='slurmdbd down')})
    assert unknown.phase == 'unknown' and unknown.missing_tasks == [1500]
    complete = fold(record, {10: first, 12: JobStatus(12, [done(0)])})
    assert complete.phase == 'complete'


# -- on the cluster -----------------------------------------------------------

def _prepare(ds):
    write_script(ds, 'jobs/tasks.sh', TASKS)
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.keep').touch()
    ds.save(result_renderer='disabled')


def _records(ds, kind):
    return [r for r in iter_records(ds.repo, 'HEAD') if r.kind == kind]


def _schedule_split(ds, argv=SPLIT, **kwargs):
    res = only(call(ds.schedule, argv, outputs=['out'], array_split=True,
                    **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    return res


def test_a_split_array_is_scheduled_and_finished_as_one_job(ds):
    _prepare(ds)
    res = _schedule_split(ds, SPLIT + ['arg'])
    schedule, = _records(ds, 'SCHEDULE')
    data = schedule.data
    parts = data['slurm_array_parts']
    ids = [p['job_id'] for p in parts]
    assert data['slurm_job_id'] == res['slurm_job_id'] == ids[0]
    assert data['slurm_array'] == [0, 500, 1000, 1500]
    assert [(p['offset'], p['tasks']) for p in parts] == \
        [(0, [0, 500, 1000]), (1500, [1500])]
    # what Slurm writes: each part's own id, its local task ids
    assert data['slurm_outputs'] == [
        f'logs/tasks.sh-{ids[0]}_0.out', f'logs/tasks.sh-{ids[0]}_500.out',
        f'logs/tasks.sh-{ids[0]}_1000.out', f'logs/tasks.sh-{ids[1]}_0.out']
    # Slurm has its copies of the parts' batch scripts
    assert not list((ds.pathobj / '.git' / 'datalad-slurm' / 'split').glob(
        '*/*'))
    wait_for_jobs(*ids)
    listed = only(call(ds.finish, list_open_jobs=True))
    assert listed['slurm_later_parts'] == ids[1:]
    assert message_text(listed).startswith(f'job {ids[0]}+{ids[1]}: ')
    fin = only(call(ds.finish), 'finish')
    assert fin['status'] == 'ok', fin
    assert message_text(fin).endswith('Complete')
    summary = only(call(ds.jobs), 'jobs')
    assert summary['slurm_later_parts'] == ids[1:]
    assert summary['array_tasks'] == 4
    finished, = _records(ds, 'FINISH')
    assert finished.data['state'] == {
        str(t): 'COMPLETED' for t in (0, 500, 1000, 1500)}
    for task in (0, 500, 1000, 1500):
        assert (ds.pathobj / 'out' / str(task)).read_text() == \
            '0 1500 4 arg\n'
    committed = git(ds, 'show', '--name-only', '--format=', 'HEAD').split()
    assert set(data['slurm_outputs']) <= set(committed)
    assert git(ds, 'status', '--porcelain') == ''


def test_a_failing_task_of_the_second_part_fails_the_job(ds, monkeypatch):
    _prepare(ds)
    monkeypatch.setenv('FAIL_TASK', '1500')
    res = _schedule_split(ds)
    data = _records(ds, 'SCHEDULE')[0].data
    wait_for_jobs(*job_ids(data))
    # the other part's id finds the job too, open or finished
    second = data['slurm_array_parts'][1]['job_id']
    fin = only(call(ds.finish, [str(second)]), 'finish')
    assert fin['status'] == 'error', fin
    assert fin['slurm_job_id'] == res['slurm_job_id']
    assert '1500:FAILED' in message_text(fin)
    closed = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert closed['status'] == 'ok', closed
    again = only(call(ds.finish, [str(second)]), 'finish')
    assert again['status'] == 'notneeded', again
    assert 'finished already' in message_text(again)
    finished, = _records(ds, 'FINISH')
    assert finished.data['state']['1500'] == 'FAILED'
    assert finished.data['exit']['1500'] == 1
    assert finished.data['state']['1000'] == 'COMPLETED'
    # only the failed task again, split as it lies beyond the limit
    monkeypatch.delenv('FAIL_TASK')
    retried = only(call(ds.reschedule, failed=True), 'reschedule')
    assert retried['status'] == 'ok', retried
    record, = _records(ds, 'RESCHEDULE')
    assert [(p['offset'], p['tasks']) for p in
            record.data['slurm_array_parts']] == [(1500, [1500])]
    wait_for_jobs(*job_ids(record.data))
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert (ds.pathobj / 'out' / '1500').exists()


def test_an_array_the_site_takes_is_not_split(ds):
    _prepare(ds)
    _schedule_split(ds, ['sbatch', '--array=0-2', 'jobs/tasks.sh'])
    data = _records(ds, 'SCHEDULE')[0].data
    assert 'slurm_array_parts' not in data
    assert data['cmd'] == 'sbatch --array=0-2 jobs/tasks.sh'
    wait_for_jobs(data['slurm_job_id'])
    assert only(call(ds.finish), 'finish')['status'] == 'ok'


@pytest.mark.parametrize('argv,kwargs,says', [
    (SPLIT, {'scratch': '$TMPDIR'}, 'cannot split a job in a clone'),
    (['sbatch'], {'tasks': 'jobs/list.txt'}, 'cannot split a task list'),
    (['sbatch', '--array=0-x', 'jobs/tasks.sh'], {},
     'cannot read the array specification'),
    (['sbatch', 'jobs/tasks.sh'], {}, 'gives no --array'),
    (['sbatch', '--array=0-1500:500', '--output=logs/%a.out',
      'jobs/tasks.sh'], {}, 'would write the same files; add %A'),
    (['sbatch', '--array=0-1500:500', 'jobs/noshebang.sh'], {},
     'does not look like a batch script'),
    (['sbatch', '--array=0-1500:500', 'jobs/missing.sh'], {},
     'cannot read the job script jobs/missing.sh'),
])
def test_what_cannot_be_split_is_refused_before_anything_changes(
        ds, argv, kwargs, says):
    _prepare(ds)
    (ds.pathobj / 'jobs' / 'list.txt').write_text('true\n')
    (ds.pathobj / 'jobs' / 'noshebang.sh').write_text('true\n')
    ds.save(result_renderer='disabled')
    before = snapshot(ds)
    res = only(call(ds.schedule, argv, outputs=['out'], array_split=True,
                    **kwargs), 'schedule')
    assert res['status'] == 'impossible', res
    assert says in message_text(res)
    assert snapshot(ds) == before
    assert not journal.has_entries(ds.repo)


def test_without_array_split_the_refusal_names_it(ds):
    _prepare(ds)
    before = snapshot(ds)
    res = only(call(ds.schedule, SPLIT, outputs=['out']), 'schedule')
    assert res['status'] == 'impossible', res
    assert 'add --array-split' in message_text(res)
    assert snapshot(ds) == before


def test_a_dry_run_of_a_split_array_names_every_part_and_writes_none(ds):
    _prepare(ds)
    before = snapshot(ds)
    res = only(call(ds.schedule, SPLIT, outputs=['out'], array_split=True,
                    dry_run=True), 'schedule')
    assert res['status'] == 'ok' and res['dry_run'], res
    first, second = res['sbatch_parts']
    assert '--array=0,500,1000' in first and '--array=0' in second
    assert res['sbatch_cmd'] == first
    # each part's batch script shown, none written
    assert len(res['job_files']) == 2
    assert not any(op.exists(path) for path in res['job_files'])
    assert not state.split(ds.repo.dot_git).exists() or \
        not any(state.split(ds.repo.dot_git).iterdir())
    assert snapshot(ds) == before
    assert not journal.has_entries(ds.repo)


def _nothing_left(ds, before, text: str, cancelled: int):
    """The dataset as it was, no submission journaled, and the part that
    was submitted, `cancelled`, cancelled as `text` says."""
    assert f'jobs {cancelled}, are cancelled' in text
    assert snapshot(ds) == before
    assert not journal.has_entries(ds.repo)
    status = wait_for_jobs(cancelled)[cancelled]
    assert {t.state for t in status.tasks} == {'CANCELLED'}


def test_a_refused_second_part_cancels_the_first(ds, monkeypatch):
    """Slurm refuses no part of this cluster's arrays that it took the
    first of: the submitter refuses the second part, for real, the first
    is cancelled by scancel."""
    _prepare(ds)
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'old').write_text('old\n')
    ds.save(result_renderer='disabled')
    before = snapshot(ds)
    submitted = []
    real = SbatchSubmitter.submit

    def second_refused(self, argv, **kwargs):
        if submitted:
            raise slurm.SlurmError('sbatch: error: Batch job submission '
                                   'failed: Job violates accounting policy')
        submitted.append(real(self, ['sbatch', '--hold', *argv[1:]],
                              **kwargs))
        return submitted[-1]
    monkeypatch.setattr(SbatchSubmitter, 'submit', second_refused)
    res = only(call(ds.schedule, SPLIT, outputs=['out'], array_split=True),
               'schedule')
    assert res['status'] == 'error', res
    text = message_text(res)
    assert 'refused part 2 of 2 (tasks 1500)' in text
    assert 'accounting policy' in text
    _nothing_left(ds, before, text, submitted[0])


@pytest.mark.parametrize('spec,parts,last_line', [
    # one part, lowered by 999: beyond the limit, it needs its offset
    ('999-1002', [(999, [999, 1000, 1001, 1002])],
     'datalad finish --exit-status $? $SLURM_JOB_ID'),
    ('0-1500:500', [(0, [0, 500, 1000]), (1500, [1500])],
     'datalad finish --exit-status $? $SLURM_JOB_ID'),
    # the parts announce under their own job ids
    ('0-1500:500', [(0, [0, 500, 1000]), (1500, [1500])],
     'datalad-slurm-done $?'),
])
def test_the_tasks_of_a_split_array_finish_it_from_inside(ds, spec, parts,
                                                          last_line):
    write_script(ds, 'jobs/tasks.sh', f"""
        mkdir -p out
        echo $SLURM_ARRAY_TASK_ID > out/$SLURM_ARRAY_TASK_ID
        {last_line}
        """)
    ds.save(result_renderer='disabled')
    res = _schedule_split(ds, ['sbatch', f'--array={spec}', 'jobs/tasks.sh'])
    data = _records(ds, 'SCHEDULE')[0].data
    assert [(p['offset'], p['tasks']) for p in
            data['slurm_array_parts']] == parts
    wait_for_jobs(*job_ids(data))
    finished, = _records(ds, 'FINISH')
    assert finished.data['slurm_job_id'] == res['slurm_job_id']
    tasks = [t for _, ts in parts for t in ts]
    assert sorted(map(int, finished.data['state'])) == tasks
    for task in tasks:
        assert (ds.pathobj / 'out' / str(task)).read_text() == f'{task}\n'
    assert git(ds, 'status', '--porcelain') == ''


def test_a_step_after_a_split_array_waits_for_every_part(ds):
    _prepare(ds)
    write_script(ds, 'jobs/sum.sh', """
        cat out/* > total
        """)
    ds.save(result_renderer='disabled')
    _schedule_split(ds, ['sbatch', '--hold', *SPLIT[1:]])
    data = _records(ds, 'SCHEDULE')[0].data
    ids = job_ids(data)
    step = only(call(ds.schedule, ['sbatch', 'jobs/sum.sh'], inputs=['out'],
                     outputs=['total']), 'schedule')
    assert step['status'] == 'ok', step
    dependency = slurm.call(['squeue', '--noheader', '--format=%E',
                             f'--jobs={step["slurm_job_id"]}'],
                            timeout=30).strip()
    assert all(f'afterok:{i}' in dependency for i in ids), dependency
    slurm.call(['scontrol', 'release', ','.join(map(str, ids))], timeout=30)
    wait_for_jobs(*ids, step['slurm_job_id'])
    results = call(ds.finish)
    assert [r['status'] for r in results if r['action'] == 'finish'] == \
        ['ok', 'ok'], results
    assert len((ds.pathobj / 'total').read_text().splitlines()) == 4


def test_a_split_array_is_submitted_again_split(ds):
    _prepare(ds)
    _schedule_split(ds)
    data = _records(ds, 'SCHEDULE')[0].data
    wait_for_jobs(*job_ids(data))
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    res = only(call(ds.reschedule, 'HEAD'), 'reschedule')
    assert res['status'] == 'ok', res
    again = [r for r in iter_records(ds.repo, 'HEAD')
             if r.kind == 'RESCHEDULE'][0].data
    assert [p['tasks'] for p in again['slurm_array_parts']] == \
        [[0, 500, 1000], [1500]]
    wait_for_jobs(*job_ids(again))
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert json.loads(json.dumps(again['slurm_array'])) == \
        [0, 500, 1000, 1500]


def test_a_split_interrupted_between_its_parts_is_undone_later(ds,
                                                               monkeypatch):
    """The process dies after the first part's sbatch, before the second
    part is journaled: the next command cancels the first part and puts
    the outputs back."""
    _prepare(ds)
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'old').write_text('old\n')
    ds.save(result_renderer='disabled')
    before = snapshot(ds)
    real = journal.Entry.part_is

    def dies(self, k, state, job_id=None):
        if k == 1 and state == journal.SUBMITTING:
            raise SystemExit('killed')
        return real(self, k, state, job_id)
    monkeypatch.setattr(journal.Entry, 'part_is', dies)
    with pytest.raises(SystemExit):
        call(ds.schedule, ['sbatch', '--hold', *SPLIT[1:]], outputs=['out'],
             array_split=True)
    # the process that comes next runs as it should (monkeypatch.undo()
    # would take the git identity the tests set too)
    monkeypatch.setattr(journal.Entry, 'part_is', real)
    entry, = journal.orphans(ds.repo)
    first = entry.parts[0]['job_id']
    assert first is not None and entry.parts[1]['job_id'] is None
    res, = [r for r in call(ds.finish)
            if 'interrupted' in message_text(r)]
    assert res['status'] == 'error', res
    text = message_text(res)
    assert 'interrupted before part 2 of 2 was submitted' in text
    _nothing_left(ds, before, text, first)


def test_a_part_sbatch_gave_no_answer_for_is_found_by_its_mark(
        ds, monkeypatch):
    _prepare(ds)
    calls = []
    real = SbatchSubmitter.submit

    def no_answer_for_the_second(self, argv, **kwargs):
        calls.append(real(self, argv, **kwargs))
        if len(calls) == 2:
            raise slurm.SlurmTimeout('sbatch did not answer in 30 s')
        return calls[-1]
    monkeypatch.setattr(SbatchSubmitter, 'submit', no_answer_for_the_second)
    res = _schedule_split(ds)
    assert 'Slurm has the job' in message_text(res)
    data = _records(ds, 'SCHEDULE')[0].data
    assert job_ids(data) == calls
    assert not journal.has_entries(ds.repo)
    wait_for_jobs(*calls)
    assert only(call(ds.finish), 'finish')['status'] == 'ok'


def test_a_split_whose_first_part_sbatch_gave_no_answer_for_is_undone(
        ds, monkeypatch):
    """Whether the first part was accepted is found by its mark; the second
    was never submitted, so the first is cancelled and nothing recorded."""
    _prepare(ds)
    before = snapshot(ds)
    calls = []
    real = SbatchSubmitter.submit

    def no_answer(self, argv, **kwargs):
        calls.append(real(self, ['sbatch', '--hold', *argv[1:]], **kwargs))
        raise slurm.SlurmTimeout('sbatch did not answer in 30 s')
    monkeypatch.setattr(SbatchSubmitter, 'submit', no_answer)
    res = only(call(ds.schedule, SPLIT, outputs=['out'], array_split=True),
               'schedule')
    assert len(calls) == 1
    assert res['status'] == 'error', res
    text = message_text(res)
    assert 'interrupted before part 2 of 2 was submitted' in text
    _nothing_left(ds, before, text, calls[0])


def test_a_wrap_command_is_split_too(ds):
    res = _schedule_split(ds, [
        'sbatch', '--array=0-1500:750%1', '--wrap',
        'mkdir -p out && echo $SLURM_ARRAY_TASK_ID $SLURM_JOB_NAME '
        '> out/$SLURM_ARRAY_TASK_ID'])
    data = _records(ds, 'SCHEDULE')[0].data
    ids = job_ids(data)
    assert data['slurm_outputs'] == [
        f'slurm-{ids[0]}_0.out', f'slurm-{ids[0]}_750.out',
        f'slurm-{ids[1]}_0.out']
    wait_for_jobs(*ids)
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    for task in (0, 750, 1500):
        assert (ds.pathobj / 'out' / str(task)).read_text() == \
            f'{task} wrap\n'
    assert res['slurm_job_id'] == ids[0]


@pytest.mark.parametrize('ds', ['local'], indirect=True)
def test_local_mode_sets_no_limit_and_splits_nothing(ds):
    _prepare(ds)
    res = _schedule_split(ds, SPLIT)
    data = _records(ds, 'SCHEDULE')[0].data
    assert 'slurm_array_parts' not in data
    assert data['slurm_array'] == [0, 500, 1000, 1500]
    wait_for_jobs(res['slurm_job_id'])
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
