"""The extension is found by DataLad: a broken entry point would only log a
warning, so these tests are the only thing that notices."""

import subprocess
from importlib import import_module
from importlib.metadata import entry_points

import datalad.api
from datalad.api import Dataset
from datalad.interface.base import Interface

COMMANDS = ('schedule', 'finish', 'reschedule', 'jobs', 'slurm-doctor')


def test_entry_point_loads():
    points = {ep.name: ep for ep in entry_points(group='datalad.extensions')}
    description, interfaces = points['slurm'].load()
    assert description
    assert [spec[2] for spec in interfaces] == list(COMMANDS)
    for module, cls, _, _ in interfaces:
        assert issubclass(getattr(import_module(module), cls), Interface)


def test_python_api():
    for name in COMMANDS:
        name = name.replace('-', '_')
        assert callable(getattr(datalad.api, name))
        assert callable(getattr(Dataset, name))


def test_command_line_help():
    for name in COMMANDS:
        out = subprocess.run(['datalad', name, '--help'], check=True,
                             capture_output=True, text=True).stdout
        assert f'datalad {name}' in out
        assert 'Examples' in out


def test_config_items_registered():
    from datalad.interface.common_cfg import definitions
    for name in ('datalad.slurm.lock-timeout', 'datalad.slurm.query-timeout',
                 'datalad.slurm.query-interval', 'datalad.slurm.output-grace'):
        assert name in definitions


def test_datalad_configuration_lists_the_items():
    """As for any extension, once DataLad is told to load it."""
    out = subprocess.run(
        ['datalad', '-c', 'datalad.extensions.load=slurm', 'configuration',
         'dump'], check=True, capture_output=True, text=True).stdout
    for name in ('datalad.slurm.lock-timeout=300.0',
                 'datalad.slurm.query-timeout=60.0',
                 'datalad.slurm.backend=cli'):
        assert name in out
