"""The site's limits a submission must keep, asked before anything
changes: a job the cluster would refuse is refused here, with the limit
named, rather than by sbatch once the outputs are writable."""

from __future__ import annotations

from ..slurm.jobspec import option_value
from ..slurm.site import Site


def array_spec(argv: list[str], script_lines: list[str] | None,
               ) -> str | None:
    """The ``--array`` of an sbatch command; None for no array job."""
    return option_value(argv, script_lines, '--array', '-a')


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
