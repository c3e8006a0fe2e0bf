"""Pipelines on the real cluster: jobs that depend on open jobs, Slurm
enforcing the order, the history recording it, and waiting for them."""

import subprocess

from datalad_slurm.records.history import read_record

from conftest import (
    any_backend,
    call,
    git,
    only,
    release as release_held,
    scancel,
    snapshot,
    wait_for_jobs,
    write_script,
)


def step_script(ds, name: str, body: str):
    write_script(ds, f'jobs/{name}.sh', body)


def pipeline_scripts(ds):
    """prep writes prep/data; fit reads it into fit/model; agg reads the
    model into agg/report."""
    step_script(ds, 'prep', '''
        sleep 2
        mkdir -p prep
        echo raw > prep/data
        ''')
    step_script(ds, 'fit', '''
        mkdir -p fit
        cat prep/data > fit/model
        echo fitted >> fit/model
        ''')
    step_script(ds, 'agg', '''
        mkdir -p agg
        cat fit/model > agg/report
        ''')
    ds.save(result_renderer='disabled')


def schedule(ds, script, **kwargs):
    res = only(call(ds.schedule, ['sbatch', f'jobs/{script}.sh'], **kwargs),
               'schedule')
    assert res['status'] == 'ok', res
    return res


def held(ds, script, **kwargs):
    """Schedule a job held back, so that its dependents wait for sure."""
    res = only(call(ds.schedule, ['sbatch', '--hold', f'jobs/{script}.sh'],
                    **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    return res


def release(*scheduled):
    release_held(r['slurm_job_id'] for r in scheduled)


def dependency(job_id) -> str:
    """The dependency Slurm holds for a job, as scontrol shows it."""
    out = subprocess.run(['scontrol', 'show', 'job', str(job_id)],
                         capture_output=True, text=True).stdout
    return next((w.split('=', 1)[1] for w in out.split()
                 if w.startswith('Dependency=')), '')


def finish_commits(ds):
    return [s for s in git(ds, 'log', '--reverse', '--format=%s',
                           '--grep', r'^\[DATALAD FINISH\]').splitlines()]


def test_three_step_chain_scheduled_at_once(ds):
    pipeline_scripts(ds)
    prep = schedule(ds, 'prep', outputs=['prep'])
    fit = schedule(ds, 'fit', inputs=['prep/data'], outputs=['fit'])
    agg = schedule(ds, 'agg', inputs=['fit'], outputs=['agg'])
    assert f'afterok:{prep["slurm_job_id"]}' in dependency(
        fit['slurm_job_id'])
    assert read_record(ds.repo, fit['commit']).data['depends_on'] == \
        [prep['commit']]
    assert read_record(ds.repo, agg['commit']).data['depends_on'] == \
        [fit['commit']]
    res = [r for r in call(ds.finish, wait=True, wait_timeout=120)
           if r['action'] == 'finish']
    assert [(r['status'], r['slurm_job_id']) for r in res] == [
        ('ok', prep['slurm_job_id']), ('ok', fit['slurm_job_id']),
        ('ok', agg['slurm_job_id'])]
    assert (ds.pathobj / 'agg' / 'report').read_text() == 'raw\nfitted\n'
    ids = [prep['slurm_job_id'], fit['slurm_job_id'], agg['slurm_job_id']]
    assert finish_commits(ds) == [
        f'[DATALAD FINISH] Processed batch job {i}: Complete' for i in ids]


def test_fan_in(ds):
    step_script(ds, 'one', 'mkdir -p a; echo a > a/x\n')
    step_script(ds, 'two', 'mkdir -p b; echo b > b/x\n')
    step_script(ds, 'join', 'mkdir -p c; cat a/x b/x > c/x\n')
    ds.save(result_renderer='disabled')
    one = held(ds, 'one', outputs=['a'])
    two = held(ds, 'two', outputs=['b'])
    join = schedule(ds, 'join', inputs=['a', 'b'], outputs=['c'])
    assert read_record(ds.repo, join['commit']).data['depends_on'] == \
        [one['commit'], two['commit']]
    waits = dependency(join['slurm_job_id'])
    assert str(one['slurm_job_id']) in waits
    assert str(two['slurm_job_id']) in waits
    release(one, two)
    res = [r for r in call(ds.finish, wait=True, wait_timeout=120)
           if r['action'] == 'finish']
    assert [r['status'] for r in res] == ['ok'] * 3, res
    assert (ds.pathobj / 'c' / 'x').read_text() == 'a\nb\n'
    assert finish_commits(ds)[-1].startswith(
        f'[DATALAD FINISH] Processed batch job {join["slurm_job_id"]}')


def test_failed_step_cancels_its_dependent(ds):
    step_script(ds, 'bad', 'mkdir -p a; echo half > a/x; exit 3\n')
    step_script(ds, 'next', 'mkdir -p b; cat a/x > b/x\n')
    ds.save(result_renderer='disabled')
    bad = schedule(ds, 'bad', outputs=['a'])
    nxt = schedule(ds, 'next', inputs=['a'], outputs=['b'])
    res = {r['slurm_job_id']: r for r in call(
        ds.finish, wait=True, wait_timeout=120) if r.get('slurm_job_id')}
    assert res[bad['slurm_job_id']]['status'] == 'error'
    assert res[nxt['slurm_job_id']]['status'] == 'error'
    assert 'was not run' in res[nxt['slurm_job_id']]['message'][0]
    # Slurm cancelled the dependent: nothing is left waiting in the queue
    queued = subprocess.run(['squeue', '-h', '-j', str(nxt['slurm_job_id']),
                             '-o', '%T'], capture_output=True, text=True)
    assert queued.stdout.strip() in ('', 'CANCELLED')
    res = [r for r in call(ds.finish, close_failed_jobs=True)
           if r['action'] == 'finish']
    assert [r['status'] for r in res] == ['ok', 'ok']
    assert finish_commits(ds) == [
        f'[DATALAD FINISH] Processed batch job {bad["slurm_job_id"]}: '
        f'Failed',
        f'[DATALAD FINISH] Processed batch job {nxt["slurm_job_id"]}: '
        f'Cancelled']


@any_backend
def test_dependent_waits_for_the_finish_of_its_dependency(ds):
    """B has completed, but A it depends on is not finished yet: B's FINISH
    commit must not come first."""
    step_script(ds, 'a', 'mkdir -p a; echo a > a/x\n')
    step_script(ds, 'b', 'mkdir -p b; cat a/x > b/x\n')
    ds.save(result_renderer='disabled')
    a = schedule(ds, 'a', outputs=['a'])
    b = schedule(ds, 'b', inputs=['a'], outputs=['b'])
    wait_for_jobs(a['slurm_job_id'], b['slurm_job_id'])
    before = snapshot(ds)
    res = only(call(ds.finish, str(b['slurm_job_id'])), 'finish')
    assert res['status'] == 'impossible', res
    assert f'job {a["slurm_job_id"]} it depends on' in \
        res['message'][0] % res['message'][1:]
    assert snapshot(ds) == before
    # one call commits both, in order
    res = [r for r in call(ds.finish) if r['action'] == 'finish']
    assert [(r['status'], r['slurm_job_id']) for r in res] == [
        ('ok', a['slurm_job_id']), ('ok', b['slurm_job_id'])]


def test_wait_does_not_wait_for_a_job_that_can_never_run(ds):
    step_script(ds, 'a', 'mkdir -p a; echo a > a/x; exit 1\n')
    step_script(ds, 'b', 'mkdir -p b; echo b > b/x\n')
    ds.save(result_renderer='disabled')
    a = schedule(ds, 'a', outputs=['a'])
    # the user keeps Slurm from cancelling it: it would pend for ever
    b = only(call(ds.schedule, ['sbatch', '--kill-on-invalid-dep=no',
                                'jobs/b.sh'], inputs=['a'], outputs=['b']),
             'schedule')
    try:
        res = {r['slurm_job_id']: r for r in call(
            ds.finish, wait=True, wait_timeout=60) if r.get('slurm_job_id')}
        assert res[a['slurm_job_id']]['status'] == 'error'
        assert res[b['slurm_job_id']]['status'] == 'impossible'
        assert 'will never run' in res[b['slurm_job_id']]['message'][0]
    finally:
        scancel(b['slurm_job_id'])


def test_after_by_commit_and_job_id(ds):
    step_script(ds, 'fill', 'mkdir -p db; echo rows > db/table\n')
    step_script(ds, 'read', 'mkdir -p out out2; echo read > out/x; '
                'echo read > out2/x\n')
    ds.save(result_renderer='disabled')
    fill = held(ds, 'fill', outputs=['db'])
    by_commit = schedule(ds, 'read', outputs=['out'],
                         after=[fill['commit']])
    by_id = schedule(ds, 'read', outputs=['out2'],
                     after=[str(fill['slurm_job_id'])])
    for res in (by_commit, by_id):
        assert read_record(ds.repo, res['commit']).data['depends_on'] == \
            [fill['commit']]
        assert f'afterok:{fill["slurm_job_id"]}' in dependency(
            res['slurm_job_id'])
    release(fill)
    res = call(ds.finish, wait=True, wait_timeout=120)
    assert [r['status'] for r in res if r['action'] == 'finish'] == \
        ['ok'] * 3


@any_backend
def test_after_a_finished_or_unknown_job_is_refused(ds):
    step_script(ds, 'quick', 'mkdir -p q; echo q > q/x\n')
    ds.save(result_renderer='disabled')
    done = schedule(ds, 'quick', outputs=['q'])
    wait_for_jobs(done['slurm_job_id'])
    call(ds.finish)
    before = snapshot(ds)
    for target in (done['commit'], str(done['slurm_job_id']), '999999999',
                   'no-such-commit'):
        res = only(call(ds.schedule, ['sbatch', 'jobs/quick.sh'],
                        outputs=['r'], after=[target]))
        assert res['status'] == 'impossible', res
        assert '--after' in res['message']
        assert snapshot(ds) == before


def test_reschedule_since_remaps_dependencies(ds):
    pipeline_scripts(ds)
    start = git(ds, 'rev-parse', 'HEAD').strip()
    prep = schedule(ds, 'prep', outputs=['prep'])
    fit = schedule(ds, 'fit', inputs=['prep'], outputs=['fit'])
    call(ds.finish, wait=True, wait_timeout=120)
    report = [r for r in call(ds.reschedule, since=start, report=True)
              if r['status'] == 'ok']
    assert [r['depends_on'] for r in report] == [[], [prep['slurm_job_id']]]
    res = [r for r in call(ds.reschedule, since=start)
           if r['action'] == 'reschedule' and r['status'] == 'ok']
    assert len(res) == 2
    new_prep, new_fit = res
    assert read_record(ds.repo, new_fit['commit']).data['depends_on'] == \
        [new_prep['commit']]
    assert f'afterok:{new_prep["slurm_job_id"]}' in dependency(
        new_fit['slurm_job_id']) or not dependency(new_fit['slurm_job_id'])
    assert fit['slurm_job_id'] != new_fit['slurm_job_id']
    call(ds.finish, wait=True, wait_timeout=120)


def test_wait_timeout_reports_jobs_still_running(ds):
    step_script(ds, 'long', 'sleep 60\n')
    ds.save(result_renderer='disabled')
    res = schedule(ds, 'long', outputs=['l'])
    try:
        out = only(call(ds.finish, wait=True, wait_timeout=2), 'finish')
        assert out['status'] == 'impossible'
        assert 'still running' in out['message'][0]
        cli = subprocess.run(['datalad', 'finish', '--wait',
                              '--wait-timeout', '1'], cwd=ds.path,
                             capture_output=True, text=True)
        assert cli.returncode != 0
    finally:
        scancel(res['slurm_job_id'])


def test_list_open_jobs_shows_what_a_job_waits_for(ds):
    step_script(ds, 'held', 'mkdir -p a; echo a > a/x\n')
    step_script(ds, 'next', 'mkdir -p b; cat a/x > b/x\n')
    ds.save(result_renderer='disabled')
    first = held(ds, 'held', outputs=['a'])
    nxt = schedule(ds, 'next', inputs=['a'], outputs=['b'])
    try:
        listed = {r['slurm_job_id']: r for r in call(
            ds.finish, list_open_jobs=True)}
        assert str(first['slurm_job_id']) in \
            listed[nxt['slurm_job_id']]['waits_for']
        assert 'Dependency' in listed[nxt['slurm_job_id']]['waits_for']
        out = subprocess.run(['datalad', 'finish', '--list-open-jobs'],
                             cwd=ds.path, capture_output=True, text=True)
        assert 'WAITS FOR' in out.stdout
    finally:
        scancel(first['slurm_job_id'], nxt['slurm_job_id'])
