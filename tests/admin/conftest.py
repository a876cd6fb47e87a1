"""The admin API against real stores: SQLite (a temporary file) and PostgreSQL (a fresh schema
per test; skipped unless WAYPOST_TEST_POSTGRES_URL is set), with one key of each scope."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import API, Keys, make_keys
from fastapi import FastAPI
from fastapi.testclient import TestClient

from waypost.admin import ADMIN_PREFIX, create_admin_app
from waypost.store._sql import SqlStore
from waypost.store.sqlite import SqliteStore

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
StoreFactory = Callable[..., SqlStore]


def _postgres(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    if not POSTGRES_URL:
        pytest.skip("set WAYPOST_TEST_POSTGRES_URL=postgresql://... to run against PostgreSQL")
    psycopg = pytest.importorskip("psycopg", reason="pip install 'waypost[postgres]'")
    from psycopg import sql

    from waypost.store.postgres import PostgresStore

    schema = f"waypost_admin_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
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
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _sqlite(tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[SqlStore] = []

    def make(**options: Any) -> SqlStore:
        store = SqliteStore(tmp_path / "rules.db", **options)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Open stores on one fresh database, SQLite then PostgreSQL."""
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
    else:
        yield from _postgres(request)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite store only (for tests about HTTP rather than the store)."""
    factory = _sqlite(tmp_path)
    make = next(factory)
    store = make()
    store.upgrade()
    yield store
    next(factory, None)


@pytest.fixture
def store(make_store: StoreFactory) -> SqlStore:
    """A store with the schema in place and no rules."""
    opened = make_store()
    opened.upgrade()
    return opened


@pytest.fixture
def keys(store: SqlStore) -> Keys:
    """One key of each scope in ``store``."""
    return make_keys(store)


@pytest.fixture
def changes() -> list[int]:
    """The revisions ``on_change`` was told about."""
    return []


@pytest.fixture
def app(store: SqlStore, changes: list[int]) -> FastAPI:
    """The admin app as the standalone server makes it (prefix /_waypost)."""
    return create_admin_app(store, prefix=ADMIN_PREFIX, on_change=changes.append)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient on the admin app (no cookies kept between tests)."""
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, keys: Keys) -> Callable[..., Any]:
    """``api(method, path, scope="admin", **kwargs)``: a request to ``/_waypost/api{path}`` with
    a bearer key of ``scope``."""

    def call(method: str, path: str, scope: str = "admin", **kwargs: Any) -> Any:
        headers = {**keys.bearer(scope), **kwargs.pop("headers", {})}
        return client.request(method, f"{API}{path}", headers=headers, **kwargs)

    return call
