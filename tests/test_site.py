"""What real sites differ in: their limits, jobs that submit jobs, file
systems that do not share locks."""

from pathlib import Path

from conftest import (
    call,
    message_text,
    only,
    scancel,
    schedule_and_wait,
    snapshot,
    wait_for_jobs,
    write_script,
)

from datalad_slurm.records.history import iter_records
from datalad_slurm.repo.fslocks import (
    lock_problem,
    mount_of,
    parse_mountinfo,
    repository_lock_problem,
)
from datalad_slurm.slurm.env import submission_environment
from datalad_slurm.slurm.site import (
    Site,
    parse_config,
)
from datalad_slurm.submit.limits import (
    array_spec,
    limits_problem,
)

DATA = Path(__file__).parent / 'data'


def test_a_job_submitted_from_a_job_inherits_none_of_its_variables():
    job = {'SLURM_JOB_ID': '7', 'SLURM_CPUS_PER_TASK': '4',
           'SBATCH_MEM_PER_NODE': '1G', 'SLURM_CONF': '/etc/slurm.conf',
           'SBATCH_ACCOUNT': 'lab', 'PATH': '/bin', 'HOME': '/home/u'}
    assert submission_environment(job, ['SLURM_CONF', 'SBATCH_ACCOUNT']) == {
        'SLURM_CONF': '/etc/slurm.conf', 'SBATCH_ACCOUNT': 'lab',
        'PATH': '/bin', 'HOME': '/home/u'}
    outside = {'SBATCH_ACCOUNT': 'lab', 'PATH': '/bin'}
    assert submission_environment(outside, []) is None


def test_a_job_that_schedules_its_successor(ds):
    """The successor gets its own allocation's variables, none of the
    first job's: not its array task id (the successor is no array job),
    not an SBATCH_* option set in it."""
    write_script(ds, 'jobs/second.sh', '''
        mkdir -p second
        echo "${SLURM_ARRAY_TASK_ID:-unset} $SLURM_JOB_NAME" > second/env.txt
        ''')
    write_script(ds, 'jobs/first.sh', '''
        export SBATCH_JOB_NAME=leaked
        datalad schedule -o second sbatch jobs/second.sh
        mkdir -p first && echo scheduled > first/done
        ''')
    ds.save(result_renderer='disabled')
    first = schedule_and_wait(ds, ['sbatch', '--array=0', 'jobs/first.sh'],
                              outputs=['first'])
    assert only(call(ds.finish, first['slurm_job_id']),
                'finish')['status'] == 'ok'
    second = [r for r in iter_records(ds.repo, 'HEAD')
              if r.data.get('cmd') == 'sbatch jobs/second.sh']
    assert len(second) == 1, 'the first job scheduled no successor'
    assert second[0].job_id != first['slurm_job_id']
    wait_for_jobs(second[0].job_id)
    assert only(call(ds.finish), 'finish')['status'] == 'ok'
    assert (ds.pathobj / 'second' / 'env.txt').read_text() == \
        'unset second.sh\n'


def test_site_settings_from_scontrol_show_config():
    site = Site.of_config(parse_config(
        (DATA / 'scontrol-show-config-22.05.txt').read_text()))
    assert site == Site(cluster='localcluster', max_array_size=1001,
                        accounting=True, stores_comments=True,
                        min_job_age=300)
    bare = Site.of_config(parse_config(
        'ClusterName             = c2\n'
        'AccountingStorageType   = (null)\n'
        'AccountingStoreFlags    = (null)\n'
        'MaxArraySize            = 1000\n'))
    assert (bare.accounting, bare.stores_comments, bare.min_job_age) == \
        (False, False, None)


def test_array_limit_is_on_the_highest_task_id():
    site = Site(max_array_size=1000)
    assert site.array_problem('0-999') is None
    assert 'MaxArraySize' in site.array_problem('1000-1999')
    assert 'up to 1000' in site.array_problem('1,3,1000%2')
    assert Site().array_problem('5000000') is None
    bad = limits_problem(site, ['sbatch', '--array=a-b', 'job.sh'], None)
    assert 'cannot read the array specification' in bad


def test_the_array_of_the_command_line_wins_over_the_script():
    lines = ['#!/bin/sh', '#SBATCH --array=0-3', 'true']
    assert array_spec(['sbatch', 'job.sh'], lines) == '0-3'
    assert array_spec(['sbatch', '-a', '5-6', 'job.sh'], lines) == '5-6'
    assert array_spec(['sbatch', '--array=7', 'job.sh'], None) == '7'
    assert array_spec(['sbatch', 'job.sh', '--array=7'], None) is None


def test_an_array_beyond_max_array_size_is_refused(ds):
    """The local cluster keeps Slurm's default, MaxArraySize=1001."""
    write_script(ds, 'jobs/in-script.sh', """
        #SBATCH --array=995-1005
        true
        """)
    ds.save(result_renderer='disabled')
    before = snapshot(ds)
    for argv in (['sbatch', '--array=1000-1001', 'jobs/write.sh'],
                 ['sbatch', 'jobs/in-script.sh']):
        res = only(call(ds.schedule, argv, outputs=['out']), 'schedule')
        assert res['status'] == 'impossible', res
        assert 'below 1001 only (MaxArraySize)' in message_text(res)
        assert snapshot(ds) == before
    highest = only(call(ds.schedule, ['sbatch', '--hold', '--array=1000',
                                      'jobs/write.sh'], outputs=['out']),
                   'schedule')
    assert highest['status'] == 'ok', highest
    scancel(highest['slurm_job_id'])


MOUNTINFO = '''\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 252:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:45 / /home rw,relatime - nfs4 fs:/home rw,vers=4.2,local_lock=none
41 27 0:46 / /scratch rw,relatime - nfs fs:/scratch rw,vers=3,nolock
42 27 0:47 / /lustre rw - lustre mds@o2ib:/fs rw,localflock
43 27 0:48 / /lustre/flock rw - lustre mds@o2ib:/fs2 rw,flock
44 27 0:49 / /with\\040space rw - lustre mds@o2ib:/fs3 rw
45 27 0:50 / /daten/müller rw - nfs fs:/m rw,nolock
'''


def test_where_the_lock_is_not_shared_by_the_nodes():
    mounts = parse_mountinfo(MOUNTINFO)

    def problem(path):
        return lock_problem(mount_of(path, mounts))
    assert problem('/home/u/ds/.git') is None
    assert problem('/data/ds/.git') is None
    assert 'nolock or local_lock' in problem('/scratch/ds/.git')
    assert 'one node only' in problem('/lustre/ds/.git')
    assert problem('/lustre/flock/ds/.git') is None
    assert 'refuses locks' in problem('/with space/ds/.git')
    assert 'nolock' in problem('/daten/müller/ds/.git')
    assert mount_of('/homes/x', mounts).point == '/'


def test_this_machine_shares_its_locks(tmp_path):
    assert repository_lock_problem(str(tmp_path)) is None


def test_the_lock_warns_once_where_it_is_not_shared(tmp_path, monkeypatch,
                                                     caplog):
    """No NFS here to mount nolock: the mount table's verdict stands in."""
    from datalad.support.gitrepo import GitRepo

    from datalad_slurm.repo import (
        fslocks,
        lock,
    )
    repo = GitRepo(str(tmp_path / 'repo'), create=True)
    # looked up when the lock is first waited for (a job's own finish,
    # trying it once, does without)
    monkeypatch.setattr(fslocks, 'repository_lock_problem',
                        lambda git_dir: f'{git_dir}: not shared')
    with caplog.at_level('WARNING', logger='datalad.slurm.lock'):
        for _ in range(2):
            with lock.repository_lock(repo, 10):
                pass
    said = [r.getMessage() for r in caplog.records
            if r.name == 'datalad.slurm.lock']
    assert said == [f'{repo.dot_git}: not shared']
