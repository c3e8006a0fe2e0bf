"""datalad jobs and the timeline, against the real cluster; the parsers
of Slurm's durations and sizes without one."""

import json
import subprocess

import pytest

from datalad_slurm.records.history import read_record
from datalad_slurm.slurm.jobspec import (
    seconds,
    size_bytes,
)
from datalad_slurm.slurm.status import slurm_time

from conftest import (
    call,
    only,
    scancel,
    schedule_and_wait,
    write_script,
)


@pytest.mark.parametrize('text, value', [
    ('00:00.149', 0.149), ('01:02', 62), ('01:02:03', 3723),
    ('1-02:03:04', 93784), ('', None), ('junk', None)])
def test_durations(text, value):
    assert seconds(text) == value


@pytest.mark.parametrize('text, cpus, value', [
    ('67820K', None, 67820 * 1024), ('4000M', None, 4000 * 2 ** 20),
    ('1000Mc', 4, 4000 * 2 ** 20), ('2Gn', None, 2 * 2 ** 30),
    ('512', None, 512), ('16?', None, None), (None, None, None)])
def test_sizes(text, cpus, value):
    assert size_bytes(text, cpus) == value


def test_accounting_is_gathered(ds):
    """max RSS and CPU time of the batch step are real, not null."""
    write_script(ds, 'jobs/use.sh', '''
        mkdir -p out
        python3 -c "
        import time
        block = b'x' * (200 * 2 ** 20)
        start = time.time()
        while time.time() - start < 3:
            pass
        " > out/done
        ''')
    ds.save(result_renderer='disabled')
    schedule_and_wait(ds, ['sbatch', '--mem=1G', 'jobs/use.sh'],
                      outputs=['out'])
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    acct = read_record(ds.repo, 'HEAD').data['accounting']
    assert size_bytes(acct['max_rss']) >= 200 * 2 ** 20, acct
    assert 2.5 <= seconds(acct['total_cpu']) <= 4.5, acct
    assert size_bytes(acct['req_mem']) == 2 ** 30, json.dumps(acct)
    job = only(call(ds.jobs))
    assert 0.15 <= job['mem_efficiency'] <= 0.5, job
    assert job['cpu_efficiency'] > 0.5, job


def _three_jobs(ds):
    """A complete job, a failed one closed with its failure, and an open,
    held one."""
    good = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'ok/r'],
                             outputs=['ok'])
    bad = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'bad/r', '3'],
                            outputs=['bad'])
    call(ds.finish, close_failed_jobs=True)
    held = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh',
                                   'held/r'], outputs=['held']), 'schedule')
    return good, bad, held


def test_jobs_report(ds):
    good, bad, held = _three_jobs(ds)
    try:
        res = call(ds.jobs)
        assert [(r['slurm_job_id'], r['job_state']) for r in res] == [
            (good['slurm_job_id'], 'complete'),
            (bad['slurm_job_id'], 'failed'),
            (held['slurm_job_id'], 'open')]
        complete = res[0]
        for key in ('submitted', 'started', 'ended', 'nodes'):
            assert complete[key], key
        assert complete['queue_wait'] >= 0
        assert complete['commit'] == good['commit']
        assert read_record(ds.repo, complete['finish_commit']).kind == \
            'FINISH'
        assert [r['slurm_job_id'] for r in call(ds.jobs, state='failed')] \
            == [bad['slurm_job_id']]
        by_finish = only(call(ds.jobs, complete['finish_commit']))
        assert by_finish['slurm_job_id'] == good['slurm_job_id']
        assert only(call(ds.jobs, '987654321'))['status'] == 'impossible'
        refreshed = only(call(ds.jobs, str(held['slurm_job_id']),
                              refresh=True))
        assert refreshed['slurm_state'] == 'PENDING'

        out = subprocess.run(['datalad', 'jobs'], cwd=ds.path,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split()[:3] == ['JOB', 'KIND', 'STATE']
        # aligned, whatever the widths
        column = lines[0].index('COMMIT')
        assert all(line[column:column + 8] in (good['commit'][:8],
                                               bad['commit'][:8],
                                               held['commit'][:8])
                   for line in lines[1:4])
        assert lines[4].startswith('3 jobs: 1 open, 1 complete, 1 failed')
        out = subprocess.run(['datalad', '-f', 'json', 'jobs'], cwd=ds.path,
                             capture_output=True, text=True)
        records = [json.loads(line) for line in out.stdout.splitlines()]
        assert records[0]['tasks'][0]['alloc_cpus'] == 1
    finally:
        scancel(held['slurm_job_id'])


def test_timeline_matches_the_records(ds, tmp_path):
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'one/r'],
                      outputs=['one'])
    schedule_and_wait(ds, ['sbatch', '--array=0-2', 'jobs/write.sh',
                           'arr/r'], outputs=['arr'])
    call(ds.finish)
    target = tmp_path / 'timeline.json'
    res = [r for r in call(ds.jobs, timeline=str(target))
           if r.get('timeline')]
    assert res and res[0]['status'] == 'ok'
    events = json.loads(target.read_text())['traceEvents']
    names = {e['pid']: e['args']['name'] for e in events
             if e['ph'] == 'M' and e['name'] == 'process_name'}
    runs = [e for e in events if e['ph'] == 'X' and e['cat'] == 'job']
    waits = [e for e in events if e['ph'] == 'X' and e['cat'] == 'queue']
    assert len(runs) == len(waits) == 4
    summaries = {j['slurm_job_id']: j for j in call(ds.jobs)}
    for event in runs + waits:
        job = summaries[event['args']['job']]
        task = next(t for t in job['tasks']
                    if t['task'] == event['args']['task'])
        assert event['args']['commit'] == job['commit']
        assert event['args']['state'] == task['state']
        start = slurm_time(task['start']).timestamp() * 1e6
        if event['cat'] == 'job':
            assert event['ts'] == start
            assert event['ts'] + event['dur'] == \
                slurm_time(task['end']).timestamp() * 1e6
            assert names[event['pid']] == f"node {task['nodes']}"
        else:
            assert event['ts'] == slurm_time(task['submit']).timestamp() \
                * 1e6
            assert event['ts'] + event['dur'] == start
            assert names[event['pid']] == 'queue'
    # events of one slot never overlap
    for pid in names:
        for tid in {e['tid'] for e in runs + waits if e['pid'] == pid}:
            spans = sorted((e['ts'], e['ts'] + e['dur']) for e in runs + waits
                           if e['pid'] == pid and e['tid'] == tid)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
