"""Sphinx configuration of the datalad-slurm documentation."""

project = 'datalad-slurm'
author = 'The datalad-slurm developers'
extensions = ['sphinx.ext.autodoc']
exclude_patterns = ['_build']
html_theme = 'sphinx_rtd_theme'
