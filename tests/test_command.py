"""The command line as datalad run reads it, without its import's cost."""

import pytest
from datalad.api import Dataset
from datalad.core.local.run import (
    format_command,
    normalize_command,
)
from datalad.support.globbedpaths import GlobbedPaths

from datalad_slurm.submit.cmdline import (
    normalize,
    plug_in,
    working_directory,
)


@pytest.mark.parametrize('cmd', [
    'sbatch job.sh', ['sbatch job.sh'], ['sbatch', 'job.sh'],
    ['--', 'sbatch', 'job.sh'], ['--'], [], ['sbatch', 'a b', "it's"],
    ['sbatch', '--wrap=echo "x y"'], b'sbatch job.sh', [b'sbatch', 'j.sh'],
])
def test_normalize_agrees_with_datalad_run(cmd):
    assert normalize(cmd) == normalize_command(cmd)


@pytest.fixture
def plain_ds(tmp_path):
    ds = Dataset(tmp_path / 'ds').create(result_renderer='disabled')
    ds.config.set('datalad.run.substitutions.here', 'HERE', scope='local')
    (ds.pathobj / 'a b.txt').write_text('x')
    return ds


@pytest.mark.parametrize('command', [
    'sbatch job.sh', 'sbatch job.sh {inputs} {outputs}', 'sbatch {here}',
    'sbatch --wrap="echo {{}}"', 'sbatch {pwd} {dspath}',
])
def test_plug_in_agrees_with_datalad_run(plain_ds, command):
    values = dict(pwd=plain_ds.path, dspath=plain_ds.path)

    def globbed():
        return dict(inputs=GlobbedPaths(['*.txt'], pwd=plain_ds.path),
                    outputs=GlobbedPaths(['out'], pwd=plain_ds.path))
    assert plug_in(plain_ds, command, **values, **globbed()) == \
        format_command(plain_ds, command, **values, **globbed())


def test_plug_in_refuses_unknown_placeholder(plain_ds):
    with pytest.raises(KeyError):
        plug_in(plain_ds, 'sbatch {nosuch}')


def test_working_directory(plain_ds, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert working_directory(plain_ds) == plain_ds.path
    assert working_directory(plain_ds.path) == str(tmp_path)
    assert working_directory(None) == str(tmp_path)
