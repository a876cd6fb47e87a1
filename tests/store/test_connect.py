"""Opening a store from its URL: SQLAlchemy's SQLite rules, and what a mistake says."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.exceptions import StoreError
from waypost.store import open_store
from waypost.store.sqlite import SqliteStore


def test_three_slashes_is_a_relative_path_four_an_absolute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rules.db")
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")  # '/tmp/...' makes four slashes
    plain = open_store("plain.db")
    assert isinstance(relative, SqliteStore) and relative.path == Path("rules.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "abs.db"
    assert isinstance(plain, SqliteStore) and plain.path == Path("plain.db")
    assert absolute.location == f"sqlite:///{tmp_path / 'abs.db'}"  # reads back the same


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:/w.db", "is not a SQLite URL: write 'sqlite:///rules.db'"),
        ("sqlite://w.db", "is not a SQLite URL"),
        ("sqlite:w.db", "is not a SQLite URL"),
        ("sqlite://", "is not a SQLite URL"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "an in-memory database is not shared"),
        ("mysql://db/x", "unknown database URL 'mysql://db/x'"),
    ],
    ids=["one-slash", "two-slashes", "no-slash", "empty", "no-path", "memory", "mysql"],
)
def test_a_url_that_is_not_one_says_how_to_write_it(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace("(", r"\(")):
        open_store(url)
    assert not Path("/w.db").exists()


def test_a_missing_folder_is_named_with_the_fix(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'rules.db'}")
    with pytest.raises(StoreError, match=r"the folder '.*/no/such' does not exist; create it"):
        store.upgrade()
    assert not (tmp_path / "no").exists()
