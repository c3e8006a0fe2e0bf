"""FINISH commits of several scratch jobs (``finish --octopus N``): the
branches up to N scratch jobs delivered, merged by one commit (an octopus
merge) whose message carries the FINISH record of each of them (see
:func:`~datalad_slurm.records.format.compose_chunk`).

The jobs go together in the order their FINISH commits would have one by
one.  A chunk ends before a job that depends on one of its jobs, whose
FINISH must come first.  A job whose branches change a path that a job of
the chunk changes differently is merged alone, in a FINISH commit of its
own right after the chunk, as one merge per job would have had it (its
version is the one in the tree), and its result says so.  A job whose
outputs would come in where the work tree has changes of its own is left
alone too (and refused, as it would be alone), with the jobs that depend on
it, so that it never holds up the others.  Jobs that are not scratch jobs
keep a FINISH commit each, as without chunks.  Once a chunk's commit is
made, the branches of all its jobs are deleted in one transaction.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import (
    dataclass,
    field,
)

from ..modes.scratch.merge import forget
from ..records.format import (
    chunk_title,
    compose_chunk,
)
from ..repo.commit import (
    CommitPlan,
    changed_in_work_tree,
)
from .record import FinishPlan

lgr = logging.getLogger('datalad.slurm.finish')

# what a chunk's path comes from, for a path saved from the work tree (a
# Slurm log file) rather than taken from a branch
WORK_TREE = 'the work tree'


@dataclass
class _Chunk:
    plans: list[FinishPlan] = field(default_factory=list)
    # path -> (job id, fast-import file command or WORK_TREE)
    changes: dict[str, tuple[int, str]] = field(default_factory=dict)
    # every directory above a path of `changes`
    directories: set[str] = field(default_factory=set)

    @property
    def names(self) -> set[str | None]:
        return {p.name for p in self.plans}

    def clash(self, plan: FinishPlan) -> tuple[int, str] | None:
        """(job id, path) of a job of the chunk that changes a path `plan`
        changes too, differently (or a file where `plan` has a directory,
        or the other way round); None if there is none."""
        for path, change in _changes(plan):
            mine = self.changes.get(path)
            if mine and mine[1] != change or path in self.directories:
                return (mine[0] if mine else self._below(path)), path
            for above in _above(path):
                if above in self.changes:
                    return self.changes[above][0], path
        return None

    def add(self, plan: FinishPlan):
        self.plans.append(plan)
        for path, change in _changes(plan):
            self.changes[path] = (plan.record['slurm_job_id'], change)
            self.directories.update(_above(path))

    def _below(self, directory: str) -> int:
        return next(job for path, (job, _) in self.changes.items()
                    if path.startswith(directory + '/'))


def chunked(ds, plans: list[FinishPlan], size: int) -> list[CommitPlan]:
    """`plans` (in the order of their commits) as the plans of the commits
    to make: the scratch jobs' FINISH commits by chunks of up to `size`
    jobs, each in one plan of several (its `members`)."""
    if size <= 1:
        return list(plans)
    blocked = changed_in_work_tree(
        ds.repo, [p for plan in plans if plan.scratch is not None
                  for p in plan.merged])
    # jobs left alone where they would be refused, and the jobs after them
    alone: set[str | None] = set()
    out: list[CommitPlan] = []
    chunk = _Chunk()

    def close():
        nonlocal chunk
        if chunk.plans:
            out.append(_combined(ds, chunk.plans))
        chunk = _Chunk()

    for plan in plans:
        if set(plan.requires) & chunk.names:
            # its FINISH comes after theirs
            close()
        if plan.scratch is None or blocked.intersection(plan.merged) or \
                alone.intersection(plan.requires):
            if plan.scratch is not None:
                alone.add(plan.name)
            out.append(plan)
            continue
        clash = chunk.clash(plan)
        if clash:
            close()
            out.append(_merged_alone(plan, *clash))
            continue
        chunk.add(plan)
        if len(chunk.plans) >= size:
            close()
    close()
    return out


def _combined(ds, plans: list[FinishPlan]) -> CommitPlan:
    """The plan of one commit of all of `plans`."""
    if len(plans) == 1:
        return plans[0]
    names = {p.name for p in plans}
    title = chunk_title([p.outcome for p in plans])
    # the outcome of each member is told on its own, and the first to be
    # told of the commit forgets the branches of all, in one go
    forgotten = []

    def forget_all(sha: str):
        if not forgotten:
            forgotten.append(sha)
            forget(ds, [p.scratch for p in plans])

    for plan in plans:
        plan.on_success = forget_all
    return CommitPlan(
        key=(title, None),
        paths=list(dict.fromkeys(p for plan in plans for p in plan.paths)),
        message=compose_chunk(title, [(p.title, p.record) for p in plans]),
        requires=tuple(dict.fromkeys(
            r for plan in plans for r in plan.requires if r not in names)),
        merges=tuple(dict.fromkeys(m for plan in plans for m in plan.merges)),
        merged={path: change for plan in plans
                for path, change in plan.merged.items()},
        members=tuple(plans))


def _merged_alone(plan: FinishPlan, job_id: int, path: str) -> FinishPlan:
    """`plan`, its result telling why it has a FINISH commit of its own."""
    why = (f'merged alone, after job {job_id}: both changed {path}, '
           f'differently; this job\'s version is the one in the tree, the '
           f'other\'s in the history')
    lgr.warning('Job %s %s', plan.record['slurm_job_id'], why)
    title, job_status = plan.key
    plan.key = (f'{title} ({why})', dict(job_status, merged_alone=why))
    return plan


def _changes(plan: FinishPlan):
    """(path, what the commit takes there) of all a job's commit changes."""
    yield from plan.merged.items()
    for path in plan.paths:
        yield path, WORK_TREE


def _above(path: str):
    """The directories `path` is in, nearest first."""
    while True:
        path = posixpath.dirname(path)
        if not path:
            return
        yield path
