"""The pyslurm backend maps Slurm's answers to the same job states as the
command-line backend, and is chosen only where it matches the cluster.

pyslurm only builds against a matching libslurm, which Debian's Slurm 22.05
has none of; a stand-in with pyslurm's documented attributes takes its
place here.
"""

import sys
from types import SimpleNamespace

import pytest

from datalad_slurm.slurm import (
    backends,
    cli,
    pyslurmdb,
)
from datalad_slurm.slurm.status import (
    JobStatus,
    SlurmError,
)


def pyslurm_job(job_id, state, exit_code=0, signal=0, array_id=0,
                task=None):
    return SimpleNamespace(
        id=job_id, array_id=array_id, array_task_id=task, state=state,
        exit_code=exit_code, exit_code_signal=signal,
        start_time=1700000000, end_time=1700000060, elapsed_time=60,
        nodelist='node1', stats=SimpleNamespace(max_resident_memory=2048))


def fake_pyslurm(version, jobs=()):
    def load(db_filter):
        return [j for j in jobs if (j.array_id or j.id) in db_filter.ids]
    return SimpleNamespace(
        __version__=version,
        db=SimpleNamespace(Jobs=SimpleNamespace(load=load),
                           JobFilter=lambda ids: SimpleNamespace(ids=ids)))


@pytest.mark.parametrize('state, exit_code, signal, phase', [
    ('COMPLETED', 0, 0, 'complete'),
    ('COMPLETED', 3, 0, 'failed'),
    ('FAILED', 3, 0, 'failed'),
    ('CANCELLED', 0, 15, 'failed'),
    ('TIMEOUT', 0, 0, 'failed'),
    ('OUT_OF_MEMORY', 0, 0, 'failed'),
    ('RUNNING', 0, 0, 'running'),
    ('PENDING', 0, 0, 'running'),
    ('REQUEUED', 0, 0, 'running'),
])
def test_states_map_alike(state, exit_code, signal, phase):
    task = pyslurmdb.task_from_pyslurm(
        pyslurm_job(5, state, exit_code, signal))
    status = JobStatus(5, tasks=[task])
    assert status.phase == phase
    # the CLI backend reads the same job from sacct's line
    from_cli = JobStatus(5)
    cli._merge_sacct(
        f'5|5|{state}|{exit_code}:{signal}|2023-11-14T22:13:20|'
        f'2023-11-14T22:14:20|00:01:00|node1|', {5: from_cli})
    assert from_cli.phase == phase
    assert (task.state, task.exit_code, task.start, task.end, task.elapsed,
            task.nodes) == (from_cli.tasks[0].state, from_cli.tasks[0].exit_code,
                            from_cli.tasks[0].start, from_cli.tasks[0].end,
                            from_cli.tasks[0].elapsed,
                            from_cli.tasks[0].nodes)


def test_array_tasks_map_alike():
    jobs = [pyslurm_job(100 + t, 'COMPLETED', array_id=100, task=t)
            for t in range(3)]
    backend = pyslurmdb.PyslurmBackend(fake_pyslurm('22.05.0', jobs))
    status = backend.query([100], timeout=10,
                           expected_tasks={100: [0, 1, 2]})[100]
    assert status.phase == 'complete'
    assert [t.task_id for t in status.tasks] == [0, 1, 2]
    assert status.tasks[0].max_rss == '2048K'
    assert status.describe() == '0-2:COMPLETED'


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
