"""Sphinx configuration for bpgpu's documentation.

Build (from the repository root):
    pip install -e '.[docs]' && sphinx-build -W --keep-going -b html docs docs/_build/html
Nothing here reaches the network: no intersphinx, no remote images.
"""

# bpgpu is imported installed (pip install -e '.[docs]'), not from the checkout's path: its
# bpgpu.backends and bpgpu.benchmarks live in other folders and exist only as installed.
import bpgpu

project = "bpgpu"
author = "bpgpu authors"
copyright = "2026, bpgpu authors"
release = bpgpu.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "lecture/*.json", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.json"]
templates_path = ["_templates"]
nitpicky = False

# -- API reference ----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_member_order = "bysource"
# The estimators inherit scikit-learn's metadata-routing setters, whose docstrings refer to
# scikit-learn's own glossary and labels (undefined here); they are scikit-learn's, not bpgpu's.
autodoc_default_options = {
    "exclude-members": "set_fit_request, set_partial_fit_request, set_score_request",
}
# numpydoc: the class pages list their members through autodoc (:members: in the template), so
# numpydoc's own member tables would duplicate them (and warn for every name twice).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- Markdown (CHANGES.md, the user guide) ----------------------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# -- Gallery: examples/plot_*.py, run at build time -------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "plot_gallery": "True",
    "within_subsection_order": "FileNameSortKey",
    # No execution-time pages: they load jQuery and DataTables from CDNs (the site stays offline).
    "write_computation_times": False,
}

# -- HTML -------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"bpgpu {release}"
html_static_path = []
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "icon_links": [],
    "secondary_sidebar_items": ["page-toc"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
