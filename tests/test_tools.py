"""The benchmark keeps working (its figures are not judged here)."""

import json
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / 'tools'


def test_bench_quick(slurm_cluster):
    out = subprocess.run([sys.executable, str(TOOLS / 'bench'), '--quick',
                          '--json', '--timeout', '300'],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    measured = {row['what'] for row in rows}
    assert 'schedule a trivial job' in measured
    assert any(m.startswith('list ') for m in measured)
    assert any(m.startswith('finish one job') for m in measured)
    # every measurement took something; a count (how many jobs got the
    # lock at once) may be none
    zero = [row for row in rows if row['unit'] != 'jobs' and
            not row['value'] > 0]
    assert not zero, zero
