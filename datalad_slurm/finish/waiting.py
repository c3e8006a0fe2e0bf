"""``datalad finish --wait``: finish jobs as they end, until none is left
or the wait times out.

One batched Slurm query per round, with the pause between rounds growing
from 1 s to 30 s; Ctrl-C ends the wait between rounds, so that nothing is
left half done (a round's commits are made, or not, as a whole).
"""

from __future__ import annotations

import logging
import time
from typing import (
    Callable,
    Iterator,
)

from datalad.interface.results import get_status_dict
from datalad.log import log_progress

from ..records.format import Record
from ..records.index import JobIndex
from .round import (
    Round,
    ask_slurm,
    finish_round,
)

lgr = logging.getLogger('datalad.slurm.finish')

FIRST_PAUSE = 1.0
LONGEST_PAUSE = 30.0


def wait_and_finish(records: list[Record],
                    finish_round: Callable[[list[Record]], Iterator[dict]],
                    status: dict, *, timeout: float | None,
                    ) -> Iterator[dict]:
    """Run `finish_round` on the records still running until none is, or
    `timeout` seconds (None: no limit) have passed; then report the jobs
    still running as ``finish`` does without waiting.

    `finish_round` yields results and returns the records still running.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    total = len(records)
    progress = f'datalad-slurm-wait-{id(records)}'
    log_progress(lgr.info, progress, 'Waiting for %d jobs', total,
                 total=total, label='Waiting', unit=' jobs ended')
    pause = FIRST_PAUSE
    running = records
    try:
        while running:
            running = yield from finish_round(running)
            log_progress(lgr.info, progress, '%d of %d jobs ended',
                         total - len(running), total,
                         update=total - len(running))
            if not running:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 1.5, LONGEST_PAUSE)
    except KeyboardInterrupt:
        lgr.info('Stopped waiting: interrupted')
    finally:
        log_progress(lgr.info, progress, 'Done waiting')
    for record in running:
        yield get_status_dict(
            status='impossible', slurm_job_id=record.job_id,
            message=('job %s is still running, or its declared outputs '
                     'are not there yet; stopped waiting for it '
                     '(--wait-timeout, or interrupted)', record.job_id),
            **status)


def finish_as_they_end(ds, index: JobIndex, selected: list[Record],
                       how: Round, status: dict, timeout: float | None):
    """Finish each job of `selected` as it ends, one round at a time."""
    how.waiting = True

    def one_round(records):
        statuses = yield from ask_slurm(ds, records, status)
        if statuses is None:
            return []
        return (yield from finish_round(ds, index.refresh(), records,
                                        statuses, status, how))
    yield from wait_and_finish(selected, one_round, status, timeout=timeout)
