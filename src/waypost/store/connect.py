"""Opening a store from a URL: ``sqlite:///path/rules.db`` (or a plain path) or
``postgresql://user@host:5432/db``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waypost.exceptions import StoreError
from waypost.store._sql import SqlStore

__all__ = ["open_store"]

_POSTGRES = ("postgresql://", "postgres://")


def open_store(url: str | Path, **options: Any) -> SqlStore:
    """The store at ``url``; nothing is read until it is used.

    - ``sqlite:///relative/rules.db``, ``sqlite:////absolute/rules.db`` or a plain path (ending
      in ``.db``, ``.sqlite`` or ``.sqlite3``): :class:`~waypost.store.sqlite.SqliteStore`;
    - ``postgresql://user:password@host:5432/database`` (or ``postgres://``):
      :class:`~waypost.store.postgres.PostgresStore` (``pip install 'waypost[postgres]'``).

    ``options`` go to the store's constructor (``schema=``, ``auto_upgrade=``, ...).
    """
    text = str(url).strip()
    if text.startswith(_POSTGRES):
        from waypost.store.postgres import PostgresStore

        return PostgresStore(text, **options)
    if text.startswith("sqlite:"):
        # SQLAlchemy's rules, which users know: three slashes and a relative path, four for an
        # absolute one. 'sqlite:/w.db' made /w.db at the root of the file system before.
        if not text.startswith("sqlite:///"):
            raise StoreError(
                f"{text!r} is not a SQLite URL: write 'sqlite:///rules.db' (three slashes: a "
                "path from the current folder) or 'sqlite:////var/lib/waypost/rules.db' (four: "
                "an absolute path), as SQLAlchemy does"
            )
        path = text[len("sqlite:///") :]
        if not path or path == ":memory:":
            raise StoreError(
                f"{text!r} names no file; an in-memory database is not shared, so write a path "
                "like 'sqlite:///waypost.db'"
            )
        from waypost.store.sqlite import SqliteStore

        return SqliteStore(path, **options)
    if "://" in text or not text:
        raise StoreError(
            f"unknown database URL {text!r}: use 'sqlite:///path/to/rules.db' or "
            "'postgresql://user@host:5432/database'"
        )
    from waypost.store.sqlite import SqliteStore

    return SqliteStore(text, **options)
