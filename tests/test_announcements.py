"""The announcements self-finishing jobs leave for the lock holder: each
state change, and what a holder that died leaves behind; and the light
entry point that writes them, ``datalad-slurm-done``.  No Slurm needed."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import hold_lock

from datalad_slurm.finish import handover
from datalad_slurm.finish.announcements import (
    STALE,
    Announcement,
    announce,
    announced_tasks,
    claim,
    forget_jobs,
    settle,
)
from datalad_slurm.finish.done import hand_in
from datalad_slurm.records.format import Record
from datalad_slurm.repo import (
    lock,
    state,
)
from datalad_slurm.repo.lock import (
    LockHeld,
    git_dir_lock,
)
from datalad_slurm.slurm.status import SlurmError


@pytest.fixture(autouse=True)
def no_committer(monkeypatch):
    """No committer started from the test process."""
    monkeypatch.setattr(lock, '_committing', 1)


@pytest.fixture
def git_dir(dataset):
    return dataset.repo.dot_git


def states(git_dir):
    return sorted(p.name for p in state.ready(git_dir).iterdir())


def test_claiming_takes_up_every_announcement_of_an_open_job(git_dir):
    announce(git_dir, 11, None, 0)
    announce(git_dir, 12, 3, 1)
    assert states(git_dir) == ['11-x.json', '12-3.json']
    assert state.announced(git_dir)
    claimed = claim(git_dir, {11, 12})
    assert [(a.job_id, a.task_id, a.exit_status) for a in claimed] == \
        [(11, None, 0), (12, 3, 1)]
    assert states(git_dir) == ['11-x.claimed', '12-3.claimed']
    assert not state.announced(git_dir)


def test_settle_forgets_the_committed_and_lets_the_rest_stand(git_dir):
    announce(git_dir, 11, None, None)
    announce(git_dir, 13, 0, None)
    settle(claim(git_dir, {11, 13}), {11})
    assert states(git_dir) == ['13-0.standing']
    # standing: taken up by the next holder, but none goes on for it
    assert not state.announced(git_dir)
    assert [a.name for a in claim(git_dir, {13})] == ['13-0']


def test_a_dead_holders_claims_are_taken_up_again(git_dir):
    announce(git_dir, 11, None, None)
    claim(git_dir, {11})
    # the holder died here: the next one finds the claimed file
    assert [a.job_id for a in claim(git_dir, {11})] == [11]


def test_closed_jobs_and_stale_files_are_forgotten(git_dir):
    announce(git_dir, 11, None, None)
    announce(git_dir, 12, None, None)
    # a done marker an older version left, long ago
    old = state.ready(git_dir) / '13-x.done'
    old.write_text('{}')
    past = time.time() - STALE - 1
    os.utime(old, (past, past))
    assert [a.job_id for a in claim(git_dir, {12})] == [12]
    assert states(git_dir) == ['12-x.claimed']


def test_a_finish_from_outside_forgets_its_jobs(git_dir):
    announce(git_dir, 11, None, None)
    announce(git_dir, 12, 0, None)
    announce(git_dir, 12, 1, None)
    forget_jobs(git_dir, {12})
    assert states(git_dir) == ['11-x.json']


def test_an_unreadable_announcement_is_set_aside(git_dir, caplog):
    state.ready(git_dir).mkdir(parents=True)
    (state.ready(git_dir) / '11-x.json').write_text('{"job_id": 1')
    assert claim(git_dir, {11}) == []
    assert states(git_dir) == ['11-x.unreadable']
    assert not state.announced(git_dir)
    assert 'unreadable announcement' in caplog.text


def test_announcement_is_written_whole(git_dir):
    ann = announce(git_dir, 11, 2, 7)
    assert json.loads(Path(ann.state_path('json')).read_text()) == {
        'job_id': 11, 'task_id': 2, 'exit_status': 7, 'pid': os.getpid(),
        'host': os.uname().nodename}
    announce(git_dir, 11, 3, None)
    settle(claim(git_dir, {11}), set())
    announce(git_dir, 12, None, 0)
    # every state tells the round what ended how
    assert announced_tasks(git_dir) == {11: [(2, 7), (3, None)],
                                        12: [(None, 0)]}


def test_a_round_that_cannot_ask_slurm_lets_them_stand(dataset,
                                                        monkeypatch):
    """Whatever breaks in a holder's round, the announcements stay for a
    later holder, and the round says why."""
    def broken(ds, records):
        raise SlurmError('sacct broke')
    monkeypatch.setattr(handover, 'query', broken)
    monkeypatch.setattr(handover.JobIndex, 'open_jobs', lambda self: [
        Record('SCHEDULE', {'slurm_job_id': 5})])
    announce(dataset.repo.dot_git, 5, None, 0)
    res = list(handover.commit_announced(
        dataset, dict(action='finish', ds=dataset), once=False))
    assert [r['status'] for r in res] == ['error']
    assert 'sacct broke' in res[0]['message'][0] % res[0]['message'][1:]
    assert states(dataset.repo.dot_git) == ['5-x.standing']


def test_one_try_of_the_lock_names_its_holder(git_dir):
    proc = hold_lock(git_dir)
    try:
        with pytest.raises(LockHeld, match=f'pid {proc.pid}'):
            with git_dir_lock(git_dir, 10, once=True):
                pass
    finally:
        proc.kill()
        proc.wait()
    with git_dir_lock(git_dir, 10, once=True):
        pass


# the script pip installs for datalad-slurm-done, run by this Python
DONE = shutil.which('datalad-slurm-done',
                    path=os.path.dirname(sys.executable))


def done_while_held(dataset, job_id: str, exit_status: str):
    """``datalad-slurm-done EXIT_STATUS`` in job `job_id`, with the lock
    held by another process, and Python's -X importtime: the run, and the
    holder's pid."""
    proc = hold_lock(dataset.repo.dot_git)
    try:
        return subprocess.run(
            [sys.executable, '-X', 'importtime', DONE, exit_status],
            cwd=dataset.path, env=dict(os.environ, SLURM_JOB_ID=job_id),
            capture_output=True, text=True), proc.pid
    finally:
        proc.kill()
        proc.wait()


def _imported(stderr: str) -> set[str]:
    return {line.split('|')[-1].strip() for line in stderr.splitlines()
            if line.startswith('import time:')}


def test_a_job_that_does_not_get_the_lock_announces_and_ends(dataset):
    """``datalad-slurm-done $?`` while another process holds the lock:
    one line for the log naming the holder, the announcement, exit 0, and
    nothing of DataLad imported."""
    done, holder = done_while_held(dataset, '4711', '3')
    assert done.returncode == 0
    imported = _imported(done.stderr)
    assert 'datalad_slurm.finish.announcements' in imported
    assert not [m for m in imported if m.split('.')[0] == 'datalad']
    said = [line for line in done.stderr.splitlines()
            if not line.startswith('import time:')]
    assert said == [
        f'datalad-slurm-done: job 4711: its work ended with exit status 3; '
        f'announced for its FINISH commit by the process holding the '
        f'repository lock (pid {holder}), or the next to hold it']
    assert announced_tasks(dataset.repo.dot_git) == {4711: [(None, 3)]}


def test_done_imports_little(dataset):
    """A job's own finish that does not get the lock costs little more
    than Python's start: beyond what the interpreter imports to run
    nothing, it imports the package's modules it runs and a few small
    ones, no pathlib, json, re, typing or threading (each costing it a
    tenth or more)."""
    done, _ = done_while_held(dataset, '4712', '0')
    bare = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'pass'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    beyond = _imported(done.stderr) - _imported(bare.stderr)
    assert {m for m in beyond if m.split('.')[0] != 'datalad_slurm'} <= \
        {'__future__', 'errno', 'fcntl', 'itertools'}
    assert announced_tasks(dataset.repo.dot_git) == {4712: [(None, 0)]}


def test_done_outside_a_job_or_with_odd_arguments_refuses(dataset):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('SLURM_')}
    for args, why in ((['0'], 'runs in no Slurm job'),
                      (['zero'], 'usage: datalad-slurm-done')):
        done = subprocess.run(
            [sys.executable, '-m', 'datalad_slurm.finish.done', *args],
            cwd=dataset.path, env=env, capture_output=True, text=True)
        assert done.returncode == 2 and why in done.stderr
    assert not state.ready(dataset.repo.dot_git).exists()


def test_the_holder_learns_it_holds_the_lock(git_dir):
    said = []
    held = hand_in(git_dir, (12, 1), None, said.append, lambda: None)
    assert held is not None
    with git_dir_lock(git_dir, 10, taken=held):
        other = subprocess.run(
            [sys.executable, '-c',
             'import sys\n'
             'from datalad_slurm.repo.lock import git_dir_lock\n'
             'with git_dir_lock(sys.argv[1], 10, once=True): pass\n',
             str(git_dir)], capture_output=True, text=True)
        assert other.returncode and 'LockHeld' in other.stderr
    assert said == ['datalad-slurm-done: job 12_1: its work ended; this '
                    'job holds the repository lock and commits it, with '
                    'every job announced meanwhile']
    assert states(git_dir) == ['12-1.json']
    # let go of with the block
    with git_dir_lock(git_dir, 10, once=True):
        pass


@pytest.mark.parametrize('host', ['node-01.cluster', None, 'odd"name',
                                  'back\\slash', 'tab\there', 'nœud'])
@pytest.mark.parametrize('task_id, exit_status', [(None, None), (3, 0),
                                                   (0, -1)])
def test_announcement_text_is_json(host, task_id, exit_status):
    """Written without the json module where the host name needs no
    escaping, and with it where it does: the same JSON either way."""
    ann = Announcement(12, task_id, exit_status, 345, '/x/12-x', host=host)
    assert json.loads(ann.text()) == ann.content()
    assert ann.text() == json.dumps(ann.content(), sort_keys=True).encode()
