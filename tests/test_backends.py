"""The pyslurm backend maps Slurm's answers to the same runs and job states
as the command-line backend, and is chosen only where it matches the
cluster.

The mapping is checked against what a real pyslurm 22.5.3 (built from its
repository's tag for Slurm 22.05, which is not on PyPI) and sacct said of
the same real jobs (tests/data/pyslurm-22.05.json); the tests run without
pyslurm.
"""

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from datalad_slurm import backends
from datalad_slurm.backends import (
    cli,
    pyslurmdb,
)
from datalad_slurm.slurm import parse
from datalad_slurm.slurm.status import (
    Expected,
    SlurmError,
    SlurmTimeout,
)

CAPTURED = json.loads(
    (Path(__file__).parent / 'data' / 'pyslurm-22.05.json').read_text())


def as_pyslurm(record: dict):
    """A captured record with the attribute access of a pyslurm.db.Job."""
    job = SimpleNamespace(**{k: v for k, v in record.items() if k != 'steps'})
    job.steps = {name: SimpleNamespace(stats=SimpleNamespace(**step['stats']))
                 for name, step in record['steps'].items()}
    return job


def fake_pyslurm(version, records=()):
    jobs = [as_pyslurm(r) for r in records]

    def load(db_filter):
        return {j.id: j for j in jobs if (j.array_id or j.id) in db_filter.ids}
    return SimpleNamespace(
        __version__=version,
        db=SimpleNamespace(Jobs=SimpleNamespace(load=load),
                           JobFilter=lambda ids: SimpleNamespace(ids=ids)))


@pytest.fixture
def utc(monkeypatch):
    # sacct printed the captured times in the cluster's zone, UTC
    monkeypatch.setenv('TZ', 'UTC')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


COMPARED = ('state', 'exit_code', 'raw_job_id', 'submit', 'start', 'end',
            'elapsed', 'nodes', 'max_rss', 'max_vmsize', 'req_mem', 'reason',
            'workdir', 'cluster')


@pytest.mark.parametrize('captured', CAPTURED['jobs'],
                         ids=[j['scenario'] for j in CAPTURED['jobs']])
def test_pyslurm_and_sacct_agree(captured, utc):
    """Both backends read the same jobs alike, run by run."""
    from_pyslurm = {run.task_id: run for record in captured['pyslurm']
                    for run in pyslurmdb.runs_of(as_pyslurm(record))}
    # the capture asked sacct for one more field (Comment)
    sacct = '\n'.join(line.rsplit('|', 1)[0] for line in captured['sacct'])
    from_sacct = {task: runs[-1] for (_, task), runs
                  in parse.parse_sacct(sacct).items()}
    assert from_pyslurm.keys() == from_sacct.keys()
    for task, run in from_sacct.items():
        theirs = from_pyslurm[task]
        assert {f: getattr(theirs, f) for f in COMPARED} == \
            {f: getattr(run, f) for f in COMPARED}, task
        if run.nodes:
            # pyslurm counts no CPUs for a job that never ran
            assert theirs.alloc_cpus == run.alloc_cpus


def test_array_task_zero_is_kept(utc):
    """pyslurm reads task id 0 as unset; the job is not running for ever
    once slurmctld has forgotten it."""
    captured = next(j for j in CAPTURED['jobs']
                    if j['scenario'] == 'd_array_0-2')
    backend = pyslurmdb.PyslurmBackend(
        fake_pyslurm('22.5.3', captured['pyslurm']))
    status = backend.query([519], timeout=10,
                           expected={519: Expected(tasks=[0, 1, 2])})[519]
    assert [t.task_id for t in status.tasks] == [0, 1, 2]
    assert status.phase == 'complete'
    assert status.describe() == '0-2:COMPLETED'


def test_pyslurm_errors_are_slurm_errors():
    def load(db_filter):
        raise RuntimeError('Failed to get Jobs from slurmdbd')
    broken = SimpleNamespace(__version__='22.5.3', db=SimpleNamespace(
        Jobs=SimpleNamespace(load=load),
        JobFilter=lambda ids: SimpleNamespace(ids=ids)))
    with pytest.raises(SlurmError, match='Failed to get Jobs'):
        pyslurmdb.PyslurmBackend(broken).query([1], timeout=10)


def test_pyslurm_obeys_the_query_timeout():
    def load(db_filter):
        time.sleep(5)
    slow = SimpleNamespace(__version__='22.5.3', db=SimpleNamespace(
        Jobs=SimpleNamespace(load=load),
        JobFilter=lambda ids: SimpleNamespace(ids=ids)))
    started = time.monotonic()
    with pytest.raises(SlurmTimeout):
        pyslurmdb.PyslurmBackend(slow).query([1], timeout=0.5)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize('seconds, elapsed', [
    (None, '00:00:00'), (0, '00:00:00'), (59, '00:00:59'),
    (93784, '1-02:03:04')])
def test_pyslurm_elapsed_as_sacct_prints_it(seconds, elapsed):
    assert pyslurmdb._duration(seconds) == elapsed


@pytest.fixture
def with_pyslurm(monkeypatch):
    def install(version):
        monkeypatch.setitem(sys.modules, 'pyslurm', fake_pyslurm(version))
    return install


def _ours():
    return cli.version(30).version


def test_auto_picks_matching_pyslurm(ds, with_pyslurm):
    major, minor = _ours()[:2]
    with_pyslurm(f'{major}.{minor}.0')
    ds.config.set('datalad.slurm.backend', 'auto', scope='local')
    assert backends.select(ds).name == 'pyslurm'


def test_auto_falls_back_to_cli(ds, with_pyslurm, monkeypatch):
    ds.config.set('datalad.slurm.backend', 'auto', scope='local')
    with_pyslurm('99.11.0')
    assert backends.select(ds).name == 'cli'
    monkeypatch.setitem(sys.modules, 'pyslurm', None)  # import fails
    assert backends.select(ds).name == 'cli'


def test_explicit_pyslurm_must_match(ds, with_pyslurm):
    ds.config.set('datalad.slurm.backend', 'pyslurm', scope='local')
    with_pyslurm('99.11.0')
    with pytest.raises(SlurmError, match='another Slurm'):
        backends.select(ds)


def test_cli_is_the_default(ds, with_pyslurm):
    major, minor = _ours()[:2]
    with_pyslurm(f'{major}.{minor}.0')
    assert backends.select(ds).name == 'cli'


def test_explicit_pyslurm_failure_is_a_result(ds, monkeypatch):
    """finish reports an unusable backend instead of crashing."""
    monkeypatch.setitem(sys.modules, 'pyslurm', None)
    ds.config.set('datalad.slurm.backend', 'pyslurm', scope='local')
    res = ds.schedule(['sbatch', '--hold', 'jobs/write.sh'], outputs=['o'],
                      result_renderer='disabled', return_type='item-or-list')
    try:
        out = ds.finish(result_renderer='disabled', on_failure='ignore',
                        return_type='list')
        assert [r['status'] for r in out] == ['error']
        assert 'pyslurm' in out[0]['message'][1]
    finally:
        cli.call(['scancel', str(res['slurm_job_id'])], timeout=30)


def test_too_old_slurm_is_named(ds, monkeypatch):
    from looseversion import LooseVersion
    monkeypatch.setattr(cli, 'version', lambda timeout: LooseVersion(
        '19.05.3'))
    res = ds.schedule(['sbatch', 'jobs/write.sh'], outputs=['o'],
                      result_renderer='disabled', on_failure='ignore',
                      return_type='item-or-list')
    assert res['status'] == 'error'
    assert 'Slurm 19.05.3 is too old' in res['message']
    assert cli.MINIMUM_VERSION in res['message']
