"""Shared fixtures: an htpasswd file as ``htpasswd -B`` writes it, and a Flask secret."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

SECRET = "test-secret-key"


def htpasswd_line(user: str, password: str) -> str:
    """A line as ``htpasswd -B`` writes it: the ``$2y$`` prefix, cost 5."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()
    return f"{user}:{hashed.replace('$2b$', '$2y$', 1)}"


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "staff.htpasswd"
    path.write_text(htpasswd_line("ann", "s3cret") + "\n" + htpasswd_line("bob", "hunter2") + "\n")
    return path


@pytest.fixture
def flask_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FLASK_SECRET_KEY", SECRET)
    return SECRET
