"""Path normalisation and overlap, the rules behind output refusals."""

import pytest

from datalad_slurm.repo.paths import (
    Claimed,
    OutsideDataset,
    overlap,
    root_relative,
)

OUTPUTS = ['models/gold', 'logs/*.txt', 'single']


@pytest.mark.parametrize('path, claimed', [
    ('models/gold', True), ('models/gold/w.bin', True), ('models', True),
    ('models/silver', False), ('modelsx', False), ('logs/a.txt', True),
    ('logs/sub/b', True), ('single', True), ('singles', False),
    ('other', False),
])
def test_claimed_agrees_with_overlap(path, claimed):
    assert (path in Claimed(OUTPUTS)) is claimed
    assert any(overlap(path, o) for o in OUTPUTS) is claimed


def test_whole_dataset_output_claims_everything():
    assert 'any/thing' in Claimed(['.'])
    assert overlap('.', 'x')


def test_root_relative(tmp_path):
    root = str(tmp_path)
    sub = str(tmp_path / 'sub')
    assert root_relative(root, sub, ['a', './b/', '../c', 'd/../e']) == [
        'sub/a', 'sub/b', 'c', 'sub/e']
    with pytest.raises(OutsideDataset):
        root_relative(root, sub, ['../../x'])
    with pytest.raises(OutsideDataset):
        root_relative(root, root, ['/etc/passwd'])
