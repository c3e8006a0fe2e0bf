"""Several clusters behind one login node: a job sent to another cluster
(sbatch -M) is recorded with it and asked about there. On the local setup
with a second real cluster (tools/slurm-up --clusters 2), sharing
slurmdbd."""

from __future__ import annotations

import subprocess

import pytest
from conftest import (
    SLURM_UP,
    any_backend,
    call,
    message_text,
    only,
    snapshot,
    write_script,
)

from datalad_slurm.records.history import read_record
from datalad_slurm.submit.clusters import (
    cluster_option,
    cluster_problem,
)

OTHER = 'localcluster2'


@pytest.fixture(scope='module')
def two_clusters():
    subprocess.run([str(SLURM_UP), '--clusters', '2'], check=True,
                   capture_output=True)
    try:
        yield OTHER
    finally:
        subprocess.run([str(SLURM_UP)], check=True, capture_output=True)


def finished(ds) -> dict[int, dict]:
    """finish --wait's results, by job id."""
    results = call(ds.finish, wait=True, wait_timeout=120)
    return {r['slurm_job_id']: r for r in results if r['action'] == 'finish'}


def test_a_job_on_another_cluster_is_followed_there(ds, two_clusters):
    here = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'here/r'],
                     outputs=['here']), 'schedule')
    there = only(call(ds.schedule, ['sbatch', '-M', OTHER, 'jobs/write.sh',
                                    'there/r'],
                      outputs=['there']), 'schedule')
    assert there['status'] == 'ok', there
    record = read_record(ds.repo, there['commit']).data
    assert record['slurm_cluster'] == OTHER
    assert record['slurm_cluster_option'] == OTHER
    done = finished(ds)
    assert {i: r['status'] for i, r in done.items()} == {
        here['slurm_job_id']: 'ok', there['slurm_job_id']: 'ok'}, done
    record = read_record(ds.repo, done[there['slurm_job_id']]['commit'])
    assert record.data['state'] == 'COMPLETED'
    assert record.data['accounting']['nodes'].endswith('-c2')
    assert (ds.pathobj / 'there' / 'r').exists()


def test_the_cluster_of_the_job_script(ds, two_clusters):
    write_script(ds, 'jobs/there.sh', f'''
        #SBATCH --clusters={OTHER}
        mkdir -p out && echo "$SLURM_CLUSTER_NAME" > out/r
        ''')
    ds.save(message='a job for the other cluster', result_renderer='disabled')
    res = only(call(ds.schedule, ['sbatch', 'jobs/there.sh'],
                    outputs=['out']), 'schedule')
    assert res['status'] == 'ok', res
    assert read_record(ds.repo, res['commit']).data['slurm_cluster'] == OTHER
    assert finished(ds)[res['slurm_job_id']]['status'] == 'ok'
    assert (ds.pathobj / 'out' / 'r').read_text() == f'{OTHER}\n'


def test_a_dependency_on_a_job_of_another_cluster_is_refused(
        ds, two_clusters):
    first = only(call(ds.schedule, ['sbatch', '-M', OTHER, '--hold',
                                    'jobs/write.sh', 'mid/r'],
                      outputs=['mid']), 'schedule')
    assert first['status'] == 'ok', first
    try:
        before = snapshot(ds)
        res = only(call(ds.schedule, ['sbatch', 'jobs/write.sh', 'end/r'],
                        inputs=['mid'], outputs=['end']), 'schedule')
        assert res['status'] == 'impossible', res
        assert 'cannot make a job wait for one on another cluster' in \
            message_text(res)
        assert snapshot(ds) == before
        # on the same cluster, Slurm keeps the order
        res = only(call(ds.schedule, ['sbatch', '-M', OTHER,
                                      'jobs/write.sh', 'end/r'],
                        inputs=['mid'], outputs=['end']), 'schedule')
        assert res['status'] == 'ok', res
        assert read_record(ds.repo, res['commit']).data['depends_on'] == \
            [first['commit']]
    finally:
        subprocess.run(['scancel', '-M', OTHER, '-u', 'root'])


@any_backend
def test_several_clusters_for_one_job_are_refused(ds):
    before = snapshot(ds)
    res = only(call(ds.schedule, ['sbatch', f'--clusters=localcluster,'
                                  f'{OTHER}', 'jobs/write.sh'],
                    outputs=['out']), 'schedule')
    assert res['status'] == 'impossible', res
    assert 'name one cluster' in message_text(res)
    assert snapshot(ds) == before


@pytest.mark.parametrize('argv, lines, environ, cluster', [
    (['sbatch', 'job.sh'], None, {}, None),
    (['sbatch', '-M', 'c2', 'job.sh'], None, {}, 'c2'),
    (['sbatch', '--clusters=c2', 'job.sh'], ['#!/bin/sh', '#SBATCH -M c3'],
     {}, 'c2'),
    (['sbatch', 'job.sh'], ['#!/bin/sh', '#SBATCH --clusters=c3'], {},
     'c3'),
    (['sbatch', 'job.sh'], None, {'SLURM_CLUSTERS': 'c4'}, 'c4'),
    # an option after the job script is the script's own
    (['sbatch', 'job.sh', '-M', 'c2'], None, {}, None),
])
def test_the_cluster_of_a_submission(argv, lines, environ, cluster):
    assert cluster_option(argv, lines, environ) == cluster


def test_one_cluster_or_none():
    assert cluster_problem(None) is None
    assert cluster_problem('c2') is None
    assert cluster_problem('c2,c3')
    assert cluster_problem('all')
