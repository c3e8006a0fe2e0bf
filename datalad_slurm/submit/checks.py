"""What a submission checks of the work tree against the open jobs: what
counts as unsaved, and which outputs clash."""

from __future__ import annotations

from ..records.index import JobIndex
from ..repo.worktree import changed_paths


def unsaved_changes(ds, index: JobIndex) -> list[str]:
    """Modified and untracked paths, except those that open jobs are
    writing (their declared outputs and log files)."""
    changed = changed_paths(ds.repo)
    if not changed:
        return []
    return [path for path in changed if not index.paths.claimed(path)]


def find_conflicts(index: JobIndex, outputs: list[str]) -> list[str]:
    """Descriptions of the open jobs whose outputs overlap `outputs`."""
    return [f'job {record.job_id} (commit {record.commit[:8]}) writes '
            f'{", ".join(clashing)}'
            for record, clashing in index.paths.writing(outputs)]
