"""Failure paths on the real cluster: nothing recorded wrong, nothing lost
silently, no crash on ordinary settings."""

import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
from conftest import (
    call,
    git,
    message_text,
    only,
    sbatch_as_journaled,
    scancel,
    schedule_and_wait,
    snapshot,
    unknown_submission,
    wait_for_jobs,
    write_script,
)

from datalad_slurm import (
    backends,
    config,
)
from datalad_slurm.backends import cli
from datalad_slurm.records import journal
from datalad_slurm.records.format import (
    compose_message,
    schedule_title,
)
from datalad_slurm.records.history import read_record
from datalad_slurm.repo import state
from datalad_slurm.repo.commit import commit_empty
from datalad_slurm.repo.lock import (
    LockTimeout,
    repository_lock,
)
from datalad_slurm.submit import complete as recording

SLURMCTLD_PID = '/run/datalad-slurm-cluster/slurmctld.pid'


def branch(ds) -> str:
    return git(ds, 'rev-parse', '--abbrev-ref', 'HEAD').strip()


# -- configuration ----------------------------------------------------------

@pytest.mark.parametrize('item, far, near', [
    (config.LOCK_TIMEOUT, '100', '50'),
    (config.QUERY_TIMEOUT, '100', '50'),
    (config.BACKEND, 'auto', 'cli'),
])
def test_item_in_two_scopes_nearest_wins(ds, tmp_path, monkeypatch, item,
                                          far, near):
    """A site's global default and a dataset's own value: no crash, the
    dataset's wins, and `datalad -c` beats both."""
    monkeypatch.setenv('HOME', str(tmp_path))
    subprocess.run(['git', 'config', '--global', item, far], check=True)
    ds.config.set(item, near, scope='local')
    ds.config.reload(force=True)
    assert str(config.get(ds, item)).rstrip('.0') == near.rstrip('.0')
    assert only(call(ds.finish, list_open_jobs=True))['status'] == \
        'notneeded'
    out = subprocess.run(
        ['datalad', '-c', f'{item}={near}', 'finish', '--list-open-jobs'],
        cwd=ds.path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'Traceback' not in out.stderr


def test_unusable_setting_is_refused(ds):
    ds.config.set(config.LOCK_TIMEOUT, 'soon', scope='local')
    before = snapshot(ds)
    res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                    outputs=['out']))
    assert res['status'] == 'impossible'
    assert 'datalad.slurm.lock-timeout' in res['message']
    assert only(call(ds.finish))['status'] == 'impossible'
    assert snapshot(ds) == before


# -- bad input --------------------------------------------------------------

def test_unbalanced_quote_is_impossible(ds):
    before = snapshot(ds)
    res = only(call(ds.schedule, "sbatch 'jobs/write.sh", outputs=['o']))
    assert res['status'] == 'impossible'
    assert 'quotes' in res['message']
    assert snapshot(ds) == before


def test_contradictory_options_are_refused(ds):
    schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'], outputs=['out'])
    before = snapshot(ds)
    res = only(call(ds.finish, list_open_jobs=True, close_failed_jobs=True))
    assert res['status'] == 'impossible'
    res = only(call(ds.reschedule, 'HEAD', since=''))
    assert res['status'] == 'impossible'
    assert '--since' in res['message'][0]
    res = only(call(ds.finish, exit_status=0))
    assert res['status'] == 'impossible'
    assert snapshot(ds) == before


def test_input_that_cannot_be_got_is_reported_by_schedule(ds):
    before = snapshot(ds)
    res = call(ds.schedule, ['sbatch', 'jobs/write.sh'],
               inputs=['no/such/input'], outputs=['out'])
    failed = [r for r in res if r['status'] in ('impossible', 'error')]
    assert failed and all(r['action'] == 'schedule' for r in failed), res
    assert snapshot(ds) == before


# -- committing -------------------------------------------------------------

def test_failing_annex_add_closes_no_job(ds):
    """git-annex failing as a whole gives no per-file records: every path
    counts as failed, and the job stays open."""
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'],
                                  outputs=['out'])
    ds.config.set('annex.largefiles', 'largerthan=nonsense', scope='local')
    head = git(ds, 'rev-parse', 'HEAD')
    res = call(ds.finish)
    assert {r['status'] for r in res} == {'error'}, res
    assert all(r['slurm_job_id'] == scheduled['slurm_job_id'] for r in res)
    assert 'annex' in res[0]['message']
    assert git(ds, 'rev-parse', 'HEAD') == head
    ds.config.unset('annex.largefiles', scope='local')
    res = only(call(ds.finish), 'finish')
    assert (res['status'], res['slurm_job_id']) == \
        ('ok', scheduled['slurm_job_id'])


def test_branch_that_cannot_move_reports_nothing_ok(ds):
    """Results come once the branch has moved: when it cannot, no job is
    reported ok, and all stay open."""
    for i in range(2):
        schedule_and_wait(ds, ['sbatch', 'jobs/write.sh', f'o{i}/r'],
                          outputs=[f'o{i}'])
    lock = ds.pathobj / '.git' / 'refs' / 'heads' / f'{branch(ds)}.lock'
    lock.write_text('')
    try:
        head = git(ds, 'rev-parse', 'HEAD')
        res = [r for r in call(ds.finish) if r['action'] == 'finish']
        assert [r['status'] for r in res] == ['error', 'error'], res
        assert git(ds, 'rev-parse', 'HEAD') == head
    finally:
        lock.unlink()
    res = [r for r in call(ds.finish) if r['action'] == 'finish']
    assert [r['status'] for r in res] == ['ok', 'ok']


def test_self_finish_failure_reaches_the_job_log(ds):
    """A job whose own finish fails says so in its log, which finish had
    silenced to save it."""
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p out
        echo done > out/r
        while [ ! -e go ]; do sleep 0.2; done
        datalad finish "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    res = only(call(ds.schedule, ['sbatch', 'jobs/self.sh'],
                    outputs=['out']), 'schedule')
    lock = ds.pathobj / '.git' / 'refs' / 'heads' / f'{branch(ds)}.lock'
    lock.write_text('')
    try:
        (ds.pathobj / 'go').write_text('')
        wait_for_jobs(res['slurm_job_id'])
    finally:
        lock.unlink()
        (ds.pathobj / 'go').unlink()
    log = (ds.pathobj / f'slurm-{res["slurm_job_id"]}.out').read_text()
    assert 'could not finish job' in log, log


def test_self_finish_records_what_slurm_said(ds):
    """The FINISH record of a job finishing itself keeps Slurm's running
    state, and the exit status the script passed."""
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p out
        echo done > out/r
        datalad finish --exit-status $? "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    res = only(call(ds.schedule, ['sbatch', 'jobs/self.sh'],
                    outputs=['out']), 'schedule')
    wait_for_jobs(res['slurm_job_id'])
    record = read_record(ds.repo, 'HEAD')
    assert record.kind == 'FINISH', git(ds, 'log', '--oneline')
    assert record.data['state'] in ('RUNNING', 'COMPLETING')
    assert record.data['finished_inside_job'] is True
    assert record.data['inside_job_exit'] == 0
    assert git(ds, 'log', '-1', '--format=%s').endswith(': Complete\n')
    # a job that finished itself well counts as complete
    report = only(call(ds.reschedule, report=True))
    assert report['status'] == 'ok'


def test_self_finish_with_failed_work_is_not_complete(ds):
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p out
        false
        datalad finish --exit-status $? "$SLURM_JOB_ID"
        exit 0
        ''')
    ds.save(result_renderer='disabled')
    res = only(call(ds.schedule, ['sbatch', 'jobs/self.sh'],
                    outputs=['out']), 'schedule')
    wait_for_jobs(res['slurm_job_id'])
    log = (ds.pathobj / f'slurm-{res["slurm_job_id"]}.out').read_text()
    assert 'ended unsuccessfully' in log, log
    assert read_record(ds.repo, 'HEAD').kind == 'SCHEDULE'


# -- the wrong job ----------------------------------------------------------

def test_another_job_of_the_same_id_is_not_taken(ds, tmp_path):
    """A record made after a job of the same id ended, from another
    directory: that job's run is not this one's, so it is lost."""
    scheduled = schedule_and_wait(ds, ['sbatch', 'jobs/write.sh'],
                                  outputs=['out'])
    job_id = scheduled['slurm_job_id']
    record = dict(read_record(ds.repo, scheduled['commit']).data,
                  outputs=['other'], slurm_workdir=str(tmp_path / 'else'),
                  slurm_submit_time='2099-01-01T00:00:00',
                  submission='another')
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    commit_empty(ds.repo, compose_message('SCHEDULE', schedule_title(job_id),
                                          record))
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'error'
    assert 'knows no job' in res['message'][0]


# -- the journal ------------------------------------------------------------

def test_schedule_without_slurmctld_changes_nothing(ds, monkeypatch):
    """What the site allows cannot be asked: an error before anything
    is unlocked, journaled or submitted."""
    monkeypatch.setattr(cli, '_site', None)
    ds.config.set(config.QUERY_TIMEOUT, '2', scope='local')
    before = snapshot(ds)
    pid = int(open(SLURMCTLD_PID).read())
    os.kill(pid, signal.SIGSTOP)
    try:
        res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                        outputs=['out']), 'schedule')
    finally:
        os.kill(pid, signal.SIGCONT)
    assert res['status'] == 'error', res
    assert 'scontrol did not answer' in message_text(res)
    assert snapshot(ds) == before
    assert not journal.orphans(ds.repo)


def test_sbatch_timeout_is_unknown_not_refused(ds):
    """sbatch that gives no answer (slurmctld stopped) may still have
    submitted the job: the outputs stay writable, the entry is kept, and a
    later command records the job if Slurm has it."""
    ds.config.set(config.QUERY_TIMEOUT, '2', scope='local')
    # what the site allows is read once a process, before slurmctld stops
    backends.submitter(ds).site(30)
    pid = int(open(SLURMCTLD_PID).read())
    os.kill(pid, signal.SIGSTOP)
    try:
        res = call(ds.schedule, ['sbatch', 'jobs/write.sh'],
                   outputs=['out'])
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [r['status'] for r in res] == ['error'], res
    assert 'looks for it again' in res[0]['message'][0]
    assert git(ds, 'log', '-1', '--format=%s') == 'add job script\n'
    entry, = journal.orphans(ds.repo)
    assert entry.state == journal.UNKNOWN
    ds.config.set(config.QUERY_TIMEOUT, '30', scope='local')
    # whether slurmctld took the job depends on how far sbatch had got
    time.sleep(3)
    taken = f'datalad-slurm:{entry.mark}' in subprocess.run(
        ['squeue', '-h', '--states=all', '-O', 'Comment:0'],
        capture_output=True, text=True).stdout
    res = call(ds.finish)
    recovered = [r for r in res if 'recovered' in str(r.get('message'))]
    if taken:
        assert len(recovered) == 1, res
        assert not journal.orphans(ds.repo)
        scancel(read_record(ds.repo, recovered[0]['commit']).job_id)
    else:
        assert not recovered
        assert [e.state for e in journal.orphans(ds.repo)] == \
            [journal.UNKNOWN]


def test_unknown_submission_is_found_by_its_mark(ds):
    """Slurm accepted a job whose sbatch answer never came: recovery asks
    Slurm for the submission's mark, and records the job once."""
    entry = unknown_submission(ds, '--hold')
    job_id = sbatch_as_journaled(ds, entry)
    try:
        recovered = [r for r in call(ds.finish) if r.get('commit')]
        assert [r['slurm_job_id'] for r in recovered] == [job_id]
        assert not journal.orphans(ds.repo)
        record = read_record(ds.repo, recovered[0]['commit'])
        assert record.data['submission'] == entry.mark
        assert only(call(ds.finish, list_open_jobs=True))['slurm_job_id'] \
            == job_id
    finally:
        scancel(job_id)


def test_unreadable_entry_is_kept_and_others_recovered(ds):
    directory = state.journal(ds.repo.dot_git)
    directory.mkdir(parents=True)
    unreadable = directory / 'submission-broken.json'
    unreadable.mkdir()
    res = call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
               outputs=['out'])
    assert sorted(r['status'] for r in res) == ['error', 'ok'], res
    res = next(r for r in res if r['status'] == 'ok')
    try:
        # reported by the next commands, and left in place
        assert unreadable.exists()
        errors = [r for r in call(ds.finish) if r['status'] == 'error']
        assert any('cannot read' in r['message'][0] for r in errors), errors
        assert unreadable.exists()
    finally:
        scancel(res['slurm_job_id'])


def test_interrupted_write_is_settled(ds):
    """Killed between writing the job id and renaming it into place: the
    complete temporary file wins over the entry it was to replace."""
    res = only(call(ds.schedule, ['sbatch', '--hold', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    try:
        recorded = read_record(ds.repo, res['commit']).data
        # as if the commit had not been made: drop it
        git(ds, 'reset', '--hard', '-q', 'HEAD~1')
        entry = journal.begin(ds.repo, 'SCHEDULE',
                              {k: v for k, v in recorded.items()
                               if k != 'slurm_job_id'}, None,
                              ['sbatch', 'jobs/write.sh'], marked=True,
                              writable=['out'])
        content = json.loads(entry.path.read_text())
        content['data']['slurm_job_id'] = res['slurm_job_id']
        content['state'] = journal.SUBMITTED
        entry.path.with_suffix('.tmp').write_text(json.dumps(content))
        recovered = [r for r in call(ds.finish) if r.get('commit')]
        assert len(recovered) == 1
        assert read_record(ds.repo, recovered[0]['commit']).job_id == \
            res['slurm_job_id']
        assert not list(state.journal(ds.repo.dot_git).iterdir())
    finally:
        scancel(res['slurm_job_id'])


def with_unlocked_output(dataset) -> tuple[str, str]:
    """An annexed, locked output out/r; the snapshot of the dataset with
    it."""
    (dataset.pathobj / 'out').mkdir()
    (dataset.pathobj / 'out' / 'r').write_text('earlier result\n')
    dataset.save(message='a result', result_renderer='disabled')
    return snapshot(dataset)


def orphan(dataset, **kwargs) -> journal.Entry:
    mark = uuid.uuid4().hex
    return journal.begin(
        dataset.repo, 'SCHEDULE',
        {'cmd': 'sbatch jobs/write.sh', 'pwd': '.', 'outputs': ['out'],
         'submission': mark}, None,
        ['sbatch', f'--comment=datalad-slurm:{mark}', 'jobs/write.sh'],
        marked=True, writable=['out'], **kwargs)


def test_killed_before_sbatch_is_undone(dataset):
    """Killed after making its outputs writable, before sbatch ran:
    nothing was submitted, and the outputs are put back."""
    before = with_unlocked_output(dataset)
    orphan(dataset)
    call(dataset.unlock, 'out/r')
    assert snapshot(dataset) != before
    res = call(dataset.finish)
    recovered = [r for r in res if 'before sbatch ran' in r['message'][0]]
    assert [r['status'] for r in recovered] == ['notneeded'], res
    assert snapshot(dataset) == before
    assert not journal.has_entries(dataset.repo)


def test_undoing_keeps_what_was_changed_before(dataset):
    """With --explicit, an output may have differed from HEAD before the
    submission: that change is the user's, and stays."""
    with_unlocked_output(dataset)
    call(dataset.unlock, 'out/r')
    (dataset.pathobj / 'out' / 'r').write_text('edited\n')
    orphan(dataset, changed_before=['out/r'])
    call(dataset.finish)
    assert (dataset.pathobj / 'out' / 'r').read_text() == 'edited\n'
    assert not journal.has_entries(dataset.repo)


def test_submission_slurm_never_had_is_undone(ds, monkeypatch):
    """sbatch gave no answer, and Slurm has no job of it long after: the
    entry is set aside, and the outputs are put back."""
    before = with_unlocked_output(ds)
    entry = orphan(ds)
    call(ds.unlock, 'out/r')
    entry.submitting()
    monkeypatch.setattr(recording, 'SUBMISSION_WINDOW', 0)
    errors = [r for r in call(ds.finish) if r['status'] == 'error']
    assert len(errors) == 1
    assert 'most likely never accepted' in errors[0]['message'][0]
    assert snapshot(ds) == before
    assert (entry.path.parent / 'unresolved' / entry.path.name).exists()


def test_killed_during_sbatch_without_a_job_is_undone(ds, monkeypatch):
    """Killed while sbatch ran, and sbatch has ended since without Slurm
    having the job: nothing was submitted.  While an sbatch with the
    submission's mark still runs, the entry waits."""
    before = with_unlocked_output(ds)
    entry = orphan(ds)
    call(ds.unlock, 'out/r')
    entry.submitting()
    monkeypatch.setattr(recording, 'SETTLE', 0)
    still_sending = subprocess.Popen(
        ['sh', '-c', 'sleep 60', 'sbatch', entry.argv[1]])
    try:
        errors = [r for r in call(ds.finish) if r['status'] == 'error']
        assert 'knows no job of it yet' in errors[0]['message'][0]
        assert journal.has_entries(ds.repo)
    finally:
        still_sending.kill()
        still_sending.wait()
    res = [r for r in call(ds.finish) if 'sbatch ran' in r['message'][0]]
    assert [r['status'] for r in res] == ['notneeded'], res
    assert snapshot(ds) == before
    assert not journal.has_entries(ds.repo)


# -- the lock ---------------------------------------------------------------

def test_lock_keeps_one_deadline(ds):
    """Waiting for the lock and then for git's index lock share one
    timeout."""
    index_lock = ds.pathobj / '.git' / 'index.lock'
    holding = threading.Event()

    def hold():
        with repository_lock(ds.repo, 10):
            holding.set()
            time.sleep(0.7)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    index_lock.write_text('')
    timer = threading.Timer(1.6, index_lock.unlink)
    timer.start()
    try:
        with pytest.raises(LockTimeout):
            with repository_lock(ds.repo, 1):
                pass
    finally:
        holder.join()
        timer.join()
