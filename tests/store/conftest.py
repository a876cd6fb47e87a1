"""Stores for the contract suite: every test runs against SQLite (a temporary file) and
PostgreSQL (a fresh schema per test; skipped unless WAYPOST_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from waypost.store._sql import SqlStore
from waypost.store.sqlite import SqliteStore

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
StoreFactory = Callable[..., SqlStore]


def _postgres_factory(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    if not POSTGRES_URL:
        pytest.skip("set WAYPOST_TEST_POSTGRES_URL=postgresql://... to run against PostgreSQL")
    psycopg = pytest.importorskip("psycopg", reason="pip install 'waypost[postgres]'")
    from psycopg import sql

    from waypost.store.postgres import PostgresStore

    schema = f"waypost_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    opened: list[SqlStore] = []

    def make(**options: Any) -> SqlStore:
        options.setdefault("auto_upgrade", True)
        store = PostgresStore(POSTGRES_URL, schema=schema, **options)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            store.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _sqlite_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[SqlStore] = []
    path = tmp_path / "rules.db"

    def make(**options: Any) -> SqlStore:
        store = SqliteStore(path, **options)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Open stores on one fresh database (each call: another store on the same database)."""
    if request.param == "sqlite":
        yield from _sqlite_factory(tmp_path)
    else:
        yield from _postgres_factory(request)


@pytest.fixture
def store(make_store: StoreFactory) -> SqlStore:
    """A store with the schema in place and no rules."""
    opened = make_store()
    opened.upgrade()
    return opened
