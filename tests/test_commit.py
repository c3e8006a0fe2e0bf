"""Commits of many plans at once, made with fast-import: each holds
exactly its own paths, whatever else the work tree holds; no Slurm
needed."""

import pytest

from datalad_slurm.repo import commit as commit_module
from datalad_slurm.repo.commit import (
    CommitPlan,
    commit_plans,
)

from conftest import git


@pytest.mark.parametrize('pathspecs', [commit_module.PATHSPECS, 1])
def test_each_commit_holds_its_own_paths(dataset, monkeypatch, pathspecs):
    """With more paths than PATHSPECS, git is asked for whole top-level
    directories: what lies there besides the plans' paths stays out."""
    monkeypatch.setattr(commit_module, 'PATHSPECS', pathspecs)
    ds = dataset
    for name in ('out/keep', 'other/gone'):
        (ds.pathobj / name).parent.mkdir(exist_ok=True)
        (ds.pathobj / name).write_text('before')
    ds.save(result_renderer='disabled')
    (ds.pathobj / 'other' / 'gone').unlink()
    (ds.pathobj / 'out' / 'keep').unlink()
    # an annexed file unlocked by hand: a type change
    (ds.pathobj / 'out' / 'keep').write_text('changed, not by a job')
    for i in (1, 2):
        (ds.pathobj / 'out' / str(i)).mkdir()
        (ds.pathobj / 'out' / str(i) / 'r').write_text(str(i))
    before = git(ds, 'rev-parse', 'HEAD').strip()
    done = commit_plans(ds, [
        CommitPlan(key=i, paths=[f'out/{i}'], message=f'job {i}\n')
        for i in (1, 2)])
    assert [(plan.key, problems) for plan, _, problems in done] == \
        [(1, []), (2, [])]
    shas = [sha for _, sha, _ in done]
    assert git(ds, 'rev-list', f'{before}..HEAD').split() == shas[::-1]
    for i, sha in zip((1, 2), shas):
        assert git(ds, 'show', '--format=', '--name-only', sha).split() == \
            [f'out/{i}/r']
    assert sorted(git(ds, 'status', '--porcelain').splitlines()) == [
        ' D other/gone', ' T out/keep']
