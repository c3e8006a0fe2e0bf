"""The announcements self-finishing jobs leave for the lock holder: each
state change, and what a holder that died leaves behind; no Slurm needed."""

import json
import os
import socket
import time

import pytest

from datalad_slurm.finish import handover
from datalad_slurm.finish.announcements import (
    DONE_KEPT,
    announce,
    claim,
    forget_jobs,
    settle,
)
from datalad_slurm.records.format import Record
from datalad_slurm.repo import state


@pytest.fixture
def repo(dataset):
    return dataset.repo


def states(repo):
    return sorted(p.name for p in state.ready(repo.dot_git).iterdir())


def test_claimed_announcements_cannot_be_withdrawn(repo):
    mine = announce(repo, 11, None, 0)
    other = announce(repo, 12, 3, 1)
    assert states(repo) == ['11-x.json', '12-3.json']
    claimed = claim(repo, {11, 12})
    assert [(a.job_id, a.task_id, a.exit_status) for a in claimed] == \
        [(11, None, 0), (12, 3, 1)]
    assert states(repo) == ['11-x.claimed', '12-3.claimed']
    assert not mine.withdraw() and not other.withdraw()


def test_settle_tells_the_others_and_gives_back_the_rest(repo):
    mine = announce(repo, 11, None, None)
    other = announce(repo, 12, None, None)
    running = announce(repo, 13, 0, None)
    claimed = claim(repo, {11, 12, 13})
    settle(claimed, {11: 'a' * 40, 12: 'b' * 40}, mine)
    assert states(repo) == ['12-x.done', '13-0.json']
    assert mine.done() is None
    assert other.done() == {'commit': 'b' * 40, 'by': os.getpid(),
                            'jobs': 2}
    assert running.withdraw()
    assert states(repo) == ['12-x.done']


def test_a_dead_holders_claims_are_taken_up_again(repo):
    announce(repo, 11, None, None)
    claim(repo, {11})
    # the holder died here: the next one finds the claimed file
    assert [a.job_id for a in claim(repo, {11})] == [11]


def test_closed_jobs_and_old_done_markers_are_forgotten(repo):
    old = announce(repo, 13, None, None)
    mine = announce(repo, 99, None, None)
    settle(claim(repo, {13, 99}), {13: 'c' * 40}, mine)
    announce(repo, 11, None, None)
    announce(repo, 12, None, None)
    past = time.time() - DONE_KEPT - 1
    os.utime(old.state_path('done'), (past, past))
    assert [a.job_id for a in claim(repo, {12, 99})] == [12, 99]
    assert states(repo) == ['12-x.claimed', '99-x.claimed']


def test_a_finish_from_outside_forgets_its_jobs(repo):
    announce(repo, 11, None, None)
    announce(repo, 12, 0, None)
    announce(repo, 12, 1, None)
    forget_jobs(repo, {12})
    assert states(repo) == ['11-x.json']


def test_an_unreadable_announcement_is_left_alone(repo, caplog):
    state.ready(repo.dot_git).mkdir(parents=True)
    (state.ready(repo.dot_git) / '11-x.json').write_text('{"job_id": 1')
    assert claim(repo, {11}) == []
    assert states(repo) == ['11-x.json']
    assert 'unreadable announcement' in caplog.text


def test_announcement_is_written_whole(repo):
    ann = announce(repo, 11, 2, 7)
    assert json.loads(ann.state_path('json').read_text()) == {
        'job_id': 11, 'task_id': 2, 'exit_status': 7, 'pid': os.getpid(),
        'waiting': True, 'host': socket.gethostname()}


def test_a_task_that_left_gets_no_done_marker(repo):
    first = announce(repo, 11, 0, None)
    # its round found task 1 still running: it leaves, announced
    settle(claim(repo, {11}), {}, first)
    assert states(repo) == ['11-0.json']
    last = announce(repo, 11, 1, None)
    claimed = claim(repo, {11})
    assert [a.waiting for a in claimed] == [False, True]
    settle(claimed, {11: 'a' * 40}, last)
    assert states(repo) == []


def test_no_done_marker_for_an_announcer_that_died(repo):
    dead = announce(repo, 12, None, None)
    dead.pid = 2 ** 22 + 1  # beyond Linux's pid_max
    dead.state_path('json').write_text(json.dumps(dead.content()))
    mine = announce(repo, 11, None, None)
    settle(claim(repo, {11, 12}), {11: 'a' * 40, 12: 'b' * 40}, mine)
    assert states(repo) == []


def test_a_round_that_breaks_takes_the_announcement_back(dataset,
                                                         monkeypatch):
    """Whatever breaks in a holder's round, the job's own finish reports
    it, and leaves no announcement for a later holder to commit."""
    def broken(*args):
        raise RuntimeError('broken round')
        yield
    monkeypatch.setattr(handover, '_round', broken)
    record = Record(kind='SCHEDULE', commit='a' * 40, data={
        'slurm_job_id': 5, 'outputs': [], 'slurm_outputs': [],
        'slurm_output_patterns': []})
    res = list(handover.finish_inside(
        dataset, record, (5, None), None,
        dict(action='finish', ds=dataset)))
    assert [r['status'] for r in res] == ['error']
    assert 'broken round' in res[0]['message'][0] % res[0]['message'][1:]
    assert states(dataset.repo) == []
