"""How datalad-slurm's results look on a terminal."""

from __future__ import annotations

import itertools
import shlex

from datalad.interface.utils import generic_result_renderer
from datalad.support import ansi_colors as ac
from datalad.ui import ui

from ..records.split import label
from ..util.bulk import builds_many

LIST_ACTION = 'list-open-jobs'
REPORT_ACTION = 'reschedule-report'
JOBS_ACTION = 'jobs'
TABLE_ACTIONS = (LIST_ACTION, REPORT_ACTION, JOBS_ACTION)


def render_result(res, **kwargs):
    """Per-result renderer: tables are drawn by :func:`render_tables` once
    all results are in; 'notneeded' results are shown too, since "job 12
    was finished already" is an answer the user asked for."""
    if res.get('action') in TABLE_ACTIONS and res.get('status') == 'ok' \
            and 'slurm_job_id' in res:
        return
    if res.get('dry_run') and res.get('status') == 'ok':
        render_dry_run(res)
        return
    if res.get('status') == 'notneeded':
        ui.message('{action}(notneeded): {msg}'.format(
            action=res.get('action'), msg=_text(res.get('message'))))
        return
    generic_result_renderer(res)


def render_dry_run(res):
    """A dry run's submission, as ``datalad run --dry-run`` shows its
    command: a heading, then one labelled item a line or block."""
    ui.message(ac.color_word(f'{res["action"]} dry run: nothing submitted',
                             ac.MAGENTA))
    again = [f'{res["rescheduled_job_id"]} '
             f'({res["rescheduled_commit"][:8]})'] \
        if 'rescheduled_job_id' in res else []
    items = [('submits again', again),
             ('location', [res.get('path')]),
             ('sbatch command', [shlex.join(res['sbatch_cmd'])]),
             ('inputs to get', res.get('inputs')),
             ('inputs open jobs write', res.get('pending_inputs')),
             ('outputs to make writable', res.get('outputs')),
             ('waits for jobs', [
                 f'{job} ({commit[:8]})' for job, commit in
                 zip(res.get('waits_for') or [], res.get('depends_on') or [])
             ] + [f'{job} (submitted again before it)'
                  for job in res.get('waits_for_rescheduled') or []]),
             ('job files to write', list(res.get('job_files') or []))]
    for key, values in items:
        if values:
            ui.message(' {key}:{sep}{values}'.format(
                key=ac.color_word(key, ac.BOLD),
                sep='\n  ' if len(values) > 1 or key.startswith('sbatch')
                else ' ',
                values='\n  '.join(map(str, values))))


def render_check(res, **kwargs):
    """One line per check of slurm-doctor: its status, name, and what it
    found."""
    if 'check' not in res:
        generic_result_renderer(res)
        return
    status = res.get('status') or ''
    ui.message('{status} {check} {msg}'.format(
        status=ac.color_status(status) + ' ' * (10 - len(status)),
        check=res['check'].ljust(15), msg=_text(res.get('message'))))


@builds_many
def render_tables(results, tables=None):
    """Summary renderer: one aligned table per table action, each followed
    by its footer's line if it has one.

    `tables` holds (action, columns, footer) triples, default: the open
    jobs' list and the reschedule report; columns are (title, cell of a
    result) pairs, and a footer makes a line of the table's results.
    """
    tables = tables or _TABLES
    rows = {action: [] for action, _, _ in tables}
    for r in results:
        if r.get('action') in rows and r.get('status') == 'ok' and \
                'slurm_job_id' in r:
            rows[r['action']].append(r)
    for action, columns, footer in tables:
        if rows[action]:
            for lines in table_lines(
                    [title for title, _ in columns],
                    [_cells(map(get, rows[action]))
                     for _, get in columns]):
                ui.message(lines)
            if footer is not None:
                ui.message(footer(rows[action]))


_LIST_COLUMNS = (
    ('JOB', lambda r: label(r.get('slurm_job_id'),
                            r.get('slurm_later_parts'))),
    ('STATE', lambda r: r.get('slurm_state')),
    ('WAITS FOR', lambda r: r.get('waits_for')),
    ('COMMIT', lambda r: (r.get('commit') or '')[:8]),
    ('OUTPUTS', lambda r: ' '.join(r.get('outputs') or [])),
)

_REPORT_COLUMNS = (
    ('COMMIT', lambda r: (r.get('commit') or '')[:8]),
    ('JOB', lambda r: r.get('slurm_job_id')),
    ('AFTER', lambda r: ','.join(map(str, r.get('depends_on') or []))),
    ('PWD', lambda r: r.get('pwd')),
    ('COMMAND', lambda r: r.get('cmd')),
    ('OUTPUTS', lambda r: ' '.join(r.get('outputs') or [])),
)

_TABLES = ((LIST_ACTION, _LIST_COLUMNS, None),
           (REPORT_ACTION, _REPORT_COLUMNS, None))


def table_lines(header: list[str], columns: list[list[str]],
                chunk: int = 1000):
    """The lines of a table of `columns` (each a list of cells) under
    `header`: left-aligned columns separated by two spaces, the last one
    not padded; `chunk` lines at a time, joined, so that a table of
    thousands of jobs is written without all of its lines in one string,
    and with few writes (each costs DataLad's ui a clearing of progress
    bars)."""
    pads = [max(len(title), max(map(len, cells), default=0))
            for title, cells in zip(header[:-1], columns)]
    # a row in one call, not one per cell
    line = '  '.join([f'{{:<{w}}}' for w in pads] + ['{}']).format
    rows = zip(*columns) if columns else iter(())
    first = [header]
    while True:
        lines = [
            line(*row).rstrip()
            for row in itertools.chain(first, itertools.islice(rows, chunk))]
        if not lines:
            return
        yield '\n'.join(lines)
        first = []


def _cells(values) -> list[str]:
    """The cells of a column of `values`; most are texts already."""
    return [v if v.__class__ is str else '' if v is None else str(v)
            for v in values]


def _text(message) -> str:
    if isinstance(message, tuple):
        return message[0] % message[1:]
    return message or ''
