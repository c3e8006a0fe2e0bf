"""Turning a journaled submission into its schedule commit.

One function, :func:`complete`, takes a journal entry (see
:mod:`datalad_slurm.records.journal`) as far as it can go, both right
after sbatch and when a later command finds the entry orphaned: a
submission whose job id is unknown is looked up in Slurm by the mark it
carries, a submitted one gets its schedule commit, and one that never
reached Slurm (its process died before sbatch ran, or sbatch ended
without a job) is undone.
Callers hold the repository lock.
"""

from __future__ import annotations

import logging
import os.path as op
import socket
import time
from pathlib import Path
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException

from .. import (
    backends,
    config,
)
from ..modes.select import of_record
from ..records import (
    journal,
    logfiles,
)
from ..records.format import (
    compose_message,
    parse_message,
    schedule_title,
)
from ..records.index import JobIndex
from ..repo import plumbing
from ..repo.commit import commit_empty
from ..repo.worktree import put_back
from ..slurm.jobspec import (
    log_patterns,
    take_option,
)
from ..slurm.status import (
    SUBMISSION_WINDOW,
    SlurmError,
)
from . import split

lgr = logging.getLogger('datalad.slurm.recording')

# the --comment a submission carries into Slurm, to be found by
MARK_PREFIX = 'datalad-slurm:'


def mark_comment(mark: str) -> str:
    return MARK_PREFIX + mark


def complete(ds, entry: journal.Entry, status: dict, *,
             recovering: bool = False, index: JobIndex | None = None,
             ) -> Iterator[dict]:
    """Take `entry` to its schedule commit, or as far as Slurm's answers
    allow; yield one result (none for an entry committed before).  An
    `index` up to date with HEAD is kept so."""
    status = dict(status, slurm_job_id=entry.job_id)
    timeout = config.get(ds, config.QUERY_TIMEOUT)
    backend = backends.submitter(ds, entry.submitter)
    if not entry.sbatch_may_have_run:
        yield _undone(ds, entry, 'ended before sbatch ran', status)
        return
    # found by its mark: sbatch gave no job id
    unanswered = entry.job_id is None
    if unanswered:
        found = yield from (_find_parts if entry.parts else _find)(
            ds, backend, entry, status, timeout)
        if found is None:
            return
        entry.submitted(found)
        status['slurm_job_id'] = found
    elif recovering and _committed(ds.repo, entry):
        # committed, then the process died before forgetting the entry
        entry.done()
        return
    try:
        sha, title = _record(ds, backend, entry, timeout, index)
    except Exception as e:
        ce = CapturedException(e)
        yield get_status_dict(
            status='error', exception=ce,
            message=('job %s was submitted, but its schedule commit failed '
                     '(%s); the submission is journaled, and the next '
                     'schedule, finish or reschedule records it once the '
                     'cause is fixed', entry.job_id, ce),
            **status)
        return
    if recovering:
        message = ('recovered the schedule commit of job %s, whose '
                   'submission (pid %s) ended before recording it',
                   entry.job_id, entry.pid)
    elif unanswered:
        message = ('%s (sbatch did not answer in time, but Slurm has the '
                   'job)', title)
    else:
        message = title
    yield get_status_dict(status='ok', message=message, commit=sha,
                          outputs=entry.data['outputs'],
                          recovered=recovering, **status)


def _find_parts(ds, backend, entry: journal.Entry, status: dict,
                timeout: float):
    """The first part's job id of a split array whose every part Slurm
    has, or None after yielding what became of the entry: where a part was
    never submitted (the process died before its sbatch ran, or an
    earlier part's sbatch gave no answer), the parts before it are
    cancelled and the outputs put back, as the job is not whole."""
    for k, part in enumerate(entry.parts):
        if part['job_id'] is not None:
            continue
        if part['state'] == journal.PREPARED:
            yield _undone(ds, entry, f'was interrupted before part {k + 1} '
                          f'of {len(entry.parts)} was submitted', status,
                          backend)
            return None
        found = yield from _find(ds, backend, entry, status, timeout, k)
        if found is None:
            return None
        entry.part_is(k, journal.SUBMITTED, found)
    return entry.parts[0]['job_id']


def _find(ds, backend, entry: journal.Entry, status: dict, timeout: float,
          part: int | None = None):
    """The job id of a submission sbatch gave none for (of a split array,
    that of `part`), or None after yielding what became of the entry."""
    argv = ' '.join(entry.argv if part is None else
                    entry.parts[part]['argv'])
    mark = entry.mark if part is None else f'{entry.mark}/{part}'
    if not entry.marked:
        kept = entry.set_aside()
        yield get_status_dict(
            status='error',
            message=('a submission of %r (pid %s) ended while sbatch ran, '
                     'and it carries no mark to look for (it sets its own '
                     '--comment), so whether Slurm accepted it is unknown: '
                     'look for the job with squeue, cancel it or schedule '
                     'it again; the journal entry is kept in %s',
                     argv, entry.pid, str(kept)),
            **status)
        return None
    workdir = _workdir(ds, entry)
    try:
        candidates = backend.find_marked(
            mark_comment(mark), since=entry.started,
            workdir=workdir, timeout=timeout,
            cluster=entry.data.get('slurm_cluster_option'))
    except SlurmError as e:
        if entry.state == journal.PREPARED:
            entry.unknown()
        yield get_status_dict(
            status='error', exception=CapturedException(e),
            message=('whether Slurm accepted the submission of %r is not '
                     'known (sbatch gave no answer), and Slurm cannot be '
                     'asked now (%s); the submission is journaled, and the '
                     'next datalad-slurm command looks for it again',
                     argv, str(e)),
            **status)
        return None
    recorded = JobIndex.current(ds.repo)
    candidates = [c for c in candidates
                  if recorded.find_job(c) == (None, None)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        # which it is cannot be told later either
        kept = entry.set_aside()
        yield get_status_dict(
            status='error',
            message=('sbatch did not answer for the submission of %r, and '
                     'this cluster\'s accounting database keeps no job '
                     'comments, by which it is known: it is one of the jobs '
                     '%s, submitted from %s then. Look at them (sacct -j '
                     '%s), cancel the ones you do not want, and schedule '
                     'the job again; the journal entry is kept in %s',
                     argv, ', '.join(map(str, candidates)), workdir,
                     ','.join(map(str, candidates)),
                     str(kept)),
            **status)
        return None
    if _never_sent(entry):
        yield _undone(ds, entry, 'ended while sbatch ran, and sbatch has '
                      'ended too without Slurm having a job of it', status,
                      backend)
        return None
    if time.time() - entry.started < SUBMISSION_WINDOW:
        if entry.state == journal.PREPARED:
            entry.unknown()
        yield get_status_dict(
            status='error',
            message=('sbatch did not answer for the submission of %r, and '
                     'Slurm knows no job of it yet; the submission is '
                     'journaled, and the next datalad-slurm command looks '
                     'for it again (the job carries --comment=%s)',
                     argv, mark_comment(mark)),
            **status)
        return None
    if entry.writable is not None:
        put_back(ds, entry.writable, entry.changed_before)
    cancelled = f'; {split.cancel_submitted(backend, entry, timeout)[0]}' \
        if entry.parts else ''
    kept = entry.set_aside()
    yield get_status_dict(
        status='error',
        message=('Slurm (squeue, sacct) knows no job of the submission of %r '
                 '(--comment=%s) %d s after it was made, so it was most '
                 'likely never accepted: its outputs are as they were%s; '
                 'schedule it again, and remove the journal entry kept in '
                 '%s', argv, mark_comment(mark), SUBMISSION_WINDOW,
                 cancelled, str(kept)),
        **status)
    return None


def _workdir(ds, entry: journal.Entry) -> str:
    """The directory the job of `entry` runs in, as Slurm records it."""
    chdir = take_option(entry.argv, '--chdir', '-D')[0]
    pwd = op.join(ds.path, entry.data.get('pwd') or '.')
    return op.normpath(op.join(pwd, chdir[-1]) if chdir else pwd)


def _undone(ds, entry: journal.Entry, why: str, status: dict,
            backend=None) -> dict:
    """Forget a submission that never reached Slurm (of a split array:
    not whole, its parts that did are cancelled with `backend`), its
    outputs put back as they were."""
    submitted, cancelled = 'nothing was submitted', False
    if entry.parts and entry.parts[0]['job_id'] is not None:
        # an error even where all are cancelled: a job was not scheduled
        submitted, _ = split.cancel_submitted(
            backend, entry, config.get(ds, config.QUERY_TIMEOUT))
        cancelled = True
    restored = put_back(ds, entry.writable, entry.changed_before)
    of_record(entry.data).undo(ds, entry.data)
    split.discard(ds.repo, entry.mark)
    entry.done()
    return get_status_dict(
        status='error' if cancelled else 'notneeded',
        message=(f'a submission of %r (pid %s) {why}: {submitted}%s',
                 ' '.join(entry.argv), entry.pid,
                 f'; put back {", ".join(restored)}' if restored else ''),
        **status)


def _never_sent(entry: journal.Entry) -> bool:
    """Whether a submission whose process died while sbatch ran (not one
    whose sbatch timed out) cannot have reached Slurm: sbatch outlives the
    process that started it, and no sbatch carrying the mark runs on this
    machine any more, for long enough that slurmctld has answered any
    request it got."""
    if entry.state != journal.SUBMITTING or entry.writable is None or \
            entry.host != socket.gethostname():
        return False
    try:
        if time.time() - entry.path.stat().st_mtime < SETTLE:
            return False
        comment = mark_comment(entry.mark).encode()
        for cmdline in Path('/proc').glob('[0-9]*/cmdline'):
            try:
                if comment in cmdline.read_bytes():
                    return False
            except OSError:
                continue  # ended meanwhile
    except OSError:
        return False
    return True


# Seconds after which slurmctld has answered a request sbatch sent before it
# ended, unless slurmctld is too busy to answer sbatch in time at all.
SETTLE = 30


def _committed(repo, entry: journal.Entry) -> bool:
    """Whether the history holds the schedule commit of `entry`: by its
    unique mark (job ids are reused), or for an entry made before marks
    were recorded, by its job id."""
    needle = f'"submission": "{entry.mark}"' if entry.mark else \
        f'"slurm_job_id": {entry.job_id},'
    return bool(repo.call_git(
        ['log', '-1', '--format=%H', '--fixed-strings', f'--grep={needle}',
         'HEAD'], read_only=True).strip())


def _record(ds, backend, entry: journal.Entry, timeout: float,
            index: JobIndex | None) -> tuple[str, str]:
    """Make the schedule commit of a submitted job; return (sha, title)."""
    data = dict(entry.data)
    try:
        data.update(split.describe_parts(ds, backend, entry, timeout)
                    if entry.parts else logfiles.at_submission(
            ds, backend, entry.argv, entry.job_id, timeout=timeout,
            cluster=data.get('slurm_cluster_option')))
    except SlurmError as e:
        # Slurm forgot the job (recovery long after a crash): keep what the
        # submission itself tells; finish resolves the patterns with sacct
        lgr.warning('Recording job %s without asking Slurm: %s',
                    entry.job_id, e)
        patterns = log_patterns(entry.argv, None, is_array=False)
        data.update(slurm_array=None, slurm_cluster=None, slurm_outputs=[],
                    slurm_submit_time=None, slurm_workdir=None,
                    slurm_output_patterns=[
                        op.normpath(op.join(data['pwd'], p))
                        for p in patterns if not op.isabs(p)])
        if entry.parts:
            data.update(split.without_slurm(entry))
    of_record(data).submitted(data, entry.job_id)
    title = schedule_title(entry.job_id)
    message = compose_message(entry.kind, title, data, entry.message)
    parent = plumbing.head(ds.repo)
    sha = commit_empty(ds.repo, message, parent)
    entry.done()
    split.discard(ds.repo, entry.mark)
    if index is not None:
        index.recorded(parse_message(message, sha), parent)
    return sha, title


def recover_orphans(ds, action: str) -> Iterator[dict]:
    """Complete the submissions that earlier processes left in the journal,
    each on its own: one that cannot be completed is reported and kept,
    and the others go on.  Call with the repository lock held."""
    for entry in journal.orphans(ds.repo):
        status = dict(action=action, ds=ds, logger=lgr)
        if isinstance(entry, journal.Unreadable):
            yield get_status_dict(
                status='error', path=str(entry.path),
                exception=CapturedException(entry.error),
                message=('cannot read the journaled submission %s (%s); it '
                         'may describe a submitted job: fix or remove it',
                         str(entry.path), entry.error),
                **status)
            continue
        try:
            yield from complete(ds, entry, status, recovering=True)
        except Exception as e:
            ce = CapturedException(e)
            yield get_status_dict(
                status='error', exception=ce, slurm_job_id=entry.job_id,
                message=('could not complete the journaled submission %s '
                         '(%s); it is kept', str(entry.path), ce),
                **status)
