"""Command docstrings that DataLad's ``build_doc`` can extend on any Python.
"""

from __future__ import annotations

import textwrap

# DataLad appends its Examples section indented by four spaces, matching a
# class docstring as Python < 3.13 keeps it; Python 3.13 strips that
# indentation at compile time, and the mixed result no longer parses as
# reStructuredText ("Unexpected section title").
_INDENT = ' ' * 4


def indented_doc(cls):
    """Class decorator, applied before ``build_doc``: indent the docstring
    body by four spaces, whatever the Python version did to it."""
    first, _, body = (cls.__doc__ or '').partition('\n')
    cls.__doc__ = first + '\n' + textwrap.indent(textwrap.dedent(body),
                                                 _INDENT)
    return cls
