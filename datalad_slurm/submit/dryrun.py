"""A submission's dry run (``schedule --dry-run``, ``reschedule
--dry-run``): everything a submission does up to sbatch, with nothing
written.

It refuses what a submission refuses, with the same results: it runs the
same :func:`.submission.check` and :func:`.submission.plan_submission`,
the mode only planning the job's files (:class:`..modes.base.Plan`), never
writing them.  It takes neither the journal nor the repository lock: it
writes nothing that the lock guards, and git shows its reads a state some
commit made; what changes after it, a real submission asks again under
the lock.  Like ``datalad run --dry-run``, it names the inputs it would
get (globs expanded) without getting them, and the outputs it would make
writable without touching them.
"""

from __future__ import annotations

import logging
import shlex
from typing import Iterator

from datalad.interface.results import get_status_dict
from datalad.support.globbedpaths import GlobbedPaths

from .. import config
from ..modes.base import Refused
from ..slurm.status import SlurmError
from .request import Request
from .submission import (
    check,
    plan_submission,
    refused_result,
    with_mark,
    writable_paths,
)

lgr = logging.getLogger('datalad.slurm.dryrun')


def dry_run(ds, request: Request, **extra) -> Iterator[dict]:
    """The result of submitting `request`, nothing submitted: status 'ok'
    with ``dry_run``, the sbatch command, the inputs it would get, the
    outputs it would make writable and the open jobs it would wait for;
    or the refusal a submission would give.  `extra`: keys added to the
    result."""
    status = dict(action=request.action, ds=ds, logger=lgr)
    try:
        checked = check(ds, request)
        submission, plan = plan_submission(
            ds, request, checked,
            local=checked.backend.name == config.LOCAL)
    except (Refused, SlurmError) as e:
        yield refused_result(e, status)
        return
    record = submission.record
    argv = with_mark(submission.argv, submission.script_lines,
                     record['submission']) or submission.argv
    to_get = checked.depends.to_get
    yield get_status_dict(
        status='ok', dry_run=True, sbatch_cmd=argv, cmd=request.cmd,
        pwd=request.pwd, mode=request.mode.name,
        inputs=_expanded(ds, to_get) + _expanded(ds, request.extra_inputs),
        # inputs that open jobs write: not got, waited for
        pending_inputs=[i for i in request.inputs if i not in to_get],
        outputs=writable_paths(request),
        depends_on=record['depends_on'],
        waits_for=[r.job_id for r in submission.depends_on],
        job_files=plan.files,
        message=('would submit: %s', shlex.join(argv)),
        **extra, **status)


def _expanded(ds, specs: list[str]) -> list[str]:
    return GlobbedPaths(specs, pwd=ds.path).expand() if specs else []
