"""Sphinx configuration of Waypost's documentation: Markdown pages (MyST) in the Furo theme.

Why Sphinx with MyST and Furo: the pages stay the Markdown files the test suite runs (every
example in them is exercised by tests/test_readme.py), GitHub renders them as they are, and the
build is Sphinx's, with cross-page checks that fail on a broken link (``make docs`` runs it with
warnings as errors, as CI does). The Pallets projects document Flask and Werkzeug this way.
MkDocs itself has had no release since 2024; Zensical, its successor, was younger than our need.
"""

from __future__ import annotations

import waypost

project = "Waypost"
author = "The Waypost authors"
copyright = "2026, The Waypost authors"
release = waypost.__version__
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "screenshots/*.md"]
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]
html_theme = "furo"
html_title = f"Waypost {release}"
html_static_path: list[str] = []


def _openapi_page(app: object) -> None:
    """Write ``openapi.md`` (and ``openapi.json``) from the admin app itself, so that the
    reference of the admin API is the running app's, never a copy that drifts."""
    import json
    import tempfile
    from pathlib import Path

    from waypost.admin import ADMIN_PREFIX, create_admin_app
    from waypost.store import open_store

    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'docs.db'}")
        try:
            schema = create_admin_app(store, prefix=ADMIN_PREFIX).openapi()
        finally:
            store.close()
    (here / "openapi.json").write_text(json.dumps(schema, indent=2) + "\n")
    lines = [
        "# Admin API reference",
        "",
        "Made from the admin app's own OpenAPI document when the documentation is built "
        "([openapi.json](openapi.json); a running server serves it at "
        "`/_waypost/api/openapi.json` and its interactive docs at `/_waypost/api/docs`). "
        "How to use it: [the admin API](admin-api.md).",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, object]]]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        for method, path, operation in by_tag[tag]:
            summary = str(operation.get("summary", ""))
            text = str(operation.get("description", "")).strip().split("\n\n")[0]
            lines += [f"### `{method} {path}`", "", summary, "", text.replace("\n", " "), ""]
    (here / "openapi.md").write_text("\n".join(lines).rstrip() + "\n")


def setup(app: object) -> None:
    """CSV examples are shown as they are (Pygments has no CSV lexer); the admin API's
    reference page is made from the app (see :func:`_openapi_page`)."""
    from pygments.lexers.special import TextLexer

    app.add_lexer("csv", TextLexer)  # type: ignore[attr-defined]
    app.connect("builder-inited", _openapi_page)  # type: ignore[attr-defined]
