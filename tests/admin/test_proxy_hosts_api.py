"""The rule set's ``proxy_hosts`` through the admin API, against SQLite and PostgreSQL: read and
written at ``/settings`` (with the loader's checks), kept in revisions and rolled back, given to
``/validate``, brought by imports (a Waypost document's list, a Netlify file's proxy origins) in
each mode, used by ``/resolve``, written by ``/export``, and described in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from waypost.store._sql import SqlStore

Api = Callable[..., Any]

API_RULE = {"from": "/api/<path:rest>", "rewrite": "https://api.example.com/{rest}"}
NETLIFY = "/api/* https://api.example.com/:splat 200\n/old /new 301\n"


def test_settings_read_and_write_proxy_hosts(api: Api, store: SqlStore) -> None:
    refused = api("POST", "/rules", json={"rule": API_RULE})
    assert refused.status_code == 422, refused.text
    assert "the file lists no proxy_hosts" in refused.json()["problems"][0]["message"]

    current = api("GET", "/settings", "read")
    assert current.json()["proxy_hosts"] == []
    changed = api(
        "PUT",
        "/settings",
        json={"proxy_hosts": ["api.example.com"], "message": "allow the API"},
        headers={"If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "defaults": {},
        "allowed_hosts": [],
        "proxy_hosts": ["api.example.com"],
        "guards": {},
        "version": 1,
    }
    assert changed.headers["etag"] == '"1"'
    created = api("POST", "/rules", json={"rule": API_RULE})
    assert created.status_code == 201, created.text

    decision = api("GET", "/resolve", "read", params={"url": "/api/items/4?q=1"}).json()
    assert (decision["action"], decision["location"]) == (
        "proxy",
        "https://api.example.com/items/4?q=1",
    )

    # A field left out stays; the allowed hosts are a separate list.
    kept = api("PUT", "/settings", json={"allowed_hosts": ["example.com"]}).json()
    assert (kept["allowed_hosts"], kept["proxy_hosts"]) == (["example.com"], ["api.example.com"])

    in_use = api("PUT", "/settings", json={"proxy_hosts": []})
    assert in_use.status_code == 422, in_use.text
    ((problem,),) = [in_use.json()["problems"]]
    assert problem["path"] == f"rules[{created.json()['id']}].rewrite"
    assert "(proxy_hosts: [api.example.com])" in problem["message"]
    port = api("PUT", "/settings", json={"proxy_hosts": ["api.example.com:8443"]})
    assert port.status_code == 422
    # The bad entry, and the rule it leaves without its host (as a rules file reports both).
    assert port.json()["problems"][0] == {
        "path": "settings",
        "message": "proxy host 'api.example.com:8443' has a port; list the host alone "
        "('api.example.com') and write the port in the rewrite target",
    }
    assert port.json()["problems"][1]["path"] == problem["path"]
    assert api("PUT", "/settings", json={"proxy_hosts": "api.example.com"}).status_code == 422
    assert store.get_settings().proxy_hosts == ("api.example.com",)


def test_rollback_restores_proxy_hosts(api: Api, store: SqlStore) -> None:
    api("PUT", "/settings", json={"proxy_hosts": ["api.example.com"]})  # 1
    api("PUT", "/settings", json={"proxy_hosts": ["api.example.com", "b.example.com"]})  # 2
    revision = api("GET", "/revisions/2", "read").json()
    ((change,),) = [revision["changes"]]
    assert change["op"] == "settings"
    assert (change["before"]["proxy_hosts"], change["after"]["proxy_hosts"]) == (
        ["api.example.com"],
        ["api.example.com", "b.example.com"],
    )
    diff = api("GET", "/revisions/diff", params={"from": 1}).json()
    assert diff["settings"]["before"]["proxy_hosts"] == ["api.example.com"]
    rolled = api("POST", "/revisions/1/rollback", json={})
    assert rolled.status_code == 200, rolled.text
    assert api("GET", "/settings").json()["proxy_hosts"] == ["api.example.com"]


def test_validate_takes_proxy_hosts_with_a_rule_set(api: Api, store: SqlStore) -> None:
    alone = api("POST", "/validate", "read", json={"rules": [API_RULE]}).json()
    assert alone["valid"] is False
    assert alone["problems"][0]["path"] == "rules[0].rewrite"
    given = {"rules": [API_RULE], "proxy_hosts": ["api.example.com"]}
    assert api("POST", "/validate", json=given).json() == {"valid": True, "problems": []}
    # A rule checked against the stored rules is checked under the stored proxy hosts.
    assert api("POST", "/validate", json={"rule": API_RULE}).json()["valid"] is False
    store.set_settings(proxy_hosts=["api.example.com"])
    assert api("POST", "/validate", json={"rule": API_RULE}).json()["valid"] is True


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("merge", ["stored.example.com", "api.example.com"]),
        ("append", ["stored.example.com", "api.example.com"]),
        ("replace", ["api.example.com"]),
    ],
    ids=["merge-adds", "append-adds", "replace-takes-the-files"],
)
def test_a_netlify_import_brings_its_proxy_origins(
    api: Api, store: SqlStore, mode: str, expected: list[str]
) -> None:
    store.replace_rules(
        [{"from": "/s/<path:rest>", "rewrite": "https://stored.example.com/{rest}"}],
        proxy_hosts=["stored.example.com"],
        defaults={"order": "first_match"},
    )
    response = api(
        "POST",
        "/import",
        "write",
        json={"format": "netlify", "content": NETLIFY, "mode": mode, "confirm_deletes": 1},
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"]["settings_changed"] is True
    assert api("GET", "/settings").json()["proxy_hosts"] == expected
    decision = api("GET", "/resolve", params={"url": "/api/v1/x"}).json()
    assert (decision["action"], decision["location"]) == ("proxy", "https://api.example.com/v1/x")


def test_a_waypost_document_brings_its_proxy_hosts(api: Api, store: SqlStore) -> None:
    content = yaml.safe_dump({"proxy_hosts": ["api.example.com"], "rules": [API_RULE]})
    response = api("POST", "/import", json={"format": "yaml", "content": content})
    assert response.status_code == 200, response.text
    assert store.get_settings().proxy_hosts == ("api.example.com",)

    bad = api(
        "POST",
        "/import",
        json={"format": "json", "content": '{"proxy_hosts": {"a": 1}, "rules": []}'},
    )
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "content.proxy_hosts"
    wrong = yaml.safe_dump({"proxy_hosts": ["other.example"], "rules": [API_RULE]})
    refused = api("POST", "/import", json={"format": "yaml", "content": wrong, "mode": "replace"})
    assert refused.status_code == 422, refused.text
    assert (
        "the file lists proxy_hosts ['other.example']" in (refused.json()["problems"][0]["message"])
    )
    assert store.get_settings().proxy_hosts == ("api.example.com",)


@pytest.mark.parametrize("format", ["yaml", "json"])
def test_export_writes_proxy_hosts(api: Api, store: SqlStore, format: str) -> None:
    store.replace_rules([API_RULE], proxy_hosts=["api.example.com"])
    body = api("GET", "/export", "read", params={"format": format}).json()
    document = yaml.safe_load(body["content"])  # JSON is YAML too
    assert document["proxy_hosts"] == ["api.example.com"]
    assert (body["exported"], body["unsupported"]) == (1, [])


def test_the_openapi_document_shows_proxy_hosts(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    for name in ("SettingsOut", "SettingsBody", "ValidateBody"):
        assert "proxy_hosts" in schemas[name]["properties"], name
    assert "proxy_hosts" in schemas["SettingsOut"]["required"]
    assert "proxy" in schemas["SettingsOut"]["properties"]["proxy_hosts"]["description"]
