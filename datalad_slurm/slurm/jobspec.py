"""Slurm's small languages: array task specifications, file name patterns,
sbatch's command line, host lists, durations and memory sizes."""

from __future__ import annotations

import os.path
import re
import shlex
from typing import Iterable


def expand_task_ids(spec: str) -> list[int]:
    """Expand an array specification such as ``0-9:2,15%4`` to task ids.

    The ``%N`` throttle suffix is ignored; steps (``:N``) are honoured.
    """
    spec = spec.split('%', 1)[0]
    ids: set[int] = set()
    for part in filter(None, spec.split(',')):
        part, _, step = part.partition(':')
        first, _, last = part.partition('-')
        ids.update(range(int(first), int(last or first) + 1,
                         int(step) if step else 1))
    return sorted(ids)


def array_throttle(spec: str) -> int | None:
    """The ``%N`` of an array specification: at most N tasks at once."""
    _, percent, limit = spec.partition('%')
    return int(limit) if percent else None


# %[width]<letter>; '%%' is a literal percent sign.  The letters are those
# of sbatch's "filename pattern" section.
_PATTERN = re.compile(r'%(\d*)([%AabJjNnsTtux])')


# what Slurm puts for %a in the log name of a job that is no array job
NO_ARRAY_TASK = '4294967294'


def placeholder_values(job_id: int, task_id: int | None,
                       raw_job_id: int | None, *, name: str | None = None,
                       user: str | None = None, node: str | None = None,
                       ) -> dict[str, str | int | None]:
    """Values of the filename placeholders for the batch step of one job,
    or of one array task; None where not known (yet).

    Parameters
    ----------
    job_id
      The id sbatch returned (the array job's id for an array).
    raw_job_id
      The job's or task's own id (%j); an array task gets it only when it
      starts.
    """
    return {
        'A': job_id, 'a': NO_ARRAY_TASK if task_id is None else task_id,
        'j': raw_job_id, 'J': f'{raw_job_id}.batch' if raw_job_id else None,
        'x': name, 'u': user, 'N': node, 'n': 0, 't': 0, 's': 'batch',
    }


def resolve_pattern(pattern: str, values: dict[str, str | int]) -> str | None:
    """Replace Slurm's filename placeholders in `pattern`.

    Parameters
    ----------
    values
      Known values by placeholder letter ('j', 'A', 'a', 'x', 'u', 'N', ...).

    Returns
    -------
    str or None
      None if the pattern uses a placeholder whose value is not known.
    """
    unresolved = False

    def substitute(match: re.Match) -> str:
        nonlocal unresolved
        width, letter = match.groups()
        if letter == '%':
            return '%'
        value = values.get(letter)
        if value is None:
            unresolved = True
            return match.group(0)
        if width and str(value).isdigit():
            return str(value).zfill(int(width))
        return str(value)

    resolved = _PATTERN.sub(substitute, pattern)
    if '\\' in pattern:
        # a backslash anywhere disables all placeholders (sbatch(1))
        return pattern.replace('\\', '')
    return None if unresolved else resolved


def pattern_regex(pattern: str) -> re.Pattern:
    """A regular expression matching every file name `pattern` can give."""
    parts = []
    last = 0
    for match in _PATTERN.finditer(pattern):
        parts.append(re.escape(pattern[last:match.start()]))
        parts.append('%' if match.group(2) == '%' else '[^/]*')
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile(''.join(parts) + r'\Z')


_LOG_OPTIONS = {'-o': 'output', '--output': 'output',
                '-e': 'error', '--error': 'error'}


def log_patterns(argv: list[str], script_lines: list[str] | None,
                 is_array: bool) -> list[str]:
    """The stdout and stderr file patterns of a submission, as sbatch will
    apply them: command-line options over ``#SBATCH`` directives over
    Slurm's defaults.  Relative patterns are relative to the job's working
    directory.  (Slurm's own reports of them are resolved, or wrong for
    array tasks, so they are worked out from the submission instead.)"""
    found: dict[str, str] = {}
    for tokens in [argv[1:]] + [directives(script_lines or [])]:
        for name, value in _log_options(tokens).items():
            found.setdefault(name, value)
    default = 'slurm-%A_%a.out' if is_array else 'slurm-%j.out'
    stdout = found.get('output', default)
    stderr = found.get('error', stdout)
    return [stdout] if stderr == stdout else [stdout, stderr]


def _log_options(tokens: list[str]) -> dict[str, str]:
    found = {}
    tokens = iter(tokens)
    for token in tokens:
        if token == '--':
            break
        name, eq, value = token.partition('=')
        if name in _LOG_OPTIONS and name.startswith('--'):
            found.setdefault(_LOG_OPTIONS[name],
                             value if eq else next(tokens, ''))
        elif token[:2] in _LOG_OPTIONS and len(token) > 2:
            found.setdefault(_LOG_OPTIONS[token[:2]], token[2:])
        elif token in _LOG_OPTIONS:
            found.setdefault(_LOG_OPTIONS[token], next(tokens, ''))
    return found


def sets_option(argv: list[str], script_lines: Iterable[list[str] | None],
                name: str) -> bool:
    """Whether the long option `name` (e.g. '--comment') is given on the
    command line or in the ``#SBATCH`` lines of any of the scripts."""
    for tokens in [argv[1:]] + [directives(lines or [])
                                for lines in script_lines]:
        for token in tokens:
            if token == '--':
                break
            if token == name or token.startswith(name + '='):
                return True
    return False


def script_head(path: str, max_lines: int = 500) -> list[str] | None:
    """The first lines of a job script, where its ``#SBATCH`` lines are;
    None if it cannot be read."""
    try:
        with open(path, errors='replace') as f:
            return [line for _, line in zip(range(max_lines), f)]
    except OSError:
        return None


def directives(lines: list[str]) -> list[str]:
    """Options of the ``#SBATCH`` lines heading a job script (sbatch reads
    them up to the first line of code)."""
    tokens = []
    for line in directive_lines(lines):
        tokens.extend(shlex.split(line.strip()[len('#SBATCH'):],
                                  comments=True))
    return tokens


def directive_lines(lines: list[str] | None) -> list[str]:
    """The ``#SBATCH`` lines heading a job script, verbatim: what a batch
    script that stands in for it carries, so that sbatch reads them as it
    would from the script itself."""
    found = []
    for line in (lines or [])[1:]:
        stripped = line.strip()
        if stripped.startswith('#SBATCH'):
            found.append(line.rstrip('\n'))
        elif stripped and not stripped.startswith('#'):
            break
    return found


class NotABatchScript(ValueError):
    """A job script without the ``#!`` line sbatch requires."""


def interpreter(script: str, script_lines: list[str]) -> list[str]:
    """The interpreter of a job script's ``#!`` line, with its argument
    (the kernel passes what follows the interpreter as one): what a batch
    script that stands in for it runs it with.

    Raises
    ------
    NotABatchScript
      As sbatch would refuse the job script.
    """
    first = script_lines[0] if script_lines else ''
    if not first.startswith('#!'):
        raise NotABatchScript(
            f'sbatch: error: {script} does not look like a batch script: '
            f'the first line must start with #! followed by the path to an '
            f'interpreter')
    program, _, argument = first[2:].strip().partition(' ')
    return [program, argument.strip()] if argument.strip() else [program]


def named_as_script(options: list[str], script_lines: list[str] | None,
                    script: str | None) -> list[str]:
    """sbatch's `options` for a batch script that stands in for the job
    script `script` (None: a ``--wrap`` command): the job keeps the name
    Slurm gives the user's job (the script's file name, or 'wrap') unless
    the user names it, so that ``%x`` in log names means what it did."""
    if option_value(options, script_lines, '--job-name', '-J') is not None:
        return options
    return [*options, f'--job-name='
            f'{os.path.basename(script) if script else "wrap"}']


# sbatch's short options that take a value, and its long options that take
# none (every other long option takes one, as --opt=V or --opt V)
_SHORT_WITH_VALUE = frozenset('AabCcDdeFGiJLMmNnopqStwx')
_LONG_FLAGS = frozenset({
    '--contiguous', '--exclusive', '--get-user-env', '--help', '--hold',
    '--ignore-pbs', '--no-kill', '--no-requeue', '--overcommit',
    '--oversubscribe', '--parsable', '--quiet', '--reboot', '--requeue',
    '--spread-job', '--test-only', '--usage', '--use-min-nodes',
    '--verbose', '--version', '--wait',
})


def script_index(argv: list[str]) -> int:
    """Where sbatch's own options end in `argv`: the index of the job
    script (or len(argv) for a ``--wrap`` job)."""
    i = 1
    while i < len(argv):
        token = argv[i]
        if token == '--':
            return i + 1
        if token.startswith('--'):
            takes_value = '=' not in token and token not in _LONG_FLAGS
            i += 2 if takes_value else 1
        elif token.startswith('-') and len(token) > 1:
            # '-o file' or '-ofile'; flags may be bundled ('-Hv')
            takes_value = token[-1] in _SHORT_WITH_VALUE and \
                len(token) == 2
            i += 2 if takes_value else 1
        else:
            return i
    return len(argv)


# sbatch's short options by their long names
_SHORT_NAMES = {
    'A': 'account', 'a': 'array', 'b': 'begin', 'C': 'constraint',
    'c': 'cpus-per-task', 'D': 'chdir', 'd': 'dependency', 'e': 'error',
    'F': 'nodefile', 'G': 'gpus', 'H': 'hold', 'h': 'help', 'I': 'immediate',
    'i': 'input', 'J': 'job-name', 'k': 'no-kill', 'L': 'licenses',
    'M': 'clusters', 'm': 'distribution', 'N': 'nodes', 'n': 'ntasks',
    'O': 'overcommit', 'o': 'output', 'p': 'partition', 'Q': 'quiet',
    'q': 'qos', 'S': 'core-spec', 's': 'oversubscribe', 't': 'time',
    'V': 'version', 'v': 'verbose', 'W': 'wait', 'w': 'nodelist',
    'x': 'exclude',
}


def option_list(tokens: list[str]) -> list[tuple[str, str | None, str]]:
    """sbatch's options in `tokens` (those before the job script, or of
    ``#SBATCH`` lines) as (long name, value or None for a flag, the option
    as given)."""
    found = []
    tokens = iter(tokens)
    for token in tokens:
        if token == '--':
            break
        if token in _LONG_FLAGS:
            found.append((token[2:], None, token))
        elif token.startswith('--'):
            name, eq, value = token[2:].partition('=')
            if not eq:
                value = next(tokens, '')
                token = f'{token} {value}'
            found.append((name, value, token))
        elif token.startswith('-') and len(token) > 1:
            letter = token[1]
            if letter in _SHORT_WITH_VALUE:
                value = token[2:] or next(tokens, '')
                found.append((_SHORT_NAMES.get(letter, letter), value,
                              f'-{letter} {value}'))
                continue
            # flags may be bundled ('-Hv')
            found.extend((_SHORT_NAMES.get(f, f), None, f'-{f}')
                         for f in token[1:])
    return found


def take_option(argv: list[str], long: str, short: str | None = None,
                ) -> tuple[list[str], list[str]]:
    """The values of one sbatch option given before the job script, and
    `argv` without it."""
    end = script_index(argv)
    values, kept = [], [argv[0]]
    i = 1
    while i < end:
        token = argv[i]
        if token.startswith(long + '='):
            values.append(token[len(long) + 1:])
        elif token == long or (short and token == short):
            values.append(argv[i + 1] if i + 1 < len(argv) else '')
            i += 1
        elif short and token.startswith(short) and len(token) > 2 and \
                not token.startswith('--'):
            values.append(token[2:])
        else:
            kept.append(token)
        i += 1
    return values, kept + argv[end:]


def job_script_head(argv: list[str], cwd: str) -> list[str] | None:
    """The first lines of the job script `argv` submits (relative to
    `cwd`); None for a ``--wrap`` job or a script that cannot be read."""
    start = script_index(argv)
    if start >= len(argv):
        return None
    return script_head(os.path.join(cwd, argv[start]))


def directive_values(script_lines: list[str] | None, long: str,
                     short: str | None = None) -> list[str]:
    """The values of one option in a job script's ``#SBATCH`` lines."""
    tokens = ['sbatch', *directives(script_lines or [])]
    return take_option(tokens + ['script'], long, short)[0]


def option_value(argv: list[str], script_lines: list[str] | None,
                 long: str, short: str | None = None) -> str | None:
    """The value sbatch takes for one option of the command `argv`: the
    last one on the command line, else the last of the job script's
    ``#SBATCH`` lines (`script_lines`); None where neither gives it."""
    given = take_option(argv, long, short)[0] or \
        directive_values(script_lines, long, short)
    return given[-1] if given else None


def expand_hostlist(hostlist: str) -> list[str]:
    """The node names of a Slurm host list such as ``node[1-3,5],gpu01``."""
    names = []
    for part in re.findall(r'[^,\[]+(?:\[[^\]]*\][^,\[]*)*', hostlist):
        match = re.fullmatch(r'([^\[]*)\[([^\]]*)\](.*)', part)
        if not match:
            names.append(part)
            continue
        prefix, ranges, rest = match.groups()
        for item in ranges.split(','):
            first, _, last = item.partition('-')
            for i in range(int(first), int(last or first) + 1):
                names.extend(f'{prefix}{str(i).zfill(len(first))}{tail}'
                             for tail in expand_hostlist(rest) or [''])
    return names


_DURATION = re.compile(
    r'^(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$')
# memory sizes as sacct and squeue print them: '67820K', '4000Mn', '1G'
SIZE = re.compile(r'(?P<n>[\d.]+)(?P<unit>[KMGTPE]?)(?P<per>[nc]?)')
_UNITS = {'': 1, 'K': 2 ** 10, 'M': 2 ** 20, 'G': 2 ** 30, 'T': 2 ** 40,
          'P': 2 ** 50, 'E': 2 ** 60}


def seconds(text: str | None) -> float | None:
    """Slurm's durations ('[D-][HH:]MM:SS[.mmm]') in seconds."""
    match = _DURATION.match(text or '')
    if not match:
        return None
    d, h, m, s = match.group('d', 'h', 'm', 's')
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(m) * 60 + float(s)


def size_bytes(text: str | None, cpus: int | None = None) -> int | None:
    """Slurm's memory sizes ('67820K', '4000M'; 'Mc' per CPU, 'Mn' per
    node) in bytes; sacct's sizes without a unit are bytes."""
    match = SIZE.fullmatch(text or '')
    if not match:
        return None
    value = float(match.group('n')) * _UNITS[match.group('unit')]
    if match.group('per') == 'c':
        value *= cpus or 1
    return int(value)


def compress_task_ids(task_ids: Iterable[int]) -> str:
    """Task ids as the shortest array specification of ranges: ``1-3,7``
    (the inverse of :func:`expand_task_ids`, without steps)."""
    ranges: list[list[int]] = []
    for task in sorted(set(task_ids)):
        if ranges and task == ranges[-1][1] + 1:
            ranges[-1][1] = task
        else:
            ranges.append([task, task])
    return ','.join(str(a) if a == b else f'{a}-{b}' for a, b in ranges)


# sbatch's --time forms: minutes, minutes:seconds, hours:minutes:seconds,
# days-hours, days-hours:minutes, days-hours:minutes:seconds
_TIME_LIMIT = re.compile(
    r'(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?'
    r'|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)')
# the time limits without one
UNLIMITED_TIMES = frozenset({'UNLIMITED', 'INFINITE', '-1'})


def time_limit_seconds(text: str | None) -> int | None:
    """sbatch's ``--time`` value in seconds; None for a value of another
    form (``UNLIMITED`` included)."""
    match = _TIME_LIMIT.fullmatch((text or '').strip())
    if not match:
        return None
    g = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    if match.group('days') is not None:
        return ((g['days'] * 24 + g['dh']) * 60 + g['dm']) * 60 + g['ds']
    if match.group('c') is not None:
        return (g['a'] * 60 + g['b']) * 60 + g['c']
    return g['a'] * 60 + g['b']


def format_time_limit(secs: float) -> str:
    """A time limit for sbatch's ``--time``, rounded up to whole minutes
    (Slurm keeps limits in minutes): ``[D-]HH:MM:00``."""
    minutes = -(-int(secs) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    clock = f'{minutes // 60:02d}:{minutes % 60:02d}:00'
    return f'{days}-{clock}' if days else clock


def memory_bytes(text: str | None) -> int | None:
    """sbatch's ``--mem`` (or ``--mem-per-cpu``) value in bytes: without a
    unit, megabytes; None for a value of another form."""
    match = SIZE.fullmatch((text or '').strip())
    if not match or match.group('per'):
        return None
    unit = match.group('unit') or 'M'
    return int(float(match.group('n')) * _UNITS[unit])


def format_memory(size: float) -> str:
    """A size for sbatch's ``--mem``, rounded up to whole megabytes, in the
    largest unit that keeps it whole: ``2G``, ``1536M``."""
    megabytes = -(-int(size) // 2 ** 20)
    for unit, scale in (('T', 2 ** 20), ('G', 2 ** 10)):
        if megabytes % scale == 0:
            return f'{megabytes // scale}{unit}'
    return f'{megabytes}M'


def set_options(cmd: str, options: list[tuple[str, str | None, str]],
                ) -> str:
    """The sbatch command `cmd` with options set on its command line, each
    ``(long, short or None, value)``: the option's own occurrences before
    the job script are dropped, and ``long=value`` follows sbatch's other
    options, so that it overrides the script's ``#SBATCH`` lines.  The
    script and its arguments are kept as written (placeholders such as
    ``{outputs}`` included)."""
    argv = shlex.split(cmd)
    end = script_index(argv)
    kept = argv
    for long, short, _ in options:
        kept = take_option(kept, long, short)[1]
    head = kept[:script_index(kept)] + [
        f'{long}={value}' for long, _, value in options]
    lexer = shlex.shlex(cmd, posix=True)
    lexer.whitespace_split = True
    for _ in range(end):
        lexer.get_token()
    rest = cmd[lexer.instream.tell():].strip() if end < len(argv) else ''
    return ' '.join(filter(None, [shlex.join(head), rest]))
