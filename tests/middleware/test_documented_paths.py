"""The import paths the README documents (``waypost.asgi``, ``waypost.wsgi``) are the middleware
package's public faces: they re-export the very objects, and nothing else."""

from __future__ import annotations

import importlib

import pytest

FACES = [
    ("waypost.asgi", "waypost.middleware.asgi"),
    ("waypost.wsgi", "waypost.middleware.wsgi"),
]


@pytest.mark.parametrize(("documented", "home"), FACES, ids=["asgi", "wsgi"])
def test_documented_path_re_exports_the_package(documented: str, home: str) -> None:
    face, module = importlib.import_module(documented), importlib.import_module(home)
    assert face.__all__ == module.__all__
    for name in face.__all__:
        assert getattr(face, name) is getattr(module, name), name
    public = {name for name in vars(face) if not name.startswith("_")} - {"annotations"}
    assert public == set(face.__all__)
