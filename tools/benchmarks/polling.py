"""Polling: the questions (RPCs asking about jobs, partitions, nodes) a
``datalad finish --wait`` sends slurmctld and slurmdbd per minute while
jobs run, as the daemons' own statistics count them (sdiag, sacctmgr show
stats), against a naive poller of the same jobs."""

from __future__ import annotations

import re
import time

from .core import Bench

# job N sleeps 2 + N * STEP seconds (the shell's arithmetic is integer)
SLEEPER = ('#!/bin/sh\nsleep $((2 + $1 * {step}))\nmkdir -p "out/$1" && '
           'echo "$SLURM_JOB_ID" > "out/$1/r"\n')


def bench_polling(b: Bench, sizes):
    """`count` jobs ending one after another over `span` seconds
    (``sizes['polling']``): the RPCs per minute of finish --wait finishing
    them, without and with datalad.slurm.query-interval=10, against squeue
    and sacct asked about them every second until they have ended."""
    count, span = sizes['polling']
    naive = _rates(b, f'naive-{count}', count, span,
                   lambda ds, ids: _naive(b, ids))
    ref = 'squeue + sacct each second'
    for name, argv in (
            ('finish --wait', ['datalad', 'finish', '--wait']),
            ('finish --wait, query-interval 10 s',
             ['datalad', '-c', 'datalad.slurm.query-interval=10', 'finish',
              '--wait'])):
        ctld, dbd = _rates(b, f'{name[-4:].strip()}-{count}', count, span,
                           lambda ds, ids: b.run(*argv, cwd=ds.path))
        # a query is one squeue (its jobs and partitions: two RPCs) and
        # one or two sacct
        b.row(f'polling {count} jobs: slurmctld RPCs/min, {name}', ctld,
              'RPC/min', naive[0], ref,
              target='<= 12' if 'interval' in name else None)
        b.row(f'polling {count} jobs: slurmdbd RPCs/min, {name}', dbd,
              'RPC/min', naive[1], ref,
              target='<= 12' if 'interval' in name else None)


def _rates(b: Bench, name: str, count: int, span: int,
           poll) -> tuple[float, float]:
    """(slurmctld, slurmdbd) questions per minute while `poll(ds, ids)`
    follows `count` jobs that end over `span` seconds."""
    ds = b.dataset(f'polling-{name}')
    (ds.pathobj / 'jobs' / 'sleep.sh').write_text(
        SLEEPER.format(step=max(1, span // count)))
    (ds.pathobj / 'logs').mkdir()
    (ds.pathobj / 'logs' / '.gitkeep').write_text('')
    b.run('datalad', 'save', '-m', 'sleeper', cwd=ds.path)
    ids = b.submit(ds, count, hold=False, script=['jobs/sleep.sh'])
    b.run('sdiag', '--reset')
    b.run('sacctmgr', '-i', 'clear', 'stats')
    start = time.monotonic()
    poll(ds, ids)
    minutes = (time.monotonic() - start) / 60
    ctld = _questions(b.run('sdiag').stdout)
    dbd = _questions(b.run('sacctmgr', 'show', 'stats').stdout)
    return ctld / minutes, dbd / minutes


def _naive(b: Bench, ids: list[int]):
    jobs = '--jobs=' + ','.join(map(str, ids))
    while True:
        b.run('sacct', '--noheader', '--parsable2', jobs,
              '--format=JobID,State')
        if not b.run('squeue', '--noheader', jobs, '--format=%i',
                     check=False).stdout.strip():
            return
        time.sleep(1)


def _questions(out: str) -> int:
    """The questions counted in sdiag's or sacctmgr show stats' list by
    message type: slurmctld's REQUEST_..._INFO and slurmdbd's DBD_GET_...,
    but for those of the statistics themselves. The rest are the jobs' own
    (starts, ends, steps), whoever polls them."""
    return sum(int(count) for kind, count in re.findall(
        r'^\s*((?:REQUEST_\w+_INFO\w*|DBD_GET_\w+))\s+\(\s*\d+\)\s+'
        r'count:(\d+)', out, re.M)
        if kind not in ('REQUEST_STATS_INFO', 'DBD_GET_STATS'))
