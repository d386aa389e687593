"""Sphinx configuration: Markdown pages (MyST), the API reference from our docstrings."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# autodoc imports the package, which imports Airflow: keep Airflow's home in the checkout
# (as the Makefile and tests/conftest.py do) when sphinx-build is run by hand.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
for name in ("airflow.configuration", "airflow.settings"):  # their start-up INFO lines
    logging.getLogger(name).setLevel(logging.WARNING)

from armada_hooks import __version__  # noqa: E402

project = "armada-hooks"
author = "armada-hooks contributors"
copyright = "the armada-hooks contributors"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

# Type hints go into the parameter descriptions as text: names imported only under
# TYPE_CHECKING need not resolve, so the build stays free of warnings.
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"armada-hooks {release}"
