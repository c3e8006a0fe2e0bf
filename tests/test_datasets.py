"""Datasets of every shape: subdatasets, odd path names."""

import datalad.api as api

from datalad_slurm.records.history import read_record

from conftest import (
    call,
    git,
    only,
    schedule_and_wait,
    write_script,
)


def test_outputs_inside_a_subdataset_are_saved_recursively(ds):
    sub = api.create(dataset=ds, path='sub', result_renderer='disabled')
    write_script(ds, 'jobs/sub.sh', '''
        mkdir -p sub/results
        echo "$SLURM_JOB_ID" > sub/results/r.txt
        ''')
    ds.save(result_renderer='disabled')
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/sub.sh'],
                                  outputs=['sub/results'])
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert git(ds, 'status', '--porcelain') == ''
    assert git(sub, 'status', '--porcelain') == ''
    assert 'results/r.txt' in git(sub, 'ls-files')
    # the superdataset's FINISH commit records the subdataset's new state
    files = git(ds, 'show', '--name-only', '--format=', 'HEAD').split()
    assert 'sub' in files
    assert read_record(ds.repo, 'HEAD').data['schedule_commit'] == \
        scheduled['commit']


def test_paths_with_spaces_and_non_ascii(ds):
    write_script(ds, 'jobs/odd name.sh', '''
        mkdir -p "$1"
        echo ok > "$1/résumé final.txt"
        ''')
    (ds.pathobj / 'logs dir').mkdir()
    (ds.pathobj / 'logs dir' / '.gitkeep').touch()
    ds.save(result_renderer='disabled')
    out = 'Ergebnisse für Läufe'
    scheduled = schedule_and_wait(
        ds, ['sbatch', '--output=logs dir/ünïcode-%j.log',
             'jobs/odd name.sh', out], outputs=[out])
    job_id = scheduled['slurm_job_id']
    data = read_record(ds.repo, scheduled['commit'])
    assert data.data['outputs'] == [out]
    assert data.data['slurm_outputs'] == [f'logs dir/ünïcode-{job_id}.log']
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    files = git(ds, '-c', 'core.quotepath=off', 'show', '--name-only',
                '--format=', 'HEAD').splitlines()
    assert sorted(files) == [f'{out}/résumé final.txt',
                             f'logs dir/ünïcode-{job_id}.log']
    assert git(ds, 'status', '--porcelain') == ''
    # and again, from the record
    again = only(call(ds.reschedule), 'reschedule')
    assert again['status'] == 'ok', again


def test_missing_git_identity_is_refused_before_submitting(ds, tmp_path,
                                                          monkeypatch):
    for role in ('AUTHOR', 'COMMITTER'):
        for what in ('NAME', 'EMAIL'):
            monkeypatch.delenv(f'GIT_{role}_{what}', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('GIT_CONFIG_GLOBAL', '/dev/null')
    monkeypatch.setenv('GIT_CONFIG_NOSYSTEM', '1')
    git(ds, 'config', 'user.useConfigOnly', 'true')
    before = git(ds, 'rev-parse', 'HEAD')
    for command in (ds.schedule, ds.finish):
        args = (['sbatch', 'jobs/write.sh'],) if command == ds.schedule \
            else ()
        res = call(command, *args)
        assert [r['status'] for r in res] == ['impossible'], res
        assert 'user.email' in res[0]['message']
    assert git(ds, 'rev-parse', 'HEAD') == before
