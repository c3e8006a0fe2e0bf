"""DataLad extension for Slurm batch jobs: schedule, finish, reschedule."""

from importlib.metadata import (
    PackageNotFoundError,
    version,
)

from . import config  # noqa: F401  (registers the configuration items)

__docformat__ = 'restructuredtext'

command_suite = (
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

try:
    __version__ = version('datalad-slurm')
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = '0+unknown'
