"""Submitting a job and recording it: what schedule and reschedule share.
"""

from __future__ import annotations

import logging
import os
import os.path as op
import shlex
from datetime import (
    datetime,
    timezone,
)
from typing import Iterator

from datalad.core.local.run import (
    format_command,
    normalize_command,
    prepare_inputs,
)
from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException
from datalad.support.globbedpaths import GlobbedPaths
from datalad.utils import chpwd

from . import (
    config,
    journal,
    slurm,
)
from .commit import commit_empty
from .index import JobIndex
from .jobspec import (
    log_patterns,
    pattern_regex,
    resolve_pattern,
)
from .lock import (
    LockTimeout,
    repository_lock,
)
from .paths import (
    overlap,
    pwd_relative,
)
from .record import (
    SCHEDULE,
    compose_message,
    schedule_title,
)

lgr = logging.getLogger('datalad.slurm.submission')


def sbatch_argv(cmd) -> list[str] | None:
    """The argument list of an sbatch command given as a list or a string,
    or None if it is no sbatch invocation."""
    argv = shlex.split(normalize_command(cmd))
    if not argv or op.basename(argv[0]) != 'sbatch':
        return None
    return argv


def submit_job(ds, cmd: str, *, pwd: str, inputs: list[str],
               extra_inputs: list[str], outputs: list[str],
               message: str | None, chain: list[str], kind: str = SCHEDULE,
               expand: str | None = None, explicit: bool = False,
               extra_outputs: list[str] = (), action: str = 'schedule',
               ) -> Iterator[dict]:
    """Prepare the work tree, submit `cmd` and commit its schedule record.

    Parameters
    ----------
    cmd
      The sbatch command as recorded (placeholders not yet filled in).
    pwd
      Submission directory, relative to the dataset root.
    inputs, extra_inputs, outputs
      Paths or globs relative to the dataset root.
    extra_outputs
      Files to make writable like outputs, without recording them.
    chain
      Schedule commits this submission repeats.
    kind
      SCHEDULE or RESCHEDULE.
    explicit
      Accept a dataset with unsaved changes.
    """
    root = ds.path
    pwd_abs = op.normpath(op.join(root, pwd))
    status = dict(action=action, ds=ds, logger=lgr)

    if not explicit:
        changes = unsaved_changes(ds, JobIndex(ds.repo).refresh())
        if changes:
            yield get_status_dict(
                status='impossible',
                message=('the dataset has unsaved changes (%s), and the job '
                         'would run on a state no commit records; save them '
                         'first (datalad save), or give --explicit to '
                         'schedule anyway', _shorten(changes)),
                **status)
            return

    # The job's view of inputs and outputs is relative to where it runs.
    globbed_inputs = GlobbedPaths(pwd_relative(root, pwd_abs, inputs),
                                  pwd=pwd_abs)
    globbed_outputs = GlobbedPaths(pwd_relative(root, pwd_abs, outputs),
                                   pwd=pwd_abs)
    try:
        argv = shlex.split(format_command(
            ds, cmd, pwd=pwd_abs, dspath=root,
            inputs=globbed_inputs, outputs=globbed_outputs))
    except KeyError as e:
        yield get_status_dict(
            status='impossible',
            message=('the command has an unknown placeholder %s; write a '
                     'literal brace as {{ or }}', e),
            **status)
        return

    failed = False
    # DataLad's commands take relative paths relative to the working dir
    with chpwd(root):
        for res in prepare_inputs(
                root, GlobbedPaths(inputs, pwd=root) if inputs else None,
                extra_inputs=GlobbedPaths(extra_inputs, pwd=root)
                if extra_inputs else None):
            if res['status'] in ('impossible', 'error'):
                failed = True
                yield res
    if failed:
        return

    if expand in ('inputs', 'both'):
        inputs = GlobbedPaths(inputs, pwd=root).expand()

    timeout = config.get(ds, config.QUERY_TIMEOUT)
    try:
        slurm.require_version(timeout)
        with repository_lock(ds.repo, config.get(ds, config.LOCK_TIMEOUT)):
            yield from recover_orphans(ds, action)
            conflicts = find_conflicts(JobIndex(ds.repo).refresh(), outputs)
            if conflicts:
                yield get_status_dict(
                    status='impossible',
                    message=('outputs overlap those of open jobs (%s); '
                             'finish those jobs first (datalad finish), or '
                             'choose other outputs', '; '.join(conflicts)),
                    **status)
                return
            record = {
                'cmd': cmd, 'dsid': ds.id, 'pwd': pwd, 'inputs': inputs,
                'extra_inputs': extra_inputs, 'outputs': outputs,
                'expand': expand, 'chain': chain, 'message': message,
                'submitted': datetime.now(timezone.utc).isoformat(
                    timespec='seconds'),
            }
            yield from _submit(ds, record, kind, argv,
                               outputs + list(extra_outputs), status)
    except (LockTimeout, slurm.SlurmError) as e:
        yield get_status_dict(status='error', message=str(e),
                              exception=CapturedException(e), **status)


def _submit(ds, record: dict, kind: str, argv: list[str],
            writable: list[str], status: dict) -> Iterator[dict]:
    """Make outputs writable, submit, commit: the critical section, run
    with the repository lock held."""
    prepared = []
    for res in _unlock_or_remove(ds, writable):
        if res['status'] in ('impossible', 'error'):
            yield res
            _restore(ds, prepared)
            return
        if res['status'] == 'ok':
            prepared.append(res['path'])

    entry = journal.begin(ds.repo, kind, record, record['message'], argv)
    try:
        job_id = slurm.submit(
            argv, cwd=op.join(ds.path, record['pwd']),
            timeout=config.get(ds, config.QUERY_TIMEOUT))
    except slurm.SlurmError as e:
        entry.done()
        _restore(ds, prepared)
        yield get_status_dict(
            status='error', message=('sbatch refused the job: %s', str(e)),
            exception=CapturedException(e), **status)
        return
    entry.submitted(job_id)
    sha, title = _record(ds, entry)
    yield get_status_dict(
        status='ok', message=title, commit=sha, slurm_job_id=job_id,
        outputs=record['outputs'], **status)


def _record(ds, entry: journal.Entry) -> tuple[str, str]:
    """Make the schedule commit of a submitted job; return (sha, title)."""
    data = dict(entry.data)
    try:
        data.update(_log_files(
            ds, entry.argv, entry.job_id,
            timeout=config.get(ds, config.QUERY_TIMEOUT)))
    except slurm.SlurmError as e:
        # Slurm forgot the job (recovery long after a crash): keep what the
        # submission itself tells; finish resolves the patterns with sacct
        lgr.warning('Recording job %s without asking Slurm: %s',
                    entry.job_id, e)
        patterns = log_patterns(entry.argv, None, is_array=False)
        data.update(slurm_array=None, slurm_cluster=None, slurm_outputs=[],
                    slurm_output_patterns=[
                        op.normpath(op.join(data['pwd'], p))
                        for p in patterns if not op.isabs(p)])
    title = schedule_title(entry.job_id)
    sha = commit_empty(ds.repo, compose_message(entry.kind, title, data,
                                                entry.message))
    entry.done()
    return sha, title


def recover_orphans(ds, action: str) -> Iterator[dict]:
    """Complete the records of submissions whose process died between
    sbatch and the schedule commit.  Call with the repository lock held.
    """
    orphans = journal.orphans(ds.repo)
    if not orphans:
        return
    index = JobIndex(ds.repo).refresh()
    for entry in orphans:
        status = dict(action=action, ds=ds, logger=lgr,
                      slurm_job_id=entry.job_id)
        if entry.job_id is None:
            kept = entry.set_aside()
            yield get_status_dict(
                status='error',
                message=('a submission of %r (pid %s) ended while sbatch ran, '
                         'so whether Slurm accepted it is unknown: look for '
                         'the job with squeue, cancel it or schedule it '
                         'again; the journal entry is kept in %s',
                         ' '.join(entry.argv), entry.pid, str(kept)),
                **status)
            continue
        if index.find_job(entry.job_id) != (None, None):
            # committed, then the process died before forgetting the entry
            entry.done()
            continue
        sha, title = _record(ds, entry)
        yield get_status_dict(
            status='ok', commit=sha,
            message=('recovered the schedule commit of job %s, whose '
                     'submitting process (pid %s) ended before recording it',
                     entry.job_id, entry.pid),
            **status)


def unsaved_changes(ds, index: JobIndex) -> list[str]:
    """Modified and untracked paths, except those that open jobs are
    writing (their declared outputs and log files)."""
    out = ds.repo.call_git(
        ['status', '--porcelain=v1', '-z', '--untracked-files=all',
         '--ignore-submodules=none'], read_only=True)
    entries = iter(out.split('\0'))
    changed = []
    for entry in entries:
        if not entry:
            continue
        if entry[0] in 'RC':
            next(entries, None)  # the rename's source
        changed.append(entry[3:].rstrip('/'))
    if not changed:
        return []
    owned = [o for r in index.open_jobs() for o in r.data.get('outputs', [])]
    logs = [pattern_regex(p) for r in index.open_jobs()
            for p in r.data.get('slurm_output_patterns') or []]
    return [path for path in changed
            if not any(overlap(path, o) for o in owned)
            and not any(r.match(path) for r in logs)]


def _shorten(paths: list[str], most: int = 3) -> str:
    more = f' and {len(paths) - most} more' if len(paths) > most else ''
    return ', '.join(paths[:most]) + more


def find_conflicts(index: JobIndex, outputs: list[str]) -> list[str]:
    """Descriptions of the open jobs whose outputs overlap `outputs`."""
    conflicts = []
    for record in index.open_jobs():
        clashing = [o for o in record.data.get('outputs', [])
                    if any(overlap(o, mine) for mine in outputs)]
        if clashing:
            conflicts.append(
                f'job {record.job_id} (commit {record.commit[:8]}) writes '
                f'{", ".join(clashing)}')
    return conflicts


def _unlock_or_remove(ds, outputs: list[str]) -> Iterator[dict]:
    """Make declared outputs writable, as ``datalad run`` does: unlock
    annexed files whose content is here, remove those whose content is not.
    """
    existing = GlobbedPaths(outputs, pwd=ds.path).expand_strict() \
        if outputs else []
    if not existing:
        return
    with chpwd(ds.path):
        for res in ds.unlock(path=existing, on_failure='ignore',
                             result_renderer='disabled',
                             return_type='generator'):
            if res['status'] == 'impossible' and res.get('type') == 'file' \
                    and 'cannot unlock' in str(res.get('message')):
                os.unlink(res['path'])
                yield dict(res, action='remove', status='ok',
                           message='removed output without content')
            elif res['status'] == 'error' and \
                    res.get('error_message') == 'File unknown to git':
                # untracked outputs are the job's to overwrite
                continue
            else:
                yield res


def _restore(ds, paths: list[str]):
    """Undo the unlocking and removing of outputs for a job never submitted.
    """
    if paths:
        ds.repo.call_git(['checkout', 'HEAD', '--'] +
                         [op.relpath(p, ds.path) for p in paths])


def _log_files(ds, argv: list[str], job_id: int, *, timeout: float) -> dict:
    """Slurm facts for the schedule record: the job's array task ids, its
    cluster, and its stdout/stderr files relative to the dataset root.

    Placeholders that only a running task can fill in (``%j`` of an array
    task, ``%N``) stay in ``slurm_output_patterns``, which ``finish``
    resolves with what sacct reports.
    """
    job = slurm.describe_submitted(job_id, timeout=timeout)
    options, script_lines = argv, None
    script_index = _script_index(argv, job.workdir, job.command)
    if script_index is not None:
        options = argv[:script_index]
        script_lines = _head_of(op.join(job.workdir, argv[script_index]))
    patterns = []
    for pattern in log_patterns(options, script_lines,
                                is_array=job.array_tasks is not None):
        rel = op.relpath(op.normpath(op.join(job.workdir, pattern)), ds.path)
        # logs outside the dataset are not ours to save
        if not rel.startswith(op.pardir) and rel not in patterns:
            patterns.append(rel)
    values = {'x': job.name, 'u': job.user, 'n': 0, 't': 0, 's': 'batch',
              'A': job_id}
    resolved = []
    for task in job.array_tasks or [None]:
        if task is None:
            values.update(j=job_id, a='4294967294', J=f'{job_id}.batch')
        else:
            # a task's own job id is known only once it runs
            values.update(j=None, a=task, J=None)
        for pattern in patterns:
            path = resolve_pattern(pattern, values)
            if path is not None and path not in resolved:
                resolved.append(path)
    return {
        'slurm_array': job.array_tasks,
        'slurm_cluster': job.cluster,
        'slurm_outputs': resolved,
        'slurm_output_patterns': patterns,
    }


def _script_index(argv: list[str], workdir: str, command: str | None,
                  ) -> int | None:
    """Where the job script is in `argv`, by Slurm's word: its command is
    the script's path followed by the script's arguments."""
    if not command:
        return None
    for i, arg in enumerate(argv[1:], start=1):
        path = op.normpath(op.join(workdir, arg))
        if command == path or command.startswith(path + ' '):
            return i
    return None


def _head_of(script: str, max_lines: int = 500) -> list[str] | None:
    try:
        with open(script, errors='replace') as f:
            return [line for _, line in zip(range(max_lines), f)]
    except OSError:
        return None
