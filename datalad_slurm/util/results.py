"""Many results of one kind, made cheaply."""

from __future__ import annotations

from datalad.interface.results import get_status_dict


def shared_fields(common: dict, **fields) -> dict:
    """What every result of a long series (one per job) has in common,
    made once by ``get_status_dict`` from the command's `common` ones and
    `fields`; each result is then ``dict(shared, ...)``.

    Without the logger: DataLad logs each result's message that comes with
    one, formatting it first even where the log level then drops it, which
    cost a listing of 10,000 jobs more than making their results; the
    results are the answer, and are rendered."""
    return get_status_dict(
        **{k: v for k, v in common.items() if k != 'logger'}, **fields)
