"""Scratch mode (``datalad schedule --scratch DIR``) without Slurm: the
refusals, and round trips in local mode, where the job's batch script runs
on this machine as it would on a node.  The same stories on the real
cluster are in test_scratch_cluster.py."""

from __future__ import annotations

import os

import pytest
from conftest import (
    call,
    git,
    only,
    snapshot,
    write_script,
)
from test_farm import message

from datalad_slurm.modes.scratch.clone import (
    ScratchError,
    scratch_parent,
)
from datalad_slurm.modes.scratch.layout import branch_name
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state


def merged_files(ds, commit='HEAD') -> list[str]:
    """The files a merge commit changed against its first parent."""
    return sorted(git(ds, 'diff', '--name-only', f'{commit}^1',
                      commit).split())


def schedule_scratch(ds, cmd, scratch, **kwargs) -> dict:
    res = only(call(ds.schedule, cmd, scratch=str(scratch), **kwargs),
               'schedule')
    assert res['status'] == 'ok', res
    return res


def finish_waiting(ds, **kwargs) -> list[dict]:
    return [r for r in call(ds.finish, wait=True, wait_timeout=120, **kwargs)
            if r['action'] == 'finish']


def test_branch_names():
    assert branch_name(4711, None) == 'datalad-slurm/job-4711'
    assert branch_name(4711, 3) == 'datalad-slurm/job-4711_3'


def test_scratch_directory_expanded_where_the_job_runs(monkeypatch):
    monkeypatch.setenv('NODE_LOCAL', '/local/disk')
    assert scratch_parent('$NODE_LOCAL/me') == '/local/disk/me'
    assert scratch_parent('${NODE_LOCAL}') == '/local/disk'
    monkeypatch.delenv('NODE_LOCAL')
    with pytest.raises(ScratchError, match=r'names \$NODE_LOCAL, which is '
                                           r'not set'):
        scratch_parent('$NODE_LOCAL/me')
    with pytest.raises(ScratchError, match='not an absolute path'):
        scratch_parent('relative/dir')


def test_round_trip_in_local_mode(lds, tmp_path):
    scratch = tmp_path / 'scratch'
    scheduled = schedule_scratch(lds, ['sbatch', 'jobs/write.sh'], scratch,
                                 outputs=['out'])
    job_id = scheduled['slurm_job_id']
    schedule_commit = git(lds, 'rev-parse', 'HEAD').strip()
    assert read_record(lds.repo, 'HEAD').data['scratch'] == str(scratch)
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    parents = git(lds, 'log', '-1', '--format=%P').split()
    assert parents[0] == schedule_commit and len(parents) == 2
    assert merged_files(lds) == ['out/result.txt', f'slurm-{job_id}.out']
    assert (lds.pathobj / 'out' / 'result.txt').read_text() == \
        f'job {job_id} task none\n'
    data = read_record(lds.repo, 'HEAD').data
    assert data['scratch_branches'] == {'job': branch_name(job_id, None)}
    assert data['scratch_merged'] == parents[1:]
    # the branch, the job's directory and its clone are gone
    assert git(lds, 'branch', '--list', 'datalad-slurm/*') == ''
    assert not any(state.scratch(lds.repo.dot_git).iterdir())
    assert list(scratch.iterdir()) == []
    assert git(lds, 'status', '--porcelain') == ''
    assert git(lds, 'annex', 'fsck', '--fast', '--quiet') == ''


def test_delivery_adds_deletes_and_annexes_as_datalad_save(lds, tmp_path):
    """The delivery commits the outputs with git and git-annex alone, as
    ``datalad save`` would: a deleted output deleted, new files annexed
    (dotfiles too), an unchanged one left as it was."""
    (lds.pathobj / 'out').mkdir()
    for name in ('old.txt', 'kept.txt'):
        (lds.pathobj / 'out' / name).write_text(f'{name}\n')
    write_script(lds, 'jobs/change.sh',
                 'rm out/old.txt\necho x > out/.hidden\n'
                 'echo y > out/new.txt\n')
    lds.save(message='outputs before the job, and the job')
    schedule_scratch(lds, ['sbatch', 'jobs/change.sh'], tmp_path / 'scratch',
                     outputs=['out'])
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    assert sorted(git(lds, 'ls-files', 'out').split()) == \
        ['out/.hidden', 'out/kept.txt', 'out/new.txt']
    annexed = git(lds, 'annex', 'find', '--include=*', 'out').split()
    assert sorted(annexed) == ['out/.hidden', 'out/kept.txt', 'out/new.txt']
    assert (lds.pathobj / 'out' / 'new.txt').read_text() == 'y\n'
    assert git(lds, 'status', '--porcelain') == ''
    assert git(lds, 'annex', 'fsck', '--fast', '--quiet') == ''


def test_refusals_change_nothing(lds, tmp_path):
    scratch = str(tmp_path / 'scratch')
    write_script(lds, 'jobs/new.sh', 'echo new > out/x\n')
    cases = [
        (dict(cmd=['sbatch', 'jobs/new.sh'], outputs=['out']),
         'the job script jobs/new.sh is not committed'),
        (dict(cmd=['sbatch', 'jobs/write.sh'], outputs=['jobs']),
         'inputs or outputs of the job) have changes that are not saved'),
        (dict(cmd=['sbatch'], outputs=['out'], tasks='jobs/write.sh'),
         'cannot run a task list'),
    ]
    before = snapshot(lds)
    for kwargs, expected in cases:
        res = only(call(lds.schedule, scratch=scratch, **kwargs), 'schedule')
        assert res['status'] == 'impossible', res
        assert expected in message(res)
        assert snapshot(lds) == before
    res = only(call(lds.schedule, ['sbatch', 'jobs/write.sh'], scratch=' ',
                    outputs=['out']), 'schedule')
    assert res['status'] == 'impossible'
    assert '--scratch names no directory' in message(res)
    # a new file: the annexed one is a link into the read-only store
    (lds.pathobj / 'jobs' / 'write.sh').unlink()
    write_script(lds, 'jobs/write.sh', 'exit 1\n')
    res = only(call(lds.schedule, ['sbatch', 'jobs/write.sh'],
                    scratch=scratch, outputs=['out']), 'schedule')
    assert res['status'] == 'impossible'
    assert 'the job script jobs/write.sh has changes' in message(res)
    assert not state.scratch(lds.repo.dot_git).exists() or \
        not any(state.scratch(lds.repo.dot_git).iterdir())


def test_unsaved_edits_elsewhere_do_not_block(lds, tmp_path):
    (lds.pathobj / 'notes.txt').write_text('mine, not saved\n')
    write_script(lds, 'jobs/look.sh', '''
        mkdir -p out
        ls > out/seen.txt
        ''')
    lds.save('jobs/look.sh', result_renderer='disabled')
    (lds.pathobj / 'draft.txt').write_text('unsaved too\n')
    schedule_scratch(lds, ['sbatch', 'jobs/look.sh'], tmp_path / 's',
                     outputs=['out'])
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    seen = (lds.pathobj / 'out' / 'seen.txt').read_text().split()
    assert 'jobs' in seen and 'notes.txt' not in seen
    assert (lds.pathobj / 'notes.txt').read_text() == 'mine, not saved\n'
    assert git(lds, 'status', '--porcelain').splitlines() == [
        '?? draft.txt', '?? notes.txt']


def test_undeclared_file_is_left_out_and_named(lds, tmp_path):
    write_script(lds, 'jobs/stray.sh', '''
        mkdir -p out
        echo result > out/r.txt
        echo stray > stray.txt
        ''')
    lds.save(result_renderer='disabled')
    scheduled = schedule_scratch(lds, ['sbatch', 'jobs/stray.sh'],
                                 tmp_path / 's', outputs=['out'])
    job_id = scheduled['slurm_job_id']
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    assert 'left out with its clone, outside the declared outputs: ' \
        'stray.txt' in message(res)
    assert merged_files(lds) == ['out/r.txt', f'slurm-{job_id}.out']
    assert not (lds.pathobj / 'stray.txt').exists()
    assert read_record(lds.repo, 'HEAD').data['scratch_left_out'] == [
        'stray.txt']
    log = (lds.pathobj / f'slurm-{job_id}.out').read_text()
    assert 'left out, outside the declared outputs: stray.txt' in log


def test_undeclared_file_committed_by_the_job(lds, tmp_path):
    """What the job script commits in its clone comes along on the branch;
    outside the declared outputs, it is named and not merged."""
    write_script(lds, 'jobs/commits.sh', '''
        mkdir -p out
        echo result > out/r.txt
        echo stray > stray.txt
        git add stray.txt && git commit -q -m "the job's own commit"
        ''')
    lds.save(result_renderer='disabled')
    scheduled = schedule_scratch(lds, ['sbatch', 'jobs/commits.sh'],
                                 tmp_path / 's', outputs=['out'])
    head = git(lds, 'rev-parse', 'HEAD')
    res = only(finish_waiting(lds))
    assert res['status'] == 'error', res
    assert 'committed files outside its declared outputs in its clone: ' \
        'stray.txt' in message(res)
    assert git(lds, 'rev-parse', 'HEAD') == head
    branch = branch_name(scheduled['slurm_job_id'], None)
    assert git(lds, 'branch', '--list', branch).strip() == branch

    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok', res
    assert merged_files(lds) == [
        'out/r.txt', f'slurm-{scheduled["slurm_job_id"]}.out']
    assert not (lds.pathobj / 'stray.txt').exists()
    assert read_record(lds.repo, 'HEAD').data['scratch_undeclared'] == [
        'stray.txt']
    # nothing the job committed is lost: it is in the merge's parents
    assert 'stray.txt' in git(lds, 'ls-tree', '-r', '--name-only', 'HEAD^2')
    assert git(lds, 'log', '--format=%s', 'HEAD^2').splitlines()[:2] == [
        f'[DATALAD SLURM] outputs of job {scheduled["slurm_job_id"]} from '
        f'its scratch clone', "the job's own commit"]


def test_work_tree_in_the_way_of_the_merge(lds, tmp_path):
    schedule_scratch(lds, ['sbatch', 'jobs/write.sh'], tmp_path / 's',
                     outputs=['out'])
    (lds.pathobj / 'out').mkdir()
    (lds.pathobj / 'out' / 'result.txt').write_text('mine\n')
    res = only(finish_waiting(lds))
    assert res['status'] == 'impossible', res
    assert 'where the job\'s outputs come in: out/result.txt' in \
        message(res)
    assert (lds.pathobj / 'out' / 'result.txt').read_text() == 'mine\n'
    os.unlink(lds.pathobj / 'out' / 'result.txt')
    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'ok', res


def test_unwritable_scratch_fails_the_job_with_its_reason(lds, tmp_path):
    blocked = tmp_path / 'file'
    blocked.write_text('not a directory\n')
    scheduled = schedule_scratch(lds, ['sbatch', 'jobs/write.sh'],
                                 blocked / 'scratch', outputs=['out'])
    res = only(finish_waiting(lds))
    assert res['status'] == 'error', res
    assert 'in its scratch clone: cannot create the clone in the scratch ' \
        'directory' in message(res)
    res = only(call(lds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok'
    data = read_record(lds.repo, 'HEAD').data
    assert data['scratch_not_delivered'] == ['job']
    assert data['slurm_job_id'] == scheduled['slurm_job_id']


def test_reschedule_runs_in_scratch_again(lds, tmp_path):
    schedule_scratch(lds, ['sbatch', 'jobs/write.sh'], tmp_path / 's',
                     outputs=['out'])
    assert only(finish_waiting(lds))['status'] == 'ok'
    res = only(call(lds.reschedule, 'HEAD'), 'reschedule')
    assert res['status'] == 'ok', res
    assert read_record(lds.repo, 'HEAD').data['scratch'] == \
        str(tmp_path / 's')
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    assert len(git(lds, 'log', '-1', '--format=%P').split()) == 2


def test_job_runs_from_the_submission_directory_in_its_clone(
        lds, tmp_path, monkeypatch):
    import datalad.api as api
    write_script(lds, 'jobs/here.sh', '''
        echo "$PWD" > result.txt
        echo "$SLURM_SUBMIT_DIR" >> result.txt
        ''')
    (lds.pathobj / 'sub').mkdir()
    (lds.pathobj / 'sub' / '.gitkeep').write_text('')
    lds.save(result_renderer='disabled')
    monkeypatch.chdir(lds.pathobj / 'sub')
    res = only(call(api.schedule, ['sbatch', '../jobs/here.sh'],
                    outputs=['result.txt'], scratch=str(tmp_path / 's')),
               'schedule')
    assert res['status'] == 'ok', res
    assert read_record(lds.repo, 'HEAD').data['outputs'] == ['sub/result.txt']
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    ran_in, submit_dir = (lds.pathobj / 'sub' / 'result.txt').read_text() \
        .split()
    assert ran_in == submit_dir
    assert ran_in.startswith(str(tmp_path / 's')) and ran_in.endswith('/sub')


def test_wrap_command_and_refused_scripts(lds, tmp_path):
    scheduled = schedule_scratch(
        lds, ['sbatch', '--wrap=mkdir -p out && pwd > out/where'],
        tmp_path / 's', outputs=['out'])
    res = only(finish_waiting(lds))
    assert res['status'] == 'ok', res
    assert (lds.pathobj / 'out' / 'where').read_text().startswith(
        str(tmp_path / 's'))
    assert read_record(lds.repo, 'HEAD^1').data['slurm_job_id'] == \
        scheduled['slurm_job_id']

    (lds.pathobj / 'jobs' / 'plain.sh').write_text('echo no interpreter\n')
    lds.save(result_renderer='disabled')
    before = snapshot(lds)
    for cmd, expected in (
            (['sbatch', 'jobs/plain.sh'], 'does not look like a batch script'),
            (['sbatch', '--wrap=true', 'jobs/write.sh'],
             'a job script or a --wrap command, one of them')):
        res = only(call(lds.schedule, cmd, scratch=str(tmp_path / 's'),
                        outputs=['out2']), 'schedule')
        assert res['status'] == 'impossible', res
        assert expected in message(res)
        assert snapshot(lds) == before


@pytest.mark.parametrize('upstream', ['scratch', 'shared', 'self-finishing'])
def test_pipeline_step_takes_its_inputs_from_the_step_before(
        lds, tmp_path, upstream):
    """The second step's clone is made at its schedule commit, before the
    first step wrote anything; it takes the first step's outputs from
    where they are when it starts: the branch a scratch job delivered, the
    work tree a job ran in, the FINISH commit of a job finished since."""
    write_script(lds, 'jobs/prep.sh', f'''
        mkdir -p prep
        sleep 1
        echo prepared > prep/x
        {'datalad finish "$SLURM_JOB_ID"' if upstream == 'self-finishing'
         else ''}
        ''')
    write_script(lds, 'jobs/fit.sh', '''
        mkdir -p fit
        cat prep/x > fit/y
        ''')
    lds.save(result_renderer='disabled')
    scratch = tmp_path / 's'
    first = only(call(lds.schedule, ['sbatch', 'jobs/prep.sh'],
                      outputs=['prep'],
                      scratch=None if upstream == 'shared' else str(scratch)),
                 'schedule')
    assert first['status'] == 'ok', first
    second = schedule_scratch(lds, ['sbatch', 'jobs/fit.sh'], scratch,
                              inputs=['prep'], outputs=['fit'])
    assert read_record(lds.repo, 'HEAD').data['depends_on']
    res = finish_waiting(lds)
    assert [r['status'] for r in res if r['status'] != 'notneeded'] == \
        ['ok'] * (1 if upstream == 'self-finishing' else 2), res
    assert (lds.pathobj / 'fit' / 'y').read_text() == 'prepared\n'
    # the second step's merge brings its own outputs only
    job_id = second['slurm_job_id']
    assert merged_files(lds) == ['fit/y', f'slurm-{job_id}.out']
    assert git(lds, 'status', '--porcelain') == ''
    assert git(lds, 'annex', 'fsck', '--fast', '--quiet') == ''


def test_scratch_by_configuration_and_off_again(lds, tmp_path):
    lds.config.set('datalad.slurm.scratch', str(tmp_path / 's'),
                   scope='local')
    res = only(call(lds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    assert res['status'] == 'ok', res
    assert read_record(lds.repo, 'HEAD').data['scratch'] == \
        str(tmp_path / 's')
    assert only(finish_waiting(lds))['status'] == 'ok'
    # an empty value turns the site's default off
    lds.config.set('datalad.slurm.scratch', '', scope='local')
    res = only(call(lds.schedule, ['sbatch', 'jobs/write.sh', 'o2/r'],
                    outputs=['o2']), 'schedule')
    assert res['status'] == 'ok', res
    assert 'scratch' not in read_record(lds.repo, 'HEAD').data
