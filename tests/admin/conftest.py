"""The admin API against real stores: SQLite (a temporary file) and PostgreSQL (a fresh schema
per test; skipped unless WAYPOST_TEST_POSTGRES_URL is set), with one key of each scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests._browser import browser, page  # noqa: F401 - fixtures for the browser tests
from tests.admin.admin_support import API, Keys, make_keys
from waypost.admin import ADMIN_PREFIX, create_admin_app
from waypost.store._sql import SqlStore


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
