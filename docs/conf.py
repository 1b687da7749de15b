"""Sphinx configuration of the skemd documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (after
``pip install -e ".[docs]"``). The gallery in ``examples/`` is executed.
"""

import os
import sys
from pathlib import Path

import matplotlib

import skemd

matplotlib.use("agg")
sys.path.insert(0, str(Path(__file__).parent / "sphinxext"))
# The gallery's examples each run on all cores; keep the build deterministic.
os.environ.setdefault("PYTHONHASHSEED", "0")

project = "skemd"
author = "The skemd developers"
copyright = "2026, The skemd developers"
release = version = skemd.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
source_suffix = {".rst": "restructuredtext"}
# The changelog page includes CHANGES.md from its first release heading (H2).
suppress_warnings = ["myst.header"]

autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Strict numpydoc: every public docstring is checked; a violation is a
# warning, and the build treats warnings as errors.
numpydoc_validation_checks = {"all", "ES01", "SA01", "EX01", "GL08", "RT02"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.set_.*request$"}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "reference_url": {"skemd": None},
}

html_theme = "pydata_sphinx_theme"
html_title = "skemd"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_align": "left",
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
