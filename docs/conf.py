"""Sphinx configuration of the tap-vobiz documentation (`docs/`, Markdown read by MyST).

Built by `make docs` into `docs/_build/html`; `tests/test_docs.py` builds it in strict mode
(every warning, a broken link or a heading anchor that does not exist among them, fails).
"""

project = "tap-vobiz"
author = "tap-vobiz contributors"
copyright = "2026, tap-vobiz contributors"

extensions = ["myst_parser", "sphinxcontrib.mermaid"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
# Links such as `meltano.md#tested-loaders` resolve to headings down to level 3.
myst_heading_anchors = 3
# ```mermaid fences are diagrams (GitHub renders the same fences).
myst_fence_as_directive = ["mermaid"]
html_theme = "alabaster"
html_title = "tap-vobiz"
