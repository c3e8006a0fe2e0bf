"""Command docstrings keep one indentation, however Python stored them, so
that DataLad's appended Examples section parses (Python 3.13 strips the
indentation that older releases keep)."""

import textwrap

import pytest

from datalad_slurm.commands.finish import Finish
from datalad_slurm.commands.helpdoc import indented_doc
from datalad_slurm.commands.reschedule import Reschedule
from datalad_slurm.commands.schedule import Schedule


@pytest.mark.parametrize('command', [Schedule, Finish, Reschedule])
def test_docstring_indented_whatever_python_did(command):
    first, _, body = command.__doc__.partition('\n')
    assert all(line.startswith('    ') for line in body.splitlines()
               if line.strip())
    stripped = type('AsOnPython313', (), {
        '__doc__': first + '\n' + textwrap.dedent(body)})
    assert indented_doc(stripped).__doc__ == command.__doc__
