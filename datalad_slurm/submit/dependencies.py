"""Jobs that depend on open jobs: found from the data (inputs that open
jobs write), or named with ``--after``, carried to Slurm as
``--dependency=afterok:...``, and kept in the record as ``depends_on``.
"""

from __future__ import annotations

from dataclasses import (
    dataclass,
    field,
)

from ..records.format import Record
from ..records.history import Commits
from ..records.index import JobIndex
from ..slurm.jobspec import (
    directive_values,
    script_index,
    sets_option,
    take_option,
)


class DependencyError(ValueError):
    """A job named as a dependency is not an open job of the dataset."""


@dataclass
class Dependencies:
    """The open jobs a new job waits for, and the inputs it can get now."""
    jobs: list[Record] = field(default_factory=list)
    # inputs no open job writes; the others do not exist yet
    to_get: list[str] = field(default_factory=list)

    @property
    def commits(self) -> list[str]:
        return [r.commit for r in self.jobs]

    def still_open(self, index: JobIndex) -> 'Dependencies':
        """Without the jobs finished meanwhile (their outputs are in the
        work tree now)."""
        return Dependencies([r for r in self.jobs if r.commit in index.open],
                            self.to_get)


def find_dependencies(repo, index: JobIndex, inputs: list[str],
                      after: list[str]) -> Dependencies:
    """The open jobs whose outputs `inputs` (root-relative paths or globs)
    are, contain or lie in, and those `after` names (job ids or commits).

    Raises
    ------
    DependencyError
      Naming an `after` that is no open job of this dataset.
    """
    paths = index.paths
    jobs = {record.commit: record for record, _ in paths.writing(inputs)}
    if after:
        with Commits(repo) as commits:
            for target in after:
                record = _open_job(index, commits, str(target))
                jobs.setdefault(record.commit, record)
    # history order is dependency order: a job can only depend on earlier
    return Dependencies(
        jobs=paths.in_history_order(jobs.values()),
        to_get=[i for i in inputs if not paths.written(i)])


def _open_job(index: JobIndex, commits: Commits, target: str) -> Record:
    if target.isdigit():
        record, finished = index.find_job(int(target))
        if record is not None:
            return record
        if finished:
            raise DependencyError(
                f'--after {target}: job {target} was finished already, so '
                f'there is nothing to wait for; leave it out')
    sha = commits.sha(target)
    if sha is not None and sha in index.open:
        return index.open[sha]
    if sha is not None and sha in index.finished:
        raise DependencyError(
            f'--after {target}: that job was finished already, so there is '
            f'nothing to wait for; leave it out')
    raise DependencyError(
        f'--after {target} names no open job of this dataset (a job id or '
        f'schedule commit; see datalad finish --list-open-jobs)')


def with_dependencies(argv: list[str], lines: list[str] | None,
                      job_ids: list[int]) -> list[str]:
    """`argv` that makes Slurm start the job only after `job_ids` completed
    (every task, for an array), and cancel it should one of them fail; a
    dependency the user gave (on the command line, or in the ``#SBATCH``
    `lines` of the job script) is kept, combined with ours (all must
    hold)."""
    given, argv = take_option(argv, '--dependency', '-d')
    start = script_index(argv)
    if not given:
        # an #SBATCH line would lose to the command line: carry it over
        given = directive_values(lines, '--dependency', '-d')
    ours = 'afterok:' + ':'.join(str(i) for i in job_ids)
    options = [f'--dependency={",".join([*given, ours])}']
    if not sets_option(argv[:start], [lines], '--kill-on-invalid-dep'):
        options.append('--kill-on-invalid-dep=yes')
    return argv[:start] + options + argv[start:]
