"""reschedule --failed, --more-memory and --more-time, and datalad jobs'
failures by cause, in local mode and from records: what needs no Slurm.
(tests/test_retry_cluster.py makes a real TIMEOUT.)"""

import json
from types import SimpleNamespace

import pytest

from datalad_slurm.modes.base import Refused
from datalad_slurm.records.history import read_record
from datalad_slurm.records.outcome import (
    failed_tasks,
    record_succeeded,
    task_causes,
)
from datalad_slurm.report.causes import (
    describe_causes,
    failure_causes,
)
from datalad_slurm.slurm.jobspec import (
    compress_task_ids,
    format_memory,
    format_time_limit,
    memory_bytes,
    set_options,
    time_limit_seconds,
)
from datalad_slurm.submit.retry import (
    Retry,
    plan,
)

from conftest import (
    any_backend,
    call,
    git,
    message_text,
    only,
    schedule_and_wait,
    snapshot,
    wait_for_jobs,
    write_script,
)


# -- sbatch's values --------------------------------------------------------

@pytest.mark.parametrize('text, value', [
    ('5', 300), ('5:30', 330), ('1:00:00', 3600),
    ('2-3', 2 * 86400 + 3 * 3600),
    ('1-2:30', 86400 + 9000), ('1-00:00:10', 86410), ('UNLIMITED', None),
    ('', None), ('1h', None)])
def test_time_limits(text, value):
    assert time_limit_seconds(text) == value


@pytest.mark.parametrize('secs, text', [
    (60, '00:01:00'), (61, '00:02:00'), (90 * 60, '01:30:00'),
    (86400 * 2 + 60, '2-00:01:00')])
def test_time_limit_format(secs, text):
    assert format_time_limit(secs) == text


@pytest.mark.parametrize('text, value', [
    ('1G', 2 ** 30), ('500', 500 * 2 ** 20), ('1.5G', 3 * 2 ** 29),
    ('4000M', 4000 * 2 ** 20), ('2000Mc', None), ('lots', None)])
def test_memory_values(text, value):
    assert memory_bytes(text) == value


@pytest.mark.parametrize('size, text', [
    (2 ** 31, '2G'), (1536 * 2 ** 20, '1536M'), (2 ** 40, '1T'),
    (1000 * 2 ** 20 * 1.5, '1500M'), (2 ** 20 + 1, '2M')])
def test_memory_format(size, text):
    assert format_memory(size) == text


def test_compress_task_ids():
    assert compress_task_ids([9, 1, 2, 3, 7, 10, 3]) == '1-3,7,9-10'
    assert compress_task_ids([4]) == '4'


@pytest.mark.parametrize('cmd, options, result', [
    ('sbatch --array=0-3 -t 5 --mem 1G jobs/x.sh {outputs} "a b"',
     [('--array', '-a', '1,3'), ('--mem', None, '2G'),
      ('--time', '-t', '00:10:00')],
     'sbatch --array=1,3 --mem=2G --time=00:10:00 jobs/x.sh {outputs} '
     '"a b"'),
    ('sbatch -a0-2 -p debug jobs/x.sh -a 7', [('--array', '-a', '1')],
     'sbatch -p debug --array=1 jobs/x.sh -a 7'),
    ("sbatch --wrap 'echo hi'", [('--mem', None, '2G')],
     "sbatch --wrap 'echo hi' --mem=2G"),
])
def test_set_options(cmd, options, result):
    assert set_options(cmd, options) == result


# -- how a FINISH record says a job failed ----------------------------------

def _finish(state, exit_code, **more):
    return {'state': state, 'exit': exit_code, 'slurm_job_id': 7,
            'cmd': 'sbatch jobs/x.sh', 'pwd': '.', **more}


def test_causes_of_records():
    array = _finish({'0': 'COMPLETED', '1': 'OUT_OF_MEMORY', '2': 'FAILED',
                     '3': 'TIMEOUT', '4': 'NODE_FAIL', '5': 'CANCELLED'},
                    {'0': 0, '1': 0, '2': 3, '3': 0, '4': 0, '5': 0},
                    slurm_array=[0, 1, 2, 3, 4, 5])
    assert failed_tasks(array) == ['1', '2', '3', '4', '5']
    assert task_causes(array) == {
        '1': 'OUT_OF_MEMORY', '2': 'exit code 3', '3': 'TIMEOUT',
        '4': 'NODE_FAIL', '5': 'CANCELLED'}
    complete = _finish('COMPLETED', 0)
    assert record_succeeded(complete) and task_causes(complete) == {}
    missing = _finish('COMPLETED', 0, missing_outputs=['out'])
    assert task_causes(missing) == {'': 'MISSING_OUTPUTS'}
    inside = _finish('RUNNING', None, finished_inside_job=True,
                     inside_job_task=None, inside_job_exit=4)
    assert task_causes(inside) == {'': 'exit code 4'}


def test_failure_pattern_in_logs(tmp_path):
    import re
    (tmp_path / 'slurm-7_1.out').write_text('start\nCUDA error: boom\n')
    (tmp_path / 'slurm-7_2.out').write_text('start\nnothing to see\n')
    data = _finish({'0': 'COMPLETED', '1': 'FAILED', '2': 'FAILED',
                    '3': 'OUT_OF_MEMORY'},
                   {'0': 0, '1': 1, '2': 1, '3': 0},
                   slurm_array=[0, 1, 2, 3],
                   slurm_output_patterns=['slurm-%A_%a.out'],
                   slurm_outputs=[f'slurm-7_{t}.out' for t in range(4)])
    pattern = re.compile(r'(CUDA error|Segmentation fault)')
    causes = failure_causes(str(tmp_path), data, pattern)
    assert causes == {'log: CUDA error': 1, 'exit code 1': 1,
                      'OUT_OF_MEMORY': 1}
    assert failure_causes(str(tmp_path), data) == {
        'exit code 1': 2, 'OUT_OF_MEMORY': 1}
    assert describe_causes([causes, {'OUT_OF_MEMORY': 36}]) == (
        "37 ran out of memory, 1 exited with code 1, 1 logged 'CUDA error'")


# -- what a retry asks for ------------------------------------------------

def _plan(tmp_path, data, named=True, **retry):
    return plan(SimpleNamespace(path=str(tmp_path)), data, Retry(**retry),
                named=named)


def test_plan_raises_from_command_line_or_script(tmp_path):
    oom = _finish('OUT_OF_MEMORY', 0, cmd='sbatch --mem=1500 jobs/x.sh')
    got = _plan(tmp_path, oom, more_memory=2)
    assert got.cmd == 'sbatch --mem=3000M jobs/x.sh'
    assert got.raised == {'mem': ['1500', '3000M']}
    # from the job script's #SBATCH line, overridden on the command line
    script = tmp_path / 'jobs' / 'x.sh'
    script.parent.mkdir()
    script.write_text('#!/bin/sh\n#SBATCH --mem-per-cpu=1G\n'
                      '#SBATCH -t 1:00:00\ntrue\n')
    oom['cmd'] = 'sbatch jobs/x.sh'
    got = _plan(tmp_path, oom, more_memory=1.5)
    assert got.cmd == 'sbatch --mem-per-cpu=1536M jobs/x.sh'
    timeout = _finish('TIMEOUT', 0)
    got = _plan(tmp_path, timeout, more_time=3)
    assert got.cmd == 'sbatch --time=03:00:00 jobs/x.sh'
    assert got.raised == {'time': ['1:00:00', '03:00:00']}


def test_plan_raises_what_slurm_gave(tmp_path):
    """A job that asked no memory: what sacct says it was given (ReqMem),
    of the tasks that ran out of it, per CPU where Slurm gave it so."""
    data = _finish({'0': 'OUT_OF_MEMORY', '1': 'COMPLETED'}, {'0': 0, '1': 0},
                   slurm_array=[0, 1], cmd='sbatch -a 0-1%1 jobs/x.sh',
                   accounting={'0': {'req_mem': '2000Mc'},
                               '1': {'req_mem': '9000Mc'}})
    got = _plan(tmp_path, data, failed_only=True, more_memory=2)
    assert got.cmd == 'sbatch --array=0%1 --mem-per-cpu=4000M jobs/x.sh'
    assert got.raised == {'mem-per-cpu': ['2000M', '4000M']}
    data['accounting'] = {'0': {'req_mem': '0n'}}
    with pytest.raises(Refused, match='no memory Slurm gave it'):
        _plan(tmp_path, data, more_memory=2)


def test_plan_refusals(tmp_path):
    with pytest.raises(Refused, match='asked for none'):
        _plan(tmp_path, _finish('TIMEOUT', 0), more_time=2)
    with pytest.raises(Refused, match='no duration to raise'):
        _plan(tmp_path, _finish('TIMEOUT', 0, cmd='sbatch -t UNLIMITED x'),
              more_time=2)
    with pytest.raises(Refused, match='0 is all'):
        _plan(tmp_path, _finish('OUT_OF_MEMORY', 0,
                                cmd='sbatch --mem=0 x'), more_memory=2)
    failed = _finish('FAILED', 3, cmd='sbatch --mem=1G x')
    with pytest.raises(Refused, match='did not end OUT_OF_MEMORY'):
        _plan(tmp_path, failed, more_memory=2)
    # in a range, the factor is for the jobs that ran out of memory only
    assert _plan(tmp_path, failed, named=False, more_memory=2).cmd == \
        'sbatch --mem=1G x'


# -- in local mode --------------------------------------------------------

# in local mode only: what the cluster would show alike, or cannot show
local_mode = pytest.mark.parametrize('ds', ['local'], indirect=True)

def _failing_array(ds, array='0-3'):
    """An array job whose odd tasks fail (exit 3, 'disk quota exceeded'
    in their logs), closed as failed."""
    write_script(ds, 'jobs/odd.sh', '''
        mkdir -p arr
        echo "task $SLURM_ARRAY_TASK_ID" > arr/$SLURM_ARRAY_TASK_ID
        if [ $((SLURM_ARRAY_TASK_ID % 2)) = 1 ]; then
            echo "write failed: disk quota exceeded" >&2
            exit 3
        fi
        ''')
    ds.save(message='odd tasks fail', result_renderer='disabled')
    scheduled = schedule_and_wait(ds, ['sbatch', f'--array={array}',
                                        'jobs/odd.sh'], outputs=['arr'])
    closed = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert closed['status'] == 'ok', closed
    return scheduled


@any_backend
def test_failed_tasks_again_as_a_new_array(ds):
    first = _failing_array(ds)
    report = call(ds.reschedule, failed=True, report=True)
    assert [(r['status'], r['cmd']) for r in report] == [
        ('ok', 'sbatch --array=1,3 jobs/odd.sh')]
    again = only(call(ds.reschedule, failed=True), 'reschedule')
    assert again['status'] == 'ok', again
    record = read_record(ds.repo, 'HEAD').data
    assert record['cmd'] == 'sbatch --array=1,3 jobs/odd.sh'
    assert record['slurm_array'] == [1, 3]
    assert record['chain'] == [first['commit']]
    assert 'raised' not in record
    wait_for_jobs(again['slurm_job_id'])
    call(ds.finish, close_failed_jobs=True)
    assert read_record(ds.repo, 'HEAD').data['state'] == {
        '1': 'FAILED', '3': 'FAILED'}
    # the first job is repeated already: only the retry is tried again
    report = call(ds.reschedule, failed=True, report=True)
    assert [(r['slurm_job_id'], r['cmd']) for r in report] == [
        (again['slurm_job_id'], 'sbatch --array=1,3 jobs/odd.sh')]


@any_backend
def test_jobs_counts_failures_by_cause(ds):
    _failing_array(ds)
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'one/x', '5'],
                      outputs=['one'])
    call(ds.finish, close_failed_jobs=True)
    summaries = [r for r in call(ds.jobs) if r.get('slurm_job_id')]
    assert [s['failure_causes'] for s in summaries] == [
        {'exit code 3': 2}, {'exit code 5': 1}]
    from datalad_slurm.report.summary import overview
    assert 'failures by cause: 2 exited with code 3, 1 exited with code 5' \
        in overview(summaries)
    ds.config.set('datalad.slurm.failure-pattern', 'disk quota exceeded',
                   scope='local')
    summaries = [r for r in call(ds.jobs) if r.get('slurm_job_id')]
    assert summaries[0]['failure_causes'] == {
        'log: disk quota exceeded': 2}
    assert "2 logged 'disk quota exceeded'" in overview(summaries)
    # a pattern that is none is refused, as every bad item is
    ds.config.set('datalad.slurm.failure-pattern', 'quota(', scope='local')
    res = only(call(ds.jobs))
    assert res['status'] == 'impossible'
    assert 'failure-pattern' in message_text(res)


def _out_of_memory(ds, options=('--mem=1G',)):
    """A job closed as failed, recorded as Slurm records one that ran out
    of memory (local mode does not limit memory)."""
    schedule_and_wait(ds, ['sbatch', *options, 'jobs/write.sh', 'big/x',
                            '1'], outputs=['big'])
    call(ds.finish, close_failed_jobs=True)
    message = git(ds, 'log', '-1', '--format=%B')
    assert '"state": "FAILED"' in message
    git(ds, 'commit', '--amend', '--quiet', '-m', message.replace(
        '"state": "FAILED"', '"state": "OUT_OF_MEMORY"').replace(
        '"exit": 1', '"exit": 0'))


@local_mode
def test_more_memory_for_a_job_out_of_memory(ds):
    _out_of_memory(ds)
    finish_commit = git(ds, 'rev-parse', 'HEAD').strip()
    again = only(call(ds.reschedule, finish_commit, more_memory=2),
                 'reschedule')
    assert again['status'] == 'ok', again
    record = read_record(ds.repo, 'HEAD').data
    assert record['cmd'] == 'sbatch --mem=2G jobs/write.sh big/x 1'
    assert record['raised'] == {'mem': ['1G', '2G']}
    assert '"raised": {\n  "mem": [\n   "1G",\n   "2G"' in \
        git(ds, 'log', '-1', '--format=%B')
    wait_for_jobs(again['slurm_job_id'])


def _refused(ds, *args, phrase, **kwargs):
    before = snapshot(ds)
    res = [r for r in call(ds.reschedule, *args, **kwargs)
           if r['status'] != 'notneeded']
    assert [r['status'] for r in res] == ['impossible'], res
    assert phrase in message_text(res[0]), message_text(res[0])
    assert snapshot(ds) == before


@local_mode
def test_refusals(ds):
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'good/x'],
                      outputs=['good'])
    call(ds.finish)
    _refused(ds, more_memory=0.5, phrase='give a factor above 1')
    _refused(ds, more_time=1, phrase='give a factor above 1')
    _refused(ds, 'HEAD', failed=True, all_tasks=True,
             phrase='not both')
    _refused(ds, 'HEAD', failed=True, phrase='completed')
    _refused(ds, 'HEAD', more_memory=2, phrase='completed')
    schedule_and_wait(ds, ['sbatch', '--mem=1G', 'jobs/write.sh', 'bad/x',
                            '3'], outputs=['bad'])
    call(ds.finish, close_failed_jobs=True)
    _refused(ds, 'HEAD', more_memory=2,
             phrase='did not end OUT_OF_MEMORY (exit code 3)')
    _out_of_memory(ds, options=['-t', '5'])
    _refused(ds, 'HEAD', more_time=2, phrase='did not end TIMEOUT')
    # it asked no memory, and local mode records none given
    _refused(ds, 'HEAD', more_memory=2, phrase='asked for none (--mem)')


@local_mode
def test_nothing_failed(ds):
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'good/x'],
                      outputs=['good'])
    call(ds.finish)
    before = snapshot(ds)
    res = only(call(ds.reschedule, failed=True))
    assert res['status'] == 'notneeded'
    assert message_text(res) == 'no failed jobs to reschedule'
    assert snapshot(ds) == before


@local_mode
def test_range_raises_only_what_ran_out(ds):
    mark = git(ds, 'rev-parse', 'HEAD').strip()
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'good/x'],
                      outputs=['good'])
    call(ds.finish)
    schedule_and_wait(ds, ['sbatch', '--mem=1G', 'jobs/write.sh', 'bad/x',
                           '3'], outputs=['bad'])
    call(ds.finish, close_failed_jobs=True)
    _out_of_memory(ds)
    before = snapshot(ds)
    report = call(ds.reschedule, since=mark, failed=True, more_memory=2,
                  report=True)
    assert [(r['status'], r['cmd'], r['raised']) for r in report] == [
        ('ok', 'sbatch --mem=1G jobs/write.sh bad/x 3', {}),
        ('ok', 'sbatch --mem=2G jobs/write.sh big/x 1',
         {'mem': ['1G', '2G']})]
    assert snapshot(ds) == before
    # without --failed, the failure that is no want of memory is skipped
    report = call(ds.reschedule, since=mark, more_memory=2, report=True)
    assert [(r['status'], r.get('cmd')) for r in report] == [
        ('notneeded', None),
        ('ok', 'sbatch jobs/write.sh good/x'),
        ('ok', 'sbatch --mem=2G jobs/write.sh big/x 1')]
    assert 'did not complete' in message_text(report[0])
