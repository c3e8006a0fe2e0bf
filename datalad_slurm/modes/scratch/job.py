"""The batch script of a scratch job, run inside the allocation:

``python -m datalad_slurm.modes.scratch.job JOB_DIRECTORY [SCRIPT_ARGS...]``

It makes the clone (:mod:`.clone`), runs the user's job script there (or
its ``--wrap`` command) with the script's arguments, from the submission
directory mapped into the clone, delivers the work as a branch of the
dataset and removes the clone.  Its exit status is the script's, so that
Slurm's state of the job is the script's; a step of its own that fails
ends the job at once with a message in the job's log, which finish reports
too.

The script sees ``SLURM_SUBMIT_DIR`` mapped into the clone, so that the
common ``cd "$SLURM_SUBMIT_DIR"`` stays in it, and
``DATALAD_SLURM_SCRATCH_JOB`` naming the job's directory, by which
``datalad finish $SLURM_JOB_ID`` in the script finds the dataset.
"""

from __future__ import annotations

import os
import os.path as op
import signal
import subprocess
import sys
import time
from pathlib import Path

from ...slurm.env import own_job
from . import clone as scratch_clone
from . import upstream
from .layout import ScratchDir

# exit status of a job whose own steps failed, as sbatch's own errors end
SETUP_FAILED = 1
# signals that end the job script early: its work is not delivered
STOPPING = (signal.SIGTERM, signal.SIGINT)
# the variable by which a finish inside the script finds its job
JOB_DIRECTORY = 'DATALAD_SLURM_SCRATCH_JOB'
# and the clone it runs in
CLONE = 'DATALAD_SLURM_SCRATCH_CLONE'


def say(message: str):
    print(f'{time.ctime()}: datalad-slurm scratch: {message}', flush=True)


def script_argv(clone: str, spec: dict, args: list[str]) -> list[str]:
    """How the job script runs: by the interpreter of its ``#!`` line, as
    slurmd runs a batch script, or the ``--wrap`` command by /bin/sh."""
    if spec.get('wrap') is not None:
        return ['/bin/sh', '-c', spec['wrap']]
    script = spec['script']
    path = script if op.isabs(script) else op.join(clone, script)
    try:
        with open(path, errors='replace') as f:
            first = f.readline()
    except OSError as e:
        raise scratch_clone.ScratchError(
            f'cannot read the job script {script} in the clone: '
            f'{e.strerror}') from e
    if not first.startswith('#!'):
        raise scratch_clone.ScratchError(
            f'the job script {script} does not start with #!, so it cannot '
            f'be run as a batch script')
    return [*first[2:].strip().split(None, 1), path, *args]


def run(directory: ScratchDir, args: list[str]) -> int:
    spec = directory.spec()
    job_id, task_id = own_job()
    started_in = os.getcwd()
    try:
        clone = scratch_clone.make(spec, job_id, task_id)
    except scratch_clone.ScratchError as e:
        return _failed(directory, task_id, str(e))
    say(f'running in {clone}, a clone of {spec["dataset"]} at '
        f'{spec["base"][:8]}')
    try:
        status = _run_in(clone, spec, directory, args, job_id, task_id,
                         started_in)
    finally:
        if spec.get('keep'):
            say(f'the clone is kept (datalad.slurm.keep-scratch): {clone}')
        else:
            try:
                scratch_clone.remove(clone)
            except OSError as e:
                say(f'could not remove the clone {clone}: {e}')
    return status


def _run_in(clone: str, spec: dict, directory: ScratchDir, args: list[str],
            job_id: int, task_id: int | None, started_in: str) -> int:
    try:
        upstream.bring_in(clone, spec)
        scratch_clone.prepare(clone, spec)
        argv = script_argv(clone, spec, args)
        cwd = scratch_clone.workdir(clone, spec, started_in)
    except scratch_clone.ScratchError as e:
        return _failed(directory, task_id, str(e))
    env = dict(os.environ, **{JOB_DIRECTORY: str(directory.path),
                              CLONE: clone})
    if env.get('SLURM_SUBMIT_DIR'):
        env['SLURM_SUBMIT_DIR'] = scratch_clone.workdir(
            clone, spec, env['SLURM_SUBMIT_DIR'])
    child = subprocess.Popen(argv, cwd=cwd, env=env)
    stopped = []

    # Slurm's --signal=B:... reaches this process alone, the batch shell
    def forward(number, frame):
        if number in STOPPING:
            stopped.append(number)
        child.send_signal(number)
    for number in (*STOPPING, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, forward)
    status = child.wait()
    code = status if status >= 0 else 128 - status
    if scratch_clone.delivered(clone):
        # by the script's own datalad finish, which may have committed the
        # job's log already: a line more would change a committed file
        _silence()
    if stopped:
        say(f'signal {stopped[0]}: the job script ended with {code}; its '
            f'work is not delivered')
        return code
    try:
        note = scratch_clone.deliver(clone, spec, directory, job_id, task_id,
                                     code)
    except scratch_clone.ScratchError as e:
        return _failed(directory, task_id, str(e), code or SETUP_FAILED)
    except Exception as e:
        return _failed(directory, task_id, f'delivering the work failed: '
                       f'{e!r}', code or SETUP_FAILED)
    say(f'delivered as branch {note["branch"]}' if note.get('branch') else
        'the job changed no output, so there is no branch to deliver')
    if note.get('left_out'):
        say(f'left out, outside the declared outputs: '
            f'{", ".join(note["left_out"])}')
    return code


def _silence():
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _failed(directory: ScratchDir, task_id: int | None, why: str,
            code: int = SETUP_FAILED) -> int:
    print(f'datalad-slurm scratch: {why}', file=sys.stderr, flush=True)
    try:
        directory.failed(task_id, why)
    except OSError as e:
        # finished and removed already: the log has the reason
        print(f'datalad-slurm scratch: cannot note it for finish: {e}',
              file=sys.stderr, flush=True)
    return code


def main(argv: list[str]) -> int:
    if own_job() is None:
        print('datalad-slurm scratch: this is the batch script of a job '
              'datalad schedule --scratch submits, and runs in no Slurm job '
              '(no SLURM_JOB_ID)', file=sys.stderr)
        return 2
    return run(ScratchDir(Path(argv[0])), argv[1:])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
