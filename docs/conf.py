"""Sphinx configuration of the datalad-slurm documentation.

The command reference comes from the interfaces' own docstrings (built by
DataLad's ``build_doc``) and the configuration reference from the items
registered with DataLad, so neither is written twice.
"""

from pathlib import Path

import datalad_slurm

project = 'datalad-slurm'
author = 'The datalad-slurm developers'
copyright = '2026, The datalad-slurm developers'
release = datalad_slurm.__version__
extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
]
napoleon_google_docstring = False
exclude_patterns = ['_build']
html_theme = 'sphinx_rtd_theme'
autodoc_default_options = {'undoc-members': False}


def write_configuration_reference(app):
    from datalad.interface.common_cfg import definitions
    lines = ['Configuration', '=============', '',
             'datalad-slurm registers its configuration items with '
             'DataLad. ``datalad configuration dump`` documents them, with '
             'their values, in a process that loads the extension: '
             '``datalad -c datalad.extensions.load=slurm configuration '
             'dump``, or always after ``git config --global --add '
             'datalad.extensions.load slurm``. Set them like any git or '
             'DataLad setting, e.g. ``git config datalad.slurm.lock-timeout '
             '600``.', '']
    for name in sorted(n for n in definitions if n.startswith('datalad.slurm')):
        item = definitions[name]
        title, text = item['ui'][1]['title'], item['ui'][1]['text']
        lines += [f'``{name}``', f'   **{title}** (default: '
                  f'``{item["default"]}``)', '', f'   {text}', '']
    target = Path(app.srcdir) / 'generated' / 'configuration.rst'
    target.parent.mkdir(exist_ok=True)
    content = '\n'.join(lines)
    if not target.exists() or target.read_text() != content:
        target.write_text(content)


def setup(app):
    app.connect('builder-inited', write_configuration_reference)
