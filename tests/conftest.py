"""Shared fixtures: where the sample rules files live, a file writer, and rule stores on fresh
databases (SQLite: a temporary file; PostgreSQL: a fresh schema per test, skipped unless
WAYPOST_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from waypost.engine._compiled import ENV_SWITCH
from waypost.store._sql import SqlStore
from waypost.store.sqlite import SqliteStore

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
StoreFactory = Callable[..., SqlStore]

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


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema (dropped afterwards); skips without WAYPOST_TEST_POSTGRES_URL."""
    if not POSTGRES_URL:
        pytest.skip("set WAYPOST_TEST_POSTGRES_URL=postgresql://... to run against PostgreSQL")
    psycopg = pytest.importorskip("psycopg", reason="pip install 'waypost[postgres]'")
    from psycopg import sql

    schema = f"waypost_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _opening(open_one: Callable[..., SqlStore]) -> Iterator[StoreFactory]:
    """A factory of stores on one database, every store it opened closed afterwards."""
    opened: list[SqlStore] = []

    def make(**options: Any) -> SqlStore:
        store = open_one(**options)
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
        yield from _opening(lambda **options: SqliteStore(tmp_path / "rules.db", **options))
        return
    from waypost.store.postgres import PostgresStore

    schema = request.getfixturevalue("postgres_schema")
    assert POSTGRES_URL is not None  # postgres_schema skipped otherwise

    def open_postgres(**options: Any) -> SqlStore:
        options.setdefault("auto_upgrade", True)
        return PostgresStore(POSTGRES_URL, schema=schema, **options)

    yield from _opening(open_postgres)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite store with the schema in place (for tests about HTTP rather than the store)."""
    store = SqliteStore(tmp_path / "rules.db")
    store.upgrade()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> SqlStore:
    """A store with the schema in place and no rules."""
    opened = make_store()
    opened.upgrade()
    return opened


@pytest.fixture(params=["compiled road", "python road"])
def road(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test twice: with the compiled road (a middleware builds no Request for a request
    decided by its path and query alone) and without it (every request built and resolved in
    Python). A module takes it with ``pytestmark = pytest.mark.usefixtures("road")``."""
    if request.param == "python road":
        monkeypatch.setenv(ENV_SWITCH, "0")
    return str(request.param)
