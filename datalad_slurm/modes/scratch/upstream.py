"""The outputs of the jobs a scratch job depends on, brought into its
clone before its script runs.

The clone is made at the commit the job was scheduled on, when the jobs
it depends on had not written their outputs yet; Slurm starts it once
they have completed.  Their outputs are then taken from where they are by
now: the FINISH commit of a job finished meanwhile, the branches a scratch
job delivered, or the dataset's work tree, where a job that ran there
left them.  They go into the clone as one commit, the one the job starts
from, so that what the job delivers is its own work only.
"""

from __future__ import annotations

import os
import os.path as op
import shutil
from pathlib import Path

from ...repo.paths import declared_paths
from .clone import (
    START,
    ScratchError,
    run_git,
)
from .layout import ScratchDir


def upstream_spec(records) -> list[dict]:
    """What a job's spec says of the open jobs it depends on."""
    return [dict(commit=r.commit, job_id=r.job_id,
                 outputs=r.data.get('outputs') or [],
                 mark=r.data.get('submission'),
                 scratch=bool(r.data.get('scratch')))
            for r in records]


def bring_in(clone: str, spec: dict) -> str:
    """Put the upstream jobs' outputs into the clone; return the commit the
    job starts from."""
    upstream = spec.get('upstream') or []
    if upstream:
        from datalad.distribution.dataset import Dataset

        from ...records.index import JobIndex
        origin = Dataset(spec['dataset'])
        index = JobIndex(origin.repo).refresh()
        paths = []
        for job in upstream:
            paths.extend(_take(clone, origin, index, job))
        if paths:
            _commit(clone, paths, upstream)
    start = run_git(clone, ['rev-parse', 'HEAD'], 'reading HEAD').strip()
    (Path(clone) / '.git' / START).write_text(start)
    return start


def _take(clone: str, origin, index, job: dict) -> list[str]:
    """Bring one upstream job's outputs in; return the paths taken."""
    finished = index.finished.get(job['commit'])
    if finished:
        return _checkout(clone, finished['finish'], job['outputs'])
    if job['scratch']:
        deliveries = ScratchDir.of(origin.repo, job['mark']).deliveries()
        if not deliveries:
            raise ScratchError(
                f'job {job["job_id"]}, which this job depends on, has '
                f'delivered no work from its scratch clone and is not '
                f'finished; finish it, then submit this job again')
        taken = []
        for note in deliveries.values():
            if note['commit'] != note['base']:
                taken.extend(_checkout(clone, note['commit'], job['outputs']))
        return taken
    # it ran in the dataset's work tree: its outputs are there
    return _copy(origin.path, clone, job['outputs'])


def _checkout(clone: str, commit: str, outputs: list[str]) -> list[str]:
    # an output the job did not write is not in the commit: ask first
    found = run_git(clone, ['ls-tree', '-r', '-z', '--name-only', commit,
                            '--', *outputs],
                    'listing the outputs of a job this one depends on')
    paths = [p for p in found.split('\0') if p]
    if paths:
        run_git(clone, ['checkout', '--quiet', commit, '--', *paths],
                'taking the outputs of a job this one depends on')
    return paths


def _copy(origin: str, clone: str, outputs: list[str]) -> list[str]:
    taken = []
    for path in declared_paths(origin, outputs):
        source, target = op.join(origin, path), op.join(clone, path)
        if not op.lexists(source):
            continue
        if op.lexists(target) and not op.isdir(target):
            os.unlink(target)
        os.makedirs(op.dirname(target), exist_ok=True)
        if op.isdir(source) and not op.islink(source):
            shutil.copytree(source, target, symlinks=True,
                            dirs_exist_ok=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)
        taken.append(path)
    return taken


def _commit(clone: str, paths: list[str], upstream: list[dict]):
    from datalad.distribution.dataset import Dataset
    jobs = ', '.join(str(job['job_id']) for job in upstream)
    for res in Dataset(clone).save(
            path=[op.join(clone, p) for p in paths],
            message=f'[DATALAD SLURM] outputs of job {jobs}, which this job '
                    f'depends on',
            result_renderer='disabled', return_type='generator',
            on_failure='ignore'):
        if res['status'] in ('impossible', 'error'):
            raise ScratchError(f'taking the outputs of job {jobs} into the '
                               f'clone failed: {res.get("path")}: '
                               f'{res.get("message")}')
