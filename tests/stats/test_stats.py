"""waypost.stats: the public surface of the analytics core."""

from __future__ import annotations

import ast
from pathlib import Path

import waypost.stats

INIT = Path(waypost.stats.__file__)


def test_all_matches_the_public_imports() -> None:
    tree = ast.parse(INIT.read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
    }
    assert set(waypost.stats.__all__) == imported
    for name in waypost.stats.__all__:
        obj = getattr(waypost.stats, name)
        if callable(obj):
            assert obj.__doc__, f"waypost.stats.{name} has no docstring"
