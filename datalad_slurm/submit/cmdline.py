"""The job's command line as ``datalad run`` reads it, and its inputs.

DataLad keeps these helpers in ``datalad.core.local.run``, whose import
brings in save, get, install, unlock and their interfaces: about 40 ms, a
sixth of a ``datalad schedule`` call from the shell. They are imported here
only when a call needs them, which a plain ``sbatch job.sh`` does not.
"""

from __future__ import annotations

from datalad.distribution.dataset import Dataset
from datalad.utils import (
    ensure_unicode,
    getpwd,
    join_cmdline,
)


def normalize(cmd) -> str:
    """`cmd` as the one string ``datalad run`` records.

    A list of one item is taken as it is (the command line's quoted
    compound shell command); a leading ``--`` only separates the command
    from the options before it; other lists are joined with shell quoting.
    """
    if not isinstance(cmd, list):
        return ensure_unicode(cmd)
    items = [ensure_unicode(c) for c in cmd]
    if len(items) == 1 and items[0] != '--':
        return items[0]
    if items and items[0] == '--':
        items = items[1:]
    return join_cmdline(items)


def plug_in(ds: Dataset, command: str, **values) -> str:
    """`command` with ``datalad run``'s placeholders filled in.

    Raises KeyError for an unknown placeholder, as ``datalad run`` does.
    """
    # str.format leaves a text without braces as it is, whatever the values
    if '{' not in command and '}' not in command:
        return command
    from datalad.core.local.run import format_command
    return format_command(ds, command, **values)


def working_directory(dataset) -> str:
    """Where a command given `dataset` (as the user gave it) runs: the
    dataset's root when it is a Dataset instance, otherwise the current
    directory, as ``datalad run`` decides."""
    return dataset.path if isinstance(dataset, Dataset) else getpwd()


def prepare_inputs(root: str, inputs, extra_inputs):
    """Results of getting `inputs` and `extra_inputs` (GlobbedPaths, or
    None), installing subdatasets on the way, as ``datalad run`` does."""
    if not inputs and not extra_inputs:
        return
    from datalad.core.local import run
    yield from run.prepare_inputs(root, inputs, extra_inputs=extra_inputs)
