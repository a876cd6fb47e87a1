"""Shared fixtures for the core's tests: where the sample rules files live, and a file writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "rules"


@pytest.fixture
def rules_data() -> Path:
    """The folder of sample rules files (good and broken) under tests/data/rules."""
    return DATA


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path / name``; returns the path: ``write_rules("r.yaml", text)``."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
