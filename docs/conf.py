"""Sphinx configuration of the wgflow documentation.

``sphinx-build -W docs docs/_build`` builds the site: the API reference is generated from the
docstrings of every module of ``wgflow`` and ``solvers`` (autosummary, recursive), the config
reference from :data:`wgflow.config.SCHEMA`, and the tutorials are the notebooks of
``notebooks/``, executed at build time at smoke size (``WGFLOW_SMOKE=1``).
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]

# Before wgflow or numba is imported: the CUDA modules import on numba's simulator (no GPU
# needed), and the notebooks pick their smallest study size. The notebooks' kernel inherits this
# environment (and draws its figures inline: no MPLBACKEND here).
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
os.environ["WGFLOW_SMOKE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import wgflow  # noqa: E402

project = "wgflow"
author = "the wgflow developers"
copyright = "2026, the wgflow developers"
release = version = wgflow.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "wgflow_docs",
]
# jupyter_execute: the executed notebooks MyST-NB writes next to the output (docs/ for
# `sphinx-build docs docs/_build`)
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]
# Every cross-reference must resolve (_ext/wgflow_docs.py links names to where they are defined).
# An ambiguous one (a word of a type description such as "shape", which several classes have as
# an attribute) links to the first target without a warning.
nitpicky = True
suppress_warnings = ["ref.python"]
html_theme = "furo"
html_title = f"wgflow {release}"

# API reference: one page per module (a module without a docstring fails the build:
# _ext/wgflow_docs.py), every public member documented where it is defined; autodoc leaves out a
# member without a docstring, which tests/test_docs.py refuses.
autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": True}
# Shapes and types are in the docstrings; numpy's ArrayLike alias would spell out its union.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# numba-cuda is an optional dependency (the [cuda] extra): without it, its modules are documented
# against a stand-in, so that the site builds on a machine without it.
autodoc_mock_imports = [] if importlib.util.find_spec("numba.cuda") else ["numba.cuda"]

# MyST Markdown pages and notebooks. Notebooks run when the site is built, and any error in
# them fails the build.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True

# The tutorials are the numbered notebooks of notebooks/, copied in at every build so that a
# notebook added there appears without an edit here.
_TUTORIALS = DOCS / "tutorials" / "notebooks"
shutil.rmtree(_TUTORIALS, ignore_errors=True)
_TUTORIALS.mkdir(parents=True)
for _notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
    shutil.copy2(_notebook, _TUTORIALS / _notebook.name)
