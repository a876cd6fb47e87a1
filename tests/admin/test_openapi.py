"""The OpenAPI document, and schemathesis against it: no server error and no response that
breaks the document, for every operation (bounded: a few examples each, against SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from waypost.admin import ADMIN_PREFIX, create_admin_app
from waypost.store.sqlite import SqliteStore

OPENAPI = f"{ADMIN_PREFIX}/api/openapi.json"
SEEDED = [
    {"name": "home", "from": "/old", "to": "/new"},
    {"from": "/blog/<int:year>/<slug>", "to": "/posts/{slug}?y={year}", "status": 308},
    {"from": "/gone", "respond": 410},
    {"from": "/app/<path:rest>", "rewrite": "/v2/{rest}"},
]


@pytest.fixture(scope="module")
def admin_and_key(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = SqliteStore(Path(tmp_path_factory.mktemp("openapi")) / "rules.db")
    store.replace_rules(SEEDED, allowed_hosts=["example.com"])
    _, key = store.create_key("admin")
    # A generous failure limit: schemathesis sends no bad keys, but must never be slowed down.
    app = create_admin_app(store, prefix=ADMIN_PREFIX, failure_limit=10_000)
    yield app, key
    store.close()


@pytest.fixture(scope="module")
def admin_schema(admin_and_key: Any) -> Any:
    app, _ = admin_and_key
    return schemathesis.openapi.from_asgi(OPENAPI, app)


schema = schemathesis.pytest.from_fixture("admin_schema")


def test_the_document_describes_every_route(admin_and_key: Any) -> None:
    app: FastAPI = admin_and_key[0]
    document = app.openapi()
    paths = set(document["paths"])
    assert {
        f"{ADMIN_PREFIX}/api/rules",
        f"{ADMIN_PREFIX}/api/rules/{{rule_id}}",
        f"{ADMIN_PREFIX}/api/rules/bulk",
        f"{ADMIN_PREFIX}/api/validate",
        f"{ADMIN_PREFIX}/api/resolve",
        f"{ADMIN_PREFIX}/api/explain",
        f"{ADMIN_PREFIX}/api/revisions",
        f"{ADMIN_PREFIX}/api/revisions/{{number}}",
        f"{ADMIN_PREFIX}/api/revisions/diff",
        f"{ADMIN_PREFIX}/api/revisions/{{number}}/rollback",
        f"{ADMIN_PREFIX}/api/import",
        f"{ADMIN_PREFIX}/api/export",
        f"{ADMIN_PREFIX}/api/keys",
        f"{ADMIN_PREFIX}/api/keys/{{key_id}}",
        f"{ADMIN_PREFIX}/api/keys/{{key_id}}/sessions",
        f"{ADMIN_PREFIX}/api/sessions",
        f"{ADMIN_PREFIX}/api/sessions/{{session_id}}",
        f"{ADMIN_PREFIX}/api/settings",
        f"{ADMIN_PREFIX}/api/stats/rules",
        f"{ADMIN_PREFIX}/api/stats/rules/{{rule_key}}",
        f"{ADMIN_PREFIX}/api/stats/unused-rules",
        f"{ADMIN_PREFIX}/api/stats/not-found",
        f"{ADMIN_PREFIX}/api/stats/not-found/{{row_id}}",
        f"{ADMIN_PREFIX}/api/stats/not-found/{{row_id}}/rule",
    } <= paths
    assert not any(path.endswith("/login") for path in paths)
    schemes = document["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}


@schema.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_schema_violation(case: Any, admin_and_key: Any) -> None:
    _, key = admin_and_key
    case.call_and_validate(
        headers={"Authorization": f"Bearer {key}"},
        checks=[
            not_a_server_error,
            response_schema_conformance,
            status_code_conformance,
            content_type_conformance,
        ],
    )
