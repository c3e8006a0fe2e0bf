"""Telling a recorded job from other jobs Slurm gave the same id, over the
runs sacct reported for real jobs (tests/data/pyslurm-22.05.json); no
cluster needed."""

import json
from pathlib import Path

import pytest

from datalad_slurm.backends import cli
from datalad_slurm.slurm import parse
from datalad_slurm.slurm.status import (
    Expected,
    Identity,
    JobStatus,
    pick_run,
    slurm_time,
)

CAPTURED = {j['scenario']: j for j in json.loads(
    (Path(__file__).parent / 'data' / 'pyslurm-22.05.json').read_text()
)['jobs']}


def sacct_runs(scenario):
    # the capture asked sacct for one more field (Comment)
    out = '\n'.join(line.rsplit('|', 1)[0]
                    for line in CAPTURED[scenario]['sacct'])
    return parse.parse_sacct(out)


def identity(submit, workdir='/tmp/pyslurm-jobs', cluster='localcluster'):
    return Identity(submit=slurm_time(submit), workdir=workdir,
                    cluster=cluster)


def test_requeued_job_is_followed_to_its_last_run():
    """Job 521 was requeued while it ran: its submit time moved, and it is
    still the recorded job, with one restart."""
    runs = sacct_runs('g_requeue_final')[(521, None)]
    assert [r.state for r in runs] == ['REQUEUED', 'COMPLETED']
    run = pick_run(runs, identity('2026-12-01T09:13:37'))
    assert (run.state, run.restarts) == ('COMPLETED', 1)


def test_requeued_job_pending_again_is_running():
    runs = sacct_runs('g_requeue_pending_after_requeue')[(521, None)]
    run = pick_run(runs, identity('2026-12-01T09:13:37'))
    assert (run.state, run.running, run.restarts) == ('PENDING', True, 1)


@pytest.mark.parametrize('submit, workdir, cluster', [
    # recorded an hour after that job of the same id was submitted
    ('2026-12-01T10:13:37', '/tmp/pyslurm-jobs', 'localcluster'),
    # scheduled from another directory
    ('2026-12-01T09:13:37', '/elsewhere', 'localcluster'),
    # another cluster sharing the database
    ('2026-12-01T09:13:37', '/tmp/pyslurm-jobs', 'othercluster'),
])
def test_another_job_of_the_same_id_is_not_taken(submit, workdir, cluster):
    runs = sacct_runs('a_plain_mem50M')[(516, None)]
    assert pick_run(runs, identity(submit, workdir, cluster)) is None


def test_a_job_after_ours_with_the_same_id_is_not_ours():
    """Runs after the recorded job's last one belong to a later job."""
    ours, = sacct_runs('b_exit3')[(517, None)]
    later, = sacct_runs('a_plain_mem50M')[(516, None)]
    run = pick_run([ours, later], identity('2026-12-01T09:13:37'))
    assert run is ours


def test_clock_skew_is_tolerated():
    runs = sacct_runs('a_plain_mem50M')[(516, None)]
    # recorded by the submitting machine's clock, in UTC, 2 minutes off
    assert pick_run(runs, identity('2026-12-01T09:11:37+00:00')) is not None


def test_records_without_identity_take_the_last_run():
    runs = sacct_runs('g_requeue_final')[(521, None)]
    assert pick_run(runs, None).state == 'COMPLETED'
    assert Identity.of_record({'slurm_job_id': 521}) is None


def test_a_job_nobody_reports_under_its_identity_is_lost():
    statuses = {516: JobStatus(516)}
    cli.add_runs(statuses, sacct_runs('a_plain_mem50M'),
                 {516: Expected(identity=identity('2026-12-01T11:00:00'))})
    assert statuses[516].phase == 'lost'


def test_array_tasks_are_matched_each():
    runs = sacct_runs('d_array_0-2')
    statuses = {519: JobStatus(519)}
    cli.add_runs(statuses, runs, {519: Expected(
        tasks=[0, 1, 2], identity=identity('2026-12-01T09:13:37'))})
    assert statuses[519].describe() == '0-2:COMPLETED'


def test_batch_step_gives_memory_use():
    run, = sacct_runs('a_plain_mem50M')[(516, None)]
    assert (run.max_rss, run.max_vmsize, run.req_mem, run.alloc_cpus) == \
        ('67820K', '72128K', '100M', 1)


def test_task_still_in_the_pending_range_and_done():
    """The database can list a task in its array's pending range and as
    the task that ran: the later line is the task's state."""
    lines = [line.rsplit('|', 1)[0] for line in
             CAPTURED['e2_array_throttle_pending_task0_running']['sacct']
             if line.startswith('565_[')]
    lines += [line.rsplit('|', 1)[0] for line in
              CAPTURED['e2_array_throttle_final']['sacct']
              if line.startswith('565_1')]
    runs = parse.parse_sacct('\n'.join(lines))[(565, 1)]
    assert [r.state for r in runs] == ['PENDING', 'COMPLETED']
    run = pick_run(runs, identity('2026-12-01T09:14:38'))
    assert (run.state, run.restarts) == ('COMPLETED', 0)


def test_preempted_run_followed_by_one_the_database_lacks():
    """Right after a preemption with requeue the database lists only the
    preempted run; slurmctld has the job pending again: it is running."""
    sacct = ('6065|6065|PREEMPTED|0:0|2026-12-01T11:49:13|'
             '2026-12-01T11:49:13|2026-12-01T11:49:16|00:00:03|vm|||8|'
             '00:00:00|4000M|None|/tmp/d|localcluster')
    squeue = ('6065|6065|N/A|PENDING|0|2026-12-01T11:49:16|'
              '2026-12-01T11:49:27|N/A|0:00||BeginTime|/tmp/d|'
              'localcluster|1|4000M|')
    expected = {6065: Expected(identity=identity(
        '2026-12-01T11:49:13', '/tmp/d'))}
    statuses = {6065: JobStatus(6065)}
    cli.add_runs(statuses, parse.parse_sacct(sacct), expected)
    assert statuses[6065].phase == 'failed'
    cli.merge_squeue(statuses, parse.parse_squeue(squeue), expected)
    task, = statuses[6065].tasks
    assert (statuses[6065].phase, task.state, task.restarts) == \
        ('running', 'PENDING', 1)


@pytest.mark.parametrize('exit_code, expected', [
    # the raw wait status of Slurm 22.05's squeue
    ('0', 0), ('256', 1), ('9', -1),
    # "code:signal", as sacct prints it and later squeue releases do
    ('0:0', 0), ('1:0', 1), ('0:9', -1),
])
def test_squeue_exit_code_in_either_notation(exit_code, expected):
    line = (f'7|7|N/A|COMPLETED|{exit_code}|2026-12-01T11:49:16|'
            f'2026-12-01T11:49:17|2026-12-01T11:49:18|0:01|vm|None|/tmp/d|'
            f'localcluster|0|4000M|')
    (job_id, run), = parse.parse_squeue(line)
    assert (job_id, run.exit_code) == (7, expected)


def test_squeue_lines_of_other_jobs_are_left_out():
    lines = '\n'.join(
        f'{i}|{a}|{t}|PENDING|0|2026-12-01T11:49:16|N/A|N/A|0:00||None|'
        f'/tmp/d|localcluster|0|4000M|'
        for i, a, t in ((7, 7, 'N/A'), (8, 8, 'N/A'), (10, 9, '1'),
                        (9, 9, '0,2-3')))
    assert [(j, r.task_id) for j, r in parse.parse_squeue(lines)] == \
        [(7, None), (8, None), (9, 1), (9, 0), (9, 2), (9, 3)]
    assert [(j, r.task_id) for j, r in parse.parse_squeue(lines, {9})] == \
        [(9, 1), (9, 0), (9, 2), (9, 3)]
