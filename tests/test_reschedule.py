"""datalad reschedule against the real cluster."""

import datalad.api as api

from datalad_slurm.records.history import (
    iter_records,
    read_record,
)

from conftest import (
    any_backend,
    call,
    git,
    message_text,
    only,
    scancel,
    schedule_and_wait,
    schedule_from_subdirectory,
    snapshot,
    wait_for_jobs,
)


def finish_ok(ds, *args, **kwargs):
    res = [r for r in call(ds.finish, *args, **kwargs)
           if r['action'] == 'finish']
    assert res and all(r['status'] == 'ok' for r in res), res
    return res


def reschedule_ok(ds, *args, **kwargs):
    res = only(call(ds.reschedule, *args, **kwargs), 'reschedule')
    assert res['status'] == 'ok', res
    wait_for_jobs(res['slurm_job_id'])
    return res


def completed_job(ds, outputs=('out',), args=()):
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', *args],
                                  outputs=list(outputs))
    finish_ok(ds)
    return scheduled


@any_backend
def test_reschedule_by_each_kind_of_commit(ds):
    first = completed_job(ds)
    finish_commit = git(ds, 'rev-parse', 'HEAD').strip()
    # by the finish commit
    again = reschedule_ok(ds, finish_commit)
    message = git(ds, 'log', '-1', '--format=%B')
    assert message.startswith('[DATALAD RESCHEDULE] Submitted batch job '
                              f'{again["slurm_job_id"]}: Pending\n')
    data = read_record(ds.repo, 'HEAD').data
    assert data['chain'] == [first['commit']]
    assert data['cmd'] == 'sbatch jobs/write.sh'
    assert data['outputs'] == ['out']
    finish_ok(ds)
    # by the schedule commit
    reschedule_ok(ds, first['commit'])
    finish_ok(ds)
    # by the reschedule commit: the chain names both earlier schedules
    third = reschedule_ok(ds, again['commit'])
    assert read_record(ds.repo, third['commit']).data['chain'] == [
        first['commit'], again['commit']]
    finish_ok(ds)
    assert git(ds, 'status', '--porcelain') == ''


@any_backend
def test_default_is_head(ds):
    completed_job(ds)
    res = reschedule_ok(ds)
    assert res['status'] == 'ok'
    finish_ok(ds)


@any_backend
def test_from_another_subdirectory(ds, monkeypatch):
    res = schedule_from_subdirectory(ds, monkeypatch, 'first', 'r.txt')
    finish_ok(api.Dataset(ds.path))
    (ds.pathobj / 'second').mkdir()
    monkeypatch.chdir(ds.pathobj / 'second')
    again = only(call(api.reschedule, res['commit']), 'reschedule')
    assert again['status'] == 'ok', again
    data = read_record(ds.repo, 'HEAD').data
    assert data['pwd'] == 'first'
    assert data['outputs'] == ['first/r.txt']
    job_id = again['slurm_job_id']
    assert data['slurm_outputs'] == [f'first/slurm-{job_id}.out']
    wait_for_jobs(job_id)
    finish_ok(api.Dataset(ds.path))
    files = git(ds, 'show', '--name-only', '--format=', 'HEAD').split()
    assert sorted(files) == ['first/r.txt', f'first/slurm-{job_id}.out']
    assert not (ds.pathobj / 'second' / 'first').exists()


@any_backend
def test_array_job(ds):
    scheduled = schedule_and_wait(
        ds, ['sbatch', '--array=0-2', 'jobs/write.sh', 'arr/x'],
        outputs=['arr'])
    finish_ok(ds)
    again = reschedule_ok(ds, scheduled['commit'])
    data = read_record(ds.repo, 'HEAD').data
    assert data['slurm_array'] == [0, 1, 2]
    finish_ok(ds)
    assert read_record(ds.repo, 'HEAD').data['state'] == {
        '0': 'COMPLETED', '1': 'COMPLETED', '2': 'COMPLETED'}
    assert again['status'] == 'ok'


@any_backend
def test_since_and_report(ds):
    mark = git(ds, 'rev-parse', 'HEAD').strip()
    jobs = [completed_job(ds, outputs=[name], args=[f'{name}/x'])
            for name in ('one', 'two', 'three')]
    before = snapshot(ds)
    report = call(ds.reschedule, since=mark, report=True)
    assert [(r['slurm_job_id'], r['commit'], r['outputs'], r['status'])
            for r in report] == [
        (j['slurm_job_id'], j['commit'], [name], 'ok')
        for j, name in zip(jobs, ('one', 'two', 'three'))]
    assert snapshot(ds) == before
    res = [r for r in call(ds.reschedule, since=mark)
           if r['action'] == 'reschedule']
    assert [r['status'] for r in res] == ['ok'] * 3
    wait_for_jobs(*[r['slurm_job_id'] for r in res])
    assert len(finish_ok(ds)) == 3
    # --since= (empty) means the whole history: now six jobs
    assert len(call(ds.reschedule, since='', report=True)) == 6


@any_backend
def test_report_rendering(ds):
    import subprocess
    completed_job(ds)
    out = subprocess.run(['datalad', 'reschedule', '--report'], cwd=ds.path,
                         capture_output=True, text=True, check=True).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ['COMMIT', 'JOB', 'AFTER', 'PWD', 'COMMAND',
                              'OUTPUTS']
    assert 'sbatch jobs/write.sh' in row


def _refused(ds, *args, phrase, **kwargs):
    before = snapshot(ds)
    res = only(call(ds.reschedule, *args, **kwargs))
    assert res['status'] == 'impossible', res
    text = message_text(res)
    assert phrase in text, text
    assert snapshot(ds) == before


def test_refusals(ds):
    _refused(ds, 'no-such-rev', phrase='names no commit')
    _refused(ds, 'HEAD', phrase='no datalad-slurm record')
    held = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                     outputs=['held']), 'schedule')
    try:
        _refused(ds, held['commit'], phrase='still open')
    finally:
        scancel(held['slurm_job_id'])
    wait_for_jobs(held['slurm_job_id'])
    call(ds.finish, close_failed_jobs=True)
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'out/x', '3'],
                      outputs=['out'])
    call(ds.finish, close_failed_jobs=True)
    _refused(ds, 'HEAD', phrase='--with-failed-jobs')
    res = only(call(ds.reschedule, 'HEAD', with_failed_jobs=True),
               'reschedule')
    assert res['status'] == 'ok'
    wait_for_jobs(res['slurm_job_id'])
    call(ds.finish, close_failed_jobs=True)
    (ds.pathobj / 'dirt').write_text('x')
    _refused(ds, 'HEAD', phrase='unsaved changes', with_failed_jobs=True)


@any_backend
def test_refuses_record_of_another_dataset(ds, tmp_path):
    completed_job(ds)
    other = api.clone(ds.path, tmp_path / 'other', result_renderer='disabled')
    other.config.set('datalad.dataset.id', 'someone-else', scope='branch')
    other.save(result_renderer='disabled')
    res = only(call(other.reschedule, 'HEAD~1'))
    assert res['status'] == 'impossible'
    assert 'another dataset' in res['message'][0]


def test_refuses_overlap_with_open_job(ds):
    done = completed_job(ds)
    held = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                     outputs=['out/sub']), 'schedule')
    try:
        before = snapshot(ds)
        res = only(call(ds.reschedule, done['commit']), 'reschedule')
        assert res['status'] == 'impossible'
        assert 'overlap' in message_text(res)
        assert snapshot(ds) == before
    finally:
        scancel(held['slurm_job_id'])


@any_backend
def test_three_generations(ds):
    """schedule, finish, reschedule, finish, reschedule, finish: read back."""
    completed_job(ds)
    reschedule_ok(ds)
    finish_ok(ds)
    reschedule_ok(ds)
    finish_ok(ds)
    records = list(iter_records(ds.repo))
    schedules = [r for r in records if r.is_schedule]
    finishes = [r for r in records if not r.is_schedule]
    assert [r.kind for r in records] == [
        'SCHEDULE', 'FINISH', 'RESCHEDULE', 'FINISH', 'RESCHEDULE', 'FINISH']
    assert sorted(f.data['schedule_commit'] for f in finishes) == \
        sorted(s.commit for s in schedules)
    assert [len(s.data['chain']) for s in schedules] == [0, 1, 2]
    assert schedules[2].data['chain'] == [schedules[0].commit,
                                          schedules[1].commit]
    last_job = schedules[2].job_id
    assert f'job {last_job} ' in (ds.pathobj / 'out' / 'result.txt').read_text()
    # no message piling up
    assert git(ds, 'log', '-1', '--format=%s', schedules[2].commit) == \
        f'[DATALAD RESCHEDULE] Submitted batch job {last_job}: Pending\n'


@any_backend
def test_since_skips_failed_jobs_unless_asked(ds):
    mark = git(ds, 'rev-parse', 'HEAD').strip()
    good = completed_job(ds, outputs=['good'], args=['good/x'])
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'bad/x', '3'],
                      outputs=['bad'])
    call(ds.finish, close_failed_jobs=True)
    res = call(ds.reschedule, since=mark, report=True)
    assert sorted(r['status'] for r in res) == ['notneeded', 'ok']
    assert [r['slurm_job_id'] for r in res if r['status'] == 'ok'] == \
        [good['slurm_job_id']]
    res = call(ds.reschedule, since=mark, report=True, with_failed_jobs=True)
    assert [r['status'] for r in res] == ['ok', 'ok']
