"""Worker slots shared by every local job of a dataset: how many tasks run
at once on this machine (``datalad.slurm.local-workers``).

A slot is a lock file under ``.git/datalad-slurm/local/slots/``, held
(flock) while a task runs; the kernel releases it when its holder dies, so
a crashed runner never keeps a slot.
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# how often a task waiting for a slot looks again
POLL = 0.05


class Slots:
    def __init__(self, directory: Path, count: int):
        self.directory = directory
        self.count = count

    @contextmanager
    def held(self) -> Iterator[int]:
        """Wait for a free slot and hold it; yields its number."""
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            for number in range(self.count):
                f = open(self.directory / str(number), 'a')
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                try:
                    yield number
                finally:
                    f.close()
                return
            time.sleep(POLL)
