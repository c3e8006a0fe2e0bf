"""schedule --dry-run, reschedule --dry-run and reschedule --script."""

import json
import os
import subprocess
import time

import pytest

from datalad_slurm.backends.local import ids
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state

from conftest import (
    JOB_WAIT,
    any_backend,
    call,
    git,
    message_text,
    only,
    scancel,
    snapshot,
    wait_for_jobs,
    write_script,
)


def finished_ok(ds) -> list[dict]:
    res = [r for r in call(ds.finish, wait=True, wait_timeout=120)
           if r['action'] == 'finish']
    assert res and all(r['status'] == 'ok' for r in res), res
    return res


def state_files(ds) -> list[str]:
    """What the state directory holds but the job index's cache, which
    any read may refresh."""
    root = state.root(ds.repo.dot_git)
    caches = {state.index_cache(ds.repo.dot_git),
              state.index_delta(ds.repo.dot_git)}
    return sorted(str(p.relative_to(root)) for p in root.rglob('*')
                  if p not in caches and p.name != 'lock') \
        if root.exists() else []


def unchanged(ds):
    """Everything a dry run must leave alone: HEAD, the work tree and the
    state directory (journal, jobs' own files)."""
    return snapshot(ds), state_files(ds)


def dry_ok(ds, cmd, **kwargs) -> dict:
    res = only(call(ds.schedule, cmd, dry_run=True, **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    assert res['dry_run'] is True
    return res


def is_local(ds) -> bool:
    return ds.config.get('datalad.slurm.backend') == 'local'


def scheduled(ds, cmd, **kwargs) -> dict:
    res = only(call(ds.schedule, cmd, **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    return res


def in_queue(name: str) -> str:
    return subprocess.run(['squeue', '--noheader', '--name', name],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def settled(ds, job_id: int):
    """What `unchanged` gives once the long job `job_id` has started and
    stays as it is (its log there, its state files as they stay while it
    sleeps): a dry run is compared with that, not with a job starting."""
    log = ds.pathobj / f'slurm-{job_id}.out'
    deadline = time.monotonic() + JOB_WAIT
    last = None
    while time.monotonic() < deadline:
        now = unchanged(ds)
        if log.exists() and now == last:
            return now
        last = now
        time.sleep(0.5)
    raise AssertionError(f'job {job_id} did not start within {JOB_WAIT} s')


def end_jobs(*job_ids):
    """Cancel the cluster's jobs (local mode's are ended by its fixture)."""
    on_cluster = [i for i in job_ids if not ids.is_local(i)]
    if on_cluster:
        scancel(*on_cluster)
        wait_for_jobs(*on_cluster)


@any_backend
def test_dry_run_changes_nothing(ds):
    # an annexed input without content, and an annexed output present
    (ds.pathobj / 'data').mkdir()
    (ds.pathobj / 'data' / 'in.txt').write_text('input')
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'result.txt').write_text('old')
    ds.save(message='data', result_renderer='disabled')
    ds.drop('data/in.txt', reckless='kill', result_renderer='disabled')
    before = unchanged(ds)
    name = f'dry-{os.getpid()}'
    res = dry_ok(ds, ['sbatch', f'--job-name={name}', 'jobs/write.sh',
                      '{outputs}/result.txt'],
                 inputs=['data/*.txt'], outputs=['out'], message='try it')
    argv = res['sbatch_cmd']
    assert argv[0] == 'sbatch'
    assert argv[1].startswith('--comment=datalad-slurm:')
    assert argv[2:] == [f'--job-name={name}', 'jobs/write.sh',
                        'out/result.txt']
    assert res['inputs'] == ['data/in.txt']
    assert res['outputs'] == ['out']
    assert res['depends_on'] == [] and res['waits_for'] == []
    assert res['pwd'] == '.' and res['mode'] == 'plain'
    assert unchanged(ds) == before
    # not got, not unlocked
    assert not ds.repo.file_has_content('data/in.txt')
    assert (ds.pathobj / 'out' / 'result.txt').is_symlink()
    if not is_local(ds):
        assert not in_queue(name)


@any_backend
def test_dry_run_names_the_jobs_it_would_wait_for(ds):
    write_script(ds, 'jobs/slow.sh', 'sleep 60\nmkdir -p prep\n'
                                     'echo x > prep/x\n')
    ds.save(message='slow job', result_renderer='disabled')
    first = only(call(ds.schedule, ['sbatch', 'jobs/slow.sh'],
                      outputs=['prep']), 'schedule')
    assert first['status'] == 'ok', first
    try:
        before = settled(ds, first['slurm_job_id'])
        res = dry_ok(ds, ['sbatch', 'jobs/write.sh', 'fit/x'],
                     inputs=['prep', 'jobs'], outputs=['fit'])
        assert res['waits_for'] == [first['slurm_job_id']]
        assert res['depends_on'] == [first['commit']]
        assert res['pending_inputs'] == ['prep']
        assert res['inputs'] == ['jobs']
        assert f'--dependency=afterok:{first["slurm_job_id"]}' in \
            res['sbatch_cmd']
        assert '--kill-on-invalid-dep=yes' in res['sbatch_cmd']
        assert unchanged(ds) == before
    finally:
        end_jobs(first['slurm_job_id'])


def _refusals_match(ds, cmd, **kwargs):
    """A dry run refuses as the real schedule does, and both leave the
    dataset as it was."""
    before = unchanged(ds)
    dry = only(call(ds.schedule, cmd, dry_run=True, **kwargs))
    assert unchanged(ds) == before
    real = only(call(ds.schedule, cmd, **kwargs))
    assert unchanged(ds) == before
    assert dry['status'] == real['status'] == 'impossible', (dry, real)
    assert (dry['action'], message_text(dry)) == \
        (real['action'], message_text(real))
    return message_text(dry)


@any_backend
def test_refusals_are_those_of_a_real_schedule(ds):
    assert 'unknown placeholder' in _refusals_match(
        ds, ['sbatch', 'jobs/write.sh', '{nope}'], outputs=['out'])
    write_script(ds, 'jobs/slow.sh', 'sleep 60\n')
    ds.save(message='slow job', result_renderer='disabled')
    held = only(call(ds.schedule, ['sbatch', 'jobs/slow.sh'],
                     outputs=['out/sub']), 'schedule')
    try:
        settled(ds, held['slurm_job_id'])
        assert 'overlap' in _refusals_match(
            ds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
        (ds.pathobj / 'dirt').write_text('x')
        assert 'unsaved changes' in _refusals_match(
            ds, ['sbatch', 'jobs/write.sh'], outputs=['elsewhere'])
    finally:
        end_jobs(held['slurm_job_id'])


def test_scratch_dry_run_writes_no_clone_directory(lds, tmp_path):
    before = unchanged(lds)
    res = dry_ok(lds, ['sbatch', 'jobs/write.sh'], outputs=['out'],
                 scratch=str(tmp_path / 's'))
    assert res['mode'] == 'scratch'
    batch = res['sbatch_cmd'][-1]
    assert batch.startswith(str(state.scratch(lds.repo.dot_git)))
    assert batch.endswith('/batch.sh')
    assert '--job-name=write.sh' in res['sbatch_cmd']
    # the batch script it would write, shown, not written
    assert res['job_files'][batch].startswith('#!/bin/sh\n')
    assert 'datalad_slurm.modes.scratch.job' in res['job_files'][batch]
    assert not os.path.lexists(batch)
    # the job's outputs come back by its branch: nothing to make writable
    assert res['outputs'] == []
    assert unchanged(lds) == before
    assert not (tmp_path / 's').exists()


@any_backend
def test_farm_dry_run_queues_no_task(ds):
    (ds.pathobj / 'tasks.txt').write_text('echo one\necho two\n')
    ds.save(message='task list', result_renderer='disabled')
    before = unchanged(ds)
    res = dry_ok(ds, ['sbatch', '-c', '2'], tasks='tasks.txt',
                 outputs=['results'])
    assert res['mode'] == 'farm'
    wrap = res['sbatch_cmd'][-1]
    assert wrap.startswith('--wrap=exec ')
    assert 'datalad_slurm.modes.farm.job' in wrap
    (directory,) = res['job_files']
    assert directory in wrap and not os.path.lexists(directory)
    # local mode has no time limit to be signalled ahead of
    assert ('--signal=B:TERM@60' in res['sbatch_cmd']) is not is_local(ds)
    assert unchanged(ds) == before


def test_dry_run_rendered_and_as_json(lds):
    before = unchanged(lds)
    out = subprocess.run(
        ['datalad', 'schedule', '--dry-run', '-o', 'out', 'sbatch',
         'jobs/write.sh'], cwd=lds.path, capture_output=True, text=True,
        check=True).stdout
    assert 'schedule dry run: nothing submitted' in out
    assert 'sbatch command:' in out
    assert 'outputs to make writable: out' in out
    out = subprocess.run(
        ['datalad', '-f', 'json', 'schedule', '--dry-run', '-o', 'out',
         'sbatch', 'jobs/write.sh'], cwd=lds.path, capture_output=True,
        text=True, check=True).stdout
    res = json.loads(out)
    assert (res['action'], res['status'], res['dry_run']) == \
        ('schedule', 'ok', True)
    assert res['sbatch_cmd'][-1] == 'jobs/write.sh'
    assert unchanged(lds) == before


def _pipeline(ds):
    """Two completed jobs, the second reading what the first wrote; the
    commit before them."""
    mark = git(ds, 'rev-parse', 'HEAD').strip()
    write_script(ds, 'jobs/copy.sh', 'mkdir -p fit\ncp prep/x fit/x\n')
    ds.save(message='copy job', result_renderer='disabled')
    first = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'prep/x'],
                      outputs=['prep'], message='prepare'), 'schedule')
    second = only(call(ds.schedule, ['sbatch', 'jobs/copy.sh'],
                       inputs=['prep'], outputs=['fit']), 'schedule')
    assert first['status'] == second['status'] == 'ok'
    wait_for_jobs(first['slurm_job_id'], second['slurm_job_id'])
    finished_ok(ds)
    return mark, first, second


@any_backend
def test_reschedule_dry_run(ds):
    mark, first, second = _pipeline(ds)
    before = unchanged(ds)
    res = [r for r in call(ds.reschedule, since=mark, dry_run=True)]
    assert [(r['action'], r['status'], r['dry_run']) for r in res] == \
        [('reschedule', 'ok', True)] * 2
    assert [r['rescheduled_job_id'] for r in res] == \
        [first['slurm_job_id'], second['slurm_job_id']]
    # the second would wait for the first's new submission, not yet made
    assert res[1]['waits_for_rescheduled'] == [first['slurm_job_id']]
    assert res[0]['sbatch_cmd'][-2:] == ['jobs/write.sh', 'prep/x']
    assert res[1]['inputs'] == ['prep']
    assert unchanged(ds) == before
    # one job, named by its commit
    res = only(call(ds.reschedule, first['commit'], dry_run=True))
    assert res['status'] == 'ok' and res['rescheduled_job_id'] == \
        first['slurm_job_id']
    assert unchanged(ds) == before


@any_backend
def test_reschedule_script_repeats_the_range(ds, tmp_path):
    mark, first, second = _pipeline(ds)
    before = unchanged(ds)
    script = tmp_path / 'redo.sh'
    res = only(call(ds.reschedule, since=mark, script=str(script)))
    assert (res['action'], res['status'], res['path']) == \
        ('reschedule', 'ok', str(script))
    assert unchanged(ds) == before
    text = script.read_text()
    assert text.startswith('#!/bin/sh\n')
    assert f'datalad reschedule --script={script} --since={mark}' in text
    lines = text.splitlines()
    assert 'datalad schedule -o prep -m prepare -- sbatch jobs/write.sh ' \
        'prep/x' in lines
    assert 'job_1=$(git rev-parse HEAD)' in lines
    assert 'datalad schedule -i prep -o fit --after "$job_1" -- sbatch ' \
        'jobs/copy.sh' in lines
    assert f'# job {first["slurm_job_id"]} (record: {first["commit"]}, ' \
        f'finished in' in text
    # running it schedules both again, the second after the first's new one
    subprocess.run(['sh', str(script)], cwd=ds.path, check=True,
                   capture_output=True)
    again = read_record(ds.repo, 'HEAD').data
    before_it = read_record(ds.repo, 'HEAD~1').data
    assert again['cmd'] == 'sbatch jobs/copy.sh'
    assert before_it['cmd'] == 'sbatch jobs/write.sh prep/x'
    assert before_it['message'] == 'prepare'
    assert again['depends_on'] == [git(ds, 'rev-parse', 'HEAD~1').strip()]
    wait_for_jobs(again['slurm_job_id'])
    assert len(finished_ok(ds)) == 2
    assert (ds.pathobj / 'fit' / 'x').read_text().startswith(
        f'job {before_it["slurm_job_id"]}')


def test_reschedule_script_to_stdout(lds, tmp_path):
    # a failed job in the range is skipped: said on stderr, not in the
    # script
    mark = git(lds, 'rev-parse', 'HEAD').strip()
    done = scheduled(lds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
    finished_ok(lds)
    scheduled(lds, ['sbatch', 'jobs/write.sh', 'bad/x', '3'],
              outputs=['bad'])
    call(lds.finish, wait=True, wait_timeout=120, close_failed_jobs=True)
    before = unchanged(lds)
    run = subprocess.run(
        ['datalad', 'reschedule', '--since', mark, '--script', '-'],
        cwd=lds.path, capture_output=True, text=True, check=True)
    assert run.stdout.startswith('#!/bin/sh\n')
    commands = [line for line in run.stdout.splitlines()
                if line and not line.startswith('#')]
    assert commands == ['set -e',
                        'datalad schedule -o out -- sbatch jobs/write.sh']
    assert f'# job {done["slurm_job_id"]}' in run.stdout
    assert 'did not complete' not in run.stdout
    assert unchanged(lds) == before
    (tmp_path / 'redo.sh').write_text(run.stdout)
    subprocess.run(['sh', str(tmp_path / 'redo.sh')], cwd=lds.path,
                   check=True, capture_output=True)
    assert read_record(lds.repo, 'HEAD').data['cmd'] == 'sbatch jobs/write.sh'
    assert len(finished_ok(lds)) == 1


@pytest.mark.parametrize('kwargs, phrase', [
    (dict(dry_run=True, script='-'), '--dry-run and --script'),
    (dict(report=True, dry_run=True), '--report and --dry-run'),
    (dict(script=' '), '--script names no file'),
    (dict(script='-', failed=True), 'as they were recorded'),
    (dict(script='redo.sh', more_time=2.0), 'as they were recorded'),
])
def test_reschedule_option_refusals(lds, kwargs, phrase):
    scheduled(lds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
    finished_ok(lds)
    before = unchanged(lds)
    res = only(call(lds.reschedule, 'HEAD', **kwargs))
    assert res['status'] == 'impossible'
    assert phrase in message_text(res)
    assert unchanged(lds) == before


def test_script_lines_of_each_mode(tmp_path):
    """Farm and scratch jobs from a subdirectory, a message of two lines,
    a quoted command: the script's lines, no dataset needed."""
    from types import SimpleNamespace

    from datalad_slurm.records.format import (
        FINISH,
        Record,
    )
    from datalad_slurm.submit.script import script_text

    base = dict(dsid='x', pwd='sub', expand=None, depends_on=[])
    farm = Record(FINISH, dict(
        base, cmd='sbatch -c 4', inputs=['data/in'], outputs=['sub/res'],
        message='farm\nsecond line', farm_tasks='sub/tasks.txt',
        farm_workers=2, farm_task_timeout=0.5, farm_failed=[3],
        farm_task_ids=None, slurm_job_id=7, schedule_commit='a' * 40),
        commit='b' * 40)
    scratch = Record(FINISH, dict(
        base, cmd="sbatch --wrap='echo \"{outputs}\" > x'", inputs=[],
        outputs=['sub/x'], message=None, scratch='$TMPDIR', pwd='.',
        slurm_job_id=8, schedule_commit='c' * 40,
        depends_on=['a' * 40]), commit='d' * 40)
    ds = SimpleNamespace(id='x', path='/data/ds')
    text = script_text(ds, [farm, scratch], script='-', selection=' HEAD',
                       message=None)
    lines = text.splitlines()
    assert '#   datalad reschedule --script=- HEAD' in lines
    assert '# farm' in lines and '# second line' in lines
    assert any('runs the whole task list' in line for line in lines)
    assert "(cd sub && datalad schedule -i ../data/in -o res -m " \
        "'farm\nsecond line'" in text
    assert '--tasks tasks.txt --workers 2 --task-timeout 0.5 -- ' \
        'sbatch -c 4)' in text
    assert 'job_1=$(git rev-parse HEAD)' in lines
    assert "datalad schedule -o sub/x --scratch '$TMPDIR' --after " \
        "\"$job_1\" -- sbatch --wrap='echo \"{outputs}\" > x'" in lines
    # the shell reads it
    script = tmp_path / 'redo.sh'
    script.write_text(text)
    subprocess.run(['sh', '-n', str(script)], check=True)


def test_reschedule_dry_run_refuses_as_reschedule(lds):
    scheduled(lds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
    finished_ok(lds)
    (lds.pathobj / 'dirt').write_text('x')
    before = unchanged(lds)
    dry = only(call(lds.reschedule, 'HEAD', dry_run=True))
    real = only(call(lds.reschedule, 'HEAD'))
    assert unchanged(lds) == before
    assert dry['status'] == real['status'] == 'impossible'
    assert (dry['action'], message_text(dry)) == \
        (real['action'], message_text(real))
    assert 'unsaved changes' in message_text(dry)
