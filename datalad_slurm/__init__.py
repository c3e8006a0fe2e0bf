"""DataLad extension for Slurm batch jobs: schedule, finish, reschedule.

Importing the package imports nothing of DataLad: a job's own finish
(``datalad-slurm-done``, :mod:`.finish.done`) is a module of it, and must
cost a job next to nothing.  DataLad asks for :data:`command_suite`, which
registers the configuration items (:mod:`.config`) first.
"""

__docformat__ = 'restructuredtext'

_COMMAND_SUITE = (
    "Slurm batch jobs as reproducible pairs of commits",
    [
        ('datalad_slurm.commands.schedule', 'Schedule', 'schedule', 'schedule'),
        ('datalad_slurm.commands.finish', 'Finish', 'finish', 'finish'),
        ('datalad_slurm.commands.reschedule', 'Reschedule', 'reschedule',
         'reschedule'),
        ('datalad_slurm.commands.jobs', 'Jobs', 'jobs', 'jobs'),
        ('datalad_slurm.commands.doctor', 'SlurmDoctor', 'slurm-doctor',
         'slurm_doctor'),
    ]
)


def __getattr__(name):
    if name == 'command_suite':
        from . import config  # noqa: F401  (registers the configuration)
        return _COMMAND_SUITE
    if name == '__version__':
        from importlib.metadata import (
            PackageNotFoundError,
            version,
        )
        try:
            return version('datalad-slurm')
        except PackageNotFoundError:  # a source tree never installed
            return '0+unknown'
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
