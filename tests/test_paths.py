"""Path normalisation and overlap, the rules behind output refusals."""

import random

import pytest

from datalad_slurm.repo.paths import (
    Claimed,
    Outputs,
    OutsideDataset,
    Within,
    is_glob,
    is_outside,
    is_within,
    lies_within,
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


_NAMES = ['a', 'b', 'out', 'x.txt', 'y.txt']
_WILDCARDS = ['*', '*.txt', '?', '[ab]', '[!a]*']
# not what root_relative makes, but Outputs must answer for them as the
# functions it stands in for do
_ODD = ['.', '', 'a/', './a', 'a//b', 'out/./x.txt']


def _random_spec(rng: random.Random, globs: bool = True) -> str:
    if rng.random() < 0.08:
        return rng.choice(_ODD)
    parts = [rng.choice(_NAMES) for _ in range(rng.randint(1, 4))]
    if globs and rng.random() < 0.3:
        parts[rng.randrange(len(parts))] = rng.choice(_WILDCARDS)
    return '/'.join(parts)


def _random_outputs(rng: random.Random) -> list[str]:
    return [_random_spec(rng) for _ in range(rng.randint(0, 3))]


@pytest.mark.parametrize('seed', range(40))
def test_outputs_answer_as_asked_of_each_output(seed):
    rng = random.Random(seed)
    owned = {owner: _random_outputs(rng)
             for owner in range(rng.randint(1, 30))}
    index = Outputs()
    for owner, outputs in owned.items():
        index.add(owner, outputs)
    # jobs finish, and records are taken in again
    for owner in rng.sample(sorted(owned), len(owned) // 3):
        index.discard(owner)
        del owned[owner]
    for owner in rng.sample(sorted(owned), len(owned) // 4):
        owned[owner] = _random_outputs(rng)
        index.add(owner, owned[owner])
    everything = [o for outputs in owned.values() for o in outputs]
    claimed = Claimed(o for o in everything if o)
    for spec in [_random_spec(rng) for _ in range(60)] + _ODD:
        assert sorted(index.overlapping(spec)) == [
            (owner, position) for owner, outputs in sorted(owned.items())
            for position, output in enumerate(outputs)
            if overlap(output, spec)], spec
        assert index.hold(spec) is \
            any(lies_within(spec, o) for o in everything), spec
        if not is_glob(spec):
            assert (spec in index) is (spec in claimed), spec


def test_outputs_forget_what_no_owner_writes_any_more():
    index = Outputs()
    index.add('one', ['a/b/c', 'out/*.txt'])
    index.add('two', ['a/b/d'])
    assert 'a/b' in index and 'out/x.txt' in index
    index.discard('one')
    assert 'a/b' in index and 'a/b/c' not in index
    assert 'out/x.txt' not in index and 'out' not in index
    index.discard('two')
    assert 'a' not in index
    assert list(index.overlapping('.')) == []
    index.discard('never added')
