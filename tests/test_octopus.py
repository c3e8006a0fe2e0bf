"""Many scratch jobs, one merge (``finish --octopus N``): the FINISH
records of several jobs in one commit, and what reads them back (the
index, ``datalad jobs``, ``reschedule``), in local mode."""

from __future__ import annotations

import time

import pytest
from conftest import (
    call,
    git,
    message_text,
    only,
    snapshot,
    write_script,
)
from test_scratch import schedule_scratch

from datalad_slurm.backends.local.backend import LocalBackend
from datalad_slurm.records.format import (
    RecordError,
    chunk_title,
    compose_chunk,
    compose_message,
    parse_message,
    parse_records,
)
from datalad_slurm.records.history import iter_records
from datalad_slurm.records.index import JobIndex
from datalad_slurm.repo import state


def test_records_of_several_jobs_in_one_message():
    records = [(f'Processed batch job {n}: Complete',
                {'slurm_job_id': n, 'schedule_commit': f'{n:040d}'})
               for n in (7, 8, 9)]
    title = chunk_title(['Complete', 'Complete', 'Failed'])
    assert title == 'Processed 3 batch jobs: 2 Complete, 1 Failed'
    message = compose_chunk(title, records)
    assert message.startswith(f'[DATALAD FINISH] {title}\n\n'
                              'Processed batch job 7: Complete\n')
    parsed = parse_records(message, commit='c' * 40)
    assert [r.data for r in parsed] == [data for _, data in records]
    assert {r.kind for r in parsed} == {'FINISH'}
    assert {r.commit for r in parsed} == {'c' * 40}
    with pytest.raises(RecordError, match='records 3 jobs, not one'):
        parse_message(message)
    # a message of one job reads as before, text after its fence too
    one = compose_message('FINISH', 'Processed batch job 7: Complete',
                          records[0][1])
    assert parse_message(one + '\nSigned-off-by: x\n').data == records[0][1]
    assert parse_records(one) == [parse_message(one)]
    assert chunk_title(['Complete'] * 4) == \
        'Processed 4 batch jobs: Complete'


def wait_for_jobs(ds, *job_ids: int):
    """Until the local jobs have ended, as their state files tell."""
    deadline = time.monotonic() + 120
    while any(s.phase == 'running' for s in LocalBackend(ds).query(
            job_ids, timeout=30).values()):
        assert time.monotonic() < deadline, f'jobs {job_ids} did not end'
        time.sleep(0.2)


def _scratch_jobs(ds, scratch, names) -> dict[str, dict]:
    """A scratch job writing out/NAME/r for each of `names`, ended."""
    jobs = {name: schedule_scratch(ds, ['sbatch', 'jobs/write.sh',
                                        f'out/{name}/r'], scratch,
                                   outputs=[f'out/{name}'])
            for name in names}
    wait_for_jobs(ds, *(j['slurm_job_id'] for j in jobs.values()))
    return jobs


def _finishes(ds, since: str) -> list[str]:
    return git(ds, 'log', '--format=%H', '--grep=^\\[DATALAD FINISH\\]',
               f'{since}..HEAD').split()


def test_bad_counts_are_refused_changing_nothing(lds, tmp_path):
    _scratch_jobs(lds, tmp_path / 's', ['a'])
    before = snapshot(lds)
    for count in (0, -2, 'many'):
        res = only(call(lds.finish, octopus=count), 'finish')
        assert res['status'] == 'impossible', res
        assert 'give how many jobs one FINISH commit may merge' in \
            message_text(res)
        assert snapshot(lds) == before
    res = only(call(lds.finish, octopus=2, list_open_jobs=True))
    assert res['status'] == 'impossible'
    assert snapshot(lds) == before
    lds.config.set('datalad.slurm.octopus', '0', scope='local')
    res = only(call(lds.finish), 'finish')
    assert res['status'] == 'impossible'
    assert 'datalad.slurm.octopus' in message_text(res)
    assert snapshot(lds) == before
    assert len(JobIndex(lds.repo).refresh().open) == 1


def test_chunks_of_scratch_jobs(lds, tmp_path):
    scratch = tmp_path / 's'
    start = git(lds, 'rev-parse', 'HEAD').strip()
    jobs = _scratch_jobs(lds, scratch, 'abcde')
    # a job reading the last one's outputs: its FINISH comes after that one
    last = schedule_scratch(lds, ['sbatch', 'jobs/write.sh', 'fit/r'],
                            scratch, inputs=['out/e'], outputs=['fit'])
    wait_for_jobs(lds, last['slurm_job_id'])
    res = [r for r in call(lds.finish, octopus=4) if r['action'] == 'finish']
    assert [r['status'] for r in res] == ['ok'] * 6, res
    chunks = _finishes(lds, start)[::-1]
    # a, b, c, d; then e, which the last job waits for; then the last one
    assert len(chunks) == 3
    by_job = {r['slurm_job_id']: r['commit'] for r in res}
    assert [by_job[jobs[n]['slurm_job_id']] for n in 'abcde'] == \
        [chunks[0]] * 4 + [chunks[1]]
    assert by_job[last['slurm_job_id']] == chunks[2]
    assert git(lds, 'log', '-1', '--format=%s', chunks[0]) == \
        '[DATALAD FINISH] Processed 4 batch jobs: Complete\n'
    # an octopus merge of the four branches, each job's record in it
    parents = git(lds, 'log', '-1', '--format=%P', chunks[0]).split()
    assert len(parents) == 5
    records = [r for r in iter_records(lds.repo, f'{start}..HEAD')
               if r.commit == chunks[0]]
    assert [r.job_id for r in records] == \
        [jobs[n]['slurm_job_id'] for n in 'abcd']
    assert sorted(p for r in records for p in r.data['scratch_merged']) == \
        sorted(parents[1:])
    for n in 'abcde':
        assert (lds.pathobj / 'out' / n / 'r').read_text() == \
            f"job {jobs[n]['slurm_job_id']} task none\n"
    assert git(lds, 'branch', '--list', 'datalad-slurm/*') == ''
    assert not any(state.scratch(lds.repo.dot_git).iterdir())
    assert git(lds, 'status', '--porcelain') == ''

    # the index, rebuilt from the history, finds every FINISH record
    state.index_cache(lds.repo.dot_git).unlink()
    index = JobIndex(lds.repo).refresh()
    assert not index.open
    assert index.finished[jobs['b']['commit']]['finish'] == chunks[0]
    assert only(call(lds.finish))['status'] == 'notneeded'
    assert only(call(lds.finish, jobs['c']['commit']))['message'][1] == \
        str(jobs['c']['slurm_job_id'])
    assert message_text(only(call(lds.finish, chunks[0]))) == \
        'jobs %s were finished already, in one commit' % ', '.join(
            str(jobs[n]['slurm_job_id']) for n in 'abcd')

    summaries = [r for r in call(lds.jobs) if r['action'] == 'jobs']
    assert {s['slurm_job_id']: (s['job_state'], s['finish_commit'])
            for s in summaries} == {
        job_id: ('complete', commit) for job_id, commit in by_job.items()}
    named = call(lds.jobs, [chunks[0]])
    assert sorted(s['slurm_job_id'] for s in named) == \
        sorted(jobs[n]['slurm_job_id'] for n in 'abcd')

    # reschedule: the chunk's commit names its four jobs, a schedule
    # commit its own job
    would = call(lds.reschedule, chunks[0], report=True)
    assert [r['slurm_job_id'] for r in would] == \
        [jobs[n]['slurm_job_id'] for n in 'abcd']
    again = [r for r in call(lds.reschedule, jobs['b']['commit'])
             if r['action'] == 'reschedule']
    assert [r['status'] for r in again] == ['ok'], again
    assert git(lds, 'log', '-1', '--format=%s') == \
        f"[DATALAD RESCHEDULE] Submitted batch job " \
        f"{again[0]['slurm_job_id']}: Pending\n"
    wait_for_jobs(lds, again[0]['slurm_job_id'])


def test_conflicting_job_is_merged_alone(lds, tmp_path, monkeypatch):
    """Two open jobs writing one file (which schedule refuses; let through
    here): the later one gets a FINISH commit of its own, after the chunk
    holding the earlier one, and its version is the one in the tree."""
    monkeypatch.setattr('datalad_slurm.submit.submission.find_conflicts',
                        lambda index, outputs: [])
    scratch = tmp_path / 's'
    start = git(lds, 'rev-parse', 'HEAD').strip()
    first = schedule_scratch(lds, ['sbatch', 'jobs/write.sh', 'shared/r'],
                             scratch, outputs=['shared'])
    other = schedule_scratch(lds, ['sbatch', 'jobs/write.sh', 'out/o/r'],
                             scratch, outputs=['out/o'])
    second = schedule_scratch(lds, ['sbatch', 'jobs/write.sh', 'shared/r'],
                              scratch, outputs=['shared'])
    wait_for_jobs(lds, *(j['slurm_job_id']
                         for j in (first, other, second)))
    res = {r['slurm_job_id']: r for r in call(lds.finish, octopus=10)
           if r['action'] == 'finish'}
    assert [r['status'] for r in res.values()] == ['ok'] * 3, res
    chunk, alone = _finishes(lds, start)[::-1]
    assert res[first['slurm_job_id']]['commit'] == chunk
    assert res[other['slurm_job_id']]['commit'] == chunk
    said = res[second['slurm_job_id']]
    assert said['commit'] == alone
    assert f"merged alone, after job {first['slurm_job_id']}: both " \
        f"changed shared/r, differently" in message_text(said)
    assert said['merged_alone']
    assert (lds.pathobj / 'shared' / 'r').read_text() == \
        f"job {second['slurm_job_id']} task none\n"
    assert git(lds, 'branch', '--list', 'datalad-slurm/*') == ''
    assert git(lds, 'status', '--porcelain') == ''


def test_by_configuration_as_jobs_end_and_finish_themselves(lds, tmp_path):
    """datalad.slurm.octopus applies to finish --wait and to the jobs that
    finish themselves, which hand their FINISH to whoever holds the lock:
    however the jobs' ends fall, each has its one FINISH record."""
    lds.config.set('datalad.slurm.octopus', '5', scope='local')
    write_script(lds, 'jobs/self.sh', '''
        mkdir -p "out/$1"
        echo "$1" > "out/$1/r"
        datalad finish "$SLURM_JOB_ID"
        ''')
    lds.save(result_renderer='disabled')
    scratch = tmp_path / 's'
    start = git(lds, 'rev-parse', 'HEAD').strip()
    themselves = [schedule_scratch(lds, ['sbatch', 'jobs/self.sh', n],
                                   scratch, outputs=[f'out/{n}'])
                  for n in 'ab']
    waited = [schedule_scratch(lds, ['sbatch', 'jobs/write.sh', f'w/{n}/r'],
                               scratch, outputs=[f'w/{n}'])
              for n in 'cde']
    res = [r for r in call(lds.finish, wait=True, wait_timeout=120)
           if r['action'] == 'finish' and r['status'] != 'notneeded']
    assert [r['status'] for r in res] == ['ok'] * len(res), res
    wait_for_jobs(lds, *(j['slurm_job_id'] for j in themselves))
    finishes = [r for r in iter_records(lds.repo, f'{start}..HEAD')
                if r.kind == 'FINISH']
    assert sorted(r.job_id for r in finishes) == sorted(
        j['slurm_job_id'] for j in themselves + waited)
    assert len(_finishes(lds, start)) <= len(finishes)
    assert git(lds, 'branch', '--list', 'datalad-slurm/*') == ''
    assert git(lds, 'status', '--porcelain') == ''


def test_job_blocked_by_the_work_tree_holds_up_no_other(lds, tmp_path):
    start = git(lds, 'rev-parse', 'HEAD').strip()
    jobs = _scratch_jobs(lds, tmp_path / 's', 'abc')
    (lds.pathobj / 'out' / 'b').mkdir(parents=True)
    (lds.pathobj / 'out' / 'b' / 'r').write_text('mine\n')
    res = {r['slurm_job_id']: r for r in call(lds.finish, octopus=3)
           if r['action'] == 'finish'}
    blocked = res.pop(jobs['b']['slurm_job_id'])
    assert blocked['status'] == 'impossible', blocked
    assert 'the work tree has changes (or untracked files) where the ' \
        'job\'s outputs come in: out/b/r' in message_text(blocked)
    assert [r['status'] for r in res.values()] == ['ok', 'ok'], res
    chunk, = _finishes(lds, start)
    assert {r['commit'] for r in res.values()} == {chunk}
    assert (lds.pathobj / 'out' / 'b' / 'r').read_text() == 'mine\n'
    assert list(JobIndex(lds.repo).refresh().open) == [jobs['b']['commit']]
    assert git(lds, 'branch', '--list', 'datalad-slurm/*').split() == [
        f"datalad-slurm/job-{jobs['b']['slurm_job_id']}"]


def test_branch_moved_since_is_left_the_others_deleted(lds, tmp_path):
    jobs = _scratch_jobs(lds, tmp_path / 's', 'ab')
    moved = f"datalad-slurm/job-{jobs['b']['slurm_job_id']}"
    git(lds, 'branch', '-f', moved, 'HEAD')
    res = [r for r in call(lds.finish, octopus=2) if r['action'] == 'finish']
    assert [r['status'] for r in res] == ['ok', 'ok'], res
    assert git(lds, 'branch', '--list', 'datalad-slurm/*').split() == [moved]
    assert not any(state.scratch(lds.repo.dot_git).iterdir())
