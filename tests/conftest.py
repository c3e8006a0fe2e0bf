"""Fixtures of the test suite.

Tests that need the real local Slurm cluster (tools/slurm-up) ask for the
``slurm_cluster`` fixture, or for ``ds``, which needs it; they are marked
``cluster`` and fail, each, with a clear message where there is none.
The others (records, index, paths, parsers) run anywhere with plain
``pytest -m 'not cluster'``, without root.  A test of schedule, finish,
reschedule or pipelines that needs only a backend is marked
:data:`any_backend`: it runs once on the cluster and once in local mode,
and the local run belongs to that tier too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from datalad.api import (
    Dataset,
    create,
)

from datalad_slurm.backends import cli as slurm
from datalad_slurm.backends.local import ids
from datalad_slurm.backends.local.backend import LocalBackend
from datalad_slurm.records import journal
from datalad_slurm.repo import state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import held  # noqa: E402  (tools/held.py)

release = held.release

# what brings the local cluster up, and back to its settings
SLURM_UP = Path(__file__).parent.parent / 'tools' / 'slurm-up'

# Every test job ends within seconds on the local cluster.
JOB_WAIT = 120


@pytest.fixture(scope='session')
def slurm_cluster():
    """The local Slurm cluster; a test asking for it fails without one."""
    if not shutil.which('sbatch'):
        pytest.fail('no Slurm on PATH: run tools/slurm-up (tools/test does), '
                    "or run only the tests that need none: pytest -m 'not "
                    "cluster'", pytrace=False)
    try:
        slurm.call(['scontrol', 'ping'], timeout=30)
    except slurm.SlurmError as e:
        pytest.fail(f'Slurm does not answer ({e}): run tools/slurm-up',
                    pytrace=False)


def pytest_collection_modifyitems(items):
    for item in items:
        names = getattr(item, 'fixturenames', ())
        params = getattr(getattr(item, 'callspec', None), 'params', {})
        if 'slurm_cluster' in names or \
                ('ds' in names and params.get('ds') != 'local'):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(autouse=True)
def git_identity(monkeypatch):
    """Commits need an identity, whatever the machine's git config."""
    for role in ('AUTHOR', 'COMMITTER'):
        monkeypatch.setenv(f'GIT_{role}_NAME', 'datalad-slurm tests')
        monkeypatch.setenv(f'GIT_{role}_EMAIL', 'tests@example.com')


@pytest.fixture
def ds(request) -> Dataset:
    """:func:`dataset`, on the local Slurm cluster; for a test marked
    :data:`any_backend`, once there and once in local mode (:func:`lds`).
    """
    global _local_dataset
    if getattr(request, 'param', 'slurm') == 'slurm':
        request.getfixturevalue('slurm_cluster')
        yield request.getfixturevalue('dataset')
        return
    _local_dataset = request.getfixturevalue('lds')
    try:
        yield _local_dataset
    finally:
        _local_dataset = None


# a test of what any backend shows, run on the cluster and in local mode
any_backend = pytest.mark.parametrize('ds', ['slurm', 'local'],
                                      indirect=True)

# the dataset of the running test in local mode, whose state files tell
# :func:`wait_for_jobs` of its jobs
_local_dataset: Dataset | None = None


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    """A fresh annex dataset with a saved job script ``jobs/write.sh`` that
    writes ``$1`` (default: out/result.txt) and exits with ``$2`` (default
    0); no Slurm needed."""
    dataset = create(tmp_path / 'ds', result_renderer='disabled')
    write_script(dataset, 'jobs/write.sh', '''
        target=${1:-out/result.txt}
        mkdir -p "$(dirname "$target")"
        echo "job $SLURM_JOB_ID task ${SLURM_ARRAY_TASK_ID:-none}" > "$target"
        exit ${2:-0}
        ''')
    dataset.save(message='add job script', result_renderer='disabled')
    return dataset


SLURM_TOOLS = ('sbatch', 'sacct', 'squeue', 'scontrol', 'scancel', 'srun',
               'sinfo')


@pytest.fixture
def no_slurm(tmp_path, monkeypatch):
    """Slurm's tools on PATH that fail, noting each call in a file."""
    fake = tmp_path / 'fake-slurm'
    fake.mkdir()
    calls = tmp_path / 'slurm-calls'
    for tool in SLURM_TOOLS:
        script = fake / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n'
                          f'echo "{tool}: this test has no Slurm" >&2\n'
                          f'exit 1\n')
        script.chmod(0o755)
    monkeypatch.setenv('PATH', f'{fake}{os.pathsep}{os.environ["PATH"]}')
    yield
    assert not calls.exists(), f'Slurm was called: {calls.read_text()}'


@pytest.fixture
def lds(no_slurm, dataset):
    """:func:`dataset` in local mode; the jobs' processes that are left
    are ended after the test."""
    dataset.config.set('datalad.slurm.backend', 'local', scope='local')
    yield dataset
    # a farm job's tasks run in process groups of their own
    tasks = state.farm(dataset.repo.dot_git).glob('*/tasks/*.RUNNING')
    runners = state.local(dataset.repo.dot_git).glob('jobs/*/runner.json')
    for path in [*tasks, *runners]:
        try:
            pid = json.loads(path.read_text()).get('pid')
        except FileNotFoundError:
            continue  # the task ended meanwhile
        try:
            if pid:
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_script(ds: Dataset, relpath: str, body: str) -> Path:
    """Write an executable shell job script into the dataset (not saved)."""
    path = ds.pathobj / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\n' + textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


def call(method, *args, **kwargs) -> list[dict]:
    """Call a DataLad command quietly and return all its results."""
    return method(*args, result_renderer='disabled', on_failure='ignore',
                  return_type='list', **kwargs)


def only(results: list[dict], action: str | None = None) -> dict:
    """The single result (of `action`) in `results`."""
    picked = [r for r in results if action is None or r['action'] == action]
    assert len(picked) == 1, results
    return picked[0]


def message_text(res: dict) -> str:
    """A result's message as DataLad shows it: a string, or a format
    string with its arguments."""
    message = res['message']
    return message if isinstance(message, str) else \
        message[0] % tuple(message[1:])


def wait_for_jobs(*job_ids: int, timeout: float = JOB_WAIT):
    """Poll Slurm until the jobs have ended, as sacct reports it; local
    jobs (of :func:`bds`) as their state files do."""
    deadline = time.monotonic() + timeout
    local = [i for i in job_ids if ids.is_local(i)]
    others = [i for i in job_ids if not ids.is_local(i)]
    while True:
        statuses = slurm.query(others, timeout=30) if others else {}
        if local:
            statuses.update(
                LocalBackend(_local_dataset).query(local, timeout=30))
        if all(s.known and s.phase != 'running' for s in statuses.values()):
            return statuses
        assert time.monotonic() < deadline, \
            f'jobs did not end in {timeout} s: {statuses}'
        time.sleep(0.2)


def schedule_and_wait(ds: Dataset, cmd: list[str], **kwargs) -> dict:
    """Schedule a job, assert it was accepted, wait for it to end."""
    res = only(call(ds.schedule, cmd, **kwargs), 'schedule')
    assert res['status'] == 'ok', res
    wait_for_jobs(res['slurm_job_id'])
    return res


def schedule_from_subdirectory(ds: Dataset, monkeypatch, subdir: str,
                               output: str) -> dict:
    """Schedule jobs/write.sh writing `output` as a user working in
    `subdir` would (paths relative to it), and wait for it to end."""
    import datalad.api as api
    (ds.pathobj / subdir).mkdir(exist_ok=True)
    monkeypatch.chdir(ds.pathobj / subdir)
    res = only(call(api.schedule, ['sbatch', '../jobs/write.sh', output],
                    outputs=[output]), 'schedule')
    assert res['status'] == 'ok', res
    wait_for_jobs(res['slurm_job_id'])
    return res


def scancel(*job_ids: int):
    subprocess.run(['scancel', *map(str, job_ids)], check=True)


def git(ds: Dataset, *args: str) -> str:
    return subprocess.run(['git', *args], cwd=ds.path, check=True, text=True,
                          capture_output=True).stdout


def snapshot(ds: Dataset) -> tuple[str, str]:
    """HEAD and `git status`: what a refused command must leave alone."""
    return (git(ds, 'rev-parse', 'HEAD'),
            git(ds, 'status', '--porcelain', '--untracked-files=all'))


def unknown_submission(ds: Dataset, *options: str) -> journal.Entry:
    """A journaled submission of jobs/write.sh (sbatch `options` before
    it) whose sbatch gave no answer; :func:`sbatch_as_journaled` submits
    its job as that sbatch would have."""
    mark = uuid.uuid4().hex
    entry = journal.begin(
        ds.repo, 'SCHEDULE',
        {'cmd': 'sbatch jobs/write.sh', 'dsid': ds.id, 'pwd': '.',
         'inputs': [], 'extra_inputs': [], 'outputs': ['out'],
         'expand': None, 'chain': [], 'message': None,
         'submission': mark}, None,
        ['sbatch', f'--comment=datalad-slurm:{mark}', *options,
         'jobs/write.sh'], marked=True, writable=['out'])
    entry.unknown()
    return entry


def sbatch_as_journaled(ds: Dataset, entry: journal.Entry) -> int:
    return int(subprocess.run(
        ['sbatch', '--parsable', *entry.argv[1:]], cwd=ds.path, check=True,
        capture_output=True, text=True).stdout.strip())


def hold_lock(git_dir) -> subprocess.Popen:
    """Another process holding the repository lock (not a finish: it
    starts a committer on letting go), until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, '-c',
         'import sys, time\n'
         'from datalad_slurm.repo.lock import git_dir_lock\n'
         'with git_dir_lock(sys.argv[1], 10):\n'
         '    print("held", flush=True)\n'
         '    time.sleep(300)\n', str(git_dir)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == 'held\n'
    return proc

