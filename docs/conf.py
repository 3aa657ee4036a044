"""Sphinx configuration: `sphinx-build -W -b html docs docs/_build/html`."""

import optax_hypergrad

project = 'optax-hypergrad'
author = 'the optax-hypergrad authors'
release = optax_hypergrad.__version__
extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx.ext.viewcode',
]
source_suffix = {'.md': 'markdown', '.rst': 'restructuredtext'}
exclude_patterns = ['_build']
myst_heading_anchors = 3
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = 'furo'
html_title = 'optax-hypergrad'
