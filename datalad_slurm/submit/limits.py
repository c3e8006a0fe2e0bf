"""The site's limits a submission must keep, asked before anything
changes: a job the cluster would refuse is refused here, with the limit
named, rather than by sbatch once the outputs are writable."""

from __future__ import annotations

from ..slurm.jobspec import (
    directive_values,
    take_option,
)
from ..slurm.site import Site


def array_spec(argv: list[str], script_lines: list[str] | None,
               ) -> str | None:
    """The ``--array`` of an sbatch command: the command line's, else the
    job script's ``#SBATCH`` line's; None for no array job."""
    given = take_option(argv, '--array', '-a')[0] or \
        directive_values(script_lines, '--array', '-a')
    return given[-1] if given else None


def limits_problem(site: Site, argv: list[str],
                   script_lines: list[str] | None) -> str | None:
    """Why `site` would refuse the sbatch command `argv`, or None."""
    spec = array_spec(argv, script_lines)
    if spec is None:
        return None
    try:
        return site.array_problem(spec)
    except ValueError:
        return (f'cannot read the array specification {spec!r}; give task '
                f'ids as sbatch takes them, such as --array=0-9 or 1,3,5')
