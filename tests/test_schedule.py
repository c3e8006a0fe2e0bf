"""datalad schedule against the real cluster: records and refusals."""

import json
import os

import datalad.api as api

from datalad_slurm.records.history import read_record

from conftest import (
    any_backend,
    call,
    git,
    only,
    scancel,
    snapshot,
    wait_for_jobs,
    write_script,
)


def test_schedule_commit_and_record(ds):
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out'], inputs=['jobs/write.sh'],
                    message='first try'), 'schedule')
    assert res['status'] == 'ok'
    job_id = res['slurm_job_id']
    message = git(ds, 'log', '-1', '--format=%B')
    assert message.startswith('[DATALAD SCHEDULE] first try\n\n'
                              f'Submitted batch job {job_id}: Pending\n')
    record = read_record(ds.repo, 'HEAD')
    assert record.kind == 'SCHEDULE'
    assert record.commit == res['commit']
    data = record.data
    assert data['cmd'] == 'sbatch jobs/write.sh'
    assert data['dsid'] == ds.id
    assert data['pwd'] == '.'
    assert data['inputs'] == ['jobs/write.sh']
    assert data['outputs'] == ['out']
    assert data['slurm_job_id'] == job_id
    assert data['slurm_array'] is None
    assert data['slurm_outputs'] == [f'slurm-{job_id}.out']
    assert data['slurm_cluster'] == 'localcluster'
    assert data['chain'] == []
    # the record is written as `datalad run` writes its own
    body = message.split('=== Do not change lines below ===\n')[1]
    body = body.split('\n^^^ Do not change lines above ^^^')[0]
    assert body == json.dumps(data, indent=1, sort_keys=True)
    # the schedule commit changes no file
    assert git(ds, 'diff', '--stat', 'HEAD~1', 'HEAD') == ''
    wait_for_jobs(job_id)


@any_backend
def test_array_job_log_files(ds):
    write_script(ds, 'jobs/array.sh', '''
        #SBATCH --output=logs/%x-%A_%a.log
        #SBATCH --job-name=sweep
        echo $SLURM_ARRAY_TASK_ID
        ''')
    ds.save(result_renderer='disabled')
    res = only(call(ds.schedule, ['sbatch', '--array=0-3', 'jobs/array.sh'],
                    outputs=['logs']), 'schedule')
    job_id = res['slurm_job_id']
    data = read_record(ds.repo, 'HEAD').data
    assert data['slurm_array'] == [0, 1, 2, 3]
    assert data['slurm_outputs'] == [
        f'logs/sweep-{job_id}_{t}.log' for t in range(4)]
    wait_for_jobs(job_id)


@any_backend
def test_command_line_options_override_script(ds):
    write_script(ds, 'jobs/opts.sh', '''
        #SBATCH --output=ignored.log
        #SBATCH --error=err-%j.log
        true
        ''')
    ds.save(result_renderer='disabled')
    res = only(call(ds.schedule,
                    ['sbatch', '-o', 'std-%j.log', 'jobs/opts.sh', '-o', 'x'],
                    outputs=['x']), 'schedule')
    job_id = res['slurm_job_id']
    assert read_record(ds.repo, 'HEAD').data['slurm_outputs'] == [
        f'std-{job_id}.log', f'err-{job_id}.log']
    wait_for_jobs(job_id)


@any_backend
def test_schedule_from_subdirectory(ds, monkeypatch):
    """Without a Dataset instance, paths are relative to the current
    directory, as with `datalad run`."""
    (ds.pathobj / 'analysis').mkdir()
    monkeypatch.chdir(ds.pathobj / 'analysis')
    res = only(call(api.schedule, ['sbatch', '../jobs/write.sh', 'res.txt'],
                    outputs=['res.txt', './sub/../other']), 'schedule')
    assert res['status'] == 'ok'
    data = read_record(ds.repo, 'HEAD').data
    assert data['pwd'] == 'analysis'
    assert data['outputs'] == ['analysis/res.txt', 'analysis/other']
    assert data['slurm_outputs'] == [
        f'analysis/slurm-{res["slurm_job_id"]}.out']
    wait_for_jobs(res['slurm_job_id'])
    assert (ds.pathobj / 'analysis' / 'res.txt').exists()


@any_backend
def test_placeholders_in_command(ds):
    res = only(call(ds.schedule, 'sbatch jobs/write.sh {outputs}',
                    outputs=['made/by/placeholder.txt']), 'schedule')
    assert res['status'] == 'ok'
    assert read_record(ds.repo, 'HEAD').data['cmd'] == \
        'sbatch jobs/write.sh {outputs}'
    wait_for_jobs(res['slurm_job_id'])
    assert (ds.pathobj / 'made/by/placeholder.txt').exists()


@any_backend
def test_outputs_are_unlocked(ds):
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'result.txt').write_text('old')
    ds.save(result_renderer='disabled')
    assert (ds.pathobj / 'out' / 'result.txt').is_symlink()
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    assert res['status'] == 'ok'
    assert not (ds.pathobj / 'out' / 'result.txt').is_symlink()
    wait_for_jobs(res['slurm_job_id'])


def _assert_refused(ds, results, status, *phrases):
    res = only(results, 'schedule')
    assert res['status'] == status, res
    message = res['message']
    text = message[0] % message[1:] if isinstance(message, tuple) \
        else message
    for phrase in phrases:
        assert phrase in text, text
    return res


@any_backend
def test_refuses_non_sbatch_command(ds):
    before = snapshot(ds)
    _assert_refused(ds, call(ds.schedule, ['bash', 'jobs/write.sh']),
                    'impossible', 'not an sbatch command')
    _assert_refused(ds, call(ds.schedule, 'srun jobs/write.sh'),
                    'impossible', 'not an sbatch command')
    assert snapshot(ds) == before


@any_backend
def test_refuses_dirty_dataset(ds):
    (ds.pathobj / 'stray.txt').write_text('unsaved')
    before = snapshot(ds)
    _assert_refused(ds, call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                             outputs=['out']),
                    'impossible', 'unsaved changes', 'stray.txt',
                    '--explicit')
    assert snapshot(ds) == before
    # --explicit accepts it, and records nothing of the stray file
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out'], explicit=True), 'schedule')
    assert res['status'] == 'ok'
    assert 'stray.txt' in git(ds, 'status', '--porcelain')
    wait_for_jobs(res['slurm_job_id'])


@any_backend
def test_refuses_outputs_outside_dataset(ds, tmp_path):
    before = snapshot(ds)
    _assert_refused(ds, call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                             outputs=['../elsewhere']),
                    'impossible', 'outside the dataset')
    _assert_refused(ds, call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                             outputs=[str(tmp_path / 'abs')]),
                    'impossible', 'outside the dataset')
    assert snapshot(ds) == before


def test_refuses_outputs_of_open_jobs(ds):
    first = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                      outputs=['results/a']), 'schedule')
    try:
        before = snapshot(ds)
        for overlapping in ('results/a', 'results', 'results/a/deep',
                            './results/a/', 'results/*'):
            _assert_refused(
                ds, call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                         outputs=[overlapping]),
                'impossible', 'overlap', f'job {first["slurm_job_id"]}')
        assert snapshot(ds) == before
        # a sibling path is fine
        res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                        outputs=['results/b']), 'schedule')
        assert res['status'] == 'ok'
        wait_for_jobs(res['slurm_job_id'])
    finally:
        scancel(first['slurm_job_id'])


def test_sbatch_refusal_is_reported(ds):
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'result.txt').write_text('old')
    ds.save(result_renderer='disabled')
    before = snapshot(ds)
    res = _assert_refused(
        ds, call(ds.schedule, ['sbatch', 'jobs/missing.sh'], outputs=['out']),
        'error', 'sbatch did not submit the job', 'missing.sh')
    assert res['status'] == 'error'
    res = _assert_refused(
        ds, call(ds.schedule, ['sbatch', '--no-such-option', 'jobs/write.sh'],
                 outputs=['out']),
        'error', 'sbatch did not submit the job', 'no-such-option')
    # the unlocked output was restored
    assert snapshot(ds) == before
    assert (ds.pathobj / 'out' / 'result.txt').is_symlink()


@any_backend
def test_unknown_placeholder(ds):
    before = snapshot(ds)
    _assert_refused(ds, call(ds.schedule, 'sbatch jobs/write.sh {nope}'),
                    'impossible', 'placeholder')
    assert snapshot(ds) == before


@any_backend
def test_running_jobs_do_not_make_the_dataset_dirty(ds):
    """A job writing its outputs and log must not block the next schedule.
    """
    first = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'a/out.txt'],
                      outputs=['a']), 'schedule')
    wait_for_jobs(first['slurm_job_id'])
    assert os.path.exists(os.path.join(ds.path, 'a', 'out.txt'))
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'b/out.txt'],
                    outputs=['b']), 'schedule')
    assert res['status'] == 'ok', res
    wait_for_jobs(res['slurm_job_id'])


@any_backend
def test_expand_records_globs_expanded(ds):
    """--expand: inputs expanded at submission, outputs once finished."""
    from conftest import schedule_and_wait
    (ds.pathobj / 'data').mkdir()
    for name in ('a.txt', 'b.txt'):
        (ds.pathobj / 'data' / name).write_text(name)
    ds.save(result_renderer='disabled')
    res = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'out/r.txt'],
                            inputs=['data/*.txt'], outputs=['out/*'],
                            expand='both')
    data = read_record(ds.repo, res['commit']).data
    assert data['inputs'] == ['data/a.txt', 'data/b.txt']
    assert data['outputs'] == ['out/*']
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert read_record(ds.repo, 'HEAD').data['outputs'] == ['out/r.txt']
