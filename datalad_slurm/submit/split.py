"""Submitting an array job beyond the site's MaxArraySize as several jobs
(``schedule --array-split``), recorded in one schedule commit.

:func:`plan` says which parts an array takes (none: the array is
submitted unchanged), :func:`plan_parts` plans each part's batch script
(:func:`datalad_slurm.slurm.split.part_script`) and sbatch command, and
:func:`submit_parts` submits them in turn, each journaled before its
sbatch runs; a part sbatch refuses has those before it cancelled.
"""

from __future__ import annotations

import logging
import os.path as op
import re
import shutil
from pathlib import Path

from .. import backends
from ..modes.base import (
    Plan,
    Refused,
    Submission,
)
from ..records import (
    journal,
    logfiles,
)
from ..records.split import PARTS
from ..repo import state
from ..slurm.jobspec import (
    NotABatchScript,
    array_throttle,
    compress_task_ids,
    expand_task_ids,
    interpreter,
    log_patterns,
    named_as_script,
    script_index,
    take_option,
)
from ..slurm.site import Site
from ..slurm.split import (
    Part,
    part_script,
    split_tasks,
)
from ..slurm.status import (
    SlurmError,
    SlurmTimeout,
)
from .limits import array_spec

lgr = logging.getLogger('datalad.slurm.split')


def plan(site: Site, argv: list[str], script_lines: list[str] | None,
         ) -> list[Part] | None:
    """The parts of the array `argv` submits, where the site cannot take
    it whole; None where it can.

    Raises
    ------
    Refused
      For no array, or one that cannot be read, and for a job script the
      parts' batch scripts could not run.
    """
    spec = array_spec(argv, script_lines)
    if spec is None:
        raise Refused('--array-split splits an array job, and this sbatch '
                      'command gives no --array; leave --array-split out')
    try:
        tasks = expand_task_ids(spec)
        array_throttle(spec)
    except ValueError as e:
        raise Refused(f'cannot read the array specification {spec!r}; give '
                      f'task ids as sbatch takes them, such as --array=0-9 '
                      f'or 1,3,5') from e
    if not tasks:
        raise Refused(f'the array specification {spec!r} names no tasks')
    if site.max_array_size is None or max(tasks) < site.max_array_size:
        return None
    parts = split_tasks(tasks, site.max_array_size)
    _check_script(argv, script_lines)
    shared = _shared_logs(argv, script_lines, parts)
    if shared:
        raise Refused(
            f'the log file pattern {shared} names a task by its task id '
            f'(%a) but not by its job\'s (%A, %j): the parts of a split '
            f'array each number their tasks from their smallest, and would '
            f'write the same files; add %A to it')
    return parts


def _check_script(argv: list[str], script_lines: list[str] | None):
    """Refuse a job script each part's batch script could not run with
    the interpreter of its ``#!`` line."""
    argv = take_option(argv, '--wrap')[1]
    end = script_index(argv)
    if end >= len(argv):
        return
    if script_lines is None:
        raise Refused(f'cannot read the job script {argv[end]}, which '
                      f'each part runs; check its path')
    try:
        interpreter(argv[end], script_lines)
    except NotABatchScript as e:
        raise Refused(str(e)) from e


def _shared_logs(argv: list[str], script_lines: list[str] | None,
                 parts: list[Part]) -> str | None:
    """A log file pattern that two parts' tasks of the same local id would
    share, or None."""
    seen: set[int] = set()
    overlap = False
    for part in parts:
        overlap = overlap or not seen.isdisjoint(part.local_tasks)
        seen.update(part.local_tasks)
    if not overlap:
        return None
    end = script_index(argv)
    return next((p for p in log_patterns(argv[:end], script_lines, True)
                 if re.search(r'%\d*a', p) and
                 not re.search(r'%\d*[AjJ]', p)), None)


def plan_parts(ds, submission: Submission, parts: list[Part],
               plan: Plan) -> Plan:
    """Each part's sbatch command as ``submission.parts``, the parts in the
    schedule record, and `plan` extended by the parts' batch scripts, which
    its ``write`` writes."""
    argv, record = submission.argv, submission.record
    spec = array_spec(argv, submission.script_lines)
    throttle = array_throttle(spec)
    tasks = expand_task_ids(spec)
    wraps, argv = take_option(argv, '--wrap')
    argv = take_option(argv, '--array', '-a')[1]
    end = script_index(argv)
    options, script, args = argv[:end], None, []
    if end < len(argv):
        script = op.normpath(op.join(submission.pwd_abs, argv[end]))
        args = argv[end + 1:]
    options = named_as_script(options, submission.script_lines, script)
    directory = scripts_dir(ds.repo, record['submission'])
    commands, scripts = [], {}
    for k, part in enumerate(parts):
        path = str(directory / f'part-{k}.sh')
        # the job script was checked by plan()
        scripts[path] = part_script(part, tasks, script,
                                    submission.script_lines,
                                    wraps[-1] if wraps else None)
        commands.append([*options, f'--array={part.array_spec(throttle)}',
                         path, *args])
    record[PARTS] = [{'offset': p.offset, 'tasks': list(p.tasks)}
                     for p in parts]
    submission.parts = commands

    def write():
        plan.write()
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in scripts.items():
            Path(path).write_text(text)

    return Plan(plan.argv, write=write, files={**plan.files, **scripts})


def scripts_dir(repo, mark: str):
    return state.split(repo.dot_git) / mark


def discard(repo, mark: str | None):
    """Remove the parts' batch scripts: Slurm keeps its copies."""
    if mark:
        shutil.rmtree(scripts_dir(repo, mark), ignore_errors=True)


class PartRefused(SlurmError):
    """sbatch refused a part of a split array; those before it are
    cancelled."""


def submit_parts(backend: backends.Submitter, entry: journal.Entry, *,
                 cwd: str, timeout: float):
    """Submit the parts of `entry` not submitted yet, in turn, each
    journaled before its sbatch runs.

    Raises
    ------
    SlurmTimeout
      When whether a part was accepted is not known: the entry says
      which, and :func:`.complete.complete` looks for it.
    PartRefused
      When sbatch refused a part: the parts submitted before it are
      cancelled (or the message says which could not be).
    """
    for k, part in enumerate(entry.parts):
        if part['job_id'] is not None:
            continue
        entry.part_is(k, journal.SUBMITTING)
        try:
            job_id = backend.submit(part['argv'], cwd=cwd, timeout=timeout)
        except SlurmTimeout:
            entry.part_is(k, journal.UNKNOWN)
            raise
        except SlurmError as e:
            raise PartRefused(
                f'sbatch refused part {k + 1} of {len(entry.parts)} (tasks '
                f'{_tasks(entry, k)}): {e}; '
                f'{cancel_submitted(backend, entry, timeout)[0]}') from e
        entry.part_is(k, journal.SUBMITTED, job_id)
    entry.submitted(entry.parts[0]['job_id'])


def _tasks(entry: journal.Entry, k: int) -> str:
    return compress_task_ids(entry.data[PARTS][k]['tasks'])


def cancel_submitted(backend: backends.Submitter, entry: journal.Entry,
                     timeout: float) -> tuple[str, bool]:
    """Cancel the parts of `entry` submitted so far; what became of them,
    for a message, and whether no job is left."""
    submitted = [p['job_id'] for p in entry.parts if p['job_id'] is not None]
    if not submitted:
        return 'no part was submitted', True
    ids = ', '.join(map(str, submitted))
    try:
        backend.cancel(submitted, timeout=timeout,
                       cluster=entry.data.get('slurm_cluster_option'))
    except SlurmError as e:
        lgr.warning('Cannot cancel jobs %s: %s', ids, e)
        return (f'the parts submitted before, jobs {ids}, could not be '
                f'cancelled ({e}): cancel them (scancel '
                f'{ids.replace(",", "")})'), False
    return f'the parts submitted before, jobs {ids}, are cancelled', True


def describe_parts(ds, backend: backends.Submitter, entry: journal.Entry,
                   timeout: float) -> dict:
    """The Slurm facts of the schedule record of a split array (see
    :func:`datalad_slurm.records.logfiles.at_submission`): the first
    part's, with every part's task ids and log files, and each part's job
    id and submit time."""
    found = None
    parts = []
    for part, submitted in zip(entry.data[PARTS], entry.parts):
        facts = logfiles.at_submission(
            ds, backend, submitted['argv'], submitted['job_id'],
            timeout=timeout, cluster=entry.data.get('slurm_cluster_option'))
        parts.append(dict(part, job_id=submitted['job_id'],
                          slurm_submit_time=facts['slurm_submit_time']))
        if found is None:
            found = dict(facts, slurm_array=[], slurm_outputs=[])
        found['slurm_array'].extend(part['tasks'])
        found['slurm_outputs'].extend(
            f for f in facts['slurm_outputs']
            if f not in found['slurm_outputs'])
    found[PARTS] = parts
    return found


def without_slurm(entry: journal.Entry) -> dict:
    """The split array's keys of its schedule record, where Slurm has
    forgotten the parts (a recovery long after a crash)."""
    parts = [dict(part, job_id=submitted['job_id'])
             for part, submitted in zip(entry.data[PARTS], entry.parts)]
    return {'slurm_array': [t for p in parts for t in p['tasks']],
            PARTS: parts}
