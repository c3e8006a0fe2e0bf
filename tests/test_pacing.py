"""The pace of a dataset's Slurm queries (backends/pacing): slots taken
from one state file by every process, pushed back after slow answers."""

from __future__ import annotations

import pytest

from datalad_slurm.backends import (
    cli,
    pacing,
)
from datalad_slurm.repo import state
from datalad_slurm.slurm.status import SlurmTimeout


class Clock:
    """Time for the pacing module, which passes only as it sleeps, or as
    a query takes it; the seconds of each sleep are noted."""

    def __init__(self):
        self.now = 1e9
        self.waits = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(pacing.time, 'time', clock.time)
    monkeypatch.setattr(pacing.time, 'monotonic', clock.time)
    monkeypatch.setattr(pacing.time, 'sleep', clock.sleep)
    return clock


def query(git_dir, *, interval=0.0, timeout=60.0, fails=False, takes=0.0,
          clock=None):
    with pacing.paced(git_dir, interval=interval, timeout=timeout):
        if clock:
            clock.now += takes
        if fails:
            raise SlurmTimeout('squeue did not answer')


def test_slots_keep_the_interval(tmp_path, clock):
    query(tmp_path, interval=10)
    clock.now += 4
    query(tmp_path, interval=10)
    query(tmp_path, interval=10)
    assert clock.waits == [6, 10]
    # the slots are taken from the file, whatever process asks next
    assert state.pace(tmp_path).exists()


def test_no_interval_no_wait(tmp_path, clock):
    for _ in range(3):
        query(tmp_path)
    assert clock.waits == []


def test_back_off_after_a_timeout_grows_and_ends(tmp_path, clock):
    for _ in range(3):
        with pytest.raises(SlurmTimeout):
            query(tmp_path, fails=True)
    # the first query did not wait; then 5 s, 10 s
    assert clock.waits == [5, 10]
    query(tmp_path)
    assert clock.waits == [5, 10, 20]
    # answered quickly: no back-off any more
    query(tmp_path)
    assert len(clock.waits) == 3


def test_slow_answer_backs_off(tmp_path, clock):
    query(tmp_path, timeout=60, takes=10, clock=clock)
    query(tmp_path, timeout=60, takes=20, clock=clock)
    query(tmp_path, timeout=60, clock=clock)
    assert clock.waits == [pacing.FIRST_BACKOFF]


def test_unreadable_pace_file_starts_anew(tmp_path, clock):
    path = state.pace(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"next": 1e12')
    query(tmp_path)
    assert clock.waits == []


def test_socket_timeout_is_a_timeout():
    error = cli.failure(
        'squeue', 'squeue: error: slurm_receive_msg: Socket timed out on '
        'send/recv operation\n', 1)
    assert isinstance(error, SlurmTimeout)
    assert 'too busy' in str(error)
