"""datalad finish against the real cluster."""

import json
import os
import subprocess
import time

import datalad.api as api
from conftest import (
    JOB_WAIT,
    any_backend,
    call,
    git,
    hold_lock,
    only,
    scancel,
    schedule_and_wait,
    schedule_from_subdirectory,
    snapshot,
    wait_for_jobs,
    write_script,
)

from datalad_slurm.backends import cli
from datalad_slurm.records.history import (
    iter_records,
    read_record,
)
from datalad_slurm.repo import state
from datalad_slurm.repo.lock import repository_lock


def committed_files(ds, commit='HEAD'):
    return sorted(git(ds, 'show', '--format=', '--name-only', commit).split())


@any_backend
def test_round_trip(ds):
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'],
                                  outputs=['out'])
    job_id = scheduled['slurm_job_id']
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok'
    assert res['message'] == f'Processed batch job {job_id}: Complete'
    assert git(ds, 'log', '-1', '--format=%s') == \
        f'[DATALAD FINISH] Processed batch job {job_id}: Complete\n'
    assert committed_files(ds) == ['out/result.txt', f'slurm-{job_id}.out']
    data = read_record(ds.repo, 'HEAD').data
    assert data['schedule_commit'] == scheduled['commit']
    assert data['state'] == 'COMPLETED'
    assert data['exit'] == 0
    assert data['accounting']['start'] and data['accounting']['end']
    assert data['accounting']['nodes']
    assert data['cmd'] == 'sbatch jobs/write.sh'
    assert git(ds, 'status', '--porcelain') == ''
    # annexed output, as the dataset's configuration says
    assert (ds.pathobj / 'out' / 'result.txt').is_symlink()
    assert f'job {job_id}' in (ds.pathobj / 'out' / 'result.txt').read_text()


@any_backend
def test_finishing_twice(ds):
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'],
                                  outputs=['out'])
    job_id = scheduled['slurm_job_id']
    assert only(call(ds.finish, str(job_id)), 'finish')['status'] == 'ok'
    before = snapshot(ds)
    for target in (str(job_id), scheduled['commit'], 'HEAD'):
        res = only(call(ds.finish, target), 'finish')
        assert res['status'] == 'notneeded', (target, res)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'notneeded'
    assert res['message'] == 'no open jobs'
    assert snapshot(ds) == before


@any_backend
def test_array_job(ds):
    write_script(ds, 'jobs/array.sh', '''
        #SBATCH --output=logs/%A_%a.log
        mkdir -p arr
        echo $SLURM_ARRAY_TASK_ID > arr/$SLURM_ARRAY_TASK_ID.txt
        ''')
    # Slurm does not create the directories of log files
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.gitkeep').touch()
    ds.save(result_renderer='disabled')
    scheduled = schedule_and_wait(ds, ['sbatch', '--array=0-3',
                                       'jobs/array.sh'], outputs=['arr'])
    job_id = scheduled['slurm_job_id']
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res
    assert committed_files(ds) == sorted(
        [f'arr/{t}.txt' for t in range(4)] +
        [f'logs/{job_id}_{t}.log' for t in range(4)])
    data = read_record(ds.repo, 'HEAD').data
    assert data['state'] == {str(t): 'COMPLETED' for t in range(4)}
    assert data['exit'] == {str(t): 0 for t in range(4)}
    assert git(ds, 'status', '--porcelain') == ''


@any_backend
def test_array_job_with_task_job_ids_in_log_names(ds):
    """%j of an array task is known only once the task runs."""
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.gitkeep').touch()
    ds.save(result_renderer='disabled')
    scheduled = schedule_and_wait(
        ds, ['sbatch', '--array=1-2', '--output=logs/task-%j.log',
             'jobs/write.sh', 'arr/x'], outputs=['arr'])
    assert read_record(ds.repo, 'HEAD').data['slurm_outputs'] == []
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    logs = [f for f in committed_files(ds) if f.startswith('logs/')]
    assert len(logs) == 2
    assert git(ds, 'status', '--porcelain') == ''
    assert scheduled['status'] == 'ok'


@any_backend
def test_failing_job_and_close_failed_jobs(ds):
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh',
                                       'out/partial.txt', '3'],
                                  outputs=['out'])
    job_id = scheduled['slurm_job_id']
    head = git(ds, 'rev-parse', 'HEAD')
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error'
    assert 'FAILED' in res['message'][0] % res['message'][1:]
    assert '--close-failed-jobs' in res['message'][0]
    assert git(ds, 'rev-parse', 'HEAD') == head

    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok'
    assert git(ds, 'log', '-1', '--format=%s') == \
        f'[DATALAD FINISH] Processed batch job {job_id}: Failed\n'
    # the log is saved for reading why, the partial output to lose nothing
    assert committed_files(ds) == ['out/partial.txt', f'slurm-{job_id}.out']
    assert git(ds, 'status', '--porcelain') == ''
    data = read_record(ds.repo, 'HEAD').data
    assert data['state'] == 'FAILED'
    assert data['exit'] == 3
    assert only(call(ds.finish), 'finish')['status'] == 'notneeded'


def test_cancelled_job(ds):
    res = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    job_id = res['slurm_job_id']
    scancel(job_id)
    wait_for_jobs(job_id)
    res = only(call(ds.finish, str(job_id)), 'finish')
    assert res['status'] == 'error'
    assert 'CANCELLED' in res['message'][0] % res['message'][1:]
    res = only(call(ds.finish, str(job_id), close_failed_jobs=True),
               'finish')
    assert res['status'] == 'ok'
    assert git(ds, 'log', '-1', '--format=%s').endswith(
        f'batch job {job_id}: Cancelled\n')


def test_pending_job_is_reported_running(ds):
    res = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    job_id = res['slurm_job_id']
    try:
        before = snapshot(ds)
        res = only(call(ds.finish), 'finish')
        assert res['status'] == 'impossible'
        assert 'still running (PENDING)' in \
            res['message'][0] % res['message'][1:]
        assert snapshot(ds) == before
    finally:
        scancel(job_id)


def test_squeue_listing_all_jobs_picks_ours(ds, monkeypatch, tmp_path):
    """Past SQUEUE_NAMES_AT_MOST jobs squeue lists all of slurmctld's
    jobs, and ours are picked from them: the runs that naming them
    gives, without another job slurmctld holds."""
    ours = [only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                      outputs=[f'out{i}']), 'schedule')['slurm_job_id']
            for i in range(2)]
    other = int(subprocess.run(
        ['sbatch', '--parsable', '--hold', '--wrap=true'], cwd=tmp_path,
        capture_output=True, text=True, check=True).stdout.split(';')[0])
    try:
        named = cli.squeue_runs(ours, timeout=60)
        monkeypatch.setattr(cli, 'SQUEUE_NAMES_AT_MOST', 0)
        listed = cli.squeue_runs(ours, timeout=60)
        assert sorted(job for job, _ in named) == sorted(ours)
        assert sorted(listed, key=lambda run: run[0]) == \
            sorted(named, key=lambda run: run[0])
    finally:
        scancel(*ours, other)


@any_backend
def test_finish_from_subdirectory(ds, monkeypatch):
    res = schedule_from_subdirectory(ds, monkeypatch, 'a', 'res.txt')
    (ds.pathobj / 'b').mkdir()
    monkeypatch.chdir(ds.pathobj / 'b')
    assert only(call(api.finish), 'finish')['status'] == 'ok'
    assert committed_files(ds) == [
        'a/res.txt', f'a/slurm-{res["slurm_job_id"]}.out']


@any_backend
def test_outputs_committed_by_someone_else(ds):
    """The pair is completed with an empty FINISH commit."""
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'],
                                  outputs=['out'])
    ds.save(result_renderer='disabled')
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert committed_files(ds) == []
    assert read_record(ds.repo, 'HEAD').data['schedule_commit'] == \
        scheduled['commit']


@any_backend
def test_since(ds):
    first = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'one/x'],
                              outputs=['one'])
    mark = git(ds, 'rev-parse', 'HEAD').strip()
    second = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', 'two/x'],
                               outputs=['two'])
    res = call(ds.finish, since=mark)
    assert [r['slurm_job_id'] for r in res if r['status'] == 'ok'] == \
        [second['slurm_job_id']]
    res = only(call(ds.finish, since='no-such-commit'), 'finish')
    assert res['status'] == 'impossible'
    res = call(ds.finish)
    assert [r['slurm_job_id'] for r in res if r['status'] == 'ok'] == \
        [first['slurm_job_id']]


@any_backend
def test_unknown_job(ds):
    before = snapshot(ds)
    for target in ('999999', 'deadbeef'):
        res = only(call(ds.finish, target), 'finish')
        assert res['status'] == 'impossible'
    res = only(call(ds.finish, 'HEAD'), 'finish')
    assert res['status'] == 'impossible'
    assert 'no datalad-slurm schedule commit' in res['message'][0]
    assert snapshot(ds) == before


def _datalad(ds, *args):
    return subprocess.run(['datalad', *args], cwd=ds.path, text=True,
                          capture_output=True)


def test_list_open_jobs_renderings(ds):
    out = _datalad(ds, 'finish', '--list-open-jobs')
    assert out.returncode == 0
    assert 'no open jobs' in out.stdout
    held = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                     outputs=['held']), 'schedule')
    done = schedule_and_wait(ds, ['sbatch', '--array=0-1', 'jobs/write.sh',
                                  'arr/x'], outputs=['arr'])
    try:
        before = snapshot(ds)
        out = _datalad(ds, 'finish', '--list-open-jobs')
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split() == ['JOB', 'STATE', 'WAITS', 'FOR', 'COMMIT',
                                    'OUTPUTS']
        assert lines[1].split() == [
            str(held['slurm_job_id']), 'PENDING', '(JobHeldUser)',
            held['commit'][:8], 'held']
        assert lines[2].split() == [
            str(done['slurm_job_id']), '0-1:COMPLETED', done['commit'][:8],
            'arr']
        # columns are aligned
        assert lines[0].index('COMMIT') == \
            lines[1].index(held['commit'][:8]) == \
            lines[2].index(done['commit'][:8])

        out = _datalad(ds, '-f', 'json', 'finish', '--list-open-jobs')
        records = [json.loads(line) for line in out.stdout.splitlines()]
        assert [(r['slurm_job_id'], r['slurm_state'], r['commit'],
                 r['outputs'], r['status']) for r in records] == [
            (held['slurm_job_id'], 'PENDING', held['commit'], ['held'], 'ok'),
            (done['slurm_job_id'], '0-1:COMPLETED', done['commit'], ['arr'],
             'ok')]
        assert snapshot(ds) == before
    finally:
        scancel(held['slurm_job_id'])


def test_cli_exit_code_on_failure(ds):
    res = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    try:
        out = _datalad(ds, 'finish')
        assert out.returncode != 0
        assert 'still running' in out.stdout + out.stderr
    finally:
        scancel(res['slurm_job_id'])


def test_job_slurm_forgot_is_reported_lost(ds):
    """A record of a job id Slurm never saw stands for one it forgot."""
    from datalad_slurm.records.format import (
        compose_message,
        schedule_title,
    )
    from datalad_slurm.repo.commit import commit_empty
    lost_id = 987654321
    commit_empty(ds.repo, compose_message('SCHEDULE', schedule_title(lost_id), {
        'cmd': 'sbatch jobs/write.sh', 'dsid': ds.id, 'pwd': '.',
        'inputs': [], 'extra_inputs': [], 'outputs': ['gone'], 'chain': [],
        'slurm_job_id': lost_id, 'slurm_array': None,
        'slurm_outputs': [f'slurm-{lost_id}.out'],
        'slurm_output_patterns': ['slurm-%j.out']}))
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error'
    assert 'knows no job' in res['message'][0]
    res = only(call(ds.finish, close_failed_jobs=True), 'finish')
    assert res['status'] == 'ok'
    assert git(ds, 'log', '-1', '--format=%s') == \
        f'[DATALAD FINISH] Processed batch job {lost_id}: Lost\n'


def test_text_goes_to_git_as_configured(slurm_cluster, tmp_path):
    """Outputs go to git or git-annex exactly as the dataset says."""
    ds = api.create(tmp_path / 'text2git', cfg_proc='text2git',
                    result_renderer='disabled')
    write_script(ds, 'jobs/both.sh', '''
        mkdir -p out
        echo text > out/notes.txt
        head -c 2000 /dev/urandom > out/blob.bin
        ''')
    ds.save(result_renderer='disabled')
    schedule_and_wait(ds, ['sbatch', 'jobs/both.sh'], outputs=['out'])
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert not (ds.pathobj / 'out' / 'notes.txt').is_symlink()
    assert (ds.pathobj / 'out' / 'blob.bin').is_symlink()
    assert git(ds, 'status', '--porcelain') == ''


def test_dataset_without_annex(slurm_cluster, tmp_path):
    ds = api.create(tmp_path / 'plain', annex=False,
                    result_renderer='disabled')
    write_script(ds, 'jobs/write.sh', '''
        mkdir -p out
        echo done > out/result.txt
        ''')
    ds.save(result_renderer='disabled')
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'],
                                  outputs=['out'])
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert committed_files(ds) == [
        'out/result.txt', f'slurm-{scheduled["slurm_job_id"]}.out']
    assert git(ds, 'status', '--porcelain') == ''


@any_backend
def test_deleted_output_is_recorded(ds):
    (ds.pathobj / 'out').mkdir()
    (ds.pathobj / 'out' / 'old.txt').write_text('old')
    (ds.pathobj / 'out' / 'keep.txt').write_text('keep')
    ds.save(result_renderer='disabled')
    write_script(ds, 'jobs/prune.sh', '''
        rm out/old.txt
        echo new > out/new.txt
        ''')
    ds.save(result_renderer='disabled')
    schedule_and_wait(ds, ['sbatch', 'jobs/prune.sh'], outputs=['out'])
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert 'out/old.txt' in committed_files(ds)
    assert 'out/old.txt' not in git(ds, 'ls-files')
    assert git(ds, 'status', '--porcelain') == ''


@any_backend
def test_many_jobs_in_one_call_each_get_their_own_commit(ds):
    ids = [schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', f'o{i}/r.txt'],
                             outputs=[f'o{i}'])['slurm_job_id']
           for i in range(5)]
    res = [r for r in call(ds.finish) if r['action'] == 'finish']
    assert [(r['status'], r['slurm_job_id']) for r in res] == \
        [('ok', i) for i in ids]
    for n, (i, job_id) in enumerate(reversed(list(enumerate(ids)))):
        assert committed_files(ds, f'HEAD~{n}') == [
            f'o{i}/r.txt', f'slurm-{job_id}.out']
    assert git(ds, 'status', '--porcelain') == ''


@any_backend
def test_array_tasks_finishing_themselves(ds):
    """Each task ends in `datalad finish $SLURM_JOB_ID`: no task fails for
    its siblings still running, and the job gets exactly one FINISH."""
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p arr
        echo "$SLURM_ARRAY_TASK_ID" > "arr/$SLURM_ARRAY_TASK_ID.txt"
        datalad finish "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    scheduled = schedule_and_wait(ds, ['sbatch', '--array=0-3',
                                       'jobs/self.sh'], outputs=['arr'])
    job = wait_for_jobs(scheduled['slurm_job_id'])[scheduled['slurm_job_id']]
    assert job.phase == 'complete', job
    # tasks that end at the same moment know of each other's announcement
    finishes = git(ds, 'log', '--format=%s', '--grep',
                   r'^\[DATALAD FINISH\]').splitlines()
    assert finishes == [f'[DATALAD FINISH] Processed batch job '
                        f'{scheduled["slurm_job_id"]}: Complete']
    assert read_record(ds.repo, 'HEAD').data['finished_inside_job']
    assert git(ds, 'status', '--porcelain') == ''
    assert not list(state.ready(ds.repo.dot_git).iterdir())


def wait_for_finishes(ds, count: int, since: str) -> list[str]:
    """The FINISH commits since `since`, once there are `count`: made by a
    process that may still run when the jobs have ended."""
    deadline = time.monotonic() + JOB_WAIT
    while True:
        shas = git(ds, 'log', '--format=%H', f'{since}..HEAD').split()
        if len(shas) >= count:
            return shas
        assert time.monotonic() < deadline, f'{len(shas)} of {count} commits'
        time.sleep(0.2)


def test_jobs_ending_together_are_committed_in_one_round(ds):
    """While the lock is held, self-finishing jobs announce themselves and
    end; the process that held the lock starts a committer on letting go,
    which commits them all, with one move of the branch."""
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p "out/$1"
        echo "$SLURM_JOB_ID" > "out/$1/r"
        datalad finish "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    with repository_lock(ds.repo, 60):
        ids = [only(call(ds.schedule, ['sbatch', 'jobs/self.sh', str(i)],
                         outputs=[f'out/{i}']), 'schedule')['slurm_job_id']
               for i in range(3)]
        statuses = wait_for_jobs(*ids)
        # they did not wait for the lock
        assert all(s.phase == 'complete' for s in statuses.values())
        assert len(list(state.ready(ds.repo.dot_git).glob('*.json'))) == 3
        before = git(ds, 'rev-parse', 'HEAD').strip()
    finishes = wait_for_finishes(ds, 3, before)
    for sha in finishes:
        record = read_record(ds.repo, sha)
        i = ids.index(record.job_id)
        assert committed_files(ds, sha) == [
            f'out/{i}/r', f'slurm-{record.job_id}.out']
    moved_to = git(ds, 'reflog', '--format=%H', '-n', '5').split()
    assert [sha for sha in finishes if sha in moved_to] == finishes[:1]
    assert git(ds, 'status', '--porcelain') == ''
    assert not list(state.ready(ds.repo.dot_git).iterdir())


@any_backend
def test_a_job_ending_in_datalad_slurm_done_finishes_itself(ds):
    """``datalad-slurm-done $?`` as the last line: the job that gets the
    lock commits itself, its log saved with the line that says so."""
    write_script(ds, 'jobs/done.sh', '''
        mkdir -p out
        echo "$SLURM_JOB_ID" > out/r
        datalad-slurm-done $?
        ''')
    ds.save(result_renderer='disabled')
    job_id = schedule_and_wait(ds, ['sbatch', 'jobs/done.sh'],
                               outputs=['out'])['slurm_job_id']
    record = read_record(ds.repo, 'HEAD')
    assert (record.job_id, record.data['finished_inside_job']) == \
        (job_id, True)
    assert committed_files(ds) == ['out/r', f'slurm-{job_id}.out']
    assert (ds.pathobj / f'slurm-{job_id}.out').read_text() == (
        f'datalad-slurm-done: job {job_id}: its work ended with exit status '
        f'0; this job holds the repository lock and commits it, with every '
        f'job announced meanwhile\n')
    assert git(ds, 'status', '--porcelain') == ''
    assert not list(state.ready(ds.repo.dot_git).iterdir())


@any_backend
def test_a_job_that_does_not_get_the_lock_ends_at_once(ds):
    """Another process (not a finish) holds the lock: the job announces,
    says who commits it, and ends with 0; the holder, letting go, starts
    the committer, and the job's exit status of its work is recorded."""
    write_script(ds, 'jobs/done.sh', '''
        mkdir -p out
        echo "$SLURM_JOB_ID" > out/r
        (exit 3)
        datalad-slurm-done $?
        ''')
    ds.save(result_renderer='disabled')
    with repository_lock(ds.repo, 60):
        job_id = schedule_and_wait(ds, ['sbatch', 'jobs/done.sh'],
                                   outputs=['out'])['slurm_job_id']
        assert wait_for_jobs(job_id)[job_id].phase == 'complete'
        log = (ds.pathobj / f'slurm-{job_id}.out').read_text()
        assert log == (
            f'datalad-slurm-done: job {job_id}: its work ended with exit '
            f'status 3; announced for its FINISH commit by the process '
            f'holding the repository lock (pid {os.getpid()}), or the next '
            f'to hold it\n')
    # its work failed, though Slurm saw the job complete: the committer
    # leaves it to a finish that closes failed jobs
    deadline = time.monotonic() + JOB_WAIT
    while list(state.ready(ds.repo.dot_git).glob('*.json')):
        assert time.monotonic() < deadline, 'no committer took it up'
        time.sleep(0.2)
    res = call(ds.finish)
    assert [(r['status'], r.get('slurm_job_id')) for r in res] == [
        ('error', job_id)]
    assert 'ended unsuccessfully' in res[0]['message'][0]
    res = call(ds.finish, close_failed_jobs=True)
    assert [(r['status'], r.get('slurm_job_id')) for r in res] == [
        ('ok', job_id)]
    record = read_record(ds.repo, 'HEAD')
    assert (record.job_id, record.data['finished_inside_job']) == \
        (job_id, True)
    assert committed_files(ds) == ['out/r', f'slurm-{job_id}.out']
    assert git(ds, 'status', '--porcelain') == ''
    assert not list(state.ready(ds.repo.dot_git).iterdir())


def end_while_held(ds, go, job_id: int):
    """Let job `job_id`, which waits for the file `go`, end while another
    process holds the repository lock, then kill that process."""
    holder = hold_lock(ds.repo.dot_git)
    try:
        go.write_text('')
        wait_for_jobs(job_id)
    finally:
        holder.kill()
        holder.wait()


@any_backend
def test_announcement_outlives_a_killed_holder(ds):
    """The holder of the lock is killed while jobs announce themselves:
    nothing is lost; the next job that finishes itself commits them, and
    so would any datalad finish."""
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p "out/$1"
        echo "$SLURM_JOB_ID" > "out/$1/r"
        while [ "$2" ] && [ ! -e "$2" ]; do sleep 0.1; done
        datalad-slurm-done $?
        ''')
    ds.save(result_renderer='disabled')
    go = ds.pathobj / '.git' / 'go'
    first = only(call(ds.schedule, ['sbatch', 'jobs/self.sh', '0', str(go)],
                      outputs=['out/0']), 'schedule')['slurm_job_id']
    end_while_held(ds, go, first)
    assert [p.name for p in state.ready(ds.repo.dot_git).iterdir()] == [
        f'{first}-x.json']
    later = schedule_and_wait(ds, ['sbatch', 'jobs/self.sh', '1'],
                              outputs=['out/1'])['slurm_job_id']
    # where the later job's schedule let go of the lock with the first
    # job announced, the committer it started commits both, the later one
    # maybe just after it ended
    deadline = time.monotonic() + JOB_WAIT
    while True:
        finished = {r.job_id: r.data
                    for r in iter_records(ds.repo, 'HEAD')
                    if r.kind == 'FINISH'}
        if set(finished) == {first, later} and \
                not list(state.ready(ds.repo.dot_git).iterdir()) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(finished) == {first, later}
    assert finished[first]['finished_inside_job']
    assert git(ds, 'status', '--porcelain') == ''
    assert not list(state.ready(ds.repo.dot_git).iterdir())


@any_backend
def test_a_finish_from_outside_commits_what_was_announced(ds):
    """A job announced while its holder was killed: the next datalad
    finish commits it as finished inside the job, with its exit status."""
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p out
        echo "$SLURM_JOB_ID" > out/r
        while [ ! -e "$1" ]; do sleep 0.1; done
        datalad finish --exit-status 0 "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    go = ds.pathobj / '.git' / 'go'
    job_id = only(call(ds.schedule, ['sbatch', 'jobs/self.sh', str(go)],
                       outputs=['out']), 'schedule')['slurm_job_id']
    end_while_held(ds, go, job_id)
    res = call(ds.finish)
    assert [(r['status'], r.get('slurm_job_id')) for r in res] == [
        ('ok', job_id)]
    data = read_record(ds.repo, 'HEAD').data
    assert data['finished_inside_job'] and data['slurm_job_id'] == job_id
    assert git(ds, 'status', '--porcelain') == ''
    assert not list(state.ready(ds.repo.dot_git).iterdir())
