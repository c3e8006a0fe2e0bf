"""Files under ``.git/datalad-slurm/`` that other processes read while
they are written."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_json(path: Path, content, *, durable: bool = False,
               sort_keys: bool = True):
    """Write `content` as JSON to `path` by write-then-rename, so that a
    reader sees the old file or the new one, never half of one.  `durable`:
    on disk before the rename, for what must outlive a crash of the
    machine.  `sort_keys` False keeps the dicts' order, where it means
    something."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            # dumps, not dump: dump encodes in Python, chunk by chunk
            f.write(json.dumps(content, sort_keys=sort_keys))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
