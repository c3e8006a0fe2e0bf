"""Several compute nodes sharing one file system, as on a real cluster:
tools/slurm-up --nodes 3 runs each slurmd in a network namespace of its
own.  tools/test runs the tests marked ``nodes`` on such a cluster, after
the others."""

import subprocess

import pytest
from conftest import (
    call,
    git,
    only,
    release,
    wait_for_jobs,
    write_script,
)

from datalad_slurm.records import logfiles
from datalad_slurm.records.format import Record
from datalad_slurm.records.history import (
    iter_records,
    read_record,
)
from datalad_slurm.slurm.jobspec import expand_hostlist
from datalad_slurm.slurm.status import (
    JobStatus,
    TaskStatus,
)


@pytest.fixture(scope='module')
def nodes(slurm_cluster) -> list[str]:
    out = subprocess.run(['sinfo', '-h', '-N', '-o', '%N'], check=True,
                         capture_output=True, text=True).stdout
    names = sorted(set(out.split()))
    if len(names) < 2:
        pytest.fail(f'the cluster has one node ({names}): these tests need '
                    f'several, tools/slurm-up --nodes 3 (tools/test runs '
                    f'them so)', pytrace=False)
    return names


def schedule(ds, *argv: str, outputs: list[str]) -> int:
    res = only(call(ds.schedule, ['sbatch', *argv], outputs=outputs),
               'schedule')
    assert res['status'] == 'ok', res
    return res['slurm_job_id']


@pytest.mark.nodes
def test_jobs_on_all_nodes_finish_themselves_at_once(ds, nodes):
    write_script(ds, 'jobs/self.sh', '''
        mkdir -p "out/$1"
        echo "$SLURMD_NODENAME" > "out/$1/node"
        datalad finish "$SLURM_JOB_ID"
        ''')
    ds.save(result_renderer='disabled')
    # held, then released together: they end within the same second
    jobs = {schedule(ds, '--hold', f'--nodelist={node}', 'jobs/self.sh',
                     f'{node}-{k}', outputs=[f'out/{node}-{k}']): node
            for node in nodes for k in range(2)}
    release(jobs)
    wait_for_jobs(*jobs)
    finishes = [r for r in iter_records(ds.repo) if not r.is_schedule]
    assert sorted(r.job_id for r in finishes) == sorted(jobs)
    assert all(r.data.get('finished_inside_job') for r in finishes)
    for record in finishes:
        node = jobs[record.job_id]
        assert record.data['accounting']['nodes'] == node
        output, = record.data['outputs']
        assert (ds.pathobj / output / 'node').read_text() == f'{node}\n'
    assert git(ds, 'status', '--porcelain') == ''


@pytest.mark.nodes
def test_job_on_two_nodes_names_both(ds, nodes):
    (ds.pathobj / 'logs').mkdir()
    job_id = schedule(ds, '--nodes=2', '--ntasks=2',
                      '--output=logs/%N-%j.out', 'jobs/write.sh',
                      outputs=['out'])
    wait_for_jobs(job_id)
    res = only(call(ds.finish), 'finish')
    assert res['status'] == 'ok', res['message']
    record = read_record(ds.repo, 'HEAD')
    assert expand_hostlist(record.data['accounting']['nodes']) == nodes[:2]
    # %N: the first node, where the batch script ran
    log = f'logs/{nodes[0]}-{job_id}.out'
    assert record.data['slurm_outputs'] == [log]
    assert (ds.pathobj / log).exists()
    assert git(ds, 'status', '--porcelain') == ''


def test_node_in_log_name_is_the_first_of_the_job():
    record = Record('SCHEDULE', {'slurm_job_id': 7, 'slurm_outputs': [],
                                 'slurm_output_patterns': ['logs/%N-%j']})
    job = JobStatus(7, tasks=[TaskStatus(None, 'COMPLETED', 0,
                                         raw_job_id=7, nodes='node[2-3]')])
    assert logfiles.resolved(record, job) == ['logs/node2-7']
