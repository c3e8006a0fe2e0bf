"""The checks of ``datalad slurm-doctor``'s test job, run on a compute
node by ``datalad slurm-doctor --in-job DATASET_ID``: what a job that
finishes itself relies on there.

That the command runs at all shows that ``datalad`` and this extension
are on the node's PATH; the rest is asked one check at a time.
"""

from __future__ import annotations

import socket
from typing import Iterator

import datalad
from datalad.interface.results import get_status_dict
from datalad.support.exceptions import CapturedException
from datalad.support.external_versions import external_versions

import datalad_slurm

from ..repo.fslocks import repository_lock_problem
from ..repo.lock import repository_lock

# seconds the test job waits for the repository lock
LOCK_WAIT = 60.0


def check_node(ds, dataset_id: str, status: dict) -> Iterator[dict]:
    node = socket.gethostname()
    status = dict(status, node=node)
    yield get_status_dict(
        check='node', status='ok',
        message=('a job on %s runs datalad %s with datalad-slurm %s', node,
                 datalad.__version__, datalad_slurm.__version__),
        **status)
    if ds.id != dataset_id:
        yield get_status_dict(
            check='node-dataset', status='error',
            message=('on %s, %s is not the dataset the test job was '
                     'submitted from (dataset id %s there, %s here): the '
                     'nodes must see the dataset at the same path', node,
                     ds.path, dataset_id, ds.id),
            **status)
        return
    annex = external_versions['cmd:annex']
    yield get_status_dict(
        check='node-git-annex', status='ok' if annex else 'error',
        message=('git-annex %s on %s', annex, node) if annex else
        ('git-annex is not on PATH on %s, where datalad finish saves '
         'annexed outputs: install it there, or load it in the job '
         'script', node),
        **status)
    problem = repository_lock_problem(str(ds.repo.dot_git))
    if problem:
        yield get_status_dict(check='node-lock', status='error',
                              message=('on %s: %s', node, problem), **status)
        return
    try:
        with repository_lock(ds.repo, LOCK_WAIT):
            pass
    except Exception as e:
        yield get_status_dict(
            check='node-lock', status='error',
            exception=CapturedException(e),
            message=('the test job on %s could not take the repository '
                     'lock: %s', node, CapturedException(e)),
            **status)
        return
    yield get_status_dict(
        check='node-lock', status='ok',
        message=('the test job on %s took the repository lock', node),
        **status)
