"""``datalad slurm-doctor``'s test job: a short job that runs the checks
of :mod:`.injob` on a compute node, as a job of the dataset would run
there, and reports them back through its log file.

The script and the log are kept under ``.git/datalad-slurm/doctor/``, out
of the work tree: the test changes nothing of the dataset. A log whose
job failed is kept, for reading.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException

from .. import (
    backends,
    config,
)
from ..backends import cli
from ..backends.pacing import paced
from ..repo import state
from ..slurm.status import SlurmError

# seconds at least between two looks at whether the test job has ended
POLL = 2.0


def run_test_job(ds, options: list[str], wait: float,
                 status: dict) -> Iterator[dict]:
    """Submit the test job with the sbatch `options`, wait up to `wait`
    seconds for it to end, and yield what it found."""
    timeout = config.get(ds, config.QUERY_TIMEOUT)
    directory = state.doctor(ds.repo.dot_git)
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / 'test-job.sh'
    script.write_text(
        '#!/bin/sh\n'
        '# datalad slurm-doctor: the checks of a job of this dataset\n'
        f'exec datalad -f json slurm-doctor -d {shlex.quote(ds.path)} '
        f'--in-job {shlex.quote(ds.id)}\n')
    script.chmod(0o755)
    log = directory / 'test-job-%j.out'
    argv = ['sbatch', '--job-name=datalad-slurm-doctor', f'--output={log}',
            '--time=10', *options, str(script)]
    status = dict(status, check='test-job')
    try:
        job_id = backends.submitter(ds).submit(argv, cwd=ds.path,
                                               timeout=timeout)
    except SlurmError as e:
        yield get_status_dict(
            status='error', exception=CapturedException(e),
            message=('could not submit the test job (%s): %s; give the '
                     'sbatch options your site needs with --job-option',
                     ' '.join(argv), str(e)),
            **status)
        return
    status['slurm_job_id'] = job_id
    job = _wait(ds, job_id, wait, timeout)
    if job is None:
        cli.call(['scancel', str(job_id)], timeout=timeout)
        yield get_status_dict(
            status='error',
            message=('the test job %s did not end within %.0f s, and was '
                     'cancelled: it may wait in the queue (squeue -j %s '
                     'tells why); run the doctor again with --job-option '
                     'for a partition that starts jobs soon, or a longer '
                     '--job-wait', job_id, wait, job_id),
            **status)
        return
    path = directory / f'test-job-{job_id}.out'
    text = path.read_text(errors='replace') if path.exists() else ''
    found = [_result(line) for line in text.splitlines()
             if line.startswith('{')]
    found = [r for r in found if r and r.get('action') == 'slurm-doctor']
    for res in found:
        yield get_status_dict(**dict(
            status, check=res.get('check'), node=res.get('node'),
            status=res['status'], message=_message(res.get('message'))))
    if not found:
        tail = ' | '.join(text.strip().splitlines()[-3:]) or 'nothing'
        yield get_status_dict(
            status='error',
            message=('the test job %s ended (%s) without checking anything; '
                     'it printed: %s (all of it is in %s): datalad and '
                     'datalad-slurm must be on PATH in jobs, as on this '
                     'machine', job_id, job.describe(), tail, str(path)),
            **status)
    elif all(r['status'] == 'ok' for r in found):
        path.unlink()


def _wait(ds, job_id: int, wait: float, timeout: float):
    """Slurm's word on the job once it has ended; None if it did not end
    within `wait` seconds.  Asked at the dataset's pace, as every query
    of it is."""
    deadline = time.monotonic() + wait
    interval = max(POLL, config.get(ds, config.QUERY_INTERVAL))
    while True:
        with paced(ds.repo.dot_git, interval=interval, timeout=timeout):
            job = cli.query([job_id], timeout=timeout)[job_id]
        if job.known and job.phase != 'running':
            return job
        if time.monotonic() > deadline:
            return None


def _result(line: str) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _message(message) -> str:
    """A message as the JSON renderer gives it: a string, or a format and
    its arguments."""
    if isinstance(message, list) and message:
        try:
            return message[0] % tuple(message[1:])
        except (TypeError, ValueError):
            return ' '.join(map(str, message))
    return str(message or '')
