"""Path normalisation and overlap, the rules behind output refusals."""

import pytest

from datalad_slurm.repo.paths import (
    Claimed,
    OutsideDataset,
    Within,
    is_outside,
    is_within,
    overlap,
    root_relative,
    spelled_within,
)

OUTPUTS = ['models/gold', 'logs/*.txt', 'single']


@pytest.mark.parametrize('path, claimed', [
    ('models/gold', True), ('models/gold/w.bin', True), ('models', True),
    ('models/silver', False), ('modelsx', False), ('logs/a.txt', True),
    ('logs/sub/b', False), ('logs/x.txt/inside', True), ('logs', True),
    ('single', True), ('singles', False), ('other', False),
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


def test_top_level_glob_claims_only_its_matches():
    """-o '*.csv' must not hide every other change from the dirty check."""
    claimed = Claimed(['*.csv'])
    assert 'table.csv' in claimed
    assert 'notes.txt' not in claimed
    assert 'data/table.csv' not in claimed
    assert not overlap('*.csv', 'models/gold')
    assert overlap('*.csv', 'a.csv/part')
    assert overlap('res/*/m', 'res/x')


@pytest.mark.parametrize('glob, name, matches', [
    ('[!a]b', 'cb', True), ('[!a]b', 'ab', False), ('[]]x', ']x', True),
    ('a[0-9]?', 'a1z', True), ('a[0-9]?', 'ab', False), ('[x', '[x', True),
    ('a^[^b]', 'a^^', True),
])
def test_globs_match_as_fnmatch(glob, name, matches):
    assert (name in Claimed([glob])) is matches


def test_dotted_names_are_inside(tmp_path):
    """A directory named '..logs' is within the dataset."""
    assert not is_outside('..logs/x')
    assert is_outside('../logs')
    assert root_relative(str(tmp_path), str(tmp_path), ['..logs/a']) == [
        '..logs/a']
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'link').symlink_to(tmp_path / 'sub')
    assert spelled_within(str(tmp_path), str(tmp_path / 'link')) == \
        str(tmp_path / 'sub')
    assert spelled_within(str(tmp_path / 'sub'), str(tmp_path)) is None


@pytest.mark.parametrize('path', [
    'out/1', 'out/1/a', 'out/12', 'out', 'logs/7.out', 'logs/7.outx',
    'deep/er/still/f', 'x'])
def test_within_agrees_with_is_within(path):
    owned = [('a', ['out/1', 'logs/7.out']), ('b', ['out/12']),
             ('c', ['deep/er']), ('d', ['out/1/a'])]
    assert sorted(Within(owned).owners(path)) == [
        owner for owner, paths in owned if is_within(path, paths)]


def test_within_the_whole_dataset():
    assert Within([('a', ['.']), ('b', ['x'])]).owners('x/y') == ['a', 'b']
